import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Consumer, stringDeserializers } from '@platformatic/kafka'
import type { Event } from '../../src/engine/types.ts'
import type { LogBatch } from '../../src/log/log.ts'
import { assertExact, CRASH_PIPELINES, crashRun, crashServer, sinkOf } from '../helpers/crash-run.ts'
import { brokerFor, readCommitted } from '../helpers/kafka.ts'
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

test('Kafka path: kill -9 at random moments, no acknowledged event lost, every window exact, each result and dead letter once on the sink and .dlq', async (t) => {
  const broker = await brokerFor(t)
  if (!broker) return
  t.after(() => broker.destroy())
  const dataDir = tempDir(t)
  const server = await crashServer(t, dataDir, ['--kafka-brokers', broker.brokers])
  const run = await crashRun(server, 'crash', 5, true)
  assert.equal(await server.kill('SIGTERM'), 0)
  assertExact(run, 'crash', await readBatches(broker.brokers, 'crash'))
  for (const name of Object.keys(CRASH_PIPELINES)) {
    const sink = sinkOf('crash', name)
    const windows = run.closed[name]
    const messages = await readCommitted(broker.brokers, sink, windows.length)
    const results = messages.map((m) => JSON.parse(m.value) as { id: string; data: SinkWindow })
    if (process.env.DATAPULSE_TEST_TRACE === '1') {
      const seen = new Map<string, string>()
      messages.forEach((m, i) => {
        const id = results[i].id
        const at = `${m.partition}@${m.offset}`
        if (seen.has(id)) process.stderr.write(`dup ${id} at ${seen.get(id)} and ${at}\n`)
        else seen.set(id, at)
      })
    }
    assert.equal(
      new Set(results.map((r) => r.id)).size,
      results.length,
      `${name}: no result twice on the sink`,
    )
    const onSink = new Map(results.map((r) => [windowId(r.data), r.data.results]))
    assert.equal(onSink.size, windows.length, `${name}: every closed window on the sink, nothing else`)
    for (const w of windows) assert.deepEqual(onSink.get(windowId(w)), w.results, `${name}: ${windowId(w)}`)
    const letters = run.stats[name].late + run.stats[name].errors
    const dlq = await readCommitted(broker.brokers, `${sink}.dlq`, letters)
    const events = dlq.map((m) => (JSON.parse(m.value) as { payload: { id: string } }).payload.id)
    assert.equal(new Set(events).size, events.length, `${name}: no dead letter twice on the .dlq`)
    assert.equal(events.length, letters, `${name}: every dead letter on the .dlq`)
  }
})

interface SinkWindow {
  window_start: string
  window_end: string
  key: Record<string, unknown> | null
  results: Record<string, number | null>
}

function windowId(w: Omit<SinkWindow, 'results'>): string {
  return `${w.window_start}|${w.window_end}|${JSON.stringify(w.key)}`
}
