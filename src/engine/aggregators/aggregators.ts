import { DDSketch } from '@datadog/sketches-js'
import type { JsonValue } from '../types.ts'
import { HyperLogLog } from './hyperloglog.ts'

/**
 * An aggregate function: an accumulator that starts at `init`, takes values with `add`, combines
 * with `merge` (for sessions and scale-out), answers with `result`, and round-trips through JSON for
 * checkpoints. Accumulators are mutable objects, so the hot path allocates nothing per event.
 */
export interface Aggregator<A> {
  init(): A
  add(acc: A, value: unknown): void
  merge(into: A, from: A): void
  result(acc: A): number | null
  toJson(acc: A): JsonValue
  fromJson(json: JsonValue): A
}

type Num = { v: number }
type Avg = { sum: number; n: number }
type Extreme = { v: number; has: boolean }

export const count: Aggregator<Num> = {
  init: () => ({ v: 0 }),
  add: (acc) => {
    acc.v++
  },
  merge: (into, from) => {
    into.v += from.v
  },
  result: (acc) => acc.v,
  toJson: (acc) => acc.v,
  fromJson: (json) => ({ v: json as number }),
}

export const sum: Aggregator<Num> = {
  init: () => ({ v: 0 }),
  add: (acc, value) => {
    acc.v += value as number
  },
  merge: (into, from) => {
    into.v += from.v
  },
  result: (acc) => acc.v,
  toJson: (acc) => acc.v,
  fromJson: (json) => ({ v: json as number }),
}

export const avg: Aggregator<Avg> = {
  init: () => ({ sum: 0, n: 0 }),
  add: (acc, value) => {
    acc.sum += value as number
    acc.n++
  },
  merge: (into, from) => {
    into.sum += from.sum
    into.n += from.n
  },
  result: (acc) => (acc.n === 0 ? null : acc.sum / acc.n),
  toJson: (acc) => [acc.sum, acc.n],
  fromJson: (json) => {
    const [s, n] = json as [number, number]
    return { sum: s, n }
  },
}

function extreme(better: (a: number, b: number) => boolean): Aggregator<Extreme> {
  return {
    init: () => ({ v: 0, has: false }),
    add: (acc, value) => {
      const v = value as number
      if (!acc.has || better(v, acc.v)) {
        acc.v = v
        acc.has = true
      }
    },
    merge: (into, from) => {
      if (from.has && (!into.has || better(from.v, into.v))) {
        into.v = from.v
        into.has = true
      }
    },
    result: (acc) => (acc.has ? acc.v : null),
    toJson: (acc) => (acc.has ? acc.v : null),
    fromJson: (json) => (json === null ? { v: 0, has: false } : { v: json as number, has: true }),
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

export function percentile(q: number): Aggregator<DDSketch> {
  return {
    init: () => new DDSketch({ relativeAccuracy: PERCENTILE_ACCURACY }),
    add: (acc, value) => acc.accept(value as number),
    merge: (into, from) => {
      if (from.count === 0) return
      const copying = into.count === 0
      into.merge(from)
      // sketches-js 2.1 merges only the positive store of a non-empty sketch: add the negative one
      if (!copying) into.negativeStore.merge(from.negativeStore)
    },
    result: (acc) => (acc.count === 0 ? null : acc.getValueAtQuantile(q)),
    toJson: (acc) => Buffer.from(acc.toProto()).toString('base64'),
    fromJson: (json) => DDSketch.fromProto(Buffer.from(json as string, 'base64')),
  }
}
