import assert from 'node:assert/strict'
import { test } from 'node:test'
import { eventually, manualClock, startServer } from '../helpers/server.ts'
import { tempDir } from '../helpers/tmp.ts'

type Window = {
  window_start: string
  key: unknown
  results: Record<string, number | null>
  closed: boolean
  version?: number
}
const byWindow = (ws: Window[]) => new Map(ws.map((w) => [`${w.window_start}|${JSON.stringify(w.key)}`, w]))

const BASE = Date.parse('2026-11-26T10:00:00Z')
const aggregate = (extra: Record<string, unknown> = {}) => ({
  window_seconds: 10,
  functions: ['count'],
  group_by: ['data.k'],
  ...extra,
})

test('compatible edits under load keep every open window: counts equal a pipeline that never changed', async (t) => {
  const clock = manualClock(BASE + 3_600_000)
  const server = await startServer(t, { clock: clock.now })
  const spec = (name: string, extra: Record<string, unknown> = {}, more: Record<string, unknown> = {}) => ({
    name,
    source_topic: 'load',
    ...more,
    transformations: [
      { filter: { field: 'event_type', operator: 'ne', value: 'noise' } },
      { aggregate: aggregate(extra) },
    ],
  })
  const reference = (await server.call('POST', '/api/pipelines', { ...spec('reference'), start: true })).body
  const edited = (await server.call('POST', '/api/pipelines', { ...spec('edited'), start: true })).body

  let running = true
  let sent = 0
  // a client streaming events of 40 s of event time, in order, while the spec changes
  const client = (async () => {
    for (let i = 0; running && i < 400; i++) {
      const events = Array.from({ length: 10 }, (_, j) => ({
        event_type: j === 9 ? 'noise' : 'e',
        source: 's',
        timestamp: new Date(BASE + (i * 10 + j) * 100).toISOString(),
        data: { k: `k${(i + j) % 4}`, v: j },
      }))
      assert.equal((await server.call('POST', '/api/events/ingest', { topic: 'load', events })).status, 200)
      sent += events.length
      await new Promise((r) => setTimeout(r, 2))
    }
  })()
  const edits = [
    spec('edited', { functions: ['count', { sum: 'data.v' }] }),
    spec('edited', { functions: ['count', { sum: 'data.v' }], allowed_lateness_seconds: 1 }),
    spec(
      'edited',
      { functions: ['count', { sum: 'data.v' }], allowed_lateness_seconds: 1, emit: 'updates' },
      { sink_topic: 'edited-out' },
    ),
    spec('edited', {
      functions: ['count', { sum: 'data.v' }, { max: 'data.v' }],
      allowed_lateness_seconds: 1,
    }),
    spec('edited', { functions: ['count', { max: 'data.v' }], allowed_lateness_seconds: 1 }),
  ]
  for (const body of edits) {
    await new Promise((r) => setTimeout(r, 60))
    const res = await server.call('PUT', `/api/pipelines/${edited.id}`, body)
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.equal(res.body.status, 'running')
  }
  running = false
  await client
  // one event far ahead: both watermarks (lateness 0 and 1 s) pass every window before it
  const flush = {
    event_type: 'e',
    source: 's',
    timestamp: new Date(BASE + 1_000_000).toISOString(),
    data: { k: 'flush', v: 0 },
  }
  assert.equal(
    (await server.call('POST', '/api/events/ingest', { topic: 'load', events: [flush] })).status,
    200,
  )
  sent += 1
  const done = async (id: string) =>
    eventually(async () => {
      const s = (await server.call('GET', `/api/pipelines/${id}`)).body
      return s.stats.events_in === sent && s.stats.pending_results === 0 ? s : undefined
    }, 10_000)
  const ref = await done(reference.id)
  const ed = await done(edited.id)
  assert.equal(ed.version, 6)
  assert.deepEqual(
    [ed.stats.events_in, ed.stats.filtered, ed.stats.late],
    [ref.stats.events_in, ref.stats.filtered, ref.stats.late],
  )
  const windows = async (id: string) =>
    (await server.call('GET', `/api/pipelines/${id}/window?state=all&limit=10000`)).body.windows as Window[]
  const want = byWindow(await windows(reference.id))
  const got = byWindow(await windows(edited.id))
  assert.ok(want.size >= 16, `enough windows (${want.size})`)
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort())
  for (const [id, w] of want) {
    const g = got.get(id)!
    assert.equal(g.results.count, w.results.count, `${id}: count`)
    assert.equal(g.closed, w.closed, `${id}: closed`)
    // a closed result stays as the version that made it; what the last version made has no sum
    if (g.version === 6) assert.ok(!('sum_data_v' in g.results), `${id}: a removed function is gone`)
  }
  // the function added last: null in windows that had begun before the change, a value after
  const open = (await windows(edited.id)).filter((w) => !w.closed)
  assert.ok(open.length > 0 && open.every((w) => w.version === 6))
  const versions = (await server.call('GET', `/api/pipelines/${edited.id}/versions`)).body.versions
  assert.deepEqual(
    versions.map((v: { version: number; reset: boolean }) => [v.version, v.reset]),
    [1, 2, 3, 4, 5, 6].map((n) => [n, false]),
  )
  assert.deepEqual(versions[3].spec.sink_topic, 'edited-out')
})

test('an added function starts with the windows that open after the change, also after a restart', async (t) => {
  const dataDir = tempDir(t)
  const clock = manualClock(BASE + 3_600_000)
  const at = (s: number) => new Date(BASE + s * 1000).toISOString()
  const ev = (s: number, v: number) => ({
    event_type: 'e',
    source: 's',
    timestamp: at(s),
    data: { k: 'a', v },
  })
  let server = await startServer(t, { clock: clock.now, dataDir })
  const body = { name: 'p', source_topic: 't', transformation: { aggregate: aggregate() } }
  const p = (await server.call('POST', '/api/pipelines', { ...body, start: true })).body
  await server.call('POST', '/api/events/ingest', { topic: 't', events: [ev(1, 5), ev(2, 6)] })
  await eventually(async () =>
    (await server.call('GET', `/api/pipelines/${p.id}`)).body.stats.events_in === 2 ? true : undefined,
  )
  const changed = await server.call('PUT', `/api/pipelines/${p.id}`, {
    ...body,
    transformation: { aggregate: aggregate({ functions: ['count', { sum: 'data.v' }] }) },
  })
  assert.equal(changed.status, 200)
  // the window [0, 10) had events before the change: its sum would miss them, so it shows null
  await server.call('POST', '/api/events/ingest', { topic: 't', events: [ev(3, 7), ev(12, 8), ev(25, 1)] })
  await eventually(async () =>
    (await server.call('GET', `/api/pipelines/${p.id}`)).body.stats.events_in === 5 ? true : undefined,
  )
  const results = async () => {
    const ws = (await server.call('GET', `/api/pipelines/${p.id}/window?state=all`)).body.windows as Window[]
    return ws.map((w) => [w.window_start, w.results, w.closed, w.version]).sort()
  }
  const expected = [
    [at(0), { count: 3, sum_data_v: null }, true, 2],
    [at(10), { count: 1, sum_data_v: 8 }, true, 2],
    [at(20), { count: 1, sum_data_v: 1 }, false, 2],
  ]
  await eventually(async () => ((await results()).length === 3 ? true : undefined))
  assert.deepEqual(await results(), expected)
  await server.close()
  server = await startServer(t, { clock: clock.now, dataDir })
  assert.deepEqual(await results(), expected)
})

test('a change that would lose window state is refused with what would be lost; reset applies it', async (t) => {
  const server = await startServer(t)
  const body = { name: 'p', source_topic: 't', transformation: { aggregate: aggregate() } }
  const p = (await server.call('POST', '/api/pipelines', { ...body, start: true })).body
  await server.call('POST', '/api/pipelines', { name: 'other', source_topic: 't' })
  await server.call('POST', '/api/events/ingest', {
    topic: 't',
    events: [{ event_type: 'e', source: 's', data: { k: 'a' } }],
  })
  const before = await eventually(async () => {
    const ws = (await server.call('GET', `/api/pipelines/${p.id}/window`)).body.windows
    return ws.length === 1 ? ws : undefined
  })
  const refused = await server.call('PUT', `/api/pipelines/${p.id}`, {
    name: 'p',
    source_topic: 'u',
    transformation: {
      aggregate: { ...aggregate(), window_seconds: 60, group_by: ['data.j'], time: 'processing' },
    },
  })
  assert.equal(refused.status, 409)
  assert.deepEqual(
    refused.body.error.details.map((d: { path: string }) => d.path),
    [
      '/source_topic',
      '/transformation/aggregate/window_seconds',
      '/transformation/aggregate/group_by',
      '/transformation/aggregate/time',
    ],
  )
  assert.match(
    refused.body.error.message,
    /^this change would lose the window state: \/source_topic .*\(and 3 more\).*"reset": true/,
  )
  assert.match(refused.body.error.details[1].message, /tumbling 10 s to tumbling 60 s/)
  const removed = await server.call('PUT', `/api/pipelines/${p.id}`, {
    name: 'p',
    source_topic: 't',
    transformations: [{ filter: { field: 'event_type', operator: 'eq', value: 'e' } }],
  })
  assert.equal(removed.status, 409)
  assert.equal(removed.body.error.details[0].path, '/transformations')
  // nothing changed by the refusals
  const same = (await server.call('GET', `/api/pipelines/${p.id}`)).body
  assert.deepEqual([same.version, same.transformation], [1, body.transformation])
  assert.deepEqual((await server.call('GET', `/api/pipelines/${p.id}/window`)).body.windows, before)

  const bad = async (b: unknown, status: number, path?: string) => {
    const res = await server.call('PUT', `/api/pipelines/${p.id}`, b)
    assert.equal(res.status, status, JSON.stringify(res.body))
    if (path) assert.equal(res.body.error.details[0].path, path)
  }
  await bad([], 400, '')
  await bad({ ...body, reset: 'yes' }, 400, '/reset')
  await bad(
    { ...body, transformation: { aggregate: { window_seconds: 0, function: 'count' } } },
    400,
    '/transformation/aggregate/window_seconds',
  )
  await bad({ ...body, name: 'other' }, 409)
  assert.equal((await server.call('PUT', '/api/pipelines/nope', body)).status, 404)
  assert.equal((await server.call('GET', `/api/pipelines/${p.id}`)).body.version, 1)

  // reset: applied, the window state starts over, the counters and the position stay
  const reset = await server.call('PUT', `/api/pipelines/${p.id}`, {
    name: 'p',
    source_topic: 't',
    reset: true,
    transformation: { aggregate: { ...aggregate(), window_seconds: 60 } },
  })
  assert.equal(reset.status, 200, JSON.stringify(reset.body))
  assert.deepEqual([reset.body.version, reset.body.status, reset.body.stats.events_in], [2, 'running', 1])
  assert.deepEqual((await server.call('GET', `/api/pipelines/${p.id}/window`)).body.windows, [])
  await server.call('POST', '/api/events/ingest', {
    topic: 't',
    events: [{ event_type: 'e', source: 's', data: { k: 'a' } }],
  })
  const after = await eventually(async () => {
    const ws = (await server.call('GET', `/api/pipelines/${p.id}/window`)).body.windows
    return ws.length === 1 ? ws : undefined
  })
  assert.equal(after[0].results.count, 1)
  assert.equal(Date.parse(after[0].window_end) - Date.parse(after[0].window_start), 60_000)
  const versions = (await server.call('GET', `/api/pipelines/${p.id}/versions`)).body.versions
  assert.deepEqual(
    versions.map((v: { version: number; reset: boolean }) => [v.version, v.reset]),
    [
      [1, false],
      [2, true],
    ],
  )
  assert.equal((await server.call('GET', '/api/pipelines/nope/versions')).status, 404)
})
