import { Admin, Producer, stringSerializers } from '@platformatic/kafka'
import { kafkaUnavailableReason, startKafka } from '../scripts/kafka.ts'
import type { BenchRow } from './engine.ts'
import { generateEvents } from './generate.ts'
import { benchDatabase } from './postgres.ts'
import { startDataPulse } from './processes.ts'

const TOPIC = 'cluster-in'
const PARTITIONS = 6
const PIPELINES = 3
const LEASE_MS = 3_000

interface ClusterBody {
  pipelines: Array<{
    id: string
    owner: string | null
    last_handover: { from: string; paused_ms: number } | null
  }>
}

/**
 * The Kafka pipeline run by a cluster of 1, 2 and 3 instances (one broker, one PostgreSQL
 * database each time): three tumbling count-by-key pipelines on one 6-partition topic, spread over
 * the instances; total events/s from the first event read to the last. Then, on 3 instances, one
 * owner stops cleanly, then another is killed, and each hand-over's pause is read from GET
 * /api/cluster.
 */
export async function clusterBenches(quick: boolean): Promise<BenchRow[]> {
  const reason = kafkaUnavailableReason()
  if (reason) {
    console.error(`cluster bench skipped: ${reason}`)
    return []
  }
  const total = quick ? 200_000 : 1_000_000
  const broker = await startKafka()
  try {
    const admin = new Admin({ clientId: 'bench', bootstrapBrokers: [broker.brokers] })
    await admin.createTopics({ topics: [TOPIC], partitions: PARTITIONS, replicas: 1 })
    await admin.close()
    const producer = new Producer({
      clientId: 'bench',
      bootstrapBrokers: [broker.brokers],
      serializers: stringSerializers,
    })
    const events = generateEvents(total, { keys: 10_000, stepMs: 1 })
    for (let i = 0; i < total; i += 5_000)
      await producer.send({
        messages: events.slice(i, i + 5_000).map((e, j) => ({
          topic: TOPIC,
          partition: (i + j) % PARTITIONS,
          key: e.id,
          value: JSON.stringify({ ...e, timestamp: new Date(e.timestamp).toISOString() }),
        })),
        acks: -1,
      })
    await producer.close()

    const rates: number[] = []
    let pause: { released: number; killed: number } | undefined
    for (const instances of [1, 2, 3]) {
      const db = await benchDatabase()
      if (!db) {
        console.error('cluster bench skipped: PostgreSQL is not reachable')
        return []
      }
      const servers: Array<Awaited<ReturnType<typeof startDataPulse>>> = []
      try {
        for (let n = 0; n < instances; n++)
          servers.push(
            await startDataPulse([
              '--kafka-brokers',
              broker.brokers,
              '--database-url',
              db.url,
              '--instance-id',
              `bench-${n}`,
              '--cluster-lease-ms',
              String(LEASE_MS),
            ]),
          )
        const base = servers[0].base
        const ids: string[] = []
        for (let p = 0; p < PIPELINES; p++) {
          const res = await fetch(`${base}/api/pipelines`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              name: `count-${p}`,
              source_topic: TOPIC,
              sink_topic: `cluster-out-${instances}-${p}`,
              start: true,
              transformation: {
                aggregate: { window_seconds: 60, function: 'count', group_by: ['data.user_id'] },
              },
            }),
          })
          ids.push(((await res.json()) as { id: string }).id)
        }
        const done = async () => {
          let sum = 0
          for (const id of ids) {
            const p = (await (await fetch(`${base}/api/pipelines/${id}`)).json()) as {
              stats?: { events_in: number }
            }
            sum += p.stats?.events_in ?? 0
          }
          return sum
        }
        let first = 0
        for (;;) {
          const sum = await done()
          if (first === 0 && sum > 0) first = performance.now()
          if (sum >= PIPELINES * total) break
          await new Promise((r) => setTimeout(r, 100))
        }
        rates.push((PIPELINES * total) / ((performance.now() - first) / 1000))
        if (instances === 3) pause = await handOverPauses(servers, base)
      } finally {
        for (const s of servers) await s.close().catch(() => undefined)
        await db.drop()
      }
    }
    const label = `${PIPELINES} Kafka pipelines (tumbling 60 s count by key) on one ${PARTITIONS}-partition topic, ${(total / 1e6).toFixed(1)}M events each`
    return [
      ...[2, 3].map(
        (n): BenchRow => ({
          bench: `cluster: ${label}, ${n} instances, total`,
          value: rates[n - 1],
          unit: 'events/s',
          ceiling: rates[0],
          ceilingName: '1 instance, same run',
          target: '>= 1.0x (does not fall)',
          ok: rates[n - 1] >= rates[0],
        }),
      ),
      {
        bench: 'cluster: hand-over pause after a clean stop of an owner (SIGTERM)',
        value: (pause?.released ?? Number.NaN) / 1000,
        unit: 's',
      },
      {
        bench: `cluster: hand-over pause after kill -9 of an owner (lease ${LEASE_MS / 1000} s)`,
        value: (pause?.killed ?? Number.NaN) / 1000,
        unit: 's',
        ceiling: LEASE_MS / 1000,
        ceilingName: 'the lease: what an instance waits before it takes over',
      },
    ]
  } finally {
    await broker.destroy()
  }
}

/** Pause of each hand-over as the new owner records it (GET /api/cluster `last_handover.paused_ms`), in ms. */
async function handOverPause(base: string, id: string, from: string): Promise<number> {
  for (let i = 0; i < 600; i++) {
    const view = (await (await fetch(`${base}/api/cluster`)).json()) as ClusterBody
    const h = view.pipelines.find((p) => p.id === id)?.last_handover
    if (h && h.from === from) return h.paused_ms
    await new Promise((r) => setTimeout(r, 100))
  }
  return Number.NaN
}

/**
 * On a cluster of three: an owner other than the one asked stops cleanly (SIGTERM: checkpoint,
 * release), then another is killed (SIGKILL: its lease runs out first).
 */
async function handOverPauses(
  servers: Array<{ base: string; pid: number }>,
  base: string,
): Promise<{ released: number; killed: number }> {
  const index = (instance: string) => Number(instance.split('-')[1])
  const asked = base
  const gone = new Set<string>()
  const handOver = async (signal: NodeJS.Signals): Promise<number> => {
    const view = (await (await fetch(`${asked}/api/cluster`)).json()) as ClusterBody
    const moving = view.pipelines.find(
      (p) => p.owner !== null && !gone.has(p.owner) && servers[index(p.owner)]?.base !== asked,
    )
    if (!moving?.owner) return Number.NaN
    gone.add(moving.owner)
    process.kill(servers[index(moving.owner)].pid, signal)
    return handOverPause(asked, moving.id, moving.owner)
  }
  const released = await handOver('SIGTERM')
  // the remaining two share the pipelines again before the next one goes
  await new Promise((r) => setTimeout(r, 2 * LEASE_MS))
  const killed = await handOver('SIGKILL')
  return { released, killed }
}
