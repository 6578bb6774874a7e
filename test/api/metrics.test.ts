import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startServer } from '../helpers/server.ts'

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
