import { mod } from '../engine/windows.ts'
import type { MetricQuery } from './store.ts'

/** Series identity: the name and the tags sorted by key (as JSON: `{"a":"1","b":"2"}`). */
export function seriesKey(tags: Record<string, string>): string {
  const keys = Object.keys(tags)
  if (keys.length === 0) return '{}'
  if (keys.length > 1) keys.sort()
  let out = '{'
  for (let i = 0; i < keys.length; i++)
    out += `${i > 0 ? ',' : ''}${JSON.stringify(keys[i])}:${JSON.stringify(tags[keys[i]])}`
  return `${out}}`
}

/** What a rollup bucket (a minute, an hour) keeps of its points, in both stores. */
export interface PointSummary {
  n: number
  sum: number
  min: number
  max: number
  lastTs: number
  lastValue: number
}

/** Adds one point to a summary (the latest time wins `lastValue`; a tie, the later write). */
export function foldPoint(s: PointSummary, ts: number, value: number): void {
  s.n++
  s.sum += value
  if (value < s.min) s.min = value
  if (value > s.max) s.max = value
  if (ts >= s.lastTs) {
    s.lastTs = ts
    s.lastValue = value
  }
}

export const MINUTE = 60_000
export const HOUR = 3_600_000
/** Ranges at least this long may be rounded out to whole rollup buckets. */
const LONG_RANGE = 6 * HOUR
/** Most series one query may return. */
export const MAX_QUERY_SERIES = 1_000

/**
 * The table a metrics query reads, the same on every store: the coarsest rollup whose bucket
 * divides the step and fits the range (ranges of 6 hours or more, or reaching before the raw
 * points kept, are rounded out to whole buckets); raw points otherwise.
 */
export function planMetricQuery(
  q: MetricQuery,
  rawSince: number,
): { table: 'raw' | 'minutes' | 'hours'; from: number; to: number } {
  for (const [table, width] of [
    ['hours', HOUR],
    ['minutes', MINUTE],
  ] as const) {
    if (q.stepMs % width !== 0) continue
    if (q.from % width === 0 && q.to % width === 0) return { table, from: q.from, to: q.to }
    if (q.to - q.from >= LONG_RANGE || q.from < rawSince)
      return {
        table,
        from: q.from - mod(q.from, width),
        to: q.to - mod(q.to, width) + (mod(q.to, width) === 0 ? 0 : width),
      }
  }
  return { table: 'raw', from: q.from, to: q.to }
}
