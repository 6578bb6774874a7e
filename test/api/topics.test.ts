import assert from 'node:assert/strict'
import { test } from 'node:test'
import { eventually, manualClock, readTopic, startServer } from '../helpers/server.ts'

test('ingest with a topic reaches only that topic; without one, every running pipeline; sinks chain', async (t) => {
  const clock = manualClock(Date.parse('2026-11-26T10:00:00Z'))
  const server = await startServer(t, { clock: clock.now })
  const count = (name: string, source: string, sink?: string) =>
    server.call('POST', '/api/pipelines', {
      name,
      source_topic: source,
      sink_topic: sink,
      start: true,
      transformation: { aggregate: { window_seconds: 10, function: 'count', group_by: 'source' } },
    })
  const a = (await count('a', 'alpha', 'alpha-counts')).body
  const b = (await count('b', 'beta')).body
  // a second stage reads a's results from its sink topic
  const sum = (
    await server.call('POST', '/api/pipelines', {
      name: 'totals',
      source_topic: 'alpha-counts',
      start: true,
      transformation: {
        aggregate: { window_seconds: 60, function: { sum: 'data.results.count' }, time: 'processing' },
      },
    })
  ).body

  const ingest = (body: unknown) => server.call('POST', '/api/events/ingest', body)
  const ev = (source: string) => ({ event_type: 'e', source, timestamp: '2026-11-26T10:00:01Z' })
  assert.deepEqual((await ingest({ events: [ev('x'), ev('x'), ev('y')], topic: 'alpha' })).body, {
    accepted: 3,
    topics: ['alpha'],
  })
  assert.deepEqual((await ingest({ events: [ev('z')] })).body.topics.sort(), [
    'alpha',
    'alpha-counts',
    'beta',
  ])

  const openCounts = async (id: string) =>
    Object.fromEntries(
      (await server.call('GET', `/api/pipelines/${id}/window`)).body.windows.map(
        (w: { key: { source: string }; results: { count: number } }) => [w.key.source, w.results.count],
      ),
    )
  await eventually(async () => ((await openCounts(a.id)).z === 1 ? true : undefined))
  assert.deepEqual(await openCounts(a.id), { x: 2, y: 1, z: 1 })
  assert.deepEqual(await openCounts(b.id), { z: 1 })

  // close a's window: its three results flow through alpha-counts into totals
  clock.advance(20_000)
  const totals = await eventually(async () => {
    const w = (await server.call('GET', `/api/pipelines/${sum.id}/window?state=open`)).body.windows
    return w[0]?.results.sum_data_results_count === 4 ? w : undefined
  })
  assert.equal(totals.length, 1)
  // the event without a topic also reached alpha-counts (it was a running source then), and was
  // dead-lettered there: it has no data.results.count
  const dead = (await server.call('GET', `/api/pipelines/${sum.id}/dead-letters`)).body.dead_letters
  assert.deepEqual(
    dead.map((d: { reason: string }) => d.reason),
    ['missing_field'],
  )
})

test('a pipeline without aggregate writes its transformed events to the sink', async (t) => {
  const server = await startServer(t)
  await server.call('POST', '/api/pipelines', {
    name: 'clean',
    source_topic: 'raw',
    sink_topic: 'clean',
    start: true,
    transformations: [
      { filter: { field: 'data.ok', operator: 'eq', value: true } },
      { map: { set: { 'data.checked': 1 }, remove: ['data.ok'] } },
    ],
  })
  await server.call('POST', '/api/events/ingest', {
    topic: 'raw',
    events: [
      { event_type: 'e', source: 's', id: 'keep', data: { ok: true } },
      { event_type: 'e', source: 's', id: 'drop', data: { ok: false } },
    ],
  })
  const out = await eventually(async () => {
    const events = await readTopic(server.runtime, 'clean')
    return events.length > 0 ? events : undefined
  })
  assert.deepEqual(
    out.map((e) => [e.id, e.data]),
    [['keep', { checked: 1 }]],
  )
})
