import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Ajv } from 'ajv'
import fc from 'fast-check'
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'
import { silentLogger } from '../../src/logger.ts'
import { tempDir } from '../helpers/tmp.ts'

/**
 * The handlers check bodies by hand (exact paths in the errors); the OpenAPI document describes
 * them with schemas. On a generated corpus of near-valid bodies this proves the two agree the way a
 * client needs: whatever the server accepts, the schema accepts; whatever the schema refuses, the
 * server refuses. (The server refuses more: rules no schema states, such as a regex that does not
 * compile or an aggregate that is not last.)
 */
const ROUTES: Array<{ op: string; method: 'POST' | 'PUT'; url: string; valid: unknown[] }> = [
  {
    op: 'createPipeline',
    method: 'POST',
    url: '/api/pipelines',
    valid: [
      { name: 'p', source_topic: 't' },
      {
        name: 'agg',
        source_topic: 't',
        sink_topic: 's',
        start: false,
        transformation: {
          aggregate: { window_seconds: 60, function: { count: null }, group_by: ['data.k'] },
        },
      },
      {
        name: 'chain',
        source_topic: 't',
        transformations: [
          { filter: { field: 'data.n', operator: 'gt', value: 1 } },
          { map: { set: { 'data.x': 1 } } },
          { aggregate: { session_gap_seconds: 5, functions: ['count', { sum: 'data.n' }] } },
        ],
      },
    ],
  },
  {
    op: 'ingestEvents',
    method: 'POST',
    url: '/api/events/ingest',
    valid: [
      { topic: 't', events: [{ event_type: 'e', source: 's', data: { a: 1 } }] },
      { topic: 't', events: [{ event_type: 'e', source: 's', timestamp: '2026-11-26T10:00:00Z', id: 'x' }] },
    ],
  },
  {
    op: 'writeMetrics',
    method: 'POST',
    url: '/api/metrics',
    valid: [
      { name: 'cpu', value: 1, tags: { host: 'a' } },
      { metrics: [{ name: 'cpu', value: 1, timestamp: '2026-11-26T10:00:00Z' }] },
    ],
  },
  {
    op: 'putLookupTable',
    method: 'PUT',
    url: '/api/lookups/users',
    valid: [{ key: 'id', rows: [{ id: '1', name: 'a' }] }],
  },
  { op: 'createKey', method: 'POST', url: '/api/keys', valid: [{ name: 'ops', role: 'admin' }] },
]

const anyJson = fc.jsonValue({ maxDepth: 2 })

/** One edit of a valid body: a value replaced, a key dropped or added, somewhere inside. */
function mutate(value: unknown, rng: fc.Arbitrary<number>): fc.Arbitrary<unknown> {
  if (value === null || typeof value !== 'object')
    return fc.oneof(fc.constant(value), anyJson, fc.constantFrom(0, -1, 1e21, '', 'x', true, null, [], {}))
  if (Array.isArray(value)) {
    if (value.length === 0) return fc.oneof(fc.constant(value), fc.array(anyJson, { maxLength: 2 }))
    return fc.nat({ max: value.length - 1 }).chain((i) =>
      fc.oneof(
        mutate(value[i], rng).map((v) => value.map((x, j) => (j === i ? v : x))),
        fc.constant(value.filter((_, j) => j !== i)),
        anyJson.map((v) => [...value, v]),
      ),
    )
  }
  const keys = Object.keys(value)
  const obj = value as Record<string, unknown>
  return fc.oneof(
    fc.constantFrom(...keys).chain((k) => mutate(obj[k], rng).map((v) => ({ ...obj, [k]: v }))),
    fc.constantFrom(...keys).map((k) => Object.fromEntries(Object.entries(obj).filter(([key]) => key !== k))),
    fc
      .tuple(fc.constantFrom('extra', 'window_seconds', 'function', 'topic', 'role'), anyJson)
      .map(([k, v]) => ({ ...obj, [k]: v })),
  )
}

test('hand-written checks and the documented schemas agree on 2,000 generated bodies per route', async (t) => {
  const { app } = await buildApp({
    config: loadConfig(['--data-dir', tempDir(t), '--rate-limit-api', '0', '--rate-limit-ingest', '0'], {}),
    logger: silentLogger(),
  })
  t.after(() => app.close())
  await app.ready()
  const doc = app.swagger() as unknown as {
    paths: Record<
      string,
      Record<string, { operationId: string; requestBody?: { content: Record<string, { schema: object }> } }>
    >
  }
  // keys on from the start, so bodies of createKey are judged on their own, not refused as 401s
  const made = await app.inject({ method: 'POST', url: '/api/keys', payload: { name: 'ops', role: 'admin' } })
  const authorization = `Bearer ${JSON.parse(made.body).key}`
  const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: false })
  for (const route of ROUTES) {
    const op = Object.values(doc.paths)
      .flatMap((m) => Object.values(m))
      .find((o) => o.operationId === route.op)
    const schema = op?.requestBody?.content['application/json']?.schema
    assert.ok(schema, `${route.op} documents its body`)
    const validate = ajv.compile(schema)
    let accepted = 0
    let refusedBySchema = 0
    let refusedByRulesOnly = 0
    const bodies = fc.sample(fc.oneof(...route.valid.map((v) => mutate(v, fc.nat()))), {
      numRuns: 2_000,
      seed: 20261202,
    })
    for (const [i, body] of [...route.valid, ...bodies].entries()) {
      // each body against a fresh name where names must be unique
      const sent =
        route.op === 'createPipeline' &&
        body &&
        typeof body === 'object' &&
        !Array.isArray(body) &&
        typeof (body as { name?: unknown }).name === 'string'
          ? { ...(body as object), name: `${(body as { name: string }).name}-${i}` }
          : body
      const res = await app.inject({
        method: route.method,
        url: route.url,
        payload: JSON.stringify(sent),
        headers: { 'content-type': 'application/json', authorization },
      })
      const ok = res.statusCode < 300
      const valid = validate(sent)
      if (ok) {
        accepted++
        assert.ok(
          valid,
          `${route.op}: the server accepted what the schema refuses: ${JSON.stringify(sent)} ${JSON.stringify(validate.errors)}`,
        )
      } else {
        assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${route.op}: ${res.statusCode} ${res.body}`)
        if (!valid) refusedBySchema++
        else refusedByRulesOnly++
      }
      if (!valid) assert.ok(!ok, `${route.op}: the schema refuses what the server accepted`)
    }
    t.diagnostic(
      `${route.op}: ${accepted} accepted, ${refusedBySchema} refused by both, ${refusedByRulesOnly} by the server's rules only`,
    )
    assert.ok(accepted >= route.valid.length && refusedBySchema > 0, route.op)
  }
})
