import assert from 'node:assert/strict'
import { test } from 'node:test'
import { eventually, manualClock, startServer } from '../helpers/server.ts'
import { tempDir } from '../helpers/tmp.ts'

const spec = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  source_topic: 'orders',
  transformations: [
    { filter: { field: 'event_type', operator: 'eq', value: 'order' } },
    {
      aggregate: {
        window_seconds: 60,
        functions: ['count', { sum: 'data.amount' }],
        group_by: ['data.region'],
      },
    },
  ],
  ...extra,
})

const order = (region: string, amount: number, ts: string) => ({
  event_type: 'order',
  source: 'shop',
  data: { region, amount },
  timestamp: ts,
})

test('create, list, get, start and stop (idempotent), delete; 404 and 409', async (t) => {
  const server = await startServer(t)
  const a = await server.call('POST', '/api/pipelines', spec('a'))
  assert.equal(a.status, 201)
  const dup = await server.call('POST', '/api/pipelines', spec('a'))
  assert.equal(dup.status, 409)
  assert.equal(dup.body.error.code, 'conflict')
  const b = await server.call('POST', '/api/pipelines', spec('b', { start: true }))
  assert.equal(b.body.status, 'running')

  const list = await server.call('GET', '/api/pipelines')
  assert.deepEqual(
    list.body.pipelines.map((p: { name: string; status: string }) => [p.name, p.status]),
    [
      ['a', 'created'],
      ['b', 'running'],
    ],
  )
  for (let i = 0; i < 2; i++)
    assert.equal((await server.call('POST', `/api/pipelines/${a.body.id}/start`)).body.status, 'running')
  for (let i = 0; i < 2; i++)
    assert.equal((await server.call('POST', `/api/pipelines/${a.body.id}/stop`)).body.status, 'stopped')
  const got = await server.call('GET', `/api/pipelines/${a.body.id}`)
  assert.equal(got.body.status, 'stopped')
  assert.deepEqual(got.body.transformations, spec('a').transformations)

  assert.equal((await server.call('DELETE', `/api/pipelines/${a.body.id}`)).status, 204)
  for (const [method, path] of [
    ['GET', `/api/pipelines/${a.body.id}`],
    ['POST', `/api/pipelines/${a.body.id}/start`],
    ['POST', `/api/pipelines/${a.body.id}/stop`],
    ['DELETE', `/api/pipelines/${a.body.id}`],
    ['GET', `/api/pipelines/${a.body.id}/window`],
    ['GET', `/api/pipelines/${a.body.id}/dead-letters`],
  ]) {
    const r = await server.call(method, path)
    assert.equal(r.status, 404, `${method} ${path}`)
    assert.equal(r.body.error.code, 'not_found')
  }
  assert.equal((await server.call('GET', '/api/pipelines')).body.pipelines.length, 1)
})

test('window results by key with filters; late events in dead letters; a stopped pipeline keeps its state', async (t) => {
  const clock = manualClock(Date.parse('2026-11-26T10:05:00Z'))
  const server = await startServer(t, { clock: clock.now })
  const p = (await server.call('POST', '/api/pipelines', spec('orders', { start: true }))).body
  const ingest = (events: unknown[]) => server.call('POST', '/api/events/ingest', { events })
  assert.equal(
    (
      await ingest([
        order('eu', 10, '2026-11-26T10:00:05Z'),
        order('eu', 5, '2026-11-26T10:00:50Z'),
        order('us', 7, '2026-11-26T10:00:30Z'),
        {
          event_type: 'refund',
          source: 'shop',
          data: { region: 'eu', amount: 99 },
          timestamp: '2026-11-26T10:00:10Z',
        },
        order('us', 1, '2026-11-26T10:01:10Z'),
      ])
    ).status,
    200,
  )
  // 10:01:10 moved the watermark past 10:01:00: the first window closed; this event is late
  await ingest([order('eu', 1000, '2026-11-26T10:00:59Z')])
  const all = await eventually(async () => {
    const w = (await server.call('GET', `/api/pipelines/${p.id}/window`)).body
    return w.windows.length === 3 &&
      (await server.call('GET', `/api/pipelines/${p.id}`)).body.stats.late === 1
      ? w
      : undefined
  })
  assert.deepEqual(all.windows, [
    {
      window_start: '2026-11-26T10:01:00.000Z',
      window_end: '2026-11-26T10:02:00.000Z',
      key: { 'data.region': 'us' },
      results: { count: 1, sum_data_amount: 1 },
      closed: false,
      version: 1,
    },
    {
      window_start: '2026-11-26T10:00:00.000Z',
      window_end: '2026-11-26T10:01:00.000Z',
      key: { 'data.region': 'eu' },
      results: { count: 2, sum_data_amount: 15 },
      closed: true,
      version: 1,
    },
    {
      window_start: '2026-11-26T10:00:00.000Z',
      window_end: '2026-11-26T10:01:00.000Z',
      key: { 'data.region': 'us' },
      results: { count: 1, sum_data_amount: 7 },
      closed: true,
      version: 1,
    },
  ])
  const euOnly = (await server.call('GET', `/api/pipelines/${p.id}/window?key.data.region=eu`)).body.windows
  assert.deepEqual(
    euOnly.map((w: { key: unknown }) => w.key),
    [{ 'data.region': 'eu' }],
  )
  assert.equal((await server.call('GET', `/api/pipelines/${p.id}/window?state=open`)).body.windows.length, 1)
  assert.equal(
    (await server.call('GET', `/api/pipelines/${p.id}/window?state=closed&limit=1`)).body.windows.length,
    1,
  )
  assert.equal(
    (await server.call('GET', `/api/pipelines/${p.id}/window?from=2026-11-26T10:01:00Z`)).body.windows.length,
    1,
  )
  assert.equal(
    (await server.call('GET', `/api/pipelines/${p.id}/window?to=2026-11-26T10:01:00Z`)).body.windows.length,
    2,
  )
  const stats = (await server.call('GET', `/api/pipelines/${p.id}`)).body.stats
  assert.deepEqual(
    { ...stats, watermark: undefined },
    {
      events_in: 6,
      events_out: 4,
      filtered: 1,
      late: 1,
      errors: 0,
      results: 2,
      lag: 0,
      pending_results: 0,
      watermark: undefined,
      // the embedded log is one partition: its counters are the pipeline's input side
      partitions: [
        {
          partition: 0,
          position: 6,
          lag: 0,
          watermark: stats.watermark,
          events_in: 6,
          filtered: 1,
          late: 1,
          errors: 0,
        },
      ],
      condition: 'ok',
    },
  )
  const dead = (await server.call('GET', `/api/pipelines/${p.id}/dead-letters`)).body
  assert.equal(dead.dead_letters.length, 1)
  assert.equal(dead.dead_letters[0].reason, 'late')
  assert.equal(dead.dead_letters[0].event.data.amount, 1000)
  assert.equal(dead.dead_letters[0].event.timestamp, '2026-11-26T10:00:59.000Z')

  // stop keeps the open window; start resumes it
  await server.call('POST', `/api/pipelines/${p.id}/stop`)
  assert.deepEqual(
    (await server.call('GET', `/api/pipelines/${p.id}/window?state=open`)).body.windows.map(
      (w: { results: unknown }) => w.results,
    ),
    [{ count: 1, sum_data_amount: 1 }],
  )
  await ingest([order('us', 2, '2026-11-26T10:01:20Z')]) // no running pipeline: reaches nobody
  await server.call('POST', `/api/pipelines/${p.id}/start`)
  await ingest([order('us', 3, '2026-11-26T10:01:30Z')])
  await eventually(async () => {
    const w = (await server.call('GET', `/api/pipelines/${p.id}/window?state=open`)).body.windows
    return w[0]?.results.count === 2 ? w : undefined
  })
  assert.deepEqual(
    (await server.call('GET', `/api/pipelines/${p.id}/window?state=open`)).body.windows[0].results,
    {
      count: 2,
      sum_data_amount: 4,
    },
  )
})

test('restart: pipelines, status, open windows and closed results survive; a running pipeline runs again', async (t) => {
  const dataDir = tempDir(t)
  const clock = manualClock(Date.parse('2026-11-26T10:05:00Z'))
  let server = await startServer(t, { dataDir, clock: clock.now })
  const running = (await server.call('POST', '/api/pipelines', spec('running', { start: true }))).body
  const idle = (await server.call('POST', '/api/pipelines', spec('idle'))).body
  await server.call('POST', '/api/events/ingest', {
    events: [order('eu', 1, '2026-11-26T10:00:01Z'), order('eu', 2, '2026-11-26T10:01:01Z')],
  })
  await eventually(async () =>
    (await server.call('GET', `/api/pipelines/${running.id}`)).body.stats.results === 1 ? true : undefined,
  )
  await server.close()

  server = await startServer(t, { dataDir, clock: clock.now })
  const list = (await server.call('GET', '/api/pipelines')).body.pipelines
  assert.deepEqual(
    list.map((p: { id: string; status: string }) => [p.id, p.status]),
    [
      [running.id, 'running'],
      [idle.id, 'created'],
    ],
  )
  const windows = (await server.call('GET', `/api/pipelines/${running.id}/window`)).body.windows
  assert.deepEqual(
    windows.map((w: { results: unknown; closed: boolean }) => [w.results, w.closed]),
    [
      [{ count: 1, sum_data_amount: 2 }, false],
      [{ count: 1, sum_data_amount: 1 }, true],
    ],
  )
  // it keeps running: a new event joins the restored open window, nothing is counted twice
  await server.call('POST', '/api/events/ingest', { events: [order('eu', 3, '2026-11-26T10:01:30Z')] })
  const after = await eventually(async () => {
    const w = (await server.call('GET', `/api/pipelines/${running.id}/window?state=open`)).body.windows
    return w[0]?.results.count === 2 ? w : undefined
  })
  assert.deepEqual(after[0].results, { count: 2, sum_data_amount: 5 })
  assert.equal((await server.call('GET', `/api/pipelines/${running.id}`)).body.stats.events_in, 3)
})
