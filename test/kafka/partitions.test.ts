import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parsePipeline } from '../../src/engine/pipeline-spec.ts'
import { DEFAULT_AGGREGATE_LIMITS } from '../../src/engine/stages/aggregate-spec.ts'
import type { Event } from '../../src/engine/types.ts'
import { type Op, runPartitionedReference } from '../engine/reference-model.ts'
import { crashServer } from '../helpers/crash-run.ts'
import { brokerFor, plainProducer } from '../helpers/kafka.ts'
import { rng } from '../helpers/random.ts'
import { tempDir } from '../helpers/tmp.ts'

const TOPIC = 'parts'
const PARTITIONS = 4
const PIPELINES = {
  tumbling: {
    window_seconds: 1,
    functions: ['count', { sum: 'data.v' }],
    group_by: ['data.k'],
    allowed_lateness_seconds: 0.5,
    idle_timeout_seconds: 60,
  },
  sessions: {
    session_gap_seconds: 0.3,
    functions: ['count', { max: 'data.v' }],
    group_by: ['data.k'],
    allowed_lateness_seconds: 0.5,
    idle_timeout_seconds: 60,
  },
}

type Windows = Array<{
  window_start: string
  window_end: string
  key: Record<string, unknown> | null
  results: Record<string, number | null>
}>

test('a 4-partition source with one partition 10 s behind: nothing late, every window exact, also across kill -9', async (t) => {
  const broker = await brokerFor(t)
  if (!broker) return
  t.after(() => broker.destroy())
  const server = await crashServer(t, tempDir(t), [
    '--kafka-brokers',
    broker.brokers,
    '--kafka-partitions',
    String(PARTITIONS),
  ])
  const ids: Record<string, string> = {}
  for (const [name, aggregate] of Object.entries(PIPELINES)) {
    const res = await fetch(`${server.url}/api/pipelines`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name, source_topic: TOPIC, start: true, transformation: { aggregate } }),
    })
    assert.equal(res.status, 201)
    ids[name] = ((await res.json()) as { id: string }).id
  }

  // the same event-time range on every partition, slightly out of order (within the lateness)
  const base = Date.parse('2026-11-30T00:00:00Z')
  const perPartition: Op[][] = Array.from({ length: PARTITIONS }, () => [])
  const producer = plainProducer(broker.brokers)
  t.after(() => producer.close())
  const produce = async (partition: number, batches: number, r: ReturnType<typeof rng>) => {
    for (let b = 0; b < batches; b++) {
      const arrival = Date.now()
      const events: Event[] = Array.from({ length: r.int(5, 30) }, (_, i) => ({
        id: `p${partition}-${b}-${i}`,
        event_type: 'm',
        source: 'test',
        timestamp: base + b * 50 + r.int(0, 300),
        data: { k: `k${r.int(0, 4)}`, v: r.int(-100, 1000) },
      }))
      await producer.send({
        messages: events.map((e) => ({
          topic: TOPIC,
          partition,
          key: e.id,
          value: JSON.stringify({ ...e, timestamp: new Date(e.timestamp).toISOString() }),
          timestamp: BigInt(arrival),
        })),
        acks: -1,
      })
      perPartition[partition].push({ kind: 'batch', arrival, events })
    }
  }
  const BATCHES = 120 // 6 s of event time per partition
  await Promise.all([0, 1, 2].map((p) => produce(p, BATCHES, rng(10 + p))))
  await new Promise((r) => setTimeout(r, 10_000))
  // partition 3: the same time range, 10 s later; the server is killed while it streams
  const late = produce(3, BATCHES, rng(13))
  await new Promise((r) => setTimeout(r, 400))
  await server.kill('SIGKILL')
  await server.start()
  await late
  // one event far ahead on every partition moves every partition's watermark past the range
  const flush = Array.from({ length: PARTITIONS }, () => rng(99))
  await Promise.all(
    flush.map(async (_, p) => {
      const arrival = Date.now()
      const event: Event = {
        id: `flush-${p}`,
        event_type: 'm',
        source: 'test',
        timestamp: base + 3_600_000,
        data: { k: 'flush', v: 0 },
      }
      await producer.send({
        messages: [
          {
            topic: TOPIC,
            partition: p,
            key: event.id,
            value: JSON.stringify({ ...event, timestamp: new Date(event.timestamp).toISOString() }),
            timestamp: BigInt(arrival),
          },
        ],
        acks: -1,
      })
      perPartition[p].push({ kind: 'batch', arrival, events: [event] })
    }),
  )

  const expectedTotal = perPartition
    .flat()
    .reduce((n, o) => n + (o.kind === 'batch' ? o.events.length : 0), 0)
  const check = async (name: string, id: string, replayed: boolean) => {
    const parsed = parsePipeline(
      { name, source_topic: TOPIC, transformation: { aggregate: PIPELINES[name as keyof typeof PIPELINES] } },
      DEFAULT_AGGREGATE_LIMITS,
    )
    assert.ok(parsed.ok && parsed.value.stages[0].kind === 'aggregate')
    const reference = runPartitionedReference(
      parsed.value.stages[0].spec,
      perPartition,
      Number.MAX_SAFE_INTEGER / 2,
    )
    // the flush events' windows stay open; everything before them closes
    const want = new Map(
      reference.windows
        .filter((w) => w.key !== '["flush"]')
        .map((w) => [`${w.start}|${w.end}|${w.key}`, w.results]),
    )
    let closed: Windows = []
    let stats = {
      events_in: 0,
      late: -1,
      partitions: [] as Array<{
        partition: number
        position: number
        events_in: number
        late: number
        lag: number
      }>,
    }
    for (let i = 0; ; i++) {
      stats = ((await (await fetch(`${server.url}/api/pipelines/${id}`)).json()) as { stats: typeof stats })
        .stats
      closed = (
        (await (await fetch(`${server.url}/api/pipelines/${id}/window?state=closed&limit=10000`)).json()) as {
          windows: Windows
        }
      ).windows
      const replay = (stats as { replay?: { state: string } }).replay
      if (
        stats.events_in === expectedTotal &&
        closed.length >= want.size &&
        (!replayed || replay?.state === 'done')
      )
        break
      assert.ok(
        i < 600,
        `${name}: ${stats.events_in}/${expectedTotal} events, ${closed.length}/${want.size} windows`,
      )
      await new Promise((r) => setTimeout(r, 50))
    }
    assert.equal(reference.late, 0)
    assert.equal(stats.late, 0, `${name}: no event late`)
    // each partition's own counters and position, restored across the kill with its checkpoint row
    const sent = perPartition.map((ops) =>
      ops.reduce((n, o) => n + (o.kind === 'batch' ? o.events.length : 0), 0),
    )
    assert.deepEqual(
      stats.partitions.map((q) => [q.partition, q.events_in, q.late, q.position, q.lag]),
      sent.map((n, p) => [p, n, 0, n, 0]),
      `${name}: per partition`,
    )
    assert.equal(closed.length, want.size, `${name}: closed windows`)
    for (const w of closed) {
      const keyId = JSON.stringify(w.key === null ? [] : Object.values(w.key))
      const id = `${Date.parse(w.window_start)}|${Date.parse(w.window_end)}|${keyId}`
      assert.deepEqual(w.results, want.get(id), `${name} ${id}`)
    }
  }
  for (const [name, id] of Object.entries(ids)) await check(name, id, false)
  // a replay from earliest over the 4 partitions gives every window again, no row twice
  for (const [name, id] of Object.entries(ids)) {
    const res = await fetch(`${server.url}/api/pipelines/${id}/replay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ from: 'earliest' }),
    })
    assert.equal(res.status, 200, await res.text())
    await check(name, id, true)
  }
  assert.equal(await server.kill('SIGTERM'), 0)
})
