import assert from 'node:assert/strict'
import { test } from 'node:test'
import { AggregateOperator, newAggregateOutput } from '../../src/engine/aggregate.ts'
import { Issues } from '../../src/engine/check.ts'
import { parseAggregate } from '../../src/engine/stages/aggregate-spec.ts'
import type { Event } from '../../src/engine/types.ts'
import { rng } from '../helpers/random.ts'
import { randomOps, randomSpec, snapshotJson } from './generators.ts'
import type { Op } from './reference-model.ts'

/** Everything an operator emits over a stream, with firing done `budget` units at a time. */
function run(raw: Record<string, unknown>, ops: Op[], budget: number) {
  const issues = new Issues()
  const spec = parseAggregate(raw, '/a', issues)
  assert.ok(spec, JSON.stringify(issues.list))
  const op = new AggregateOperator(spec, { maxKeysPerWindow: 1_000_000 })
  const out = newAggregateOutput()
  let calls = 0
  for (const o of ops) {
    if (o.kind === 'batch') {
      let next = 0
      do {
        next = op.process(o.events, o.arrival, out, next, { left: budget })
        calls++
      } while (next < o.events.length || op.busy)
    } else while (!op.advance(o.now, out, { left: budget })) calls++
  }
  return { out, calls, snapshot: snapshotJson(op.snapshot()) }
}

test('firing windows in slices (a budget per call) gives exactly the output of one call, on 300 generated streams', () => {
  let sliced = 0
  for (let seed = 1; seed <= 300; seed++) {
    const r = rng(50_000 + seed)
    const raw = randomSpec(r)
    const ops = randomOps(r)
    const whole = run(raw, ops, Number.POSITIVE_INFINITY)
    for (const budget of [1, 3, 17]) {
      const slices = run(raw, ops, budget)
      assert.deepEqual(slices.out, whole.out, `seed ${seed} budget ${budget} ${JSON.stringify(raw)}`)
      assert.equal(slices.snapshot, whole.snapshot)
      if (slices.calls > whole.calls) sliced++
    }
  }
  assert.ok(sliced > 300, `streams that were really sliced: ${sliced}`)
})

test('one batch that fires a 60-pane window over 20,000 keys yields between slices of bounded work', () => {
  const issues = new Issues()
  const spec = parseAggregate(
    { window_seconds: 60, slide_seconds: 1, group_by: ['data.k'], functions: ['count', { avg: 'data.n' }] },
    '/a',
    issues,
  )
  assert.ok(spec)
  const op = new AggregateOperator(spec, { maxKeysPerWindow: 1_000_000 })
  const T0 = 1_700_000_040_000
  const events: Event[] = []
  for (let s = 0; s < 60; s++)
    for (let k = 0; k < 20_000; k += 20)
      events.push({
        id: `${s}-${k}`,
        event_type: 'e',
        source: 's',
        timestamp: T0 + s * 1_000,
        data: { k: `k${k}`, n: 1 },
      })
  op.process(events, T0, newAggregateOutput())
  // an event a minute on closes the windows over all of it
  const out = newAggregateOutput()
  const later: Event[] = [
    { id: 'x', event_type: 'e', source: 's', timestamp: T0 + 61_000, data: { k: 'k0', n: 1 } },
  ]
  let slices = 0
  let longest = 0
  let next = 0
  do {
    const t0 = performance.now()
    // arriving right after the rest (a later arrival would also move the watermark on idle time)
    next = op.process(later, T0 + 1, out, next, { left: 20_000 })
    longest = Math.max(longest, performance.now() - t0)
    slices++
  } while (next < later.length || op.busy)
  assert.ok(slices > 3, `slices: ${slices}`)
  const fired = out.results.filter((r) => r.closed)
  // the windows ending in (T0+59s, T0+61s]: [T0, T0+60s) and [T0+1s, T0+61s), each with its 1,000 keys
  assert.equal(fired.length, 2 * 1_000)
  assert.ok(fired.every((r) => r.results.count === (r.windowStart === T0 ? 60 : 59)))
  // generous: a slice of 20,000 units is a few milliseconds here; the whole close far more
  assert.ok(longest < 250, `longest slice ${longest} ms`)
})
