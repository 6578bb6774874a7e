import { DDSketch } from '@datadog/sketches-js'
import type { JsonValue } from '../types.ts'
import { HyperLogLog } from './hyperloglog.ts'

/**
 * An aggregate function whose state is a value of its own: an accumulator that starts at `init`,
 * takes values with `add`, combines with `merge` (for sessions and partitions), answers with
 * `result`, and round-trips through JSON for checkpoints. `add` and `merge` return the
 * accumulator to keep — the same one, changed in place, or another form of it — so a small
 * state can be a bare value (most windows and keys see a value or two: an object per pair would
 * be most of the memory) and grow into a collection, then a sketch. `merge` never keeps a part
 * of `from`: the two stay apart.
 */
export interface Aggregator<A> {
  numeric?: false
  init(): A
  add(acc: A, value: unknown): A
  merge(into: A, from: A): A
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

/** Distinct values kept in a small array (a linear search) before a Set. */
const SMALL_DISTINCT = 16

/** None, one value's key, a few, up to EXACT_DISTINCT_LIMIT, then a HyperLogLog. */
type Distinct = null | string | string[] | Set<string> | HyperLogLog

export function distinctKey(value: unknown): string {
  return typeof value === 'string' ? `s${value}` : typeof value === 'number' ? `n${value}` : `b${value}`
}

export function countDistinct(precision: number): Aggregator<Distinct> {
  const toHll = (keys: Iterable<string>): HyperLogLog => {
    const hll = new HyperLogLog(precision)
    for (const k of keys) hll.add(k)
    return hll
  }
  const keys = (acc: Exclude<Distinct, HyperLogLog>): Iterable<string> =>
    acc === null ? [] : typeof acc === 'string' ? [acc] : acc
  const addKey = (acc: Distinct, key: string): Distinct => {
    if (acc === null) return key
    if (typeof acc === 'string') return acc === key ? acc : [acc, key]
    if (Array.isArray(acc)) {
      if (acc.includes(key)) return acc
      acc.push(key)
      return acc.length > SMALL_DISTINCT ? new Set(acc) : acc
    }
    acc.add(key)
    return acc instanceof Set && acc.size > EXACT_DISTINCT_LIMIT ? toHll(acc) : acc
  }
  return {
    init: () => null,
    add: (acc, value) => addKey(acc, distinctKey(value)),
    merge: (into, from) => {
      if (from instanceof HyperLogLog) {
        const hll = into instanceof HyperLogLog ? into : toHll(keys(into))
        hll.merge(from)
        return hll
      }
      let out = into
      for (const k of keys(from)) out = addKey(out, k)
      return out
    },
    result: (acc) =>
      acc instanceof HyperLogLog
        ? acc.estimate()
        : acc === null
          ? 0
          : typeof acc === 'string'
            ? 1
            : Array.isArray(acc)
              ? acc.length
              : acc.size,
    toJson: (acc): JsonValue =>
      acc instanceof HyperLogLog ? { hll: acc.toBase64(), p: precision } : { exact: [...keys(acc)] },
    fromJson: (json) => {
      const j = json as { hll?: string; exact?: string[] }
      if (j.hll !== undefined) return HyperLogLog.fromBase64(precision, j.hll)
      let acc: Distinct = null
      for (const k of j.exact ?? []) acc = addKey(acc, k)
      return acc
    },
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

/** None, one value, up to EXACT_PERCENTILE_LIMIT values, then a DDSketch. */
type Quantiles = null | number | number[] | DDSketch

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

/** The sketch form (fromProto gives a sketch of the base class: not `instanceof DDSketch`). */
function isSketch(acc: Quantiles): acc is DDSketch {
  return typeof acc === 'object' && acc !== null && !Array.isArray(acc)
}

export function percentile(q: number): Aggregator<Quantiles> {
  const toSketch = (values: readonly number[]): DDSketch => {
    const sketch = newSketch()
    for (const v of values) sketch.accept(v)
    return sketch
  }
  const values = (acc: Exclude<Quantiles, DDSketch>): readonly number[] =>
    acc === null ? [] : typeof acc === 'number' ? [acc] : acc
  const add = (acc: Quantiles, value: number): Quantiles => {
    if (acc === null) return value
    if (typeof acc === 'number') return [acc, value]
    if (Array.isArray(acc)) {
      acc.push(value)
      return acc.length > EXACT_PERCENTILE_LIMIT ? toSketch(acc) : acc
    }
    acc.accept(value)
    return acc
  }
  return {
    init: () => null,
    add: (acc, value) => add(acc, value as number),
    merge: (into, from) => {
      if (isSketch(from)) {
        const sketch = isSketch(into) ? into : toSketch(values(into))
        mergeSketch(sketch, from)
        return sketch
      }
      let out = into
      for (const v of values(from)) out = add(out, v)
      return out
    },
    result: (acc) => {
      if (isSketch(acc)) return acc.count === 0 ? null : acc.getValueAtQuantile(q)
      const exact = values(acc)
      if (exact.length === 0) return null
      // the value at rank floor(q·(n−1)), as the sketch defines it
      return [...exact].sort((a, b) => a - b)[Math.floor(q * (exact.length - 1))]
    },
    // a checkpoint of the sketch form is a base64 string, as it always was
    toJson: (acc): JsonValue =>
      isSketch(acc) ? Buffer.from(acc.toProto()).toString('base64') : { exact: [...values(acc)] },
    fromJson: (json) => {
      if (typeof json === 'string') return DDSketch.fromProto(Buffer.from(json, 'base64'))
      let acc: Quantiles = null
      for (const v of (json as { exact: number[] }).exact) acc = add(acc, v)
      return acc
    },
  }
}
