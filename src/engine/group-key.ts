import type { FieldRef } from './fields.ts'
import type { Event } from './types.ts'

const TAG = '\u0001'

/**
 * A stable string for one group-by value, distinct across types ("1" vs 1). A string is its own id
 * (no allocation on the hot path) unless it starts with the tag character; every other type is
 * tagged.
 */
function canonical(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value.length > 0 && value.charCodeAt(0) === 1 ? `${TAG}s${value}` : value
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

export interface GroupKeys {
  /** the canonical identity of an event's group */
  id(event: Event): string
  /** the flat key object `/window` shows ({path: value}), or null without group_by */
  object(event: Event): Record<string, unknown> | null
}

export function groupKeys(groupBy: readonly FieldRef[]): GroupKeys {
  if (groupBy.length === 0) return { id: () => '', object: () => null }
  const object = (event: Event) => {
    const key: Record<string, unknown> = {}
    for (const f of groupBy) {
      const v = f.get(event)
      key[f.raw] = v === undefined ? null : v
    }
    return key
  }
  if (groupBy.length === 1) {
    const get = groupBy[0].get
    return { id: (e) => canonical(get(e)), object }
  }
  return {
    id: (e) => {
      let id = canonical(groupBy[0].get(e))
      for (let i = 1; i < groupBy.length; i++) id += `\u001f${canonical(groupBy[i].get(e))}`
      return id
    },
    object,
  }
}
