import assert from 'node:assert/strict'
import { test } from 'node:test'
import { eventually, readTopic, startServer } from '../helpers/server.ts'

test('lookup tables: JSON and CSV upload, list, row, delete; enrich sees updates without restart', async (t) => {
  const server = await startServer(t)
  const put = await server.call('PUT', '/api/lookups/users', {
    key: 'id',
    rows: [
      { id: 1, name: 'Ada', tier: 'gold' },
      { id: '2', name: 'Bob' },
    ],
  })
  assert.equal(put.status, 200)
  assert.deepEqual(put.body, { table: 'users', key: 'id', rows: 2 })
  assert.deepEqual((await server.call('GET', '/api/lookups/users/1')).body, {
    id: 1,
    name: 'Ada',
    tier: 'gold',
  })
  assert.equal((await server.call('GET', '/api/lookups/users/9')).status, 404)

  const csv = await server.call(
    'PUT',
    '/api/lookups/regions?key=code',
    'code,name\r\neu,"Europe, EU"\nus,"United ""States"""\n',
    {
      'content-type': 'text/csv',
    },
  )
  assert.equal(csv.status, 200, JSON.stringify(csv.body))
  assert.deepEqual((await server.call('GET', '/api/lookups/regions/us')).body, {
    code: 'us',
    name: 'United "States"',
  })
  assert.deepEqual((await server.call('GET', '/api/lookups/regions/eu')).body, {
    code: 'eu',
    name: 'Europe, EU',
  })
  const listed = (await server.call('GET', '/api/lookups')).body.tables
  assert.deepEqual(
    listed.map((x: { name: string; key: string; rows: number }) => [x.name, x.key, x.rows]),
    [
      ['regions', 'code', 2],
      ['users', 'id', 2],
    ],
  )

  // bad uploads
  const bad = [
    await server.call('PUT', '/api/lookups/users', { key: 'id', rows: [{ name: 'no id' }] }),
    await server.call('PUT', '/api/lookups/users', {
      key: 'id',
      rows: [{ id: 1, __proto__x: 1, constructor: 1 }],
    }),
    await server.call('PUT', '/api/lookups/users', { rows: [] }),
    await server.call('PUT', '/api/lookups/bad%20name', { key: 'id', rows: [] }),
    await server.call('PUT', '/api/lookups/users', 'id,name\n1', { 'content-type': 'text/csv' }),
    await server.call('PUT', '/api/lookups/users?key=id', 'id,name\n1', { 'content-type': 'text/csv' }),
  ]
  assert.deepEqual(
    bad.map((r) => r.status),
    [400, 400, 400, 400, 400, 400],
  )
  assert.deepEqual(
    (await server.call('GET', '/api/lookups/users/1')).body.name,
    'Ada',
    'a refused upload changes nothing',
  )

  const p = (
    await server.call('POST', '/api/pipelines', {
      name: 'enriched',
      source_topic: 'clicks',
      sink_topic: 'clicks-enriched',
      start: true,
      transformations: [
        {
          enrich: {
            table: 'users',
            key_field: 'data.user_id',
            target_field: 'data.user',
            on_missing: 'drop',
          },
        },
        { map: { mappings: { 'data.user.name': 'data.who' }, remove: ['data.user'] } },
      ],
    })
  ).body
  const send = (user_id: unknown) =>
    server.call('POST', '/api/events/ingest', {
      events: [{ event_type: 'click', source: 'web', data: { user_id } }],
    })
  await send(1)
  await send(3)
  // the table changes only once those two went through
  await eventually(async () =>
    (await server.call('GET', `/api/pipelines/${p.id}`)).body.stats.events_in === 2 ? true : undefined,
  )
  await server.call('PUT', '/api/lookups/users', { key: 'id', rows: [{ id: 3, name: 'Cy' }] })
  await send(3)
  await send(1) // no longer in the table: dropped
  const sink = await eventually(async () => {
    // processed (the counters) before written (the sink: its commits run beside processing)
    const processed = (await server.call('GET', `/api/pipelines/${p.id}`)).body.stats.events_in === 4
    const records = await readTopic(server.runtime, 'clicks-enriched')
    return processed && records.length >= 2 ? records : undefined
  })
  assert.deepEqual(
    sink.map((e) => e.data),
    [
      { user_id: 1, who: 'Ada' },
      { user_id: 3, who: 'Cy' },
    ],
  )
  assert.equal((await server.call('GET', `/api/pipelines/${p.id}`)).body.stats.filtered, 2)

  assert.equal((await server.call('DELETE', '/api/lookups/users')).status, 204)
  assert.equal((await server.call('DELETE', '/api/lookups/users')).status, 404)
  assert.equal((await server.call('GET', '/api/lookups/users/3')).status, 404)
})
