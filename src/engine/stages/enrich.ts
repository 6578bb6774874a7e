import { fieldAt, type Issues, objectWith, oneOf, pointer } from '../check.ts'
import type { FieldRef } from '../fields.ts'
import { cloneForWrite, setPath } from '../paths.ts'
import type { Event } from '../types.ts'

/** Synchronous read access to lookup tables; the runtime keeps them in memory and swaps them on update. */
export interface LookupSource {
  get(table: string, key: string): Record<string, unknown> | undefined
}

export const ON_MISSING = ['keep', 'drop', 'null'] as const
export type OnMissing = (typeof ON_MISSING)[number]

export interface EnrichSpec {
  table: string
  keyField: FieldRef
  targetField: FieldRef
  onMissing: OnMissing
}

export const TABLE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/

export function parseEnrich(value: unknown, path: string, issues: Issues): EnrichSpec | undefined {
  const obj = objectWith(value, path, issues, ['table', 'key_field', 'target_field', 'on_missing'])
  if (!obj) return undefined
  const before = issues.list.length
  if (typeof obj.table !== 'string' || !TABLE_NAME.test(obj.table))
    issues.add(
      pointer(path, 'table'),
      'must be a table name (letters, digits, _ . -; at most 128 characters)',
    )
  const keyField = fieldAt(obj.key_field, pointer(path, 'key_field'), issues)
  const targetField = fieldAt(obj.target_field, pointer(path, 'target_field'), issues)
  if (targetField && (targetField.root !== 'data' || targetField.segments.length === 0))
    issues.add(pointer(path, 'target_field'), 'must be a path inside data')
  const onMissing =
    obj.on_missing === undefined
      ? 'keep'
      : oneOf(obj.on_missing, pointer(path, 'on_missing'), issues, ON_MISSING)
  if (issues.list.length > before || !keyField || !targetField || !onMissing) return undefined
  return { table: obj.table as string, keyField, targetField, onMissing }
}

export function lookupKey(value: unknown): string | undefined {
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return undefined
}

/** Joins each event with its row; returns undefined when the event is dropped (`on_missing: drop`). */
export function compileEnrich(spec: EnrichSpec, lookups: LookupSource): (event: Event) => Event | undefined {
  const { table, keyField, targetField, onMissing } = spec
  return (event) => {
    const key = lookupKey(keyField.get(event))
    const row = key === undefined ? undefined : lookups.get(table, key)
    if (row === undefined) {
      if (onMissing === 'keep') return event
      if (onMissing === 'drop') return undefined
    }
    const out = cloneForWrite(event)
    setPath(out.data, targetField.segments, row ?? null)
    return out
  }
}
