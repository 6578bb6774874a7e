import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { Producer, stringSerializers } from '@platformatic/kafka'
import type { KafkaBroker } from '../../scripts/kafka.ts'
import { startKafka } from '../../scripts/kafka.ts'
import { KafkaLog } from '../../src/log/kafka-log.ts'
import { silentLogger } from '../../src/logger.ts'
import type { OutboxRow } from '../../src/stores/store.ts'
import { consumeUntil, kafkaSkipReason } from '../helpers/kafka.ts'

let broker: Promise<KafkaBroker> | undefined
after(async () => (await broker)?.destroy())

async function kafkaLog(
  t: import('node:test').TestContext,
): Promise<{ log: KafkaLog; brokers: string } | undefined> {
  const skip = kafkaSkipReason()
  if (skip) {
    t.skip(skip)
    return undefined
  }
  broker ??= startKafka()
  const { brokers } = await broker
  const log = new KafkaLog(
    {
      brokers: [brokers],
      clientId: 'tx-test',
      partitions: 2,
      replication: 1,
      tls: false,
      compression: 'lz4',
      delivery: 'exactly-once',
    },
    silentLogger(),
  )
  t.after(() => log.close())
  return { log, brokers }
}

const row = (seq: number, topic: string): OutboxRow => ({
  seq,
  topic,
  key: seq % 3 === 0 ? null : `k${seq}`,
  value: JSON.stringify({ seq }),
  headers: { pipeline_id: 'p', seq: String(seq) },
})

/** Every value a read_committed reader sees on `topic`, once `count` arrived (then a little longer, for extras). */
async function committedValues(brokers: string, topic: string, count: number): Promise<number[]> {
  const got = await consumeUntil(brokers, topic, (m) => m.length >= count)
  await new Promise((r) => setTimeout(r, 500))
  const again = await consumeUntil(brokers, topic, (m) => m.length >= got.length)
  return again.map((m) => (JSON.parse(m.value) as { seq: number }).seq).sort((a, b) => a - b)
}

test('a relay sends rows and its position in one transaction; a newer sender of the pipeline fences it; an abandoned transaction is aborted', async (t) => {
  const kafka = await kafkaLog(t)
  if (!kafka) return
  const { log, brokers } = kafka
  const tx = log.transactional
  assert.ok(tx, 'exactly-once is the default delivery')
  const pipeline = `p${Date.now()}`
  const sink = `eo-${pipeline}`
  await log.prepareTopics([sink, `${sink}.dlq`])

  const first = await tx.openSender(pipeline)
  assert.equal(first.next, undefined, 'a new pipeline has no position yet')
  await first.send([row(1, sink), row(2, `${sink}.dlq`), row(3, sink)])
  assert.equal(first.next, 4)
  await first.send([row(4, sink)])

  // the pipeline moves: the new owner's sender reads the position the last transaction committed
  const second = await tx.openSender(pipeline)
  assert.equal(second.next, 5)
  await assert.rejects(first.send([row(5, sink)]), { name: 'ProducerFencedError' })
  await first.close()
  await second.send([row(5, sink), row(6, `${sink}.dlq`)])

  // a process that froze mid-transaction: produced, never committed
  const zombie = new Producer({
    clientId: 'zombie',
    bootstrapBrokers: [brokers],
    serializers: stringSerializers,
    idempotent: true,
    transactionalId: `datapulse.${pipeline}`,
  })
  t.after(() => zombie.close())
  const open = await zombie.beginTransaction({ producerId: -1n, producerEpoch: -1 })
  await open.send({ messages: [{ topic: sink, key: 'z', value: JSON.stringify({ seq: 999 }) }] })
  const third = await tx.openSender(pipeline)
  assert.equal(third.next, 7, 'the zombie committed no position')
  await third.send([row(7, sink)])
  await second.close()
  await third.close()

  assert.deepEqual(await committedValues(brokers, sink, 5), [1, 3, 4, 5, 7])
  assert.deepEqual(await committedValues(brokers, `${sink}.dlq`, 2), [2, 6])
})

test('at-least-once delivery has no transactional output', async (t) => {
  const skip = kafkaSkipReason()
  if (skip) return t.skip(skip)
  const log = new KafkaLog(
    {
      brokers: ['127.0.0.1:1'],
      clientId: 'x',
      partitions: 1,
      replication: 1,
      tls: false,
      compression: 'none',
      delivery: 'at-least-once',
    },
    silentLogger(),
  )
  t.after(() => log.close())
  assert.equal(log.transactional, undefined)
})
