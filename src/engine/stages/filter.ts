import { RE2JS } from 're2js'
import { fieldAt, type Issues, objectWith, pointer } from '../check.ts'
import { parseRfc3339 } from '../events.ts'
import type { FieldRef } from '../fields.ts'
import { type Event, isPlainObject, type JsonValue } from '../types.ts'

export const OPERATORS = [
  'eq',
  'ne',
  'gt',
  'gte',
  'lt',
  'lte',
  'in',
  'not_in',
  'contains',
  'starts_with',
  'ends_with',
  'regex',
  'exists',
  'not_exists',
] as const
export type Operator = (typeof OPERATORS)[number]

export type Condition =
  | { kind: 'all'; of: Condition[] }
  | { kind: 'any'; of: Condition[] }
  | { kind: 'not'; of: Condition }
  | { kind: 'compare'; field: FieldRef; operator: Operator; value: JsonValue | undefined }

export type Predicate = (event: Event) => boolean

const MAX_DEPTH = 16
const MAX_LIST = 10_000
const MAX_REGEX = 1_000
/** RE2 instructions one pattern may compile to: matching costs at most this per input character */
const MAX_REGEX_PROGRAM = 5_000

function isScalar(v: unknown): v is string | number | boolean | null {
  return v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
}

export function parseCondition(
  value: unknown,
  path: string,
  issues: Issues,
  depth = 0,
): Condition | undefined {
  if (depth > MAX_DEPTH) {
    issues.add(path, `conditions nest at most ${MAX_DEPTH} deep`)
    return undefined
  }
  if (!isPlainObject(value)) {
    issues.add(
      path,
      'must be an object: {"field","operator","value"} or {"all":[…]}, {"any":[…]}, {"not":{…}}',
    )
    return undefined
  }
  for (const kind of ['all', 'any'] as const) {
    if (kind in value) {
      const obj = objectWith(value, path, issues, [kind])
      const list = obj?.[kind]
      if (!Array.isArray(list) || list.length === 0) {
        issues.add(pointer(path, kind), 'must be a non-empty array of conditions')
        return undefined
      }
      const of = list.map((c, i) => parseCondition(c, pointer(pointer(path, kind), i), issues, depth + 1))
      return of.every((c) => c !== undefined) ? { kind, of: of as Condition[] } : undefined
    }
  }
  if ('not' in value) {
    objectWith(value, path, issues, ['not'])
    const of = parseCondition(value.not, pointer(path, 'not'), issues, depth + 1)
    return of ? { kind: 'not', of } : undefined
  }
  const obj = objectWith(value, path, issues, ['field', 'operator', 'value'])
  if (!obj) return undefined
  const field = fieldAt(obj.field, pointer(path, 'field'), issues)
  if (!(OPERATORS as readonly unknown[]).includes(obj.operator)) {
    issues.add(pointer(path, 'operator'), `must be one of: ${OPERATORS.join(', ')}`)
    return undefined
  }
  const operator = obj.operator as Operator
  const valuePath = pointer(path, 'value')
  const v = obj.value
  const before = issues.list.length
  switch (operator) {
    case 'exists':
    case 'not_exists':
      if (v !== undefined) issues.add(valuePath, `must be absent for '${operator}'`)
      break
    case 'eq':
    case 'ne':
      if (!isScalar(v)) issues.add(valuePath, 'must be a string, number, boolean or null')
      break
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      if (typeof v !== 'string' && (typeof v !== 'number' || !Number.isFinite(v)))
        issues.add(valuePath, 'must be a number or a string')
      break
    case 'in':
    case 'not_in':
      if (!Array.isArray(v) || v.length > MAX_LIST || !v.every(isScalar))
        issues.add(valuePath, `must be an array of at most ${MAX_LIST} strings, numbers, booleans or nulls`)
      break
    case 'contains':
      if (!isScalar(v) || v === null) issues.add(valuePath, 'must be a string, number or boolean')
      break
    case 'starts_with':
    case 'ends_with':
      if (typeof v !== 'string') issues.add(valuePath, 'must be a string')
      break
    case 'regex':
      if (typeof v !== 'string') issues.add(valuePath, 'must be a string (a regular expression)')
      else if (v.length > MAX_REGEX) issues.add(valuePath, `must be at most ${MAX_REGEX} characters`)
      else {
        try {
          if (RE2JS.compile(v).programSize() > MAX_REGEX_PROGRAM)
            issues.add(valuePath, `compiles to more than ${MAX_REGEX_PROGRAM} instructions; simplify it`)
        } catch (err) {
          issues.add(
            valuePath,
            `is not a valid RE2 regular expression (no lookaround or backreferences): ${(err as Error).message}`,
          )
        }
      }
      break
  }
  if (!field || issues.list.length > before) return undefined
  let compareValue = v as JsonValue | undefined
  // `timestamp` is epoch milliseconds inside the engine; let users compare it with RFC 3339 strings
  if (
    field.root === 'timestamp' &&
    typeof v === 'string' &&
    ['gt', 'gte', 'lt', 'lte', 'eq', 'ne'].includes(operator)
  ) {
    const ms = parseRfc3339(v)
    if (ms === undefined) {
      issues.add(valuePath, 'must be an RFC 3339 timestamp or epoch milliseconds when comparing timestamp')
      return undefined
    }
    compareValue = ms
  }
  return { kind: 'compare', field, operator, value: compareValue }
}

/** Compiles a condition once into a predicate; comparing different types is false, never an exception. */
export function compileCondition(condition: Condition): Predicate {
  switch (condition.kind) {
    case 'all': {
      const preds = condition.of.map(compileCondition)
      return (e) => {
        for (let i = 0; i < preds.length; i++) if (!preds[i](e)) return false
        return true
      }
    }
    case 'any': {
      const preds = condition.of.map(compileCondition)
      return (e) => {
        for (let i = 0; i < preds.length; i++) if (preds[i](e)) return true
        return false
      }
    }
    case 'not': {
      const pred = compileCondition(condition.of)
      return (e) => !pred(e)
    }
    case 'compare':
      return compileCompare(condition.field.get, condition.operator, condition.value)
  }
}

function compileCompare(
  get: (e: Event) => unknown,
  operator: Operator,
  value: JsonValue | undefined,
): Predicate {
  switch (operator) {
    case 'eq':
      return (e) => get(e) === value
    case 'ne':
      return (e) => get(e) !== value
    case 'gt':
      return ordered(get, value, (a, b) => a > b)
    case 'gte':
      return ordered(get, value, (a, b) => a >= b)
    case 'lt':
      return ordered(get, value, (a, b) => a < b)
    case 'lte':
      return ordered(get, value, (a, b) => a <= b)
    case 'in': {
      const set = new Set(value as unknown[])
      return (e) => set.has(get(e))
    }
    case 'not_in': {
      const set = new Set(value as unknown[])
      return (e) => !set.has(get(e))
    }
    case 'contains':
      return (e) => {
        const v = get(e)
        if (typeof v === 'string') return typeof value === 'string' && v.includes(value)
        if (Array.isArray(v)) return v.includes(value)
        return false
      }
    case 'starts_with': {
      const s = value as string
      return (e) => {
        const v = get(e)
        return typeof v === 'string' && v.startsWith(s)
      }
    }
    case 'ends_with': {
      const s = value as string
      return (e) => {
        const v = get(e)
        return typeof v === 'string' && v.endsWith(s)
      }
    }
    case 'regex': {
      // RE2: matching takes time linear in the input, whatever the pattern (no catastrophic backtracking)
      const re = RE2JS.compile(value as string)
      return (e) => {
        const v = get(e)
        return typeof v === 'string' && re.test(v)
      }
    }
    case 'exists':
      return (e) => {
        const v = get(e)
        return v !== undefined && v !== null
      }
    case 'not_exists':
      return (e) => {
        const v = get(e)
        return v === undefined || v === null
      }
  }
}

function ordered(
  get: (e: Event) => unknown,
  value: JsonValue | undefined,
  cmp: <T extends number | string>(a: T, b: T) => boolean,
): Predicate {
  if (typeof value === 'number') {
    return (e) => {
      const v = get(e)
      return typeof v === 'number' && cmp(v, value)
    }
  }
  const s = value as string
  return (e) => {
    const v = get(e)
    return typeof v === 'string' && cmp(v, s)
  }
}

export function parseFilter(value: unknown, path: string, issues: Issues): Condition | undefined {
  return parseCondition(value, path, issues)
}
