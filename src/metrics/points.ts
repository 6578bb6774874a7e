import { pointer } from '../engine/check.ts'
import { parseTimestamp, TIME_RULE } from '../engine/events.ts'
import { isForbiddenKey } from '../engine/fields.ts'
import { type Issue, isPlainObject } from '../engine/types.ts'
import type { MetricPoint } from '../stores/store.ts'

export const METRIC_LIMITS = { nameLength: 256, tags: 32, tagKeyLength: 128, tagValueLength: 1024 } as const
const NAME = /^[A-Za-z0-9_.:\-/]+$/
const POINT_FIELDS = new Set(['name', 'value', 'tags', 'timestamp'])

function pathOf(index: number): string {
  return index < 0 ? '' : `/metrics/${index}`
}

/** Checks one metric point of a request body (`index` -1: the body is the point); `now` stands in for a missing timestamp. */
export function parsePoint(
  raw: unknown,
  index: number,
  now: number,
  issues: Issue[],
): MetricPoint | undefined {
  if (!isPlainObject(raw)) {
    issues.push({ path: pathOf(index), message: 'must be an object {"name","value","tags","timestamp"}' })
    return undefined
  }
  const before = issues.length
  for (const key of Object.keys(raw))
    if (!POINT_FIELDS.has(key))
      issues.push({
        path: pointer(pathOf(index), key),
        message: 'unknown field (expected name, value, tags, timestamp)',
      })
  const { name, value, tags, timestamp } = raw
  if (
    typeof name !== 'string' ||
    name.length === 0 ||
    name.length > METRIC_LIMITS.nameLength ||
    !NAME.test(name)
  )
    issues.push({
      path: pointer(pathOf(index), 'name'),
      message: `is required: 1 to ${METRIC_LIMITS.nameLength} of letters, digits, _ . : - /`,
    })
  if (typeof value !== 'number' || !Number.isFinite(value))
    issues.push({ path: pointer(pathOf(index), 'value'), message: 'is required: a finite number' })
  const outTags: Record<string, string> = {}
  if (tags !== undefined && tags !== null) {
    if (!isPlainObject(tags))
      issues.push({ path: pointer(pathOf(index), 'tags'), message: 'must be an object of strings' })
    else {
      const keys = Object.keys(tags)
      if (keys.length > METRIC_LIMITS.tags)
        issues.push({ path: pointer(pathOf(index), 'tags'), message: `at most ${METRIC_LIMITS.tags} tags` })
      for (const k of keys) {
        const v = tags[k]
        const at = () => pointer(pointer(pathOf(index), 'tags'), k)
        if (k.length === 0 || k.length > METRIC_LIMITS.tagKeyLength || isForbiddenKey(k))
          issues.push({ path: at(), message: `tag keys are 1 to ${METRIC_LIMITS.tagKeyLength} characters` })
        else if (typeof v !== 'string' || v.length > METRIC_LIMITS.tagValueLength)
          issues.push({
            path: at(),
            message: `must be a string of at most ${METRIC_LIMITS.tagValueLength} characters`,
          })
        else outTags[k] = v
      }
    }
  }
  let ts = now
  if (timestamp !== undefined && timestamp !== null) {
    const parsed = parseTimestamp(timestamp)
    if (parsed === undefined)
      issues.push({
        path: pointer(pathOf(index), 'timestamp'),
        message: TIME_RULE,
      })
    else ts = parsed
  }
  if (issues.length > before) return undefined
  return { name: name as string, value: value as number, tags: outTags, timestamp: ts }
}

/** `60`, `60s`, `5m`, `1h`, `1d`, `500ms` → milliseconds. */
export function parseStep(raw: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(raw)
  if (!m) return undefined
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 's'] as number
  const ms = Math.round(Number(m[1]) * unit)
  return ms >= 1 ? ms : undefined
}
