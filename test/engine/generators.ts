import assert from 'node:assert/strict'
import type { AggregateOperator, PartitionedSnapshot } from '../../src/engine/aggregate.ts'
import { Issues } from '../../src/engine/check.ts'
import { type AggregateSpec, parseAggregate } from '../../src/engine/stages/aggregate-spec.ts'
import type { Event } from '../../src/engine/types.ts'
import type { Rng } from '../helpers/random.ts'
import type { Op } from './reference-model.ts'

/** An aggregate spec from its JSON form, which must be valid. */
export function aggregate(raw: Record<string, unknown>): AggregateSpec {
  const issues = new Issues()
  const spec = parseAggregate(raw, '/aggregate', issues)
  assert.ok(spec, JSON.stringify(issues.list))
  return spec
}

/** A random aggregate spec: window kind and sizes, functions, keys, time, lateness, emit. */
export function randomSpec(r: Rng): Record<string, unknown> {
  const kind = r.pick(['tumbling', 'hopping', 'session'] as const)
  const spec: Record<string, unknown> = {}
  if (kind === 'session') spec.session_gap_seconds = r.pick([0.5, 1, 2, 3.5])
  else spec.window_seconds = r.pick([1, 2, 5, 10])
  if (kind === 'hopping') spec.slide_seconds = r.pick([0.5, 1, 2, 3]) * (spec.window_seconds as number) * 0.25
  const functions: unknown[] = []
  const all: unknown[] = [
    'count',
    { count: null },
    { count: 'data.tag' },
    { sum: 'data.amount' },
    { avg: { field: 'data.amount' } },
    { min: 'amount' },
    { max: { field: 'data.amount', as: 'biggest' } },
    { count_distinct: 'data.user' },
    { p50: 'data.amount' },
    { p99: 'data.latency' },
    { percentile: { field: 'data.latency', q: 0.999 } },
  ]
  const used = new Set<number>()
  for (let i = r.int(1, 4); i > 0; i--) {
    const n = r.int(0, all.length - 1)
    // `"count"` and `{"count":null}` share the name count; keep one of them
    if (used.has(n) || (n <= 1 && (used.has(0) || used.has(1)))) continue
    used.add(n)
    functions.push(all[n])
  }
  spec.functions = functions
  const groups = r.int(0, 2)
  if (groups > 0) spec.group_by = ['data.region', 'event_type'].slice(0, groups)
  if (r.chance(0.15)) spec.time = 'processing'
  spec.allowed_lateness_seconds = r.pick([0, 0, 0.5, 1, 3])
  spec.idle_timeout_seconds = r.pick([0.5, 1, 5])
  spec.emit = r.pick(['final', 'updates'])
  return spec
}

/** Batches with arrival times; event times out of order within and beyond lateness; gaps; bad values. */
export function randomOps(r: Rng): Op[] {
  const ops: Op[] = []
  let arrival = 1_700_000_000_000 + r.int(0, 10_000)
  let id = 0
  for (let b = r.int(1, 25); b > 0; b--) {
    arrival += r.pick([0, 10, 200, 700, 1500, 4000, 9000])
    const events: Event[] = []
    for (let n = r.int(0, 12); n > 0; n--) {
      const disorder = r.pick([0, 0, 0, 100, 500, 1200, 2500, 6000])
      const ts = r.chance(0.1) && events.length > 0 ? events[events.length - 1].timestamp : arrival - disorder
      const data: Record<string, unknown> = {
        region: r.pick(['eu', 'us', 'ap', 7]),
        user: r.pick(['u1', 'u2', 'u3', 4, true]),
        amount: r.int(-50, 500) / 4,
        latency: r.int(1, 2000),
      }
      if (r.chance(0.5)) data.tag = 'x'
      if (r.chance(0.03)) delete data.amount
      if (r.chance(0.03)) data.latency = 'slow'
      events.push({
        id: `e${id++}`,
        event_type: r.pick(['view', 'click']),
        source: 'test',
        timestamp: ts,
        data,
      })
    }
    ops.push({ kind: 'batch', arrival, events })
    if (r.chance(0.2)) ops.push({ kind: 'advance', now: arrival + r.int(0, 8000) })
  }
  ops.push({ kind: 'advance', now: arrival + 1_000_000 })
  return ops
}

/** A snapshot as the store keeps it: the operator's part and each partition's, as JSON text. */
export function snapshotJson(snap: PartitionedSnapshot): string {
  return JSON.stringify({ state: snap.state, partitions: [...snap.partitions] })
}

/** A checkpoint round trip: `op`'s snapshot through JSON into `fresh`, which it returns. */
export function roundTrip(op: AggregateOperator, fresh: AggregateOperator): AggregateOperator {
  const saved = JSON.parse(snapshotJson(op.snapshot()))
  fresh.restore(saved.state, new Map(saved.partitions))
  return fresh
}
