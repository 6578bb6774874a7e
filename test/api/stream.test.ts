import assert from 'node:assert/strict'
import { test } from 'node:test'
import { eventually, startServer } from '../helpers/server.ts'

/** Reads a Server-Sent Events response into a list of {event, data} as it arrives. */
function collect(res: Response): { events: Array<{ event: string; data: unknown }>; stop: () => void } {
  const events: Array<{ event: string; data: unknown }> = []
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  let stopped = false
  void (async () => {
    while (!stopped) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }))
      if (done) return
      buffer += value
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message'
        const data = /^data: (.*)$/m.exec(block)?.[1] ?? 'null'
        events.push({ event, data: JSON.parse(data) })
      }
    }
  })()
  return {
    events,
    stop: () => {
      stopped = true
      void reader.cancel()
    },
  }
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
  const res = await fetch(`${server.url}/api/stream?pipeline=${p.body.id}`)
  const stream = collect(res)
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
