import assert from 'node:assert/strict'
import { test } from 'node:test'
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
