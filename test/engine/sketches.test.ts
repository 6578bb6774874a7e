import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DDSketch } from '@datadog/sketches-js'
import {
  countDistinct,
  EXACT_DISTINCT_LIMIT,
  EXACT_PERCENTILE_LIMIT,
  PERCENTILE_ACCURACY,
  percentile,
} from '../../src/engine/aggregators/aggregators.ts'
import { HyperLogLog } from '../../src/engine/aggregators/hyperloglog.ts'
import { rng } from '../helpers/random.ts'

test('HyperLogLog: RMS error <= 1.0% and |bias| <= 0.5% from 1k to 1M distinct values (p = 14, many seeds)', () => {
  const sizes: Array<[n: number, trials: number]> = [
    [1_000, 60],
    [5_000, 60],
    [10_000, 60],
    [20_000, 60],
    [40_000, 60],
    [45_000, 60],
    [100_000, 30],
    [1_000_000, 8],
  ]
  const report: string[] = []
  for (const [n, trials] of sizes) {
    let sum = 0
    let squares = 0
    for (let seed = 0; seed < trials; seed++) {
      const h = new HyperLogLog(14)
      for (let i = 0; i < n; i++) h.add(`s${seed}-v${i}`)
      const relative = (h.estimate() - n) / n
      sum += relative
      squares += relative * relative
    }
    const bias = sum / trials
    const rms = Math.sqrt(squares / trials)
    report.push(`n=${n}: bias ${(bias * 100).toFixed(2)}% rms ${(rms * 100).toFixed(2)}%`)
    assert.ok(rms <= 0.01 && Math.abs(bias) <= 0.005, report.join('; '))
  }
})

test('HyperLogLog stays within 2% at 1e5 and 1e6 distinct values, merges and round-trips', () => {
  for (const n of [100_000, 1_000_000]) {
    const a = new HyperLogLog(14)
    const b = new HyperLogLog(14)
    for (let i = 0; i < n; i++) (i % 2 === 0 ? a : b).add(`user-${i}`)
    a.merge(b)
    const estimate = a.estimate()
    assert.ok(Math.abs(estimate - n) / n < 0.02, `n=${n} estimate=${estimate}`)
    const copy = HyperLogLog.fromBase64(14, a.toBase64())
    assert.equal(copy.estimate(), estimate)
  }
  const small = new HyperLogLog(14)
  for (let i = 0; i < 500; i++) small.add(String(i % 250))
  assert.ok(Math.abs(small.estimate() - 250) <= 3, `small ${small.estimate()}`)
})

test('count_distinct is exact up to the limit, then approximate, through merge and JSON', () => {
  const agg = countDistinct(14)
  let a = agg.init()
  for (let i = 0; i < EXACT_DISTINCT_LIMIT - 1; i++) a = agg.add(a, i % 2 === 0 ? i : `${i}`)
  a = agg.add(a, 0)
  a = agg.add(a, '0') // a string and a number are different values
  assert.equal(agg.result(a), EXACT_DISTINCT_LIMIT)
  assert.deepEqual(Object.keys(agg.toJson(a) as object), ['exact'])
  let b = agg.init()
  for (let i = 0; i < 50_000; i++) b = agg.add(b, `x${i}`)
  const restored = agg.merge(agg.fromJson(JSON.parse(JSON.stringify(agg.toJson(b)))), a)
  const want = 50_000 + EXACT_DISTINCT_LIMIT
  assert.ok(Math.abs(agg.result(restored)! - want) / want < 0.02, String(agg.result(restored)))
})

test('percentiles are within 1% of the value at rank floor(q(n-1)), including negatives and merges', () => {
  const r = rng(7)
  for (const q of [0.5, 0.9, 0.99, 0.999]) {
    const agg = percentile(q)
    const parts = [agg.init(), agg.init(), agg.init()]
    const values: number[] = []
    for (let i = 0; i < 20_000; i++) {
      const v = (r.next() - 0.3) * 10 ** r.int(0, 4)
      values.push(v)
      parts[i % 3] = agg.add(parts[i % 3], v)
    }
    let merged = agg.fromJson(JSON.parse(JSON.stringify(agg.toJson(parts[0]))))
    merged = agg.merge(merged, parts[1])
    merged = agg.merge(merged, parts[2])
    values.sort((x, y) => x - y)
    const want = values[Math.floor(q * (values.length - 1))]
    const got = agg.result(merged)!
    assert.ok(Math.abs(got - want) <= 0.01 * Math.abs(want), `q=${q} got ${got} want ${want}`)
  }
})

test('percentiles are exact up to the limit, then a sketch; every mix merges; old sketch checkpoints load', () => {
  const r = rng(11)
  const agg = percentile(0.9)
  for (const sizes of [
    [3, 5],
    [EXACT_PERCENTILE_LIMIT, 1],
    [EXACT_PERCENTILE_LIMIT + 5, 2],
    [1, EXACT_PERCENTILE_LIMIT * 3],
    [500, 700],
  ]) {
    const parts = sizes.map(() => agg.init())
    const values: number[] = []
    sizes.forEach((n, p) => {
      for (let i = 0; i < n; i++) {
        const v = (r.next() - 0.4) * 1_000
        values.push(v)
        parts[p] = agg.add(parts[p], v)
      }
    })
    // merging leaves `from` as it was
    const before = JSON.stringify(agg.toJson(parts[1]))
    const merged = agg.merge(agg.fromJson(JSON.parse(JSON.stringify(agg.toJson(parts[0])))), parts[1])
    assert.equal(JSON.stringify(agg.toJson(parts[1])), before)
    values.sort((x, y) => x - y)
    const want = values[Math.floor(0.9 * (values.length - 1))]
    const got = agg.result(merged)!
    if (values.length <= EXACT_PERCENTILE_LIMIT) assert.equal(got, want, `${sizes}: exact`)
    else assert.ok(Math.abs(got - want) <= 0.01 * Math.abs(want), `${sizes}: got ${got} want ${want}`)
  }
  assert.equal(agg.result(agg.init()), null)
  // a checkpoint from before exact percentiles: the sketch's base64 protobuf
  const sketch = new DDSketch({ relativeAccuracy: PERCENTILE_ACCURACY })
  for (const v of [1, 2, 3, 4, 100]) sketch.accept(v)
  const old = agg.fromJson(Buffer.from(sketch.toProto()).toString('base64'))
  // rank floor(0.9 · 4) = 3 of [1, 2, 3, 4, 100]
  assert.ok(Math.abs(agg.result(old)! - 4) <= 0.04)
})

test('small states stay small: one value is the value itself, a few an array; their checkpoints keep the old form', () => {
  const distinct = countDistinct(14)
  let d = distinct.init()
  d = distinct.add(d, 'a')
  assert.equal(d, 'sa')
  d = distinct.add(d, 'a')
  assert.equal(d, 'sa')
  d = distinct.add(d, 1)
  assert.deepEqual(d, ['sa', 'n1'])
  for (let i = 0; i < 40; i++) d = distinct.add(d, i)
  assert.ok(d instanceof Set && distinct.result(d) === 41)
  assert.deepEqual(distinct.toJson(distinct.add(distinct.init(), 'x')), { exact: ['sx'] })
  assert.equal(distinct.fromJson({ exact: ['sx'] }), 'sx')
  const p50 = percentile(0.5)
  let q = p50.add(p50.init(), 3)
  assert.equal(q, 3)
  assert.equal(p50.result(q), 3)
  q = p50.add(q, 1)
  assert.deepEqual(q, [3, 1])
  assert.deepEqual(p50.toJson(q), { exact: [3, 1] })
  assert.equal(p50.fromJson({ exact: [7] }), 7)
  assert.equal(p50.result(p50.merge(p50.init(), q)), 1)
  assert.deepEqual(q, [3, 1], 'merging leaves from as it was')
})
