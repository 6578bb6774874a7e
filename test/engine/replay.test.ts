import assert from 'node:assert/strict'
import { test } from 'node:test'
import { AggregateOperator, newAggregateOutput } from '../../src/engine/aggregate.ts'
import { replayCut } from '../../src/engine/replay.ts'
import type { AggregateSpec } from '../../src/engine/stages/aggregate-spec.ts'
import type { WindowResult } from '../../src/engine/types.ts'
import { rng } from '../helpers/random.ts'
import { aggregate, randomOps, randomSpec, roundTrip } from './generators.ts'
import type { Op } from './reference-model.ts'

const LIMITS = { maxKeysPerWindow: 1_000_000 }

const key = (r: WindowResult) => `${r.windowStart}|${r.windowEnd}|${r.keyId}`

/** Runs `ops` on `op`; a checkpoint round trip before op `roundTripAt`. Closed windows by key, the operator at the end. */
function run(spec: AggregateSpec, op: AggregateOperator, ops: Op[], roundTripAt = -1) {
  const closed = new Map<string, WindowResult>()
  let skipped = 0
  ops.forEach((o, i) => {
    if (i === roundTripAt) op = roundTrip(op, new AggregateOperator(spec, LIMITS))
    const out = newAggregateOutput()
    if (o.kind === 'batch') op.process(o.events, o.arrival, out)
    else op.advance(o.now, out)
    for (const r of out.results) if (r.closed) closed.set(key(r), r)
    skipped += out.skipped
  })
  return { closed, op, skipped }
}

test('a replay asked at any point of 300 generated streams: the windows before its cut as first made, from the cut on as made again, equal a run that never replayed', () => {
  let replays = 0
  let clamped = 0
  let kept = 0
  let recomputed = 0
  for (let seed = 1; seed <= 300; seed++) {
    const r = rng(50_000 + seed)
    const raw = randomSpec(r)
    const spec = aggregate(raw)
    const ops = randomOps(r)
    const where = `seed ${seed} ${JSON.stringify(raw)}`
    const whole = run(spec, new AggregateOperator(spec, LIMITS), ops).closed
    // the first run up to op k, then a replay is asked for a time near the stream's events
    const k = r.int(1, ops.length - 1)
    const before = run(spec, new AggregateOperator(spec, LIMITS), ops.slice(0, k))
    const times = ops.flatMap((o) => (o.kind === 'batch' ? o.events.map((e) => e.timestamp) : []))
    const asked = times.length > 0 ? r.pick(times) + r.int(-3_000, 3_000) : 1_700_000_000_000
    const planned = replayCut(spec.window, asked, before.op.watermark, null)
    if (spec.window.kind === 'session') {
      assert.equal(planned.ok, false, where)
      assert.deepEqual(replayCut(spec.window, null, before.op.watermark, null), { ok: true, cut: null })
      continue
    }
    assert.ok(planned.ok, where)
    replays++
    const cut = planned.cut ?? Number.NEGATIVE_INFINITY
    if (planned.cut !== null && planned.cut < asked - spec.window.sizeMs) clamped++
    // the replay reads the whole log again (then the rest of it live), with fresh state from the cut
    const fresh = new AggregateOperator(spec, LIMITS)
    if (planned.cut !== null) fresh.replayFrom(planned.cut)
    const replay = run(spec, fresh, ops, r.int(0, ops.length - 1))
    // what the store holds: the first run's windows before the cut (all closed by then), the replay's from it
    const stored = new Map<string, WindowResult>()
    for (const [id, w] of before.closed) if (w.windowStart < cut) stored.set(id, w)
    for (const [id, w] of replay.closed) {
      assert.ok(w.windowStart >= cut, `${where}: the replay made ${id}, before its cut ${cut}`)
      stored.set(id, w)
    }
    assert.deepEqual([...stored.keys()].sort(), [...whole.keys()].sort(), where)
    for (const [id, w] of whole) {
      const got = stored.get(id)?.results ?? {}
      assert.deepEqual(Object.keys(got), Object.keys(w.results), `${where} ${id}`)
      // a sketch through a checkpoint may differ in the last bits of a float
      for (const [name, want] of Object.entries(w.results))
        assert.ok(
          want === null
            ? got[name] === null
            : Math.abs((got[name] ?? Number.NaN) - want) <= 1e-9 * Math.abs(want) + 1e-9,
          `${where} ${id} ${name}: ${got[name]} vs ${want}`,
        )
    }
    // no window the first run still had open at k was before the cut
    for (const w of before.op.openWindows({ limit: 1_000_000 }))
      assert.ok(w.windowStart >= cut, `${where}: open window ${key(w)} before the cut ${cut}`)
    kept += [...stored.values()].filter((w) => w.windowStart < cut).length
    recomputed += replay.closed.size
  }
  assert.ok(
    replays > 150 && clamped > 10 && kept > 200 && recomputed > 200,
    JSON.stringify({ replays, clamped, kept, recomputed }),
  )
})

test('the cut: the first window holding the asked time, never after a window still open, never before what retention kept', () => {
  const hop = { kind: 'hopping' as const, sizeMs: 60_000, slideMs: 10_000 }
  const tumble = { kind: 'tumbling' as const, sizeMs: 60_000 }
  // 10:00:35 is in hopping windows from 09:59:40 on; the tumbling one from 10:00:00
  const t0 = Date.parse('2026-11-26T10:00:00Z')
  assert.deepEqual(replayCut(hop, t0 + 35_000, t0 + 3_600_000, null), { ok: true, cut: t0 - 20_000 })
  assert.deepEqual(replayCut(tumble, t0 + 35_000, t0 + 3_600_000, null), { ok: true, cut: t0 })
  // the watermark at 10:01:05: the tumbling window 10:01 is open, the hopping ones from 10:00:10 are
  assert.deepEqual(replayCut(tumble, t0 + 90_000, t0 + 65_000, null), { ok: true, cut: t0 + 60_000 })
  assert.deepEqual(replayCut(hop, t0 + 90_000, t0 + 65_000, null), { ok: true, cut: t0 + 10_000 })
  // nothing closed yet: everything again
  assert.deepEqual(replayCut(tumble, t0, Number.NEGATIVE_INFINITY, null), { ok: true, cut: null })
  // retention kept records appended from 10:00:05: the first whole window after it
  assert.deepEqual(replayCut(tumble, null, t0 + 3_600_000, t0 + 5_000), { ok: true, cut: t0 + 60_000 })
  assert.equal(replayCut(tumble, null, t0 + 30_000, t0 + 5_000).ok, false)
  assert.equal(replayCut({ kind: 'session', gapMs: 5_000 }, t0, t0, null).ok, false)
})
