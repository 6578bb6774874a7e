import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka'
import type { KafkaLog } from '../../src/log/kafka-log.ts'
import type { OutboxBatch, OutboxMessage } from '../../src/stores/store.ts'
import { fileBroker, kafkaSkipReason, readCommitted, testKafkaLog } from '../helpers/kafka.ts'

const broker = fileBroker()

async function kafkaLog(
  t: import('node:test').TestContext,
): Promise<{ log: KafkaLog; brokers: string } | undefined> {
  const brokers = await broker(t)
  return brokers === undefined ? undefined : { log: testKafkaLog(t, brokers, 'tx-test', 2), brokers }
}

const message = (seq: number, topic: string): OutboxMessage => ({
  topic,
  key: seq % 3 === 0 ? null : `k${seq}`,
  value: JSON.stringify({ seq }),
  headers: { pipeline_id: 'p', seq: String(seq) },
})

/** A batch of one message whose value is its seq. */
const row = (seq: number, topic: string): OutboxBatch => ({ seq, messages: [message(seq, topic)] })

/** Every value a read_committed reader sees on `topic` (at least `count`, then quiet a while). */
async function committedValues(brokers: string, topic: string, count: number): Promise<number[]> {
  const got = await readCommitted(brokers, topic, count, 1_000)
  return got.map((m) => (JSON.parse(m.value) as { seq: number }).seq).sort((a, b) => a - b)
}

test('a relay sends batches and its position in one transaction; a newer sender of the pipeline fences it; an abandoned transaction is aborted', async (t) => {
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
  await first.send([row(1, sink), { seq: 3, messages: [message(2, `${sink}.dlq`), message(3, sink)] }])
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
  const log = testKafkaLog(t, '127.0.0.1:1', 'x', 1, 'at-least-once')
  assert.equal(log.transactional, undefined)
})

test('a read_committed reader skips every aborted transaction of a producer, also when the abort marker comes in a later fetch', async (t) => {
  const kafka = await kafkaLog(t)
  if (!kafka) return
  const { brokers } = kafka
  const topic = `aborts-${Date.now()}`
  await kafka.log.prepareTopics([topic])
  const producer = new Producer({
    clientId: 'aborts',
    bootstrapBrokers: [brokers],
    serializers: stringSerializers,
    idempotent: true,
    transactionalId: `aborts-${Date.now()}`,
  })
  t.after(() => producer.close())
  // one producer id throughout: aborted, committed, aborted twice, committed (the client kept
  // only the last aborted range of a producer per fetch, and none whose marker came later)
  const plan = [false, true, false, false, true]
  for (const [i, commit] of plan.entries()) {
    const tx = await producer.beginTransaction({ producerId: -1n, producerEpoch: -1 })
    for (let j = 0; j < 3; j++)
      await tx.send({ messages: [{ topic, value: JSON.stringify({ seq: i * 10 + j }) }], acks: -1 })
    if (commit) await tx.commit()
    else await tx.abort()
  }
  const want = [10, 11, 12, 40, 41, 42]
  assert.deepEqual(await committedValues(brokers, topic, want.length), want)
  // fetches of a few hundred bytes: a transaction's batches and its marker in different responses
  const small = new Consumer({
    groupId: `small-${Date.now()}`,
    clientId: 'small',
    bootstrapBrokers: [brokers],
    deserializers: stringDeserializers,
    maxBytes: 200,
  })
  t.after(() => small.close(true))
  const stream = await small.consume({
    topics: [topic],
    mode: 'earliest',
    autocommit: false,
    maxWaitTime: 100,
  })
  const seen: number[] = []
  stream.on('data', (m) => seen.push((JSON.parse(m.value) as { seq: number }).seq))
  const deadline = Date.now() + 20_000
  while (seen.length < want.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  await new Promise((r) => setTimeout(r, 1_000))
  await stream.close()
  assert.deepEqual(
    seen.sort((a, b) => a - b),
    want,
  )
})
