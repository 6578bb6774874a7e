import assert from 'node:assert/strict'
import { test } from 'node:test'
import { readTopic, startServer } from '../helpers/server.ts'

const good = {
  name: 'ok',
  source_topic: 'in',
  transformation: { aggregate: { window_seconds: 60, function: { count: null } } },
}
const withAgg = (aggregate: Record<string, unknown>) => ({
  ...good,
  name: 'x',
  transformation: { aggregate },
})
const withFilter = (filter: Record<string, unknown>) => ({ ...good, name: 'x', transformation: { filter } })
const event = (e: Record<string, unknown>) => ({ events: [{ event_type: 'a', source: 'b', ...e }] })

test('every malformed request gets a 4xx naming the field, the server stays up, nothing stored changes', async (t) => {
  const server = await startServer(t)
  const pipeline = (await server.call('POST', '/api/pipelines', { ...good, start: true })).body
  const before = (await server.call('GET', '/api/pipelines')).body

  const cases: Array<{
    what: string
    method?: string
    path: string
    body: unknown
    headers?: Record<string, string>
    status: number
    code: string
    at?: string
  }> = [
    {
      what: 'invalid JSON',
      path: '/api/pipelines',
      body: '{"name": ',
      status: 400,
      code: 'validation_error',
      at: '/',
    },
    {
      what: 'empty JSON body',
      path: '/api/events/ingest',
      body: '',
      headers: { 'content-type': 'application/json' },
      status: 400,
      code: 'validation_error',
    },
    {
      what: 'wrong content type',
      path: '/api/pipelines',
      body: 'name=x',
      headers: { 'content-type': 'text/plain' },
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      what: 'wrong type',
      path: '/api/pipelines',
      body: withAgg({ window_seconds: '60', function: 'count' }),
      status: 400,
      code: 'validation_error',
      at: '/transformation/aggregate/window_seconds',
    },
    {
      what: 'unknown transformation',
      path: '/api/pipelines',
      body: { ...good, transformation: { reduce: {} } },
      status: 400,
      code: 'validation_error',
      at: '/transformation',
    },
    {
      what: 'zero window',
      path: '/api/pipelines',
      body: withAgg({ window_seconds: 0, function: 'count' }),
      status: 400,
      code: 'validation_error',
      at: '/transformation/aggregate/window_seconds',
    },
    {
      what: 'negative window',
      path: '/api/pipelines',
      body: withAgg({ window_seconds: -60, function: 'count' }),
      status: 400,
      code: 'validation_error',
      at: '/transformation/aggregate/window_seconds',
    },
    {
      what: 'unknown operator',
      path: '/api/pipelines',
      body: withFilter({ field: 'x', operator: 'like', value: 'a' }),
      status: 400,
      code: 'validation_error',
      at: '/transformation/filter/operator',
    },
    {
      what: 'invalid regex',
      path: '/api/pipelines',
      body: withFilter({ field: 'x', operator: 'regex', value: '([a-' }),
      status: 400,
      code: 'validation_error',
      at: '/transformation/filter/value',
    },
    {
      what: '__proto__ in a path',
      path: '/api/pipelines',
      body: withFilter({ field: 'data.__proto__.polluted', operator: 'exists' }),
      status: 400,
      code: 'validation_error',
      at: '/transformation/filter/field',
    },
    {
      what: 'constructor in a path',
      path: '/api/pipelines',
      body: withAgg({ window_seconds: 1, function: 'count', group_by: ['constructor'] }),
      status: 400,
      code: 'validation_error',
      at: '/transformation/aggregate/group_by/0',
    },
    {
      what: '__proto__ as a key',
      path: '/api/pipelines',
      body: `{"name":"p","source_topic":"t","__proto__":{"polluted":true}}`,
      status: 400,
      code: 'validation_error',
      at: '/__proto__',
    },
    {
      what: '__proto__ key in event data',
      path: '/api/events/ingest',
      body: `{"events":[{"event_type":"a","source":"b","data":{"x":{"__proto__":{"polluted":1}}}}]}`,
      status: 400,
      code: 'validation_error',
      at: '/events/0/data',
    },
    {
      what: 'constructor key in event data',
      path: '/api/events/ingest',
      body: event({ data: { constructor: { prototype: 1 } } }),
      status: 400,
      code: 'validation_error',
      at: '/events/0/data',
    },
    {
      what: 'missing event_type',
      path: '/api/events/ingest',
      body: { events: [{ source: 'web' }] },
      status: 400,
      code: 'validation_error',
      at: '/events/0/event_type',
    },
    {
      what: 'empty source',
      path: '/api/events/ingest',
      body: event({ source: '' }),
      status: 400,
      code: 'validation_error',
      at: '/events/0/source',
    },
    {
      what: 'data not an object',
      path: '/api/events/ingest',
      body: event({ data: [1, 2] }),
      status: 400,
      code: 'validation_error',
      at: '/events/0/data',
    },
    {
      what: 'bad timestamp',
      path: '/api/events/ingest',
      body: event({ timestamp: 'yesterday' }),
      status: 400,
      code: 'validation_error',
      at: '/events/0/timestamp',
    },
    {
      what: 'unknown event field',
      path: '/api/events/ingest',
      body: event({ evnt_type: 'x' }),
      status: 400,
      code: 'validation_error',
      at: '/events/0/evnt_type',
    },
    {
      what: 'events not an array',
      path: '/api/events/ingest',
      body: { events: {} },
      status: 400,
      code: 'validation_error',
      at: '/events',
    },
    {
      what: 'bad topic',
      path: '/api/events/ingest',
      body: { events: [], topic: '../etc' },
      status: 400,
      code: 'validation_error',
      at: '/topic',
    },
    {
      what: 'megabyte string',
      path: '/api/events/ingest',
      body: event({ event_type: 'x'.repeat(2_000_000) }),
      status: 400,
      code: 'validation_error',
      at: '/events/0/event_type',
    },
    {
      what: 'megabyte name',
      path: '/api/pipelines',
      body: { ...good, name: 'n'.repeat(1_000_000) },
      status: 400,
      code: 'validation_error',
      at: '/name',
    },
    {
      what: 'too many events',
      path: '/api/events/ingest',
      body: { events: Array.from({ length: 10_001 }, () => ({ event_type: 'a', source: 'b' })) },
      status: 400,
      code: 'validation_error',
      at: '/events',
    },
    {
      what: 'body over the limit',
      path: '/api/events/ingest',
      body: JSON.stringify({
        events: [{ event_type: 'a', source: 'b', data: { blob: 'x'.repeat(11 * 1024 * 1024) } }],
      }),
      status: 413,
      code: 'payload_too_large',
    },
    {
      what: 'bad window limit',
      method: 'GET',
      path: `/api/pipelines/${pipeline.id}/window?limit=0`,
      body: undefined,
      status: 400,
      code: 'validation_error',
      at: '/querystring/limit',
    },
    {
      what: 'bad window time',
      method: 'GET',
      path: `/api/pipelines/${pipeline.id}/window?from=soon`,
      body: undefined,
      status: 400,
      code: 'validation_error',
      at: '/querystring/from',
    },
    {
      what: 'unknown route',
      method: 'GET',
      path: '/api/nothing',
      body: undefined,
      status: 404,
      code: 'not_found',
    },
  ]
  for (const c of cases) {
    const r = await server.call(c.method ?? 'POST', c.path, c.body, c.headers)
    assert.equal(r.status, c.status, `${c.what}: status (${JSON.stringify(r.body).slice(0, 300)})`)
    assert.equal(r.body.error.code, c.code, `${c.what}: code`)
    assert.equal(typeof r.body.error.message, 'string')
    if (c.at)
      assert.ok(
        r.body.error.details.some((d: { path: string }) => d.path === c.at),
        `${c.what}: ${JSON.stringify(r.body.error)}`,
      )
  }
  assert.equal((await server.call('GET', '/')).status, 200)
  assert.deepEqual(
    (await server.call('GET', '/api/pipelines')).body.pipelines.map((p: { id: string }) => p.id),
    before.pipelines.map((p: { id: string }) => p.id),
  )
  assert.equal(server.runtime.ingested, 0)
  assert.equal((await readTopic(server.runtime, 'in')).length, 0)
  assert.equal(({} as Record<string, unknown>).polluted, undefined)
})
