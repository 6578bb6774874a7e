import type { Event } from './types.ts'

/** Copy-on-write helpers over an event's `data`: events read from the log are shared, never mutated. */
export function cloneForWrite(event: Event): Event {
  return {
    id: event.id,
    event_type: event.event_type,
    source: event.source,
    timestamp: event.timestamp,
    data: { ...event.data },
  }
}

/** Sets `segments` below `root` (which the caller owns), copying every object on the way down. */
export function setPath(root: Record<string, unknown>, segments: readonly string[], value: unknown): void {
  if (segments.length === 1) {
    root[segments[0]] = value
    return
  }
  let current = root
  for (let i = 0; i < segments.length - 1; i++) {
    const segment = segments[i]
    const next = Object.hasOwn(current, segment) ? current[segment] : undefined
    const copy =
      typeof next === 'object' && next !== null && !Array.isArray(next)
        ? { ...(next as Record<string, unknown>) }
        : {}
    current[segment] = copy
    current = copy
  }
  current[segments[segments.length - 1]] = value
}

/** Removes `segments` below `root` (which the caller owns), copying every object on the way down. */
export function removePath(root: Record<string, unknown>, segments: readonly string[]): void {
  if (segments.length === 1) {
    if (Object.hasOwn(root, segments[0])) delete root[segments[0]]
    return
  }
  let current = root
  for (let i = 0; i < segments.length - 1; i++) {
    const segment = segments[i]
    const next = Object.hasOwn(current, segment) ? current[segment] : undefined
    if (typeof next !== 'object' || next === null || Array.isArray(next)) return
    const copy = { ...(next as Record<string, unknown>) }
    current[segment] = copy
    current = copy
  }
  delete current[segments[segments.length - 1]]
}
