import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Consumer, stringDeserializers } from '@platformatic/kafka'
import type { Event } from '../../src/engine/types.ts'
import type { LogBatch } from '../../src/log/log.ts'
import { assertExact, crashRun, crashServer } from '../helpers/crash-run.ts'
import { brokerFor } from '../helpers/kafka.ts'
import { tempDir } from '../helpers/tmp.ts'

/** The topic as the pipelines saw it: consecutive messages with one producer timestamp form a batch. */
async function readBatches(brokers: string, topic: string): Promise<LogBatch[]> {
  const consumer = new Consumer({
    groupId: `check-${Date.now()}`,
    clientId: 'check',
    bootstrapBrokers: [brokers],
    deserializers: stringDeserializers,
  })
  const offsets = (await consumer.listOffsets({ topics: [topic] })).get(topic) ?? []
  const total = offsets.reduce((n, o) => n + Number(o), 0)
  const stream = await consumer.consume({
    topics: [topic],
    mode: 'earliest',
    autocommit: false,
    maxWaitTime: 100,
  })
  const batches: LogBatch[] = []
  await new Promise<void>((resolve) => {
    let n = 0
    if (total === 0) resolve()
    stream.on('data', (m) => {
      const raw = JSON.parse(m.value) as Event & { timestamp: string }
      const event: Event = { ...raw, timestamp: Date.parse(raw.timestamp) }
      const at = Number(m.timestamp)
      const last = batches[batches.length - 1]
      if (last && last.appendedAt === at) last.events.push(event)
      else batches.push({ offset: Number(m.offset), appendedAt: at, events: [event] })
      if (++n === total) resolve()
    })
  })
  await stream.close()
  await consumer.close(true)
  return batches
}

test('Kafka path: kill -9 at random moments, no acknowledged event lost, every window exact', async (t) => {
  const broker = await brokerFor(t)
  if (!broker) return
  t.after(() => broker.destroy())
  const dataDir = tempDir(t)
  const server = await crashServer(t, dataDir, ['--kafka-brokers', broker.brokers])
  const run = await crashRun(server, 'crash', 5)
  assert.equal(await server.kill('SIGTERM'), 0)
  assertExact(run, 'crash', await readBatches(broker.brokers, 'crash'))
})
