import { fieldAt, type Issues, objectWith, pointer, safeKeys } from '../check.ts'
import type { FieldRef } from '../fields.ts'
import { cloneForWrite, removePath, setPath } from '../paths.ts'
import type { Event } from '../types.ts'

export interface MapSpec {
  mappings: Array<[from: FieldRef, to: FieldRef]>
  set: Array<[FieldRef, unknown]>
  remove: FieldRef[]
}

const MAX_ENTRIES = 1_000

function dataTarget(value: unknown, path: string, issues: Issues): FieldRef | undefined {
  const field = fieldAt(value, path, issues)
  if (field && (field.root !== 'data' || field.segments.length === 0)) {
    issues.add(path, 'must be a path inside data (top-level fields cannot be written or removed)')
    return undefined
  }
  return field
}

export function parseMap(value: unknown, path: string, issues: Issues): MapSpec | undefined {
  const obj = objectWith(value, path, issues, ['mappings', 'set', 'remove'])
  if (!obj) return undefined
  const before = issues.list.length
  const spec: MapSpec = { mappings: [], set: [], remove: [] }
  if (obj.mappings === undefined && obj.set === undefined && obj.remove === undefined)
    issues.add(path, 'needs at least one of mappings, set, remove')
  if (obj.mappings !== undefined) {
    const m = objectWith(obj.mappings, pointer(path, 'mappings'), issues, Object.keys(obj.mappings ?? {}))
    if (m && Object.keys(m).length > MAX_ENTRIES)
      issues.add(pointer(path, 'mappings'), `at most ${MAX_ENTRIES} entries`)
    for (const [from, to] of Object.entries(m ?? {})) {
      const p = pointer(pointer(path, 'mappings'), from)
      const f = fieldAt(from, p, issues)
      const t = dataTarget(to, p, issues)
      if (f && t) spec.mappings.push([f, t])
    }
  }
  if (obj.set !== undefined) {
    const s = objectWith(obj.set, pointer(path, 'set'), issues, Object.keys(obj.set ?? {}))
    if (s && Object.keys(s).length > MAX_ENTRIES)
      issues.add(pointer(path, 'set'), `at most ${MAX_ENTRIES} entries`)
    for (const [target, v] of Object.entries(s ?? {})) {
      const p = pointer(pointer(path, 'set'), target)
      const t = dataTarget(target, p, issues)
      safeKeys(v, p, issues)
      if (t) spec.set.push([t, v])
    }
  }
  if (obj.remove !== undefined) {
    if (!Array.isArray(obj.remove) || obj.remove.length > MAX_ENTRIES)
      issues.add(pointer(path, 'remove'), `must be an array of at most ${MAX_ENTRIES} field paths`)
    else
      obj.remove.forEach((r, i) => {
        const t = dataTarget(r, pointer(pointer(path, 'remove'), i), issues)
        if (t) spec.remove.push(t)
      })
  }
  return issues.list.length > before ? undefined : spec
}

/** Renames (`mappings`), then sets constants (`set`), then removes (`remove`); never mutates its input. */
export function compileMap(spec: MapSpec): (event: Event) => Event {
  const { mappings, set, remove } = spec
  return (event) => {
    const out = cloneForWrite(event)
    if (mappings.length > 0) {
      const values = mappings.map(([from]) => from.get(event))
      for (const [from] of mappings)
        if (from.root === 'data' && from.segments.length > 0) removePath(out.data, from.segments)
      for (let i = 0; i < mappings.length; i++) {
        if (values[i] !== undefined) setPath(out.data, mappings[i][1].segments, values[i])
      }
    }
    for (const [target, value] of set) setPath(out.data, target.segments, value)
    for (const target of remove) removePath(out.data, target.segments)
    return out
  }
}
