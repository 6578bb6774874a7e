import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { eventually, readTopic, startServer } from '../helpers/server.ts'

test('a pipeline that falls behind: ingestion answers 429 with Retry-After, memory stays bounded, every accepted event is processed', async (t) => {
  const server = await startServer(t, { env: { DATAPULSE_MAX_LAG: '1000' } })
  // slow on purpose: every changed key re-emits 500 overlapping windows per batch
  const p = (
    await server.call('POST', '/api/pipelines', {
      name: 'slow',
      source_topic: 'busy',
      start: true,
      transformation: {
        aggregate: {
          window_seconds: 20,
          slide_seconds: 0.1,
          function: { avg: 'data.v' },
          group_by: ['data.k'],
          emit: 'updates',
        },
      },
    })
  ).body
  let accepted = 0
  const statuses: Record<number, number> = {}
  let retryAfter: string | null = null
  const events = Array.from({ length: 500 }, (_, i) => ({
    event_type: 'e',
    source: 's',
    data: { k: `k${i % 50}`, v: i },
  }))
  const deadline = Date.now() + 3_000
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (Date.now() < deadline) {
        const r = await server.call('POST', '/api/events/ingest', { topic: 'busy', events })
        statuses[r.status] = (statuses[r.status] ?? 0) + 1
        if (r.status === 200) accepted += r.body.accepted
        if (r.status === 429) {
          retryAfter = r.headers.get('retry-after')
          assert.equal(r.body.error.code, 'overloaded')
          await new Promise((res) => setTimeout(res, 20))
        }
      }
    }),
  )
  assert.ok((statuses[429] ?? 0) > 0, `some requests were refused: ${JSON.stringify(statuses)}`)
  assert.ok(accepted > 0)
  assert.equal(retryAfter, '1')
  assert.ok(
    (await readTopic(server.runtime, 'busy')).length === accepted,
    'only accepted events are in the log',
  )
  assert.ok(process.memoryUsage().rss < 1_500 * 2 ** 20, `RSS ${process.memoryUsage().rss >> 20} MB`)
  const stats = await eventually(
    async () => {
      const s = (await server.call('GET', `/api/pipelines/${p.id}`)).body.stats
      return s.events_in === accepted ? s : undefined
    },
    60_000,
    'the pipeline to catch up',
  )
  assert.equal(stats.lag, 0)
  assert.equal(stats.errors + stats.late, 0)
})

test('the memory gate follows the heap and buffers the process holds: 429 above the limit, open again once they are freed', async (t) => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  gc()
  const held = () => {
    const m = process.memoryUsage()
    return (m.heapTotal + m.external) / 2 ** 20
  }
  const limit = Math.ceil(held()) + 96
  const server = await startServer(t, { env: { DATAPULSE_INGEST_MEMORY_LIMIT_MB: String(limit) } })
  const ingest = () =>
    server.call('POST', '/api/events/ingest', {
      topic: 'gate',
      events: [{ event_type: 'e', source: 's', data: {} }],
    })
  assert.equal((await ingest()).status, 200)
  // 192 MB of buffers held: the next sample (4 a second) closes the gate
  let ballast: Buffer | undefined = Buffer.alloc(192 * 2 ** 20, 1)
  const refused = await eventually(async () => {
    const r = await ingest()
    return r.status === 429 ? r : undefined
  })
  assert.equal(refused.body.error.code, 'overloaded')
  assert.match(refused.body.error.message, /MB of heap and buffers \(limit \d+ MB\)/)
  assert.equal(refused.headers.get('retry-after'), '1')
  assert.equal(ballast.length, 192 * 2 ** 20)
  // freed: the gate opens again (a gate on RSS would not: the pages stay with the process)
  ballast = undefined
  gc()
  await eventually(async () => ((await ingest()).status === 200 ? true : undefined))
})
