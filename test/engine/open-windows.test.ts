import assert from 'node:assert/strict'
import { test } from 'node:test'
import { AggregateOperator, newAggregateOutput } from '../../src/engine/aggregate.ts'
import { Issues } from '../../src/engine/check.ts'
import { parseAggregate } from '../../src/engine/stages/aggregate-spec.ts'
import type { Event, WindowResult } from '../../src/engine/types.ts'
import { rng } from '../helpers/random.ts'

function operator(raw: Record<string, unknown>): AggregateOperator {
  const issues = new Issues()
  const spec = parseAggregate(
    { functions: ['count', { sum: 'data.n' }], group_by: ['data.k'], ...raw },
    '/a',
    issues,
  )
  assert.ok(spec, JSON.stringify(issues.list))
  return new AggregateOperator(spec, { maxKeysPerWindow: 1_000_000 })
}

const T0 = 1_700_000_040_000
const id = (r: WindowResult) => `${r.windowStart}|${r.windowEnd}|${r.keyId}`

test('open windows: newest first, a limit takes the newest windows whole before older ones, each result exact', () => {
  const kinds = [{ window_seconds: 10 }, { window_seconds: 10, slide_seconds: 2 }, { session_gap_seconds: 3 }]
  for (const kind of kinds)
    for (let seed = 1; seed <= 20; seed++) {
      const r = rng(seed)
      const op = operator(kind)
      const events: Event[] = Array.from({ length: 400 }, (_, i) => ({
        id: `e${i}`,
        event_type: 'e',
        source: 's',
        timestamp: T0 + r.int(0, 30_000),
        data: { k: `k${r.int(0, 40)}`, n: r.int(0, 9) },
      }))
      op.process(events, T0, newAggregateOutput())
      const all = op.openWindows({ limit: Number.POSITIVE_INFINITY })
      assert.ok(all.length > 10)
      for (let i = 1; i < all.length; i++)
        assert.ok(
          all[i - 1].windowStart > all[i].windowStart ||
            (all[i - 1].windowStart === all[i].windowStart && all[i - 1].windowEnd >= all[i].windowEnd),
          `${JSON.stringify(kind)}: newest first`,
        )
      const byId = new Map(all.map((w) => [id(w), w]))
      for (const limit of [1, 2, 7, 50, all.length, all.length + 5]) {
        const some = op.openWindows({ limit })
        assert.equal(some.length, Math.min(limit, all.length))
        // every window newer than the oldest one returned is returned
        const oldest = some[some.length - 1].windowStart
        const newer = all.filter((w) => w.windowStart > oldest).map(id)
        const got = new Set(some.map(id))
        for (const w of newer) assert.ok(got.has(w), `${JSON.stringify(kind)} limit ${limit}: missing ${w}`)
        for (const w of some) assert.deepEqual(w, byId.get(id(w)))
      }
      // a range and a key filter: the same windows as filtering the whole list
      const from = T0 + 12_000
      const to = T0 + 20_000
      const ranged = op.openWindows({ limit: 1_000_000, from, to, keyFilter: { 'data.k': 'k3' } })
      const want = all.filter((w) => w.windowEnd > from && w.windowStart < to && w.key?.['data.k'] === 'k3')
      assert.deepEqual(ranged.map(id).sort(), want.map(id).sort())
    }
})

test('open windows: limit 100 over 200,000 open keys looks at about 100 of them', () => {
  for (const kind of [{ window_seconds: 60 }, { window_seconds: 60, slide_seconds: 10 }]) {
    const op = operator(kind)
    const events: Event[] = Array.from({ length: 200_000 }, (_, i) => ({
      id: `e${i}`,
      event_type: 'e',
      source: 's',
      timestamp: T0 + (i % 50) * 1_000,
      data: { k: `k${i}`, n: 1 },
    }))
    op.process(events, T0, newAggregateOutput())
    let looked = 0
    const started = performance.now()
    const some = op.openWindows({
      limit: 100,
      accept: () => {
        looked++
        return true
      },
    })
    const ms = performance.now() - started
    assert.equal(some.length, 100)
    assert.equal(looked, 100, `${JSON.stringify(kind)}: results built`)
    // generous: the walk is ~100 lookups per pane; a scan of 200k keys takes far longer
    assert.ok(ms < 200, `${JSON.stringify(kind)}: ${ms} ms`)
  }
})
