import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createClient } from '../../src/client/client.ts'
import { eventually, startServer } from '../helpers/server.ts'

/** The stream, read through the typed client, into a list as it arrives. */
function collect(
  url: string,
  pipeline: string,
): { events: Array<{ event: string; data: unknown }>; stop: () => void } {
  const events: Array<{ event: string; data: unknown }> = []
  const abort = new AbortController()
  void (async () => {
    try {
      for await (const e of createClient({ url }).stream(pipeline, abort.signal)) events.push(e)
    } catch {
      // aborted at the end of the test
    }
  })()
  return { events, stop: () => abort.abort() }
}

test('the stream sends stats every second, and windows and dead letters only when they change', async (t) => {
  const server = await startServer(t)
  const p = await server.call('POST', '/api/pipelines', {
    name: 'live',
    source_topic: 'live',
    start: true,
    transformation: {
      aggregate: { window_seconds: 3600, group_by: ['data.k'], functions: [{ sum: 'data.n' }] },
    },
  })
  const ingest = (events: unknown[]) => server.call('POST', '/api/events/ingest', { topic: 'live', events })
  await ingest([{ event_type: 'e', source: 's', data: { k: 'a', n: 1 } }])
  await eventually(async () =>
    (await server.call('GET', `/api/pipelines/${p.body.id}/window`)).body.windows.length === 1
      ? true
      : undefined,
  )
  const stream = collect(server.url, p.body.id)
  t.after(stream.stop)
  const count = (event: string) => stream.events.filter((e) => e.event === event).length
  await eventually(async () => (count('stats') >= 3 ? true : undefined), 10_000, 'three stats events')
  assert.equal(count('windows'), 1, 'unchanged windows are sent once')
  assert.equal(count('dead_letters'), 1)
  await ingest([
    { event_type: 'e', source: 's', data: { k: 'a', n: 2 } },
    { event_type: 'e', source: 's', data: { k: 'b', n: 'x' } },
  ])
  await eventually(
    async () => (count('windows') === 2 && count('dead_letters') === 2 ? true : undefined),
    10_000,
    'the change',
  )
  const windows = stream.events.filter((e) => e.event === 'windows').at(-1)?.data as Array<{
    results: { sum_data_n: number }
  }>
  assert.equal(windows[0].results.sum_data_n, 3)
  const dead = stream.events.filter((e) => e.event === 'dead_letters').at(-1)?.data as Array<{
    reason: string
    event: { timestamp: string }
  }>
  assert.equal(dead[0].reason, 'type_mismatch')
  assert.match(dead[0].event.timestamp, /^\d{4}-\d\d-\d\dT/)
  const before = count('windows')
  await eventually(async () => (count('stats') >= 7 ? true : undefined), 10_000, 'more stats events')
  assert.equal(count('windows'), before, 'nothing new: no windows event')
})
