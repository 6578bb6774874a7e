import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  AggregateOperator,
  newAggregateOutput,
  type PartitionedSnapshot,
} from '../../src/engine/aggregate.ts'
import type { JsonValue, WindowResult } from '../../src/engine/types.ts'
import { rng } from '../helpers/random.ts'
import { aggregate, randomOps, randomSpec } from './generators.ts'
import type { Op } from './reference-model.ts'

const LIMITS = { maxKeysPerWindow: 1_000_000 }

/** What a store holds of snapshots in parts applied in order: the operator's part, each partition's, its parts. */
class Stored {
  own: JsonValue = null
  readonly partitions = new Map<number, JsonValue>()
  readonly parts = new Map<number, Map<number, JsonValue>>()

  apply(snap: PartitionedSnapshot): void {
    const json = <T>(v: T): T => JSON.parse(JSON.stringify(v))
    this.own = json(snap.state)
    for (const [p, state] of snap.partitions) {
      this.partitions.set(p, json(state))
      const delta = snap.parts?.get(p)
      if (!delta) {
        this.parts.delete(p)
        continue
      }
      const held = delta.all ? new Map<number, JsonValue>() : (this.parts.get(p) ?? new Map())
      for (const d of delta.dropped) held.delete(d)
      for (const [part, slots] of delta.changed) held.set(part, json(slots) as unknown as JsonValue)
      this.parts.set(p, held)
    }
  }

  /** The partitions' states as the store gives them back: parts beside the state. */
  load(): Map<number, JsonValue> {
    const out = new Map<number, JsonValue>()
    for (const [p, state] of this.partitions) {
      const parts = this.parts.get(p)
      out.set(p, parts ? ({ ...(state as object), parts: [...parts] } as unknown as JsonValue) : state)
    }
    return out
  }
}

const key = (r: WindowResult) => `${r.windowStart}|${r.windowEnd}|${r.keyId}|${r.closed}`

function step(op: AggregateOperator, o: Op, out: WindowResult[]): void {
  const res = newAggregateOutput()
  if (o.kind === 'batch') op.process(o.events, o.arrival, res)
  else op.advance(o.now, res)
  out.push(...res.results)
}

test('checkpoints of only what changed, applied in order, restore the state a whole snapshot does: the same output after, on 300 generated streams', () => {
  let deltas = 0
  let written = 0
  let whole = 0
  for (let seed = 1; seed <= 300; seed++) {
    const r = rng(70_000 + seed)
    const raw = randomSpec(r)
    const spec = aggregate(raw)
    const ops = randomOps(r)
    const where = `seed ${seed} ${JSON.stringify(raw)}`
    const op = new AggregateOperator(spec, LIMITS)
    const stored = new Stored()
    const k = r.int(1, ops.length - 1)
    let first = true
    for (let i = 0; i < k; i++) {
      step(op, ops[i], [])
      if (r.chance(0.4)) {
        const snap = op.snapshot(first ? 'all' : 'changed')
        if (!first) deltas++
        first = false
        for (const d of snap.parts?.values() ?? []) written += d.changed.length
        stored.apply(snap)
      }
    }
    stored.apply(op.snapshot(first ? 'all' : 'changed'))
    const full = op.snapshot('none')
    for (const p of full.partitions.values())
      whole += (p as unknown as { slots: unknown[] }).slots.length > 0 ? 1 : 0
    const fromParts = new AggregateOperator(spec, LIMITS)
    fromParts.restore(stored.own, stored.load())
    const fromWhole = new AggregateOperator(spec, LIMITS)
    const doc = JSON.parse(JSON.stringify({ state: full.state, partitions: [...full.partitions] }))
    fromWhole.restore(doc.state, new Map(doc.partitions))
    // nothing dropped comes back: the same live state, slot for slot
    assert.equal(fromParts.size, fromWhole.size, `${where}: live slots`)
    const a: WindowResult[] = []
    const b: WindowResult[] = []
    for (const o of ops.slice(k)) {
      step(fromParts, o, a)
      step(fromWhole, o, b)
    }
    assert.deepEqual(a.map(key), b.map(key), where)
    assert.deepEqual(
      a.map((x) => x.results),
      b.map((x) => x.results),
      where,
    )
    assert.deepEqual(
      fromParts.openWindows({ limit: 1_000_000 }).map(key),
      fromWhole.openWindows({ limit: 1_000_000 }).map(key),
      where,
    )
  }
  assert.ok(deltas > 200 && written > 200 && whole > 100, JSON.stringify({ deltas, written, whole }))
})
