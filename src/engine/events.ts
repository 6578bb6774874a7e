import { pointer } from './check.ts'
import { isForbiddenKey } from './fields.ts'
import { type Event, type Issue, isPlainObject } from './types.ts'

export const MAX_NAME_LENGTH = 256
const EVENT_FIELDS = new Set(['event_type', 'source', 'data', 'timestamp', 'id'])
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:[Zz]|[+-](\d{2}):(\d{2}))$/
/** Event times the engine takes: 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z. Every time computed from them (window ends, session ends, watermarks) stays far inside what a Date can hold. */
export const MIN_TIME = 0
export const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999)
export const TIME_RULE =
  'must be an RFC 3339 timestamp or epoch milliseconds, from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z'

function inRange(ms: number): number | undefined {
  return ms >= MIN_TIME && ms <= MAX_TIME ? ms : undefined
}

/** Reads an input timestamp (RFC 3339 string or epoch milliseconds) as epoch milliseconds; undefined when invalid or out of range. */
export function parseTimestamp(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? inRange(Math.trunc(value)) : undefined
  if (typeof value !== 'string') return undefined
  const ms = parseUtcFast(value) ?? parseRfc3339(value)
  return ms === undefined ? undefined : inRange(ms)
}

/** Any RFC 3339 timestamp, calendar checked (no 30 February, no 24:00), as epoch ms (the reference the fast path must agree with). */
export function parseRfc3339(value: string): number | undefined {
  const m = RFC3339.exec(value)
  if (m === null) return undefined
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i]))
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return undefined
  if (hour > 23 || minute > 59 || second > 59) return undefined
  if (m[8] !== undefined && (Number(m[8]) > 23 || Number(m[9]) > 59)) return undefined
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? undefined : ms
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

function daysIn(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  return month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]
}

/** Two ASCII digits at `at` as a number, or -1. */
function digits2(s: string, at: number): number {
  const a = s.charCodeAt(at) - 48
  const b = s.charCodeAt(at + 1) - 48
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1
}

/**
 * The common shape `YYYY-MM-DDTHH:MM:SS[.fff]Z` read by character codes: no regular expression,
 * no Date.parse. Anything else (offsets, other fractions, odd dates) is undefined here and goes
 * the general way.
 */
function parseUtcFast(s: string): number | undefined {
  const n = s.length
  if ((n !== 20 && n !== 24) || s.charCodeAt(n - 1) !== 90 /* Z */) return undefined
  if (s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(10) !== 84) return undefined
  if (s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58) return undefined
  const century = digits2(s, 0)
  const yy = digits2(s, 2)
  const month = digits2(s, 5)
  const day = digits2(s, 8)
  const hour = digits2(s, 11)
  const minute = digits2(s, 14)
  const second = digits2(s, 17)
  if ((century | yy | month | day | hour | minute | second) < 0) return undefined
  const year = century * 100 + yy
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return undefined
  if (hour > 23 || minute > 59 || second > 59) return undefined
  let ms = 0
  if (n === 24) {
    if (s.charCodeAt(19) !== 46 /* . */) return undefined
    const a = digits2(s, 20)
    const c = s.charCodeAt(22) - 48
    if (a < 0 || c < 0 || c > 9) return undefined
    ms = a * 10 + c
  }
  // Date.UTC maps years 0-99 to 1900-1999: set the year separately there
  if (year < 100) return undefined
  return Date.UTC(year, month - 1, day, hour, minute, second, ms)
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
    const event = normalizeEvent(raw[i], now, nextId, basePath, i, issues)
    if (event !== undefined) events[i] = event
    else if (issues.length > 100) break
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, events }
}

/**
 * Event `index` of `basePath` checked (its problems appended to `issues`, with their paths): the
 * engine event, or undefined when it has a problem. A source message goes through here alone,
 * without the arrays and the result object of a request.
 */
export function normalizeEvent(
  e: unknown,
  now: number,
  nextId: () => string,
  basePath: string,
  index: number,
  issues: Issue[],
): Event | undefined {
  const at = (field: string) => pointer(pointer(basePath, index), field)
  if (!isPlainObject(e)) {
    issues.push({ path: pointer(basePath, index), message: 'must be an object' })
    return undefined
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
      message: "must not contain the keys '__proto__', 'constructor' or 'prototype' (or nest deeper than 64)",
    })
  let ts = now
  if (timestamp !== undefined && timestamp !== null) {
    const parsed = parseTimestamp(timestamp)
    if (parsed === undefined) issues.push({ path: at('timestamp'), message: TIME_RULE })
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
  if (issues.length > before) return undefined
  return {
    id: typeof id === 'string' ? id : nextId(),
    event_type: event_type as string,
    source: source as string,
    timestamp: ts,
    data: (data as Record<string, unknown> | undefined) ?? {},
  }
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
