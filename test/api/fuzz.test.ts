import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'
import { silentLogger } from '../../src/logger.ts'
import { tempDir } from '../helpers/tmp.ts'

/**
 * Property-based fuzzing of every route: bodies, params and queries from generators that favour
 * what breaks servers (deep nesting, huge and edge numbers, unicode edge cases, prototype keys,
 * wrong content types, truncated bodies). For every request: never a 5xx, an error always in the
 * JSON error shape, the server still answers, and a refused request changes nothing stored.
 */

const SEED = 20261202
const RUNS = 3_000

const edgeNumber = fc.constantFrom(
  0,
  -0,
  1e308,
  -1e308,
  1.7e308,
  5e-324,
  2 ** 53,
  -(2 ** 53),
  8.64e15,
  -8.64e15,
  1e21,
  Number.MAX_SAFE_INTEGER + 2,
)
const edgeString = fc.oneof(
  fc.constantFrom(
    '',
    '.',
    '..',
    '../../etc',
    '__proto__',
    'constructor',
    'prototype',
    '\u0000',
    '\uD800',
    '\uFFFF',
    '\u202E',
    '𝟘',
    'a'.repeat(300),
    '^(a+)+$',
    '2026-02-30T00:00:00Z',
    '9999-12-31T23:59:59.999Z',
    '1e20',
    'null',
  ),
  fc.string({ unit: 'binary', maxLength: 40 }),
)
const key = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'events',
    'topic',
    'name',
    'source_topic',
    'transformation',
    'aggregate',
    'window_seconds',
    'filter',
    'field',
    'operator',
    'value',
    'metrics',
    'key',
    'rows',
    'event_type',
    'source',
    'data',
    'timestamp',
  ),
  fc.string({ maxLength: 8 }),
)
const { json } = fc.letrec((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    edgeNumber,
    fc.double(),
    edgeString,
    fc.array(tie('json'), { maxLength: 4 }),
    fc.dictionary(key, tie('json'), { maxKeys: 5 }),
  ),
}))
/** Values shaped like what each route expects, with one part wrong: deeper than random JSON gets alone. */
const nearlyValid = fc.oneof(
  fc.record({
    events: fc.array(
      fc.record(
        {
          event_type: fc.oneof(edgeString, json),
          source: fc.oneof(edgeString, json),
          data: json,
          timestamp: json,
        },
        { requiredKeys: [] },
      ),
      { maxLength: 3 },
    ),
    topic: fc.oneof(edgeString, json),
  }),
  fc.record({
    name: fc.oneof(edgeString, json),
    source_topic: fc.oneof(edgeString, json),
    transformation: fc.oneof(
      json,
      fc.record({ aggregate: fc.dictionary(key, fc.oneof(edgeNumber, json), { maxKeys: 4 }) }),
      fc.record({ filter: fc.record({ field: edgeString, operator: edgeString, value: json }) }),
    ),
  }),
  fc.record({
    name: fc.oneof(edgeString, json),
    value: fc.oneof(edgeNumber, json),
    tags: json,
    timestamp: json,
  }),
  fc.record({ key: fc.oneof(edgeString, json), rows: json }),
)
/** Deeply nested arrays and objects, past every depth bound. */
const deep = fc.integer({ min: 50, max: 5_000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`)
const deepObject = fc
  .integer({ min: 50, max: 2_000 })
  .map((n) => `{"events":[{"event_type":"e","source":"s","data":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}]}`)

const body = fc.oneof(
  json.map((v) => JSON.stringify(v)),
  nearlyValid.map((v) => JSON.stringify(v)),
  nearlyValid.chain((v) => {
    const text = JSON.stringify(v)
    return fc.nat({ max: Math.max(0, text.length - 1) }).map((cut) => text.slice(0, cut))
  }),
  deep,
  deepObject,
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.constant('{"__proto__":{"x":1},"events":[]}'),
  fc.constant('{"constructor":{"prototype":{"x":1}}}'),
)
const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'text/csv',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  '',
  'application/json; charset=latin1',
)
/** Percent-encodes, or sends a lone surrogate as the raw bytes a client could send anyway. */
function encode(s: string): string {
  try {
    return encodeURIComponent(s)
  } catch {
    return '%ED%A0%80'
  }
}
const segment = fc.oneof(
  edgeString.map(encode),
  fc.constantFrom('%', '%E0%A4%A', '%00', 'x'.repeat(2_000), 'pipe-1'),
)
const query = fc
  .array(
    fc.tuple(
      fc.constantFrom(
        'limit',
        'offset',
        'from',
        'to',
        'step',
        'agg',
        'state',
        'name',
        'key',
        'q',
        'key.data.k',
        'key.__proto__',
        'tag.host',
        'tag.__proto__',
        'pipeline',
      ),
      fc.oneof(edgeString, edgeNumber.map(String), fc.constantFrom('1e20', '-1', '0', 'NaN', '5m', '0s')),
    ),
    { maxLength: 4 },
  )
  .map((pairs) => pairs.map(([k, v]) => `${k}=${encode(v)}`).join('&'))

/** Every route of the API (the stream and the docs UI apart), with its path parameters as holes. */
const routes: Array<[method: string, path: (s: string) => string]> = [
  ['GET', () => '/'],
  ['GET', () => '/api/stats'],
  ['POST', () => '/api/pipelines'],
  ['GET', () => '/api/pipelines'],
  ['GET', (s) => `/api/pipelines/${s}`],
  ['POST', (s) => `/api/pipelines/${s}/start`],
  ['POST', (s) => `/api/pipelines/${s}/stop`],
  ['DELETE', (s) => `/api/pipelines/${s}`],
  ['GET', (s) => `/api/pipelines/${s}/window`],
  ['GET', (s) => `/api/pipelines/${s}/dead-letters`],
  ['POST', () => '/api/events/ingest'],
  ['GET', () => '/api/metrics'],
  ['POST', () => '/api/metrics'],
  ['PUT', (s) => `/api/lookups/${s}`],
  ['GET', () => '/api/lookups'],
  ['GET', (s) => `/api/lookups/${s}`],
  ['GET', (s) => `/api/lookups/users/${s}`],
  ['DELETE', (s) => `/api/lookups/${s}`],
  ['PATCH', () => '/api/pipelines'],
  ['GET', () => '/metrics'],
]

test('fuzz: no request makes a 5xx, every error has the JSON shape, a refused request changes nothing', async (t) => {
  const config = loadConfig(['--data-dir', tempDir(t)], {})
  const { app, runtime } = await buildApp({ config, logger: silentLogger() })
  t.after(() => app.close())
  // some state for the requests to aim at: a running windowed pipeline, a table, a series
  const seeded = await app.inject({
    method: 'POST',
    url: '/api/pipelines',
    payload: {
      name: 'target',
      source_topic: 'in',
      start: true,
      transformation: { aggregate: { window_seconds: 60, function: 'count', group_by: ['data.k'] } },
    },
  })
  assert.equal(seeded.statusCode, 201)
  const pipelineId = (seeded.json() as { id: string }).id
  await app.inject({ method: 'PUT', url: '/api/lookups/users', payload: { key: 'id', rows: [{ id: '1' }] } })
  await app.inject({ method: 'POST', url: '/api/metrics', payload: { name: 'cpu', value: 1 } })

  const stored = async () =>
    JSON.stringify({
      pipelines: (await app.inject({ method: 'GET', url: '/api/pipelines' }))
        .json<{
          pipelines: Array<{ id: string; name: string; status: string; stats: { events_in: number } }>
        }>()
        .pipelines.map((p) => [p.id, p.name, p.status]),
      lookups: await runtime.store.listLookupTables(),
      series: await runtime.store.countSeries(),
      ingested: runtime.ingested,
      topics: runtime.log.topics().sort(),
    })

  const outcomes: Record<string, number> = {}
  const request = fc.record({
    route: fc.constantFrom(...routes),
    param: fc.oneof(segment, fc.constant(pipelineId)),
    query,
    body: fc.option(body, { nil: undefined }),
    contentType,
  })
  await fc.assert(
    fc.asyncProperty(
      request,
      async ({ route: [method, path], param, query: q, body: payload, contentType: ct }) => {
        const before = await stored()
        const headers: Record<string, string> = {}
        if (ct !== '') headers['content-type'] = ct
        const url = `${path(param)}${q === '' ? '' : `?${q}`}`
        const res = await app.inject({
          method: method as 'GET',
          url,
          headers,
          payload: method === 'GET' ? undefined : payload,
        })
        const what = `${method} ${url.slice(0, 200)} ${ct} ${String(payload).slice(0, 200)}`
        outcomes[res.statusCode] = (outcomes[res.statusCode] ?? 0) + 1
        assert.ok(res.statusCode < 500, `${res.statusCode} for ${what}: ${res.body.slice(0, 300)}`)
        if (res.statusCode >= 400) {
          const error = (res.json() as { error?: { code?: unknown; message?: unknown } }).error
          assert.equal(typeof error?.code, 'string', `${what}: ${res.body.slice(0, 300)}`)
          assert.equal(typeof error?.message, 'string', what)
          assert.equal(await stored(), before, `a refused request changed what is stored: ${what}`)
        }
      },
    ),
    { seed: SEED, numRuns: RUNS, interruptAfterTimeLimit: 120_000, markInterruptAsFailure: false },
  )
  // the server still answers, and the pipeline it ran through all of this still runs
  assert.equal((await app.inject({ method: 'GET', url: '/' })).statusCode, 200)
  const target = await app.inject({ method: 'GET', url: `/api/pipelines/${pipelineId}` })
  assert.ok([200, 404].includes(target.statusCode))
  t.diagnostic(`fuzz outcomes by status: ${JSON.stringify(outcomes)}`)
  console.log(`fuzz: ${RUNS} cases, outcomes by status ${JSON.stringify(outcomes)}`)
  assert.ok(Object.values(outcomes).reduce((a, b) => a + b, 0) >= RUNS)
})
