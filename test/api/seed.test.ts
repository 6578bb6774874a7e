import assert from 'node:assert/strict'
import { test } from 'node:test'
import { eventually, manualClock, readTopic, startServer } from '../helpers/server.ts'

// The seed README's two curl bodies, byte for byte.
const CREATE = `{
    "name": "user-analytics",
    "source_topic": "user-events",
    "sink_topic": "processed-events",
    "transformation": {
      "aggregate": {
        "window_seconds": 60,
        "function": { "count": null }
      }
    }
  }`
const INGEST = `{
    "events": [
      {
        "event_type": "page_view",
        "source": "web",
        "data": {"page": "/home", "user_id": "123"}
      }
    ]
  }`

test("the seed README's examples run unchanged, and a window later the count is exact", async (t) => {
  const clock = manualClock(Date.parse('2026-11-26T10:00:10Z'))
  const server = await startServer(t, { clock: clock.now })
  const health = await server.call('GET', '/')
  assert.equal(health.status, 200)
  assert.deepEqual({ ...health.body, version: 'x' }, { status: 'ok', service: 'datapulse', version: 'x' })

  const created = await server.call('POST', '/api/pipelines', CREATE)
  assert.equal(created.status, 201)
  const p = created.body
  assert.equal(p.name, 'user-analytics')
  assert.equal(p.source_topic, 'user-events')
  assert.equal(p.sink_topic, 'processed-events')
  assert.deepEqual(p.transformation, { aggregate: { window_seconds: 60, function: { count: null } } })
  assert.equal(p.status, 'created')
  assert.match(p.id, /^[0-9a-f-]{36}$/)
  assert.deepEqual(p.stats, {
    events_in: 0,
    events_out: 0,
    filtered: 0,
    late: 0,
    errors: 0,
    results: 0,
    lag: 0,
    pending_results: 0,
    watermark: null,
    partitions: [],
    condition: 'ok',
  })

  const started = await server.call('POST', `/api/pipelines/${p.id}/start`)
  assert.equal(started.status, 200)
  assert.equal(started.body.status, 'running')

  const sent = 7
  for (let i = 0; i < sent; i++) {
    const r = await server.call('POST', '/api/events/ingest', INGEST)
    assert.equal(r.status, 200)
    assert.deepEqual(r.body, { accepted: 1, topics: ['user-events'] })
    clock.advance(1_000)
  }
  const open = await eventually(async () => {
    const w = await server.call('GET', `/api/pipelines/${p.id}/window`)
    return w.body.windows[0]?.results.count === sent ? w.body : undefined
  })
  assert.deepEqual(open.windows, [
    {
      window_start: '2026-11-26T10:00:00.000Z',
      window_end: '2026-11-26T10:01:00.000Z',
      key: null,
      results: { count: sent },
      closed: false,
      version: 1,
    },
  ])

  // a window later (+ the 5 s idle timeout): the window closes on its own and keeps the count
  clock.advance(60_000)
  const closed = await eventually(async () => {
    const w = await server.call('GET', `/api/pipelines/${p.id}/window?state=closed`)
    return w.body.windows.length === 1 ? w.body : undefined
  })
  assert.deepEqual(closed.windows[0].results, { count: sent })
  assert.equal(closed.windows[0].closed, true)
  const stats = (await server.call('GET', `/api/pipelines/${p.id}`)).body.stats
  assert.equal(stats.events_in, sent)
  assert.equal(stats.results, 1)

  // the result went to the sink topic and to the metrics store. Closed windows show while they are
  // being written: wait until the result store has it (the sink is written before, the series with it)
  await eventually(async () =>
    (await server.runtime.store.queryResults(p.id, { limit: 10 })).length > 0 ? true : undefined,
  )
  const records = await readTopic(server.runtime, 'processed-events')
  assert.equal(records.length, 1)
  assert.deepEqual(records[0].data, {
    pipeline_id: p.id,
    window_start: '2026-11-26T10:00:00.000Z',
    window_end: '2026-11-26T10:01:00.000Z',
    key: null,
    results: { count: sent },
    closed: true,
    version: 1,
  })
  const series = await server.call(
    'GET',
    '/api/metrics?name=pipeline.user-analytics.count&from=2026-11-26T09:00:00Z&to=2026-11-26T11:00:00Z&step=1m&agg=sum',
  )
  assert.deepEqual(series.body.series, [
    {
      name: 'pipeline.user-analytics.count',
      tags: {},
      points: [{ timestamp: '2026-11-26T10:00:00.000Z', value: sent }],
    },
  ])
})
