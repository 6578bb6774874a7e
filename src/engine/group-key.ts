import type { FieldRef } from './fields.ts'
import { matchingValues, parseKeyValue } from './key-filter.ts'
import type { Event } from './types.ts'

const TAG = '\u0001'
const SEPARATOR = '\u001f'

/**
 * A stable string for one group-by value, distinct across types ("1" vs 1). A string is its own id
 * (no allocation on the hot path) unless it starts with the tag character; every other type is
 * tagged.
 */
function canonical(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value.length > 0 && value.charCodeAt(0) === 1 ? `${TAG}s${value}` : value
    default:
      return tagged(value)
  }
}

/** In a key of several fields, a string holding the separator is tagged JSON (which escapes it), so ids split back unambiguously. */
function canonicalPart(value: unknown): string {
  if (typeof value === 'string' && value.includes(SEPARATOR)) return `${TAG}j${JSON.stringify(value)}`
  return canonical(value)
}

function tagged(value: unknown): string {
  switch (typeof value) {
    case 'number':
      return `${TAG}n${value}`
    case 'boolean':
      return value ? `${TAG}t` : `${TAG}f`
    case 'undefined':
      return `${TAG}z`
    default:
      return value === null ? `${TAG}z` : `${TAG}j${JSON.stringify(value)}`
  }
}

/** The value a canonical part stands for (a missing value reads back as null). */
function decodePart(part: string): unknown {
  if (part.length === 0 || part.charCodeAt(0) !== 1) return part
  const rest = part.slice(2)
  switch (part[1]) {
    case 's':
      return rest
    case 'n':
      return Number(rest)
    case 't':
      return true
    case 'f':
      return false
    case 'j':
      return JSON.parse(rest)
    default:
      return null
  }
}

export interface GroupKeys {
  /** the canonical identity of an event's group */
  id(event: Event): string
  /**
   * The flat key object `/window` shows ({path: value}), or null without group_by, rebuilt from
   * the id: window state keeps only the id, not an object per key.
   */
  decode(id: string): Record<string, unknown> | null
  /**
   * The ids of the keys a filter {path: value as text} matches (the rule of key-filter.ts), when it
   * names every group-by path and nothing else; undefined otherwise (the caller then checks each
   * key).
   */
  idsMatching(filter: Record<string, string>): string[] | undefined
}

function idsMatching(groupBy: readonly FieldRef[], filter: Record<string, string>): string[] | undefined {
  const paths = Object.keys(filter)
  if (paths.length !== groupBy.length || groupBy.some((f) => !(f.raw in filter))) return undefined
  const values = (text: string) => matchingValues(parseKeyValue(text))
  if (groupBy.length === 1) return values(filter[groupBy[0].raw]).map(canonical)
  let ids = ['']
  groupBy.forEach((f, i) => {
    const parts = values(filter[f.raw]).map(canonicalPart)
    ids = ids.flatMap((id) => parts.map((part) => (i === 0 ? part : `${id}${SEPARATOR}${part}`)))
  })
  return ids
}

export function groupKeys(groupBy: readonly FieldRef[]): GroupKeys {
  if (groupBy.length === 0) return { id: () => '', decode: () => null, idsMatching: () => undefined }
  if (groupBy.length === 1) {
    const { get, raw } = groupBy[0]
    return {
      id: (e) => canonical(get(e)),
      decode: (id) => ({ [raw]: decodePart(id) }),
      idsMatching: (filter) => idsMatching(groupBy, filter),
    }
  }
  return {
    id: (e) => {
      let id = canonicalPart(groupBy[0].get(e))
      for (let i = 1; i < groupBy.length; i++) id += `${SEPARATOR}${canonicalPart(groupBy[i].get(e))}`
      return id
    },
    decode: (id) => {
      const parts = id.split(SEPARATOR)
      const key: Record<string, unknown> = {}
      for (let i = 0; i < groupBy.length; i++) key[groupBy[i].raw] = decodePart(parts[i] ?? `${TAG}z`)
      return key
    },
    idsMatching: (filter) => idsMatching(groupBy, filter),
  }
}
