import {
  type Aggregator,
  avg,
  count,
  countDistinct,
  max,
  min,
  type NumericAggregator,
  percentile,
  sum,
} from '../aggregators/aggregators.ts'
import { HLL_DEFAULT_PRECISION, HLL_MAX_PRECISION, HLL_MIN_PRECISION } from '../aggregators/hyperloglog.ts'
import {
  fieldAt,
  type Issues,
  nonNegativeNumber,
  objectWith,
  oneOf,
  pointer,
  positiveNumber,
  tagged,
} from '../check.ts'
import { type FieldRef, isForbiddenKey } from '../fields.ts'
import { isPlainObject } from '../types.ts'
import { PaneWindows } from '../window-state/panes.ts'
import { type WindowSpec, windowsPerEvent } from '../windows.ts'

/** What a function needs from its field: nothing, a finite number, or any scalar. */
export type ValueKind = 'none' | 'present' | 'number' | 'scalar'

export interface FunctionSpec {
  /** count, sum, avg, min, max, count_distinct or percentile (p50… are percentiles) */
  fn: 'count' | 'sum' | 'avg' | 'min' | 'max' | 'count_distinct' | 'percentile'
  /** the quantile, for percentiles */
  q: number | null
  /** the result name: `count`, `sum_data_amount`, `p99.9_data_latency_ms`, or `as` */
  name: string
  field: FieldRef | null
  value: ValueKind
  aggregator: Aggregator<unknown> | NumericAggregator
  /** what its state means (function, field, quantile, precision): a saved state fits a function of the same identity */
  identity: string
}

export interface AggregateSpec {
  window: WindowSpec
  functions: FunctionSpec[]
  groupBy: FieldRef[]
  time: 'event' | 'processing'
  latenessMs: number
  idleTimeoutMs: number
  emit: 'final' | 'updates'
}

export interface AggregateLimits {
  /** the most windows one event may fall into (hopping size / slide) */
  maxWindowsPerEvent: number
}

export const DEFAULT_AGGREGATE_LIMITS: AggregateLimits = { maxWindowsPerEvent: 1_000 }

const MAX_SECONDS = 366 * 24 * 3600
const MAX_FUNCTIONS = 64
const MAX_PANES = 10_000
const MAX_GROUP_BY = 16
const PERCENTILES: Record<string, number> = { p50: 0.5, p90: 0.9, p95: 0.95, p99: 0.99 }
const SIMPLE = ['count', 'sum', 'avg', 'min', 'max', 'count_distinct'] as const
const KNOWN = [...SIMPLE, ...Object.keys(PERCENTILES), 'percentile']
const AGGREGATE_KEYS = [
  'window_seconds',
  'slide_seconds',
  'session_gap_seconds',
  'function',
  'functions',
  'group_by',
  'time',
  'allowed_lateness_seconds',
  'idle_timeout_seconds',
  'emit',
]

function toMs(seconds: number | undefined, path: string, issues: Issues): number | undefined {
  if (seconds === undefined) return undefined
  const ms = Math.round(seconds * 1000)
  if (ms < 1) {
    issues.add(path, 'must be at least 0.001 (one millisecond)')
    return undefined
  }
  return ms
}

function formatQ(q: number): string {
  return `p${Number((q * 100).toPrecision(12))}`
}

function resultName(prefix: string, field: FieldRef | null): string {
  return field === null ? prefix : `${prefix}_${field.raw.replaceAll('.', '_')}`
}

export function parseFunction(value: unknown, path: string, issues: Issues): FunctionSpec | undefined {
  const tag = tagged(value, path, issues)
  if (!tag) return undefined
  const [fn, payload] = tag
  if (!KNOWN.includes(fn)) {
    issues.add(path, `unknown function '${fn}' (expected one of: ${KNOWN.join(', ')})`)
    return undefined
  }
  const inner = typeof value === 'string' ? path : pointer(path, fn)
  const before = issues.list.length
  let field: FieldRef | null = null
  let as: string | undefined
  let q = PERCENTILES[fn]
  let precision = HLL_DEFAULT_PRECISION
  if (typeof payload === 'string') field = fieldAt(payload, inner, issues) ?? null
  else if (isPlainObject(payload)) {
    const allowed = ['field', 'as']
    if (fn === 'percentile') allowed.push('q')
    if (fn === 'count_distinct') allowed.push('precision')
    objectWith(payload, inner, issues, allowed)
    if (payload.field !== undefined) field = fieldAt(payload.field, pointer(inner, 'field'), issues) ?? null
    if (payload.as !== undefined) {
      if (
        typeof payload.as !== 'string' ||
        payload.as.length === 0 ||
        payload.as.length > 128 ||
        isForbiddenKey(payload.as)
      )
        issues.add(pointer(inner, 'as'), 'must be a non-empty name of at most 128 characters')
      else as = payload.as
    }
    if (fn === 'percentile') {
      const qv = payload.q
      if (typeof qv !== 'number' || !(qv >= 0 && qv <= 1))
        issues.add(pointer(inner, 'q'), 'must be a number in [0, 1]')
      else q = qv
    }
    if (payload.precision !== undefined) {
      const pv = payload.precision
      if (typeof pv !== 'number' || !Number.isInteger(pv) || pv < HLL_MIN_PRECISION || pv > HLL_MAX_PRECISION)
        issues.add(
          pointer(inner, 'precision'),
          `must be an integer in [${HLL_MIN_PRECISION}, ${HLL_MAX_PRECISION}]`,
        )
      else precision = pv
    }
  } else if (payload !== null && payload !== undefined) {
    issues.add(inner, 'must be null, a field path, or an object {"field": …}')
  }
  if (issues.list.length > before) return undefined
  if (fn !== 'count' && field === null) {
    issues.add(inner, `'${fn}' needs a field`)
    return undefined
  }
  if (fn === 'percentile' && q === undefined) {
    issues.add(inner, "'percentile' needs q")
    return undefined
  }
  const prefix = fn === 'percentile' || fn in PERCENTILES ? formatQ(q) : fn
  const name = as ?? resultName(prefix, field)
  const kindName = (fn in PERCENTILES ? 'percentile' : fn) as FunctionSpec['fn']
  const [aggregator, kind]: [Aggregator<unknown> | NumericAggregator, ValueKind] =
    kindName === 'count'
      ? [count, field === null ? 'none' : 'present']
      : kindName === 'count_distinct'
        ? [countDistinct(precision) as Aggregator<unknown>, 'scalar']
        : kindName === 'percentile'
          ? [percentile(q) as Aggregator<unknown>, 'number']
          : [{ sum, avg, min, max }[kindName], 'number']
  const identity = `${kindName}|${kindName === 'percentile' ? q : ''}|${field?.raw ?? ''}|${kindName === 'count_distinct' ? precision : ''}`
  return {
    fn: kindName,
    q: kindName === 'percentile' ? q : null,
    name,
    field,
    value: kind,
    aggregator,
    identity,
  }
}

export function parseAggregate(
  value: unknown,
  path: string,
  issues: Issues,
  limits: AggregateLimits = DEFAULT_AGGREGATE_LIMITS,
): AggregateSpec | undefined {
  const obj = objectWith(value, path, issues, AGGREGATE_KEYS)
  if (!obj) return undefined
  const before = issues.list.length
  const at = (key: string) => pointer(path, key)
  const optional = (key: string) =>
    obj[key] === undefined || obj[key] === null
      ? undefined
      : positiveNumber(obj[key], at(key), issues, MAX_SECONDS)

  const sizeMs = toMs(optional('window_seconds'), at('window_seconds'), issues)
  const slideMs = toMs(optional('slide_seconds'), at('slide_seconds'), issues)
  const gapMs = toMs(optional('session_gap_seconds'), at('session_gap_seconds'), issues)
  let window: WindowSpec | undefined
  if (gapMs !== undefined) {
    if (obj.window_seconds != null)
      issues.add(at('window_seconds'), 'a session window (session_gap_seconds) takes no window_seconds')
    if (obj.slide_seconds != null) issues.add(at('slide_seconds'), 'a session window takes no slide_seconds')
    window = { kind: 'session', gapMs }
  } else if (sizeMs !== undefined) {
    if (slideMs === undefined || slideMs === sizeMs) window = { kind: 'tumbling', sizeMs }
    else if (slideMs > sizeMs) issues.add(at('slide_seconds'), 'must be <= window_seconds')
    else {
      window = { kind: 'hopping', sizeMs, slideMs }
      if (windowsPerEvent(window) > limits.maxWindowsPerEvent)
        issues.add(
          at('slide_seconds'),
          `window_seconds / slide_seconds must be <= ${limits.maxWindowsPerEvent} (windows per event)`,
        )
      else if (PaneWindows.panesPerWindow(sizeMs, slideMs) > MAX_PANES)
        issues.add(
          at('slide_seconds'),
          `window_seconds and slide_seconds share too small a divisor (a window would span more than ${MAX_PANES} slices)`,
        )
    }
  } else if (issues.list.length === before) {
    // absent or null: either way there is no window, and an aggregate without one is no aggregate
    issues.add(
      at('window_seconds'),
      'is required: a number of seconds (or session_gap_seconds for session windows)',
    )
  }

  const functions: FunctionSpec[] = []
  if (obj.function !== undefined) {
    const f = parseFunction(obj.function, at('function'), issues)
    if (f) functions.push(f)
  }
  if (obj.functions !== undefined) {
    if (!Array.isArray(obj.functions) || obj.functions.length === 0 || obj.functions.length > MAX_FUNCTIONS)
      issues.add(at('functions'), `must be an array of 1 to ${MAX_FUNCTIONS} functions`)
    else
      obj.functions.forEach((f, i) => {
        const spec = parseFunction(f, pointer(at('functions'), i), issues)
        if (spec) functions.push(spec)
      })
  }
  if (obj.function === undefined && obj.functions === undefined)
    issues.add(at('function'), 'is required (or functions)')
  const names = new Set<string>()
  for (const f of functions) {
    if (names.has(f.name))
      issues.add(at('functions'), `two functions are named '${f.name}' (use "as" to rename one)`)
    names.add(f.name)
  }

  const groupBy: FieldRef[] = []
  if (obj.group_by !== undefined && obj.group_by !== null) {
    const list = typeof obj.group_by === 'string' ? [obj.group_by] : obj.group_by
    if (!Array.isArray(list) || list.length > MAX_GROUP_BY)
      issues.add(at('group_by'), `must be a field path or an array of at most ${MAX_GROUP_BY} field paths`)
    else
      list.forEach((g, i) => {
        const f = fieldAt(
          g,
          typeof obj.group_by === 'string' ? at('group_by') : pointer(at('group_by'), i),
          issues,
        )
        if (f) groupBy.push(f)
      })
  }
  const time =
    obj.time === undefined ? 'event' : oneOf(obj.time, at('time'), issues, ['event', 'processing'] as const)
  const lateness =
    obj.allowed_lateness_seconds == null
      ? 0
      : nonNegativeNumber(obj.allowed_lateness_seconds, at('allowed_lateness_seconds'), issues, MAX_SECONDS)
  const idle = obj.idle_timeout_seconds == null ? 5 : optional('idle_timeout_seconds')
  const emit =
    obj.emit === undefined ? 'final' : oneOf(obj.emit, at('emit'), issues, ['final', 'updates'] as const)
  if (
    issues.list.length > before ||
    !window ||
    !time ||
    lateness === undefined ||
    idle === undefined ||
    !emit
  )
    return undefined
  return {
    window,
    functions,
    groupBy,
    time,
    latenessMs: Math.round(lateness * 1000),
    idleTimeoutMs: Math.max(1, Math.round(idle * 1000)),
    emit,
  }
}
