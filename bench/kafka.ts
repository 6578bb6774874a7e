import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka'
import { kafkaUnavailableReason, startKafka } from '../scripts/kafka.ts'
import type { BenchRow } from './engine.ts'
import { generateEvents } from './generate.ts'
import { startDataPulse } from './processes.ts'

/** Kafka topic → windowed aggregate → sink topic, beside the same client's consume-only rate on the same broker. */
export async function kafkaBenches(quick: boolean): Promise<BenchRow[]> {
  const reason = kafkaUnavailableReason()
  if (reason) {
    console.error(`kafka bench skipped: ${reason}`)
    return []
  }
  const total = quick ? 200_000 : 1_000_000
  const broker = await startKafka()
  try {
    const admin = new Admin({ clientId: 'bench', bootstrapBrokers: [broker.brokers] })
    await admin.createTopics({ topics: ['bench-in'], partitions: 1, replicas: 1 })
    await admin.close()
    const producer = new Producer({
      clientId: 'bench',
      bootstrapBrokers: [broker.brokers],
      serializers: stringSerializers,
    })
    const events = generateEvents(total, { keys: 10_000, stepMs: 1 })
    for (let i = 0; i < total; i += 5_000) {
      await producer.send({
        messages: events.slice(i, i + 5_000).map((e) => ({
          topic: 'bench-in',
          key: e.id,
          value: JSON.stringify({ ...e, timestamp: new Date(e.timestamp).toISOString() }),
        })),
        acks: -1,
      })
    }
    await producer.close()

    // ceiling: the same client, consuming only (and parsing each value, as any consumer must)
    const consumeOnly = await consumeOnlyRate(broker.brokers, 'bench-in', total, 'bench-consume-only')

    const rows: BenchRow[] = []
    for (const delivery of ['exactly-once', 'at-least-once'] as const) {
      const rate = await pipelineRate(broker.brokers, total, delivery)
      rows.push({
        bench: `Kafka topic → tumbling 60 s count by key (10k keys) → sink topic (${delivery}), ${(total / 1e6).toFixed(1)}M events`,
        value: rate,
        unit: 'events/s',
        ceiling: consumeOnly,
        ceilingName: '@platformatic/kafka consume-only (+ JSON.parse), same broker',
        target: '>= 0.7x ceiling',
        ok: rate >= 0.7 * consumeOnly,
      })
    }
    return rows
  } finally {
    await broker.destroy()
  }
}

/** A fresh DataPulse running the bench pipeline over `bench-in`: events/s from its first event read to its last. */
async function pipelineRate(
  brokers: string,
  total: number,
  delivery: 'exactly-once' | 'at-least-once',
): Promise<number> {
  const { base, close } = await startDataPulse(['--kafka-brokers', brokers, '--kafka-delivery', delivery])
  try {
    const t1 = performance.now()
    const created = await fetch(`${base}/api/pipelines`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'kafka-bench',
        source_topic: 'bench-in',
        sink_topic: `bench-out-${delivery}`,
        start: true,
        transformation: {
          aggregate: { window_seconds: 60, function: 'count', group_by: ['data.user_id'] },
        },
      }),
    })
    const { id } = (await created.json()) as { id: string }
    // timed from the first event read (the consumer group's join is not throughput)
    let first = 0
    for (;;) {
      const p = (await (await fetch(`${base}/api/pipelines/${id}`)).json()) as {
        stats: { events_in: number }
      }
      if (first === 0 && p.stats.events_in > 0) first = performance.now()
      if (p.stats.events_in >= total) break
      await new Promise((r) => setTimeout(r, 50))
    }
    return total / ((performance.now() - (first || t1)) / 1000)
  } finally {
    await close()
  }
}

/**
 * `@platformatic/kafka` reading `total` messages of `topic` from the start and parsing each value,
 * as any consumer must: events/s, timed from the first message (the group's join left out).
 */
export async function consumeOnlyRate(
  brokers: string,
  topic: string,
  total: number,
  groupId: string,
): Promise<number> {
  const consumer = new Consumer({
    groupId,
    clientId: 'bench',
    bootstrapBrokers: [brokers],
    deserializers: stringDeserializers,
  })
  const stream = await consumer.consume({
    topics: [topic],
    mode: 'earliest',
    autocommit: false,
    maxWaitTime: 100,
  })
  let t0 = 0
  await new Promise<void>((resolve) => {
    let n = 0
    stream.on('data', (m) => {
      if (n === 0) t0 = performance.now()
      JSON.parse(m.value)
      if (++n === total) resolve()
    })
  })
  const rate = total / ((performance.now() - t0) / 1000)
  await stream.close()
  await consumer.close(true)
  return rate
}
