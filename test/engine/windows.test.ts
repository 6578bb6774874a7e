import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { AggregateOperator, newAggregateOutput } from '../../src/engine/aggregate.ts'
import { EXACT_DISTINCT_LIMIT } from '../../src/engine/aggregators/aggregators.ts'
import type { AggregateSpec } from '../../src/engine/stages/aggregate-spec.ts'
import type { Event, WindowResult } from '../../src/engine/types.ts'
import { rng } from '../helpers/random.ts'
import { aggregate, randomOps, randomSpec, roundTrip } from './generators.ts'
import { type Op, type RefResult, runReference } from './reference-model.ts'

const CASES = 400

const id = (x: { start: number; end: number; key: string }) => `${x.start}|${x.end}|${x.key}`

function engineKey(r: WindowResult): string {
  return JSON.stringify(r.key === null ? [] : Object.values(r.key))
}

function assertResultsClose(
  actual: Record<string, number | null>,
  expected: Record<string, number | null>,
  where: string,
) {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), where)
  for (const [name, want] of Object.entries(expected)) {
    const got = actual[name]
    if (want === null || got === null) {
      assert.equal(got, want, `${where} ${name}`)
      continue
    }
    // percentiles: DDSketch's relative accuracy; distinct counts past the exact limit: HyperLogLog
    // (0.81% standard error at p = 14; 3% is beyond 3.5 of them); sums and averages: float order
    const tolerance = /^p\d/.test(name)
      ? 0.01
      : name.startsWith('count_distinct') && want > EXACT_DISTINCT_LIMIT
        ? 0.03
        : 1e-9
    assert.ok(
      Math.abs(got - want) <= tolerance * Math.abs(want) + 1e-9,
      `${where} ${name}: got ${got}, want ${want}`,
    )
  }
}

/** Every closed window of the engine is the reference's, with results within tolerance; returns the pairs. */
function assertClosedMatch(
  actual: WindowResult[],
  expected: RefResult[],
  where: string,
): Array<[got: WindowResult, ref: RefResult]> {
  const want = new Map(expected.map((x) => [id(x), x]))
  assert.equal(actual.length, expected.length, `${where}: closed windows`)
  return actual.map((got) => {
    const key = id({ start: got.windowStart, end: got.windowEnd, key: engineKey(got) })
    const ref = want.get(key)
    assert.ok(ref, `${where}: unexpected window ${key}`)
    assertResultsClose(got.results, ref.results, `${where} window ${key}`)
    want.delete(key)
    return [got, ref]
  })
}

function runEngine(spec: AggregateSpec, ops: Op[], checkpointAt: number) {
  let op = new AggregateOperator(spec, { maxKeysPerWindow: 1_000_000 })
  const closed: WindowResult[] = []
  const updates: WindowResult[][] = []
  let late = 0
  const deadLetters: Record<string, number> = {}
  ops.forEach((o, i) => {
    if (i === checkpointAt) {
      // a checkpoint round trip in the middle must change nothing
      op = roundTrip(op, new AggregateOperator(spec, { maxKeysPerWindow: 1_000_000 }))
    }
    const out = newAggregateOutput()
    if (o.kind === 'batch') op.process(o.events, o.arrival, out)
    else op.advance(o.now, out)
    closed.push(...out.results.filter((r) => r.closed))
    updates.push(out.results.filter((r) => !r.closed))
    late += out.late
    for (const d of out.deadLetters) deadLetters[d.reason] = (deadLetters[d.reason] ?? 0) + 1
  })
  return { closed, updates, late, deadLetters, live: op.size }
}

describe('window operator against the brute-force reference', () => {
  test('streams past the exact distinct limit: count_distinct through HyperLogLog, merges and checkpoints', () => {
    let approximate = 0
    for (let seed = 1; seed <= 24; seed++) {
      const r = rng(10_000 + seed)
      const raw = { ...randomSpec(r), functions: ['count', { count_distinct: 'data.user' }] }
      const spec = aggregate(raw)
      const ops: Op[] = []
      let arrival = 1_700_000_000_000
      for (let b = 0; b < 12; b++) {
        arrival += r.pick([200, 700, 1500])
        const events: Event[] = Array.from({ length: 600 }, (_, i) => ({
          id: `e${b}-${i}`,
          event_type: r.pick(['view', 'click']),
          source: 'test',
          timestamp: arrival - r.pick([0, 100, 500]),
          data: { region: r.pick(['eu', 'us']), user: r.chance(0.1) ? r.int(0, 50) : `u${r.int(0, 40_000)}` },
        }))
        ops.push({ kind: 'batch', arrival, events })
      }
      ops.push({ kind: 'advance', now: arrival + 1_000_000 })
      const where = `seed ${seed} ${JSON.stringify(raw)}`
      const expected = runReference(spec, ops)
      const actual = runEngine(spec, ops, r.int(1, ops.length - 1))
      for (const [, ref] of assertClosedMatch(actual.closed, expected.closed, where))
        if ((ref.results.count_distinct_data_user ?? 0) > EXACT_DISTINCT_LIMIT) approximate++
    }
    assert.ok(approximate > 50, `windows past the exact limit: ${approximate}`)
  })

  test(`${CASES} generated streams: every window kind, function and emit mode`, () => {
    const kinds: Record<string, number> = {}
    const totals = { late: 0, closed: 0, updates: 0, missing: 0, mismatch: 0 }
    for (let seed = 1; seed <= CASES; seed++) {
      const r = rng(seed)
      const raw = randomSpec(r)
      const spec = aggregate(raw)
      const ops = randomOps(r)
      const where = `seed ${seed} ${JSON.stringify(raw)}`
      const expected = runReference(spec, ops)
      const actual = runEngine(spec, ops, r.int(0, ops.length - 1))
      kinds[spec.window.kind] = (kinds[spec.window.kind] ?? 0) + 1
      totals.late += actual.late
      totals.closed += actual.closed.length
      totals.updates += actual.updates.flat().length
      totals.missing += actual.deadLetters.missing_field ?? 0
      totals.mismatch += actual.deadLetters.type_mismatch ?? 0

      assert.equal(actual.late, expected.late, `${where}: late`)
      assert.deepEqual(actual.deadLetters, expected.deadLetters, `${where}: dead letters`)
      assert.equal(actual.live, 0, `${where}: every window closed at the end`)
      assertClosedMatch(actual.closed, expected.closed, where)
      if (spec.emit === 'updates') {
        expected.updates.forEach((batch: RefResult[], i) => {
          const got = actual.updates[i]
          assert.equal(got.length, batch.length, `${where}: updates after op ${i}`)
          const byId = new Map(batch.map((x) => [id(x), x]))
          for (const u of got) {
            const ref = byId.get(id({ start: u.windowStart, end: u.windowEnd, key: engineKey(u) }))
            assert.ok(ref, `${where}: unexpected update after op ${i}`)
            assertResultsClose(u.results, ref.results, `${where}: update after op ${i}`)
          }
        })
      } else
        assert.ok(
          actual.updates.every((u) => u.length === 0),
          `${where}: final emits no updates`,
        )
    }
    assert.ok(kinds.tumbling > 50 && kinds.hopping > 50 && kinds.session > 50, JSON.stringify(kinds))
    // the generator reaches every path: late events, bad values, updates, many windows
    assert.ok(totals.late > 100 && totals.closed > 2000 && totals.updates > 500, JSON.stringify(totals))
    assert.ok(totals.missing > 10 && totals.mismatch > 10, JSON.stringify(totals))
  })
})
