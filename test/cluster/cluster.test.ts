import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parsePipeline } from '../../src/engine/pipeline-spec.ts'
import { DEFAULT_AGGREGATE_LIMITS } from '../../src/engine/stages/aggregate-spec.ts'
import type { Event } from '../../src/engine/types.ts'
import { type Op, runPartitionedReference } from '../engine/reference-model.ts'
import { ChildServer, freePort } from '../helpers/child-server.ts'
import { brokerFor, plainProducer, readCommitted } from '../helpers/kafka.ts'
import { freshDatabase } from '../helpers/postgres.ts'
import { rng } from '../helpers/random.ts'
import { tempDir } from '../helpers/tmp.ts'

const TOPIC = 'clicks'
const PARTITIONS = 6
const LEASE_MS = 3_000
const PIPELINES = {
  tumbling: {
    window_seconds: 1,
    functions: ['count', { sum: 'data.v' }],
    group_by: ['data.k'],
    allowed_lateness_seconds: 0.5,
    idle_timeout_seconds: 600,
  },
  sessions: {
    session_gap_seconds: 0.3,
    functions: ['count', { max: 'data.v' }],
    group_by: ['data.k'],
    allowed_lateness_seconds: 0.5,
    idle_timeout_seconds: 600,
  },
}
type Name = keyof typeof PIPELINES

type Windows = Array<{
  window_start: string
  window_end: string
  key: Record<string, unknown> | null
  results: Record<string, number | null>
}>

interface Cluster {
  instance: string
  clustered: boolean
  instances: Array<{ id: string; url: string; pipelines: string[] }>
  pipelines: Array<{
    id: string
    name: string
    status: string
    owner: string | null
    epoch: number | null
    last_handover: { from: string; to: string; paused_ms: number } | null
  }>
}

async function json<T>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) })
  return { status: res.status, body: (await res.json()) as T }
}

const post = (url: string, body?: unknown) =>
  json<{ id: string; status: string }>(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })

/** progress on stderr with DATAPULSE_TEST_TRACE=1 (a long test that hangs says where) */
const step = (what: string) => {
  if (process.env.DATAPULSE_TEST_TRACE === '1') process.stderr.write(`${new Date().toISOString()} ${what}\n`)
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const got = await probe()
      if (got !== undefined) return got
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

test('three instances share the pipelines: changes reach all, a killed and a frozen owner are taken over, every window exact', async (t) => {
  const broker = await brokerFor(t)
  if (!broker) return
  const servers: ChildServer[] = []
  const producer = plainProducer(broker.brokers)
  // hooks run in the order they were added: everything that talks to the broker ends before it goes
  const databaseUrl = await freshDatabase(t, async () => {
    if (process.env.DATAPULSE_TEST_TRACE === '1')
      for (const s of servers) process.stderr.write(`---- ${s.url}\n${s.output.slice(-3_000)}\n`)
    for (const s of servers) {
      if (s.child && s.child.exitCode === null) s.child.kill('SIGCONT')
      await s.kill('SIGKILL')
    }
    await producer.close()
  })
  t.after(() => broker.destroy())
  if (!databaseUrl) return
  const names = ['node-a', 'node-b', 'node-c']
  for (const name of names) {
    const server = new ChildServer(await freePort(), [
      '--data-dir',
      tempDir(t),
      '--instance-id',
      name,
      '--kafka-brokers',
      broker.brokers,
      '--kafka-partitions',
      String(PARTITIONS),
      '--database-url',
      databaseUrl,
      '--cluster-lease-ms',
      String(LEASE_MS),
      '--checkpoint-interval-ms',
      '150',
      '--log-level',
      'warn',
    ])
    servers.push(server)
  }
  await Promise.all(servers.map((s) => s.start()))
  step('three instances up')
  const [a, b, c] = servers
  const byId = new Map(names.map((n, i) => [n, servers[i]]))

  // every instance sees the others
  const view = await until('three live instances', async () => {
    const { body } = await json<Cluster>(`${b.url}/api/cluster`)
    return body.instances.length === 3 ? body : undefined
  })
  assert.equal(view.clustered, true)
  assert.deepEqual(
    view.instances.map((i) => i.id),
    names,
  )

  // created on one instance, listed on every other within a second (LISTEN/NOTIFY)
  const ids = {} as Record<Name, string>
  for (const [name, aggregate] of Object.entries(PIPELINES)) {
    const created = await post(`${a.url}/api/pipelines`, {
      name,
      source_topic: TOPIC,
      sink_topic: `${name}-out`,
      start: true,
      transformation: { aggregate },
    })
    assert.equal(created.status, 201)
    ids[name as Name] = created.body.id
  }
  step('pipelines created')
  const seenAt = Date.now()
  for (const s of [b, c])
    await until(
      `${s.url} lists both pipelines`,
      async () => {
        const { body } = await json<{ pipelines: Array<{ id: string; status: string }> }>(
          `${s.url}/api/pipelines`,
        )
        return body.pipelines.filter((p) => p.status === 'running').length === 2 ? true : undefined
      },
      5_000,
    )
  assert.ok(Date.now() - seenAt < 1_500, `seen everywhere within a second or so (${Date.now() - seenAt} ms)`)

  step('seen everywhere')
  // a pipeline created, stopped on another instance, deleted on a third: each step seen by all
  step('creating extra')
  const extra = await post(`${a.url}/api/pipelines`, { name: 'extra', source_topic: 'other', start: true })
  assert.equal(extra.status, 201)
  await until('the extra pipeline runs somewhere', async () => {
    const { body } = await json<Cluster>(`${c.url}/api/cluster`)
    return body.pipelines.find((p) => p.id === extra.body.id)?.owner ?? undefined
  })
  step('stopping extra')
  const stopped = await post(`${b.url}/api/pipelines/${extra.body.id}/stop`)
  step('stopped extra')
  assert.equal(stopped.status, 200)
  assert.equal(stopped.body.status, 'stopped')
  for (const s of servers)
    await until(
      'stopped everywhere',
      async () => {
        const { body } = await json<{ status: string }>(`${s.url}/api/pipelines/${extra.body.id}`)
        return body.status === 'stopped' ? true : undefined
      },
      2_000,
    )
  const deleted = await fetch(`${c.url}/api/pipelines/${extra.body.id}`, {
    method: 'DELETE',
    signal: AbortSignal.timeout(10_000),
  })
  assert.equal(deleted.status, 204)
  for (const s of servers)
    await until(
      'deleted everywhere',
      async () =>
        (await fetch(`${s.url}/api/pipelines/${extra.body.id}`, { signal: AbortSignal.timeout(10_000) }))
          .status === 404
          ? true
          : undefined,
      2_000,
    )

  step('extra pipeline created, stopped, deleted')
  // the two pipelines end up on two different instances (an even share)
  const owners = await until('both pipelines owned by different instances', async () => {
    const { body } = await json<Cluster>(`${c.url}/api/cluster`)
    const o = Object.values(ids).map((id) => body.pipelines.find((p) => p.id === id)?.owner)
    return o.every((x) => x) && o[0] !== o[1] ? (o as string[]) : undefined
  })

  // HTTP ingest works on every instance (it produces to Kafka)
  for (const s of servers) {
    const res = await post(`${s.url}/api/events/ingest`, {
      topic: 'ingested',
      events: [{ event_type: 'x', source: s.url, data: {} }],
    })
    assert.equal(res.status, 200)
  }

  // the stream: known events on each of the 6 partitions, 1 s of event time every 20 rounds
  const base = Date.parse('2026-12-06T00:00:00Z')
  const perPartition: Op[][] = Array.from({ length: PARTITIONS }, () => [])
  const send = async (partition: number, events: Event[]) => {
    const arrival = Date.now()
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
  const r = rng(15)
  let round = 0
  const stream = async (rounds: number) => {
    for (let end = round + rounds; round < end; round++)
      await Promise.all(
        Array.from({ length: PARTITIONS }, (_, p) =>
          send(
            p,
            Array.from({ length: r.int(3, 12) }, (_, i) => ({
              id: `p${p}-${round}-${i}`,
              event_type: 'm',
              source: 'test',
              timestamp: base + round * 50 + r.int(0, 300),
              data: { k: `k${r.int(0, 5)}`, v: r.int(-100, 1000) },
            })),
          ),
        ),
      )
  }
  step(`owners ${owners}`)
  await stream(60)
  step('streamed 60 rounds')
  // kill -9 the owner of the tumbling pipeline mid-stream
  const killed = byId.get(owners[0])!
  await killed.kill('SIGKILL')
  await stream(60)
  // freeze the owner of the sessions pipeline past the lease, then let it go on
  const frozen = byId.get(owners[1])!
  frozen.child!.kill('SIGSTOP')
  await stream(40)
  await new Promise((res) => setTimeout(res, LEASE_MS + 2_000))
  const takenOver = await until(
    'the frozen pipeline taken over',
    async () => {
      const alive = servers.find((s) => s !== killed && s !== frozen)!
      const { body } = await json<Cluster>(`${alive.url}/api/cluster`)
      const p = body.pipelines.find((x) => x.id === ids.sessions)
      // the new owner records the hand-over once its runner reads again
      return p?.owner && p.owner !== owners[1] && p.last_handover?.from === owners[1] ? p : undefined
    },
    30_000,
  )
  step(`taken over by ${takenOver.owner}`)
  frozen.child!.kill('SIGCONT')
  await stream(40)
  // the killed instance comes back and gets a share again
  await killed.start()
  await stream(40)
  // one event far ahead on every partition closes every window before it
  await Promise.all(
    Array.from({ length: PARTITIONS }, (_, p) =>
      send(p, [
        {
          id: `flush-${p}`,
          event_type: 'm',
          source: 'test',
          timestamp: base + 3_600_000,
          data: { k: 'flush', v: 0 },
        },
      ]),
    ),
  )
  step('stream done')
  const sent = perPartition.map((ops) =>
    ops.reduce((n, o) => n + (o.kind === 'batch' ? o.events.length : 0), 0),
  )
  const total = sent.reduce((x, y) => x + y, 0)

  for (const [name, id] of Object.entries(ids)) {
    const parsed = parsePipeline(
      { name, source_topic: TOPIC, transformation: { aggregate: PIPELINES[name as Name] } },
      DEFAULT_AGGREGATE_LIMITS,
    )
    assert.ok(parsed.ok && parsed.value.stages[0].kind === 'aggregate')
    const reference = runPartitionedReference(
      parsed.value.stages[0].spec,
      perPartition,
      Number.MAX_SAFE_INTEGER / 2,
    )
    const want = new Map(
      reference.windows
        .filter((w) => w.key !== '["flush"]')
        .map((w) => [`${w.start}|${w.end}|${w.key}`, w.results]),
    )
    // asked of every instance: each answers for the whole pipeline (the owner's, forwarded)
    for (const s of servers) {
      const { stats, closed } = await until(
        `${name} complete on ${s.url}`,
        async () => {
          const p = await json<{
            stats: { events_in: number; late: number; partitions: Array<{ events_in: number }> }
          }>(`${s.url}/api/pipelines/${id}`)
          const w = await json<{ windows: Windows }>(
            `${s.url}/api/pipelines/${id}/window?state=closed&limit=10000`,
          )
          step(
            `${name} on ${s.url}: ${p.body.stats.events_in}/${total} events, ${w.body.windows.length}/${want.size} windows`,
          )
          return p.body.stats.events_in === total && w.body.windows.length >= want.size
            ? { stats: p.body.stats, closed: w.body.windows }
            : undefined
        },
        90_000,
      )
      assert.equal(stats.late, reference.late, `${name}: late`)
      assert.deepEqual(
        stats.partitions.map((q) => q.events_in),
        sent,
        `${name}: every event read once, per partition`,
      )
      assert.equal(closed.length, want.size, `${name}: closed windows`)
      for (const w of closed) {
        const keyId = JSON.stringify(w.key === null ? [] : Object.values(w.key))
        const wid = `${Date.parse(w.window_start)}|${Date.parse(w.window_end)}|${keyId}`
        assert.deepEqual(w.results, want.get(wid), `${name} ${wid}`)
      }
    }
    // a read_committed reader of the sink and the .dlq: each result and each dead letter once
    const sinkMessages = await readCommitted(broker.brokers, `${name}-out`, want.size)
    const onSink: Array<{ id: string; data: Windows[number] }> = sinkMessages.map((m) => JSON.parse(m.value))
    assert.equal(new Set(onSink.map((m) => m.id)).size, onSink.length, `${name}: no result twice on the sink`)
    assert.equal(onSink.length, want.size, `${name}: every window on the sink`)
    for (const m of onSink) {
      const key = JSON.stringify(m.data.key === null ? [] : Object.values(m.data.key))
      const wid = `${Date.parse(m.data.window_start)}|${Date.parse(m.data.window_end)}|${key}`
      assert.deepEqual(m.data.results, want.get(wid), `${name} on the sink: ${wid}`)
    }
    const dlqMessages = await readCommitted(broker.brokers, `${name}-out.dlq`, reference.late)
    const dlq: string[] = dlqMessages.map(
      (m) => (JSON.parse(m.value) as { payload: { id: string } }).payload.id,
    )
    assert.equal(new Set(dlq).size, dlq.length, `${name}: no dead letter twice on the .dlq`)
    assert.equal(dlq.length, reference.late, `${name}: every late event on the .dlq`)
  }

  step('windows checked')
  // the list on every instance follows the owners' counters (as of their last checkpoint)
  for (const s of servers)
    await until(
      `${s.url} lists current counters`,
      async () => {
        const { body } = await json<{ pipelines: Array<{ id: string; stats: { events_in: number } }> }>(
          `${s.url}/api/pipelines`,
        )
        const counted = Object.values(ids).map(
          (id) => body.pipelines.find((p) => p.id === id)?.stats.events_in,
        )
        step(`${s.url} lists ${counted} of ${total}`)
        return counted.every((n) => n === total) ? true : undefined
      },
      20_000,
    )
  step('lists checked')
  // the take-overs are on record, with how long each pipeline did not run
  const final = (await json<Cluster>(`${a.url === killed.url ? b.url : a.url}/api/cluster`)).body
  step('final view read')
  const sessions = final.pipelines.find((p) => p.id === ids.sessions)!
  assert.ok((sessions.epoch ?? 0) >= 2, 'the sessions pipeline changed owner')
  assert.ok(takenOver.last_handover, 'a hand-over recorded')
  assert.equal(takenOver.last_handover.from, owners[1])
  assert.ok(
    takenOver.last_handover.paused_ms >= LEASE_MS - 1_000,
    `paused ${takenOver.last_handover.paused_ms} ms`,
  )
  step('hand-over checked')
  // the frozen instance let go once it ran again: it says so, and it runs neither pipeline's old lease
  await until('the frozen instance let go', async () =>
    frozen.output.includes('lease lost') || frozen.output.includes('taken over') ? true : undefined,
  )
  step('let go seen')
  assert.equal(final.instances.length, 3, 'the restarted instance is back')
})
