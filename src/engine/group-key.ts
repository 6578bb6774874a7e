import type { FieldRef } from './fields.ts'
import type { Event } from './types.ts'

/** A stable string for one group-by value, distinct across types ("1" vs 1). */
function canonical(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return `s${value}`
    case 'number':
      return `n${value}`
    case 'boolean':
      return value ? 'bt' : 'bf'
    case 'undefined':
      return 'z'
    default:
      return value === null ? 'z' : `j${JSON.stringify(value)}`
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
