import { type FieldRef, isForbiddenKey, parseFieldPath } from './fields.ts'
import { type Issue, isPlainObject } from './types.ts'

/** Collects validation issues with their JSON-pointer paths. */
export class Issues {
  readonly list: Issue[] = []
  add(path: string, message: string): void {
    this.list.push({ path: path === '' ? '/' : path, message })
  }
  get empty(): boolean {
    return this.list.length === 0
  }
}

export function pointer(base: string, key: string | number): string {
  const escaped = String(key).replaceAll('~', '~0').replaceAll('/', '~1')
  return `${base}/${escaped}`
}

/** Checks that `value` is an object with only `allowed` keys; reports unknown keys by path. */
export function objectWith(
  value: unknown,
  path: string,
  issues: Issues,
  allowed: readonly string[],
): Record<string, unknown> | undefined {
  if (!isPlainObject(value)) {
    issues.add(path, 'must be an object')
    return undefined
  }
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key))
      issues.add(pointer(path, key), `unknown field (expected one of: ${allowed.join(', ')})`)
  }
  return value
}

/** An externally tagged value: `"count"`, `{"count": null}`, `{"sum": {...}}`. Returns [tag, payload]. */
export function tagged(value: unknown, path: string, issues: Issues): [string, unknown] | undefined {
  if (typeof value === 'string') return [value, null]
  if (!isPlainObject(value)) {
    issues.add(path, 'must be a string or an object with exactly one key')
    return undefined
  }
  const keys = Object.keys(value)
  if (keys.length !== 1) {
    issues.add(path, `must have exactly one key, found ${keys.length}`)
    return undefined
  }
  return [keys[0], value[keys[0]]]
}

export function fieldAt(value: unknown, path: string, issues: Issues): FieldRef | undefined {
  const parsed = parseFieldPath(value)
  if (parsed.ok) return parsed.value
  for (const issue of parsed.issues) issues.add(path, issue.message)
  return undefined
}

/** A finite number above 0 (or at least 0 with `allowZero`) and at most `max`. */
function boundedNumber(
  value: unknown,
  path: string,
  issues: Issues,
  max: number,
  allowZero: boolean,
): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) issues.add(path, 'must be a number')
  else if (allowZero ? value < 0 : value <= 0) issues.add(path, allowZero ? 'must be >= 0' : 'must be > 0')
  else if (value > max) issues.add(path, `must be <= ${max}`)
  else return value
  return undefined
}

export function positiveNumber(
  value: unknown,
  path: string,
  issues: Issues,
  max: number,
): number | undefined {
  return boundedNumber(value, path, issues, max, false)
}

export function nonNegativeNumber(
  value: unknown,
  path: string,
  issues: Issues,
  max: number,
): number | undefined {
  return boundedNumber(value, path, issues, max, true)
}

export function oneOf<T extends string>(
  value: unknown,
  path: string,
  issues: Issues,
  options: readonly T[],
): T | undefined {
  if (typeof value === 'string' && (options as readonly string[]).includes(value)) return value as T
  issues.add(path, `must be one of: ${options.join(', ')}`)
  return undefined
}

/** Checks a user-supplied object's keys recursively for prototype-reaching names. */
export function safeKeys(value: unknown, path: string, issues: Issues, depth = 0): void {
  if (depth > 32) {
    issues.add(path, 'is nested too deeply')
    return
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) safeKeys(value[i], pointer(path, i), issues, depth + 1)
  } else if (isPlainObject(value)) {
    for (const [key, v] of Object.entries(value)) {
      if (isForbiddenKey(key)) issues.add(pointer(path, key), `key '${key}' is not allowed`)
      safeKeys(v, pointer(path, key), issues, depth + 1)
    }
  }
}
