import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { AggregateOperator, newAggregateOutput } from '../../src/engine/aggregate.ts'
import type { AggregateSpec } from '../../src/engine/stages/aggregate-spec.ts'
import type { Event, WindowResult } from '../../src/engine/types.ts'
import { type Rng, rng } from '../helpers/random.ts'
import { aggregate, randomOps, randomSpec, roundTrip } from './generators.ts'
import { type Op, runPartitionedReference } from './reference-model.ts'

/**
 * Several source partitions against a reference built from the single-partition one: each
 * partition on its own decides what is late and which windows its events are in; a window's
 * result is then that of the union of every partition's events in it (sessions: overlapping
 * sessions of a key merged). Independent of how the partitions interleave.
 */

const CASES = 150
const IDLE_NEVER = 1e6 // seconds: no partition goes idle during a case
const FAR = 4e12

function keyText(r: WindowResult): string {
  return JSON.stringify(r.key === null ? [] : Object.values(r.key))
}

/** The partitions' batches only (idle steps would depend on the interleaving), then one final advance. */
function partitionOps(r: Rng, partition: number): Op[] {
  return randomOps(r)
    .filter((o) => o.kind === 'batch')
    .map((o) =>
      o.kind === 'batch' ? { ...o, events: o.events.map((e) => ({ ...e, id: `p${partition}-${e.id}` })) } : o,
    )
}

/** The partitions' batches in a random interleaving (each partition's own order kept). */
function interleave(r: Rng, perPartition: Op[][]): Array<{ op: Op; partition: number }> {
  const at = perPartition.map(() => 0)
  const out: Array<{ op: Op; partition: number }> = []
  for (;;) {
    const open = perPartition.map((_ops, p) => p).filter((p) => at[p] < perPartition[p].length)
    if (open.length === 0) return out
    const p = r.pick(open)
    out.push({ op: perPartition[p][at[p]++], partition: p })
  }
}

function runEngine(
  spec: AggregateSpec,
  partitions: number,
  order: Array<{ op: Op; partition: number }>,
  checkpointAt: number,
) {
  const ids = Array.from({ length: partitions }, (_, p) => p)
  let op = new AggregateOperator(spec, { maxKeysPerWindow: 1_000_000 }, ids)
  const closed: WindowResult[] = []
  let late = 0
  order.forEach(({ op: o, partition }, i) => {
    if (i === checkpointAt) {
      op = roundTrip(op, new AggregateOperator(spec, { maxKeysPerWindow: 1_000_000 }, ids))
    }
    const out = newAggregateOutput()
    if (o.kind === 'batch') op.process(o.events, o.arrival, out, 0, undefined, partition)
    closed.push(...out.results.filter((r) => r.closed))
    late += out.late
  })
  const open = op.openWindows({ limit: Number.MAX_SAFE_INTEGER })
  const out = newAggregateOutput()
  op.advance(FAR, out)
  closed.push(...out.results.filter((r) => r.closed))
  return { closed, late, open, last: out.results, live: op.size }
}

function byId(results: WindowResult[]): Map<string, WindowResult> {
  return new Map(results.map((r) => [`${r.windowStart}|${r.windowEnd}|${keyText(r)}`, r]))
}

function assertClose(got: Record<string, number | null>, want: Record<string, number | null>, where: string) {
  for (const [name, w] of Object.entries(want)) {
    const g = got[name]
    if (w === null || g === null) assert.equal(g, w, `${where} ${name}`)
    else {
      const tolerance = /^p\d/.test(name) ? 0.01 : 1e-9
      assert.ok(Math.abs(g - w) <= tolerance * Math.abs(w) + 1e-9, `${where} ${name}: got ${g}, want ${w}`)
    }
  }
}

describe('window operator over several source partitions', () => {
  test('every closed window is the merge of each partition’s own windows, whatever the interleaving', () => {
    for (let seed = 1; seed <= CASES; seed++) {
      const r = rng(70_000 + seed)
      const raw: Record<string, unknown> = { ...randomSpec(r), idle_timeout_seconds: IDLE_NEVER }
      delete raw.time
      const spec = aggregate(raw)
      const partitions = r.int(2, 4)
      const perPartition = Array.from({ length: partitions }, (_, p) => partitionOps(r, p))
      const want = runPartitionedReference(spec, perPartition, FAR)
      const first = runEngine(spec, partitions, interleave(r, perPartition), -1)
      const order = interleave(r, perPartition)
      const second = runEngine(spec, partitions, order, r.int(0, order.length))
      const where = `seed ${seed} (${spec.window.kind}, ${partitions} partitions)`
      assert.equal(first.late, want.late, `${where}: late`)
      assert.equal(second.late, want.late, `${where}: late (other interleaving, checkpoint)`)
      assert.equal(first.live, 0, `${where}: state left`)
      const got = byId(first.closed)
      assert.equal(first.closed.length, want.windows.length, `${where}: closed windows`)
      for (const w of want.windows) {
        const id = `${w.start}|${w.end}|${w.key}`
        const g = got.get(id)
        assert.ok(g, `${where}: missing ${id}`)
        assertClose(g.results, w.results, `${where} ${id}`)
      }
      // merged in partition order: another interleaving and a checkpoint give the very same numbers
      // (percentiles: a sketch's checkpoint keeps its bins, not every bit of its bounds)
      const other = byId(second.closed)
      for (const [id, g] of got) {
        const o = other.get(id)?.results ?? {}
        for (const [name, v] of Object.entries(g.results)) {
          if (/^p\d/.test(name) && v !== null && o[name] != null)
            assert.ok(Math.abs(v - (o[name] as number)) <= 1e-9 * Math.abs(v), `${where}: ${id} ${name}`)
          else assert.equal(o[name], v, `${where}: ${id} ${name} differs`)
        }
      }
      // once everything is in, the open view is what the last advance closes
      const last = byId(first.last)
      assert.equal(first.open.length, first.last.length, `${where}: open windows before the end`)
      for (const o of first.open) {
        const id = `${o.windowStart}|${o.windowEnd}|${keyText(o)}`
        assert.deepEqual(o.results, last.get(id)?.results, `${where}: open ${id}`)
      }
    }
  })

  test('a partition behind the others holds the windows open: none of its events is late', () => {
    const spec = aggregate({
      window_seconds: 10,
      functions: ['count'],
      group_by: ['data.k'],
      idle_timeout_seconds: 60,
    })
    const op = new AggregateOperator(spec, { maxKeysPerWindow: 1_000 }, [0, 1, 2, 3])
    const T0 = 1_700_000_000_000
    const event = (p: number, i: number): Event => ({
      id: `${p}-${i}`,
      event_type: 'e',
      source: 's',
      timestamp: T0 + i * 100,
      data: { k: i % 3 },
    })
    const closed: WindowResult[] = []
    let late = 0
    // partitions 0–2 first, partition 3 the same time range 10 s later
    for (let b = 0; b < 30; b++)
      for (const p of [0, 1, 2]) {
        const out = newAggregateOutput()
        op.process(
          Array.from({ length: 10 }, (_, j) => event(p, b * 10 + j)),
          T0 + b * 1000,
          out,
          0,
          undefined,
          p,
        )
        closed.push(...out.results)
        late += out.late
      }
    assert.equal(closed.length, 0, 'nothing closes while partition 3 has sent nothing')
    for (let b = 0; b < 30; b++) {
      const out = newAggregateOutput()
      op.process(
        Array.from({ length: 10 }, (_, j) => event(3, b * 10 + j)),
        T0 + 10_000 + b * 1000,
        out,
        0,
        undefined,
        3,
      )
      closed.push(...out.results)
      late += out.late
    }
    const out = newAggregateOutput()
    op.advance(T0 + 1_000_000, out)
    closed.push(...out.results)
    assert.equal(late, 0)
    // 300 events per partition over 30 s: three windows, three keys, 4 × 100 / 3 events each
    assert.equal(closed.length, 9)
    const total = closed.reduce((n, r) => n + (r.results.count ?? 0), 0)
    assert.equal(total, 4 * 300)
    for (const r of closed) assert.ok(r.closed)
  })

  test('an idle partition leaves the minimum and the others go on', () => {
    const spec = aggregate({ window_seconds: 1, functions: ['count'], idle_timeout_seconds: 2 })
    const op = new AggregateOperator(spec, { maxKeysPerWindow: 1_000 }, [0, 1])
    const T0 = 1_700_000_000_000
    const ev = (i: number, ts: number): Event => ({
      id: `e${i}`,
      event_type: 'e',
      source: 's',
      timestamp: ts,
      data: {},
    })
    const out = newAggregateOutput()
    op.process([ev(0, T0)], T0, out, 0, undefined, 0)
    op.process([ev(1, T0 + 1500)], T0 + 1500, out, 0, undefined, 0)
    assert.equal(out.results.length, 0, 'partition 1 has not been idle for 2 s yet')
    op.process([ev(2, T0 + 3000)], T0 + 3000, out, 0, undefined, 0)
    assert.deepEqual(
      out.results.map((r) => [r.windowStart - T0, r.results.count]),
      [
        [0, 1],
        [1000, 1],
      ],
    )
  })
})
