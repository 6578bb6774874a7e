import { pointer } from './check.ts'
import { isForbiddenKey } from './fields.ts'
import { type Event, type Issue, isPlainObject } from './types.ts'

export const MAX_NAME_LENGTH = 256
const EVENT_FIELDS = new Set(['event_type', 'source', 'data', 'timestamp', 'id'])
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/
const MAX_TIME = 8.64e15

/** Reads an input timestamp (RFC 3339 string or epoch milliseconds) as epoch milliseconds. */
export function parseTimestamp(value: unknown): number | undefined {
  if (typeof value === 'number')
    return Number.isFinite(value) && Math.abs(value) <= MAX_TIME ? Math.trunc(value) : undefined
  if (typeof value !== 'string' || !RFC3339.test(value)) return undefined
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? undefined : ms
}

/** Checks that no key anywhere below `value` can reach a prototype. */
function hasForbiddenKey(value: unknown, depth: number): boolean {
  if (depth > 64) return true
  if (Array.isArray(value)) {
    for (const v of value)
      if (typeof v === 'object' && v !== null && hasForbiddenKey(v, depth + 1)) return true
    return false
  }
  if (isPlainObject(value)) {
    for (const key in value) {
      if (isForbiddenKey(key)) return true
      const v = value[key]
      if (typeof v === 'object' && v !== null && hasForbiddenKey(v, depth + 1)) return true
    }
  }
  return false
}

/**
 * Turns the `events` of an ingest request into engine events: checks each one, assigns an id and
 * the ingestion time where missing. Returns every problem with its path, or the events.
 */
export function normalizeEvents(
  raw: unknown[],
  now: number,
  nextId: () => string,
  basePath = '/events',
): { ok: true; events: Event[] } | { ok: false; issues: Issue[] } {
  const issues: Issue[] = []
  const events: Event[] = new Array(raw.length)
  for (let i = 0; i < raw.length; i++) {
    const e = raw[i]
    const at = (field: string) => pointer(pointer(basePath, i), field)
    if (!isPlainObject(e)) {
      issues.push({ path: pointer(basePath, i), message: 'must be an object' })
      continue
    }
    const before = issues.length
    for (const key in e)
      if (!EVENT_FIELDS.has(key))
        issues.push({
          path: at(key),
          message: 'unknown field (expected event_type, source, data, timestamp, id)',
        })
    const { event_type, source, data, timestamp, id } = e
    if (typeof event_type !== 'string' || event_type.length === 0 || event_type.length > MAX_NAME_LENGTH)
      issues.push({
        path: at('event_type'),
        message: `is required: a non-empty string of at most ${MAX_NAME_LENGTH} characters`,
      })
    if (typeof source !== 'string' || source.length === 0 || source.length > MAX_NAME_LENGTH)
      issues.push({
        path: at('source'),
        message: `is required: a non-empty string of at most ${MAX_NAME_LENGTH} characters`,
      })
    if (data !== undefined && data !== null && !isPlainObject(data))
      issues.push({ path: at('data'), message: 'must be an object' })
    else if (data !== undefined && data !== null && hasForbiddenKey(data, 0))
      issues.push({
        path: at('data'),
        message:
          "must not contain the keys '__proto__', 'constructor' or 'prototype' (or nest deeper than 64)",
      })
    let ts = now
    if (timestamp !== undefined && timestamp !== null) {
      const parsed = parseTimestamp(timestamp)
      if (parsed === undefined)
        issues.push({ path: at('timestamp'), message: 'must be an RFC 3339 timestamp or epoch milliseconds' })
      else ts = parsed
    }
    if (
      id !== undefined &&
      id !== null &&
      (typeof id !== 'string' || id.length === 0 || id.length > MAX_NAME_LENGTH)
    )
      issues.push({
        path: at('id'),
        message: `must be a non-empty string of at most ${MAX_NAME_LENGTH} characters`,
      })
    if (issues.length > before) {
      if (issues.length > 100) break
      continue
    }
    events[i] = {
      id: typeof id === 'string' ? id : nextId(),
      event_type: event_type as string,
      source: source as string,
      timestamp: ts,
      data: (data as Record<string, unknown> | undefined) ?? {},
    }
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, events }
}

/** Ids unique across restarts: a random per-process prefix and a counter (from `start`). */
export class IdSequence {
  readonly prefix: string
  position: number

  constructor(prefix: string, start = 0) {
    this.prefix = prefix
    this.position = start
  }

  readonly next = (): string => `${this.prefix}-${(this.position++).toString(36)}`
}
