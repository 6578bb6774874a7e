import assert from 'node:assert/strict'
import { test } from 'node:test'
import { eventually, startServer } from '../helpers/server.ts'

test('with input stopped, a 2 s tumbling window closes within end + lateness + idle timeout (real clock)', async (t) => {
  const server = await startServer(t)
  const p = (
    await server.call('POST', '/api/pipelines', {
      name: 'idle',
      source_topic: 'quiet',
      start: true,
      transformation: {
        aggregate: {
          window_seconds: 2,
          function: 'count',
          allowed_lateness_seconds: 0.5,
          idle_timeout_seconds: 1,
        },
      },
    })
  ).body
  const sentAt = Date.now()
  await server.call('POST', '/api/events/ingest', {
    topic: 'quiet',
    events: [
      { event_type: 'e', source: 's' },
      { event_type: 'e', source: 's' },
    ],
  })
  const closed = await eventually(
    async () => {
      const w = (await server.call('GET', `/api/pipelines/${p.id}/window?state=closed`)).body.windows
      return w.length > 0 ? { w, at: Date.now() } : undefined
    },
    10_000,
    'the window to close',
  )
  const end = Date.parse(closed.w[0].window_end)
  assert.deepEqual(closed.w[0].results, { count: 2 })
  assert.ok(end > sentAt - 2_000 && end <= sentAt + 2_000)
  // end + 0.5 s lateness + 1 s idle timeout, plus the runner's 200 ms tick and polling slack
  assert.ok(closed.at <= end + 500 + 1_000 + 600, `closed ${closed.at - end} ms after the window end`)
  assert.ok(closed.at >= end + 1_000, `closed only ${closed.at - end} ms after the end: too early`)
})
