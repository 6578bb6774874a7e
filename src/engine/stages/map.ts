import { fieldAt, type Issues, objectWith, pointer, safeKeys } from '../check.ts'
import type { FieldRef } from '../fields.ts'
import { removePath, setPath } from '../paths.ts'
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

/**
 * Renames (`mappings`), then sets constants (`set`), then removes (`remove`); never mutates its
 * input. Top-level keys of `data` that go away are skipped while copying (no `delete`, which would
 * turn the copy into a slow dictionary object).
 */
export function compileMap(spec: MapSpec): (event: Event) => Event {
  const fromGets = spec.mappings.map(([from]) => from.get)
  const isDataPath = (f: FieldRef) => f.root === 'data' && f.segments.length > 0
  const dropped = [...spec.mappings.map(([from]) => from).filter(isDataPath), ...spec.remove]
  const skipTop = new Set(dropped.filter((f) => f.segments.length === 1).map((f) => f.segments[0]))
  const removeNested = spec.mappings
    .map(([from]) => from)
    .filter((f) => isDataPath(f) && f.segments.length > 1)
    .map((f) => f.segments)
  const removeAfter = spec.remove.filter((f) => f.segments.length > 1).map((f) => f.segments)
  const targets = spec.mappings.map(([, to]) => to.segments)
  const sets = spec.set.map(([t, v]) => [t.segments, v] as const)
  const n = fromGets.length
  const values: unknown[] = new Array(n)
  return (event) => {
    for (let i = 0; i < n; i++) values[i] = fromGets[i](event)
    let data: Record<string, unknown>
    if (skipTop.size === 0) data = { ...event.data }
    else {
      data = {}
      const src = event.data
      for (const k in src) if (!skipTop.has(k) && Object.hasOwn(src, k)) data[k] = src[k]
    }
    for (let i = 0; i < removeNested.length; i++) removePath(data, removeNested[i])
    for (let i = 0; i < n; i++) if (values[i] !== undefined) setPath(data, targets[i], values[i])
    for (let i = 0; i < sets.length; i++) setPath(data, sets[i][0], sets[i][1])
    for (let i = 0; i < removeAfter.length; i++) removePath(data, removeAfter[i])
    // a top-level remove also drops what a mapping or set wrote there
    for (const f of spec.remove)
      if (f.segments.length === 1 && Object.hasOwn(data, f.segments[0])) removePath(data, f.segments)
    return {
      id: event.id,
      event_type: event.event_type,
      source: event.source,
      timestamp: event.timestamp,
      data,
    }
  }
}
