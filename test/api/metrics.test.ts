import assert from 'node:assert/strict'
import { test } from 'node:test'
import { eventually, manualClock, readTopic, startServer } from '../helpers/server.ts'

test('metrics: record one or many, list series, query with tags, step and every agg; bad input is a 400', async (t) => {
  const server = await startServer(t)
  const one = await server.call('POST', '/api/metrics', {
    name: 'cpu.usage',
    value: 0.5,
    tags: { host: 'a' },
    timestamp: '2026-11-26T10:00:00Z',
  })
  assert.deepEqual([one.status, one.body], [200, { accepted: 1 }])
  const many = await server.call('POST', '/api/metrics', {
    metrics: [
      { name: 'cpu.usage', value: 1.5, tags: { host: 'a' }, timestamp: Date.parse('2026-11-26T10:00:30Z') },
      { name: 'cpu.usage', value: 3, tags: { host: 'a' }, timestamp: '2026-11-26T10:05:00Z' },
      { name: 'cpu.usage', value: 9, tags: { host: 'b' }, timestamp: '2026-11-26T10:00:10Z' },
      { name: 'mem', value: 1, timestamp: '2026-11-26T10:00:10Z' },
    ],
  })
  assert.deepEqual(many.body, { accepted: 4 })
  const list = (await server.call('GET', '/api/metrics')).body
  assert.equal(list.total, 3)
  assert.deepEqual(list.series[0], {
    name: 'cpu.usage',
    tags: { host: 'a' },
    last_value: 3,
    last_timestamp: '2026-11-26T10:05:00.000Z',
    points: 3,
  })

  const query = async (qs: string) =>
    (
      await server.call(
        'GET',
        `/api/metrics?name=cpu.usage&from=2026-11-26T10:00:00Z&to=2026-11-26T11:00:00Z&${qs}`,
      )
    ).body.series
  assert.deepEqual(await query('tag.host=a&step=5m'), [
    {
      name: 'cpu.usage',
      tags: { host: 'a' },
      points: [
        { timestamp: '2026-11-26T10:00:00.000Z', value: 1 },
        { timestamp: '2026-11-26T10:05:00.000Z', value: 3 },
      ],
    },
  ])
  const values = async (agg: string) => (await query(`tag.host=a&step=1h&agg=${agg}`))[0].points[0].value
  assert.equal(await values('sum'), 5)
  assert.equal(await values('min'), 0.5)
  assert.equal(await values('max'), 3)
  assert.equal(await values('count'), 3)
  assert.equal(await values('last'), 3)
  assert.equal((await query('step=1h')).length, 2, 'without tag filters every series of the name')

  const bad = [
    await server.call('POST', '/api/metrics', { name: 'x', value: 'NaN' }),
    await server.call('POST', '/api/metrics', '{"name":"x","value":1e999}'),
    await server.call('POST', '/api/metrics', {
      name: 'x',
      value: 1,
      tags: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])),
    }),
    await server.call('POST', '/api/metrics', { name: 'x', value: 1, tags: { ['k'.repeat(129)]: 'v' } }),
    await server.call('POST', '/api/metrics', { name: 'x', value: 1, tags: { k: 'v'.repeat(1025) } }),
    await server.call('POST', '/api/metrics', { name: 'x', value: 1, tags: { k: 5 } }),
    await server.call('POST', '/api/metrics', { metrics: [] }),
    await server.call('GET', '/api/metrics?name=x&from=2026-11-26T11:00:00Z&to=2026-11-26T10:00:00Z'),
    await server.call('GET', '/api/metrics?name=x&step=fast'),
    await server.call('GET', '/api/metrics?name=x&step=1ms&from=0&to=2026-11-26T10:00:00Z'),
    await server.call('GET', '/api/metrics?name=x&agg=median'),
  ]
  assert.deepEqual(
    bad.map((r) => [r.status, r.body.error.code]),
    bad.map(() => [400, 'validation_error']),
  )
  assert.deepEqual(
    bad.slice(0, 6).map((r) => r.body.error.details[0].path),
    ['/value', '/value', '/tags', `/tags/${'k'.repeat(129)}`, '/tags/k', '/tags/k'],
  )
  assert.equal(
    (await server.call('GET', '/api/metrics')).body.total,
    3,
    'nothing stored by the refused requests',
  )
})

test('the ingest rate is kept as a series: a point per 10 s while events arrive, a 0 after a quiet stretch', async (t) => {
  const base = Date.parse('2026-11-26T10:00:00Z')
  const clock = manualClock(base + 1_000)
  const server = await startServer(t, { clock: clock.now })
  const ingest = async (n: number) => {
    const events = Array.from({ length: n }, () => ({ event_type: 'e', source: 's', data: {} }))
    assert.equal((await server.call('POST', '/api/events/ingest', { topic: 'in', events })).status, 200)
  }
  await ingest(50)
  clock.set(base + 6_000)
  await ingest(30)
  clock.set(base + 12_000)
  await ingest(20)
  // a quiet minute, then more: the bucket before is written, with a 0 after it
  clock.set(base + 65_000)
  await ingest(10)
  const query = `/api/metrics?name=datapulse.ingest.events_per_second&from=${new Date(base - 60_000).toISOString()}&to=${new Date(base + 120_000).toISOString()}&step=10s&agg=avg`
  const points = await eventually(async () => {
    const series = (await server.call('GET', query)).body.series
    return series?.[0]?.points.length === 3 ? series[0].points : undefined
  })
  assert.deepEqual(points, [
    { timestamp: '2026-11-26T10:00:00.000Z', value: 8 },
    { timestamp: '2026-11-26T10:00:10.000Z', value: 2 },
    { timestamp: '2026-11-26T10:00:20.000Z', value: 0 },
  ])
})

test('"metrics": false: closed results go to the store and the sink but write no series; the default writes them; a non-boolean is a 400', async (t) => {
  const clock = manualClock(Date.parse('2026-11-26T10:00:10Z'))
  const server = await startServer(t, { clock: clock.now })
  const spec = (name: string, metrics?: unknown) => ({
    name,
    source_topic: 'clicks',
    sink_topic: `${name}-out`,
    start: true,
    ...(metrics === undefined ? {} : { metrics }),
    transformation: { aggregate: { window_seconds: 60, function: 'count', group_by: 'data.page' } },
  })
  const refused = await server.call('POST', '/api/pipelines', spec('bad', 'no'))
  assert.equal(refused.status, 400)
  assert.equal(refused.body.error.details[0].path, '/metrics')
  assert.equal((await server.call('GET', '/api/pipelines')).body.pipelines.length, 0)
  const quiet = (await server.call('POST', '/api/pipelines', spec('quiet', false))).body
  const loud = (await server.call('POST', '/api/pipelines', spec('loud'))).body
  assert.equal(quiet.metrics, false)
  const ingest = await server.call('POST', '/api/events/ingest', {
    topic: 'clicks',
    events: ['/a', '/b', '/a'].map((page) => ({ event_type: 'click', source: 'web', data: { page } })),
  })
  assert.equal(ingest.status, 200)
  clock.advance(70_000)
  for (const p of [quiet, loud])
    await eventually(async () =>
      (await server.runtime.store.queryResults(p.id, { limit: 10 })).length === 2 ? true : undefined,
    )
  for (const name of ['quiet', 'loud'])
    assert.equal((await readTopic(server.runtime, `${name}-out`)).length, 2)
  const series = async (name: string) =>
    (
      await server.call(
        'GET',
        `/api/metrics?name=pipeline.${name}.count&from=2026-11-26T09:00:00Z&to=2026-11-26T11:00:00Z&step=1m&agg=sum`,
      )
    ).body.series
  assert.deepEqual(await series('quiet'), [])
  assert.deepEqual(
    (await series('loud')).map((s: { tags: { 'data.page': string }; points: Array<{ value: number }> }) => [
      s.tags['data.page'],
      s.points[0].value,
    ]),
    [
      ['/a', 2],
      ['/b', 1],
    ],
  )
})
