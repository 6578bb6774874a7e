import { DDSketch } from '@datadog/sketches-js'
import type { JsonValue } from '../types.ts'
import { HyperLogLog } from './hyperloglog.ts'

/**
 * An aggregate function whose state is an object: an accumulator that starts at `init`, takes
 * values with `add`, combines with `merge` (for sessions and scale-out), answers with `result`,
 * and round-trips through JSON for checkpoints. Accumulators are mutable objects, so the hot
 * path allocates nothing per event.
 */
export interface Aggregator<A> {
  numeric?: false
  init(): A
  add(acc: A, value: unknown): void
  merge(into: A, from: A): void
  result(acc: A): number | null
  toJson(acc: A): JsonValue
  fromJson(json: JsonValue): A
}

/**
 * An aggregate function whose state is `width` numbers at `at` in the slot's number array: a
 * million keys then cost a million small arrays of doubles, not objects per function and key.
 */
export interface NumericAggregator {
  numeric: true
  width: number
  /** writes the starting numbers */
  init(a: number[], at: number): void
  add(a: number[], at: number, value: number): void
  merge(into: number[], from: number[], at: number): void
  result(a: number[], at: number): number | null
  toJson(a: number[], at: number): JsonValue
  /** writes the numbers `json` holds */
  fromJson(json: JsonValue, a: number[], at: number): void
}

export const count: NumericAggregator = {
  numeric: true,
  width: 1,
  init: (a, at) => {
    a[at] = 0
  },
  add: (a, at) => {
    a[at]++
  },
  merge: (into, from, at) => {
    into[at] += from[at]
  },
  result: (a, at) => a[at],
  toJson: (a, at) => a[at],
  fromJson: (json, a, at) => {
    a[at] = json as number
  },
}

/** A sum past the range of a double is Infinity (or NaN for +∞ + −∞): its result is null, not a number JSON cannot hold. */
function finiteOrNull(x: number): number | null {
  return Number.isFinite(x) ? x : null
}

/** A number for a checkpoint: JSON has no Infinity or NaN, so those are kept as their names. */
function numberJson(x: number): JsonValue {
  return Number.isFinite(x) ? x : String(x)
}

export const sum: NumericAggregator = {
  ...count,
  add: (a, at, value) => {
    a[at] += value
  },
  result: (a, at) => finiteOrNull(a[at]),
  toJson: (a, at) => numberJson(a[at]),
  fromJson: (json, a, at) => {
    a[at] = Number(json)
  },
}

/** [sum, n] */
export const avg: NumericAggregator = {
  numeric: true,
  width: 2,
  init: (a, at) => {
    a[at] = 0
    a[at + 1] = 0
  },
  add: (a, at, value) => {
    a[at] += value
    a[at + 1]++
  },
  merge: (into, from, at) => {
    into[at] += from[at]
    into[at + 1] += from[at + 1]
  },
  result: (a, at) => (a[at + 1] === 0 ? null : finiteOrNull(a[at] / a[at + 1])),
  toJson: (a, at) => [numberJson(a[at]), a[at + 1]],
  fromJson: (json, a, at) => {
    const [s, n] = json as [number | string, number]
    a[at] = Number(s)
    a[at + 1] = n
  },
}

/** NaN until the first value (values are finite numbers). */
function extreme(better: (a: number, b: number) => boolean): NumericAggregator {
  const take = (a: number[], at: number, v: number) => {
    if (Number.isNaN(a[at]) || better(v, a[at])) a[at] = v
  }
  return {
    numeric: true,
    width: 1,
    init: (a, at) => {
      a[at] = Number.NaN
    },
    add: take,
    merge: (into, from, at) => {
      if (!Number.isNaN(from[at])) take(into, at, from[at])
    },
    result: (a, at) => (Number.isNaN(a[at]) ? null : a[at]),
    toJson: (a, at) => (Number.isNaN(a[at]) ? null : a[at]),
    fromJson: (json, a, at) => {
      a[at] = json === null ? Number.NaN : (json as number)
    },
  }
}

export const min = extreme((a, b) => a < b)
export const max = extreme((a, b) => a > b)

/** Exact below this many distinct values per window and key, HyperLogLog above. */
export const EXACT_DISTINCT_LIMIT = 1_000

type Distinct = { exact: Set<string> | null; hll: HyperLogLog | null }

export function distinctKey(value: unknown): string {
  return typeof value === 'string' ? `s${value}` : typeof value === 'number' ? `n${value}` : `b${value}`
}

export function countDistinct(precision: number): Aggregator<Distinct> {
  const promote = (acc: Distinct): HyperLogLog => {
    const hll = new HyperLogLog(precision)
    for (const k of acc.exact ?? []) hll.add(k)
    acc.exact = null
    acc.hll = hll
    return hll
  }
  return {
    init: () => ({ exact: new Set(), hll: null }),
    add: (acc, value) => {
      const key = distinctKey(value)
      if (acc.hll) acc.hll.add(key)
      else {
        const set = acc.exact!
        set.add(key)
        if (set.size > EXACT_DISTINCT_LIMIT) promote(acc)
      }
    },
    merge: (into, from) => {
      if (from.hll) (into.hll ?? promote(into)).merge(from.hll)
      else for (const k of from.exact ?? []) distinctAdd(into, k)
    },
    result: (acc) => (acc.hll ? acc.hll.estimate() : acc.exact!.size),
    toJson: (acc): JsonValue =>
      acc.hll ? { hll: acc.hll.toBase64(), p: precision } : { exact: [...acc.exact!] },
    fromJson: (json) => {
      const j = json as { hll?: string; exact?: string[] }
      if (j.hll !== undefined) return { exact: null, hll: HyperLogLog.fromBase64(precision, j.hll) }
      return { exact: new Set(j.exact ?? []), hll: null }
    },
  }
  function distinctAdd(acc: Distinct, key: string): void {
    if (acc.hll) acc.hll.add(key)
    else {
      acc.exact!.add(key)
      if (acc.exact!.size > EXACT_DISTINCT_LIMIT) promote(acc)
    }
  }
}

/** Relative accuracy of every percentile sketch. */
export const PERCENTILE_ACCURACY = 0.01
/**
 * Values a percentile keeps exactly before it turns into a DDSketch: most (window, key) pairs see
 * a few values, and a sketch costs ~1 KB even for one, so small groups stay a small array (and
 * their answer is exact, inside the sketch's promise).
 */
export const EXACT_PERCENTILE_LIMIT = 32

type Quantiles = { exact: number[] | null; sketch: DDSketch | null }

function newSketch(): DDSketch {
  return new DDSketch({ relativeAccuracy: PERCENTILE_ACCURACY })
}

function mergeSketch(into: DDSketch, from: DDSketch): void {
  if (from.count === 0) return
  const copying = into.count === 0
  into.merge(from)
  // sketches-js 2.1 merges only the positive store of a non-empty sketch: add the negative one
  if (!copying) into.negativeStore.merge(from.negativeStore)
}

export function percentile(q: number): Aggregator<Quantiles> {
  const promote = (acc: Quantiles): DDSketch => {
    const sketch = newSketch()
    for (const v of acc.exact ?? []) sketch.accept(v)
    acc.exact = null
    acc.sketch = sketch
    return sketch
  }
  const add = (acc: Quantiles, value: number) => {
    if (acc.sketch) acc.sketch.accept(value)
    else {
      const exact = acc.exact!
      exact.push(value)
      if (exact.length > EXACT_PERCENTILE_LIMIT) promote(acc)
    }
  }
  return {
    init: () => ({ exact: [], sketch: null }),
    add: (acc, value) => add(acc, value as number),
    merge: (into, from) => {
      if (from.sketch) mergeSketch(into.sketch ?? promote(into), from.sketch)
      else for (const v of from.exact ?? []) add(into, v)
    },
    result: (acc) => {
      if (acc.sketch) return acc.sketch.count === 0 ? null : acc.sketch.getValueAtQuantile(q)
      const exact = acc.exact!
      if (exact.length === 0) return null
      // the value at rank floor(q·(n−1)), as the sketch defines it
      return [...exact].sort((a, b) => a - b)[Math.floor(q * (exact.length - 1))]
    },
    // a checkpoint of the sketch form is a base64 string, as it always was
    toJson: (acc): JsonValue =>
      acc.sketch ? Buffer.from(acc.sketch.toProto()).toString('base64') : { exact: [...acc.exact!] },
    fromJson: (json) =>
      typeof json === 'string'
        ? { exact: null, sketch: DDSketch.fromProto(Buffer.from(json, 'base64')) }
        : { exact: [...(json as { exact: number[] }).exact], sketch: null },
  }
}
