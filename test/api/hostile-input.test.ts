import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import { ChildServer, freePort } from '../helpers/child-server.ts'
import { eventually, readTopic, startServer } from '../helpers/server.ts'
import { tempDir } from '../helpers/tmp.ts'

// Each test reproduces one finding of issue 12 as it was reported, and checks the defined answer.

const event = (data: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  event_type: 'e',
  source: 's',
  data,
  ...extra,
})

test('a backtracking regex cannot freeze the server, before or after kill -9', async (t) => {
  const dataDir = tempDir(t)
  const port = await freePort()
  const server = new ChildServer(port, ['--data-dir', dataDir, '--log-level', 'silent'])
  t.after(() => server.kill('SIGKILL'))
  await server.start()
  const call = (method: string, path: string, body?: unknown) =>
    fetch(server.url + path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      // biome-ignore lint/suspicious/noExplicitAny: test convenience for reading JSON bodies
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }))
  const created = await call('POST', '/api/pipelines', {
    name: 'redos',
    source_topic: 'strings',
    start: true,
    transformation: { filter: { field: 'data.s', operator: 'regex', value: '^(a+)+$' } },
  })
  assert.equal(created.status, 201, JSON.stringify(created.body))
  const id = created.body.id
  const hostile = [34, 50, 5_000].map((n) => event({ s: `${'a'.repeat(n)}!` }))
  assert.equal((await call('POST', '/api/events/ingest', { topic: 'strings', events: hostile })).status, 200)
  const processed = async () => {
    const p = await call('GET', `/api/pipelines/${id}`)
    return p.body.stats.events_in === 3 ? p.body.stats : undefined
  }
  const started = Date.now()
  const stats = await eventually(processed, 10_000, 'the hostile events to be processed')
  assert.equal(stats.filtered, 3)
  // a backtracking engine takes ~100 s for 34 a's and forever for 50
  assert.ok(Date.now() - started < 10_000)
  // kill -9 before the checkpoint can have been taken for sure, then the replay runs the same regex
  assert.equal(await server.kill('SIGKILL'), null)
  await server.start()
  const again = await eventually(processed, 10_000, 'the replay after kill -9')
  assert.equal(again.filtered, 3)
})

test('event times outside 1970–9999 are a 400 naming the field; the edges themselves work and stay deletable', async (t) => {
  const server = await startServer(t)
  for (const timestamp of [8_640_000_000_000_000, -8_640_000_000_000_000, -1, '10000-01-01T00:00:00Z']) {
    const r = await server.call('POST', '/api/events/ingest', {
      topic: 'edge',
      events: [event({}, { timestamp })],
    })
    assert.equal(r.status, 400, String(timestamp))
    assert.equal(r.body.error.details[0].path, '/events/0/timestamp')
    const m = await server.call('POST', '/api/metrics', { name: 'x', value: 1, timestamp })
    assert.equal(m.status, 400, String(timestamp))
    assert.equal(m.body.error.details[0].path, '/timestamp')
  }
  assert.equal((await readTopic(server.runtime, 'edge')).length, 0, 'nothing refused is stored')

  for (const [timestamp, window] of [
    ['9999-12-31T23:59:59.999Z', 60],
    [0, 7],
  ] as const) {
    const name = `edge-${window}`
    const p = (
      await server.call('POST', '/api/pipelines', {
        name,
        source_topic: name,
        sink_topic: `${name}-out`,
        start: true,
        transformation: {
          aggregate: { window_seconds: window, function: 'count', idle_timeout_seconds: 1 },
        },
      })
    ).body
    assert.equal(
      (await server.call('POST', '/api/events/ingest', { topic: name, events: [event({}, { timestamp })] }))
        .status,
      200,
    )
    // the idle timeout closes the window (its end is computed past the last event time)
    const closed = await eventually(
      async () => {
        const w = await server.call('GET', `/api/pipelines/${p.id}/window?state=closed`)
        return w.status === 200 && w.body.windows.length === 1 ? w.body.windows[0] : undefined
      },
      10_000,
      `the window of ${name} to close`,
    )
    assert.equal(closed.results.count, 1)
    for (const path of ['/api/pipelines', '/api/stats', `/api/pipelines/${p.id}`, '/api/metrics'])
      assert.equal((await server.call('GET', path)).status, 200, path)
    assert.equal((await server.call('DELETE', `/api/pipelines/${p.id}`)).status, 204)
    assert.equal((await server.call('GET', `/api/pipelines/${p.id}`)).status, 404)
  }
})

test('a sum past the range of a double is null (through a checkpoint too), never a 500', async (t) => {
  const server = await startServer(t)
  const p = (
    await server.call('POST', '/api/pipelines', {
      name: 'huge',
      source_topic: 'huge',
      start: true,
      transformation: {
        aggregate: {
          window_seconds: 60,
          functions: ['count', { sum: 'data.v' }, { avg: 'data.v' }, { max: 'data.v' }],
        },
      },
    })
  ).body
  const events = [1.7e308, 1.7e308].map((v) => event({ v }, { timestamp: '2026-11-26T10:00:00Z' }))
  assert.equal((await server.call('POST', '/api/events/ingest', { topic: 'huge', events })).status, 200)
  const open = await eventually(async () => {
    const w = await server.call('GET', `/api/pipelines/${p.id}/window`)
    assert.equal(w.status, 200, JSON.stringify(w.body))
    return w.body.windows[0]?.results.count === 2 ? w.body.windows[0] : undefined
  })
  assert.deepEqual(open.results, { count: 2, sum_data_v: null, avg_data_v: null, max_data_v: 1.7e308 })
  // stop checkpoints the state (JSON has no Infinity) and the stopped pipeline reads it back
  assert.equal((await server.call('POST', `/api/pipelines/${p.id}/stop`)).status, 200)
  const stopped = await server.call('GET', `/api/pipelines/${p.id}/window`)
  assert.equal(stopped.status, 200)
  assert.deepEqual(stopped.body.windows[0].results, open.results)
  assert.equal((await server.call('POST', `/api/pipelines/${p.id}/start`)).status, 200)
  assert.deepEqual(
    (await server.call('GET', `/api/pipelines/${p.id}/window`)).body.windows[0].results,
    open.results,
  )
})

test('numeric query parameters are range-checked; a null window is a 400; key filters cannot reach prototypes', async (t) => {
  const server = await startServer(t)
  for (const q of ['offset=1e20', 'offset=-1', 'limit=0', 'limit=1e6'])
    assert.equal((await server.call('GET', `/api/metrics?${q}`)).status, 400, q)
  for (const q of ['from=8640000000000000', 'to=-5', 'from=2026-02-30T00:00:00Z'])
    assert.equal((await server.call('GET', `/api/metrics?name=x&${q}`)).status, 400, q)

  const nullWindow = await server.call('POST', '/api/pipelines', {
    name: 'null-window',
    source_topic: 't',
    transformation: { aggregate: { window_seconds: null, function: 'count' } },
  })
  assert.equal(nullWindow.status, 400)
  assert.equal(nullWindow.body.error.details[0].path, '/transformation/aggregate/window_seconds')
  assert.equal((await server.call('GET', '/api/pipelines')).body.pipelines.length, 0)

  const p = (
    await server.call('POST', '/api/pipelines', {
      name: 'keys',
      source_topic: 'k',
      start: true,
      transformation: { aggregate: { window_seconds: 60, function: 'count', group_by: ['data.k'] } },
    })
  ).body
  await server.call('POST', '/api/events/ingest', {
    topic: 'k',
    events: [event({ k: 'a' }), event({ k: 'b' })],
  })
  for (const q of ['key.__proto__=x', 'key.constructor=x', 'key.data.__proto__=x', 'key.=x', 'limit=10001']) {
    const r = await server.call('GET', `/api/pipelines/${p.id}/window?${q}`)
    assert.equal(r.status, 400, q)
    assert.equal(typeof r.body.error.message, 'string')
  }
  for (const q of ['from=1e400', 'to=2026-01-01T24:00:00Z'])
    assert.equal((await server.call('GET', `/api/pipelines/${p.id}/window?${q}`)).status, 400, q)
})

test('an ingest without topic while no pipeline runs is stored on the default topic, and a pipeline reads it', async (t) => {
  const server = await startServer(t)
  const r = await server.call('POST', '/api/events/ingest', { events: [event({ n: 1 }), event({ n: 2 })] })
  assert.equal(r.status, 200)
  assert.deepEqual(r.body, { accepted: 2, topics: ['events'] })
  const p = (
    await server.call('POST', '/api/pipelines', {
      name: 'late-reader',
      source_topic: 'events',
      start: true,
      transformation: { aggregate: { window_seconds: 60, function: 'count' } },
    })
  ).body
  const stats = await eventually(async () => {
    const s = (await server.call('GET', `/api/pipelines/${p.id}`)).body.stats
    return s.events_in === 2 ? s : undefined
  })
  assert.equal(stats.events_in, 2)
})

test('topic names . and .. are refused on every route; nothing is written outside the log folder', async (t) => {
  const server = await startServer(t)
  const logDir = join(server.config.dataDir, 'log')
  const before = readdirSync(server.config.dataDir).sort()
  for (const topic of ['.', '..', '../x', 'a/b', '']) {
    const r = await server.call('POST', '/api/events/ingest', { topic, events: [event({})] })
    assert.equal(r.status, 400, topic)
    assert.equal(r.body.error.details[0].path, '/topic')
    for (const field of ['source_topic', 'sink_topic']) {
      const p = await server.call('POST', '/api/pipelines', { name: 'p', source_topic: 'ok', [field]: topic })
      assert.equal(p.status, 400, `${field} ${topic}`)
      assert.equal(p.body.error.details[0].path, `/${field}`)
    }
  }
  assert.deepEqual(readdirSync(server.config.dataDir).sort(), before)
  assert.deepEqual(
    readdirSync(logDir).filter((f) => !/^[A-Za-z0-9_-]/.test(f)),
    [],
    'no segment in the log root',
  )
})

test('CSV prototype columns, impossible dates, long path segments, bad HTTP and wrong methods get the error shape', async (t) => {
  const server = await startServer(t)
  const csv = await server.call('PUT', '/api/lookups/t?key=id', 'id,__proto__\n1,2\n', {
    'content-type': 'text/csv',
  })
  assert.equal(csv.status, 400)
  assert.match(csv.body.error.message, /line 1: the header name '__proto__' is not allowed/)
  assert.equal((await server.call('GET', '/api/lookups')).body.tables.length, 0)

  for (const timestamp of ['2026-02-30T00:00:00Z', '2026-01-01T24:00:00Z', '2026-04-31T00:00:00+02:00']) {
    const r = await server.call('POST', '/api/events/ingest', {
      topic: 'd',
      events: [event({}, { timestamp })],
    })
    assert.equal(r.status, 400, timestamp)
  }

  const long = 'x'.repeat(129)
  for (const path of [`/api/lookups/${long}`, `/api/lookups/${long}/1`, `/api/pipelines/${long}`]) {
    const r = await server.call('GET', path)
    assert.equal(r.status, 400, path)
    assert.equal(r.body.error.code, 'validation_error', path)
  }
  const longKey = await server.call('GET', `/api/lookups/users/${long}`)
  assert.equal(longKey.status, 404)
  assert.equal(longKey.body.error.code, 'not_found')
  const tooLong = await server.call('GET', `/api/pipelines/${'x'.repeat(5_000)}`)
  assert.equal(tooLong.status, 414)
  assert.equal(tooLong.body.error.code, 'uri_too_long')
  const badUrl = await server.call('GET', '/api/pipelines/%E0%A4%A')
  assert.equal(badUrl.status, 400)
  assert.equal(badUrl.body.error.code, 'validation_error')

  const wrong = await server.call('PATCH', '/api/pipelines')
  assert.equal(wrong.status, 405)
  assert.equal(wrong.headers.get('allow'), 'GET, HEAD, POST')
  assert.equal(wrong.body.error.code, 'method_not_allowed')
  const wrongId = await server.call('PUT', '/api/pipelines/abc/start')
  assert.equal(wrongId.status, 405)
  assert.equal(wrongId.headers.get('allow'), 'POST')
  assert.equal((await server.call('GET', '/nothing/here')).status, 404)

  // a Content-Length the body does not match, straight on the socket
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(new URL(server.url).port), '127.0.0.1')
    let text = ''
    socket.on('data', (d) => {
      text += d.toString()
    })
    socket.on('end', () => resolve(text))
    socket.on('error', reject)
    socket.write('POST /api/events/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}')
  })
  assert.match(raw, /^HTTP\/1\.1 400 /)
  const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))
  assert.equal(body.error.code, 'validation_error')
})

test('a stored pipeline that no longer validates is listed as failed and can be deleted; a start that throws is retried', async (t) => {
  const dataDir = tempDir(t)
  {
    const server = await startServer(t, { dataDir })
    // as an older version stored it: a JavaScript lookahead, which RE2 refuses
    await server.runtime.store.insertPipeline({
      id: 'old-one',
      name: 'old',
      spec: {
        name: 'old',
        source_topic: 'x',
        transformation: { filter: { field: 'data.s', operator: 'regex', value: '(?=a)a' } },
      },
      status: 'running',
      createdAt: 0,
      updatedAt: 0,
      version: 1,
    })
    await server.close()
  }
  const server = await startServer(t, { dataDir })
  const listed = (await server.call('GET', '/api/pipelines')).body.pipelines
  assert.equal(listed.length, 1)
  assert.equal(listed[0].status, 'failed')
  assert.match(listed[0].status_reason, /no longer validates: \/transformation\/filter\/value/)
  const start = await server.call('POST', '/api/pipelines/old-one/start')
  assert.equal(start.status, 409)
  assert.equal((await server.call('POST', '/api/pipelines', { name: 'old', source_topic: 'x' })).status, 409)
  assert.equal((await server.call('DELETE', '/api/pipelines/old-one')).status, 204)
  assert.equal((await server.call('POST', '/api/pipelines', { name: 'old', source_topic: 'x' })).status, 201)

  // the source topic's folder cannot be made (a file is in its place): the start fails, and is retried
  const blocker = join(dataDir, 'log', 'blocked-in')
  mkdirSync(join(dataDir, 'log'), { recursive: true })
  writeFileSync(blocker, 'not a folder')
  const p = await server.call('POST', '/api/pipelines', {
    name: 'blocked',
    source_topic: 'blocked-in',
    sink_topic: 'blocked-out',
    start: true,
  })
  assert.equal(p.status, 201)
  assert.equal(p.body.status, 'running')
  assert.equal(p.body.stats.condition, 'degraded')
  assert.match(p.body.stats.condition_reason, /^starting: /)
  rmSync(blocker)
  await eventually(
    async () => {
      const s = (await server.call('GET', `/api/pipelines/${p.body.id}`)).body
      return s.stats.condition === 'ok' ? s : undefined
    },
    10_000,
    'the retried start to succeed',
  )
  assert.ok(existsSync(join(dataDir, 'log', 'blocked-in')))
  await server.call('POST', '/api/events/ingest', { topic: 'blocked-in', events: [event({})] })
  await eventually(async () => {
    const s = (await server.call('GET', `/api/pipelines/${p.body.id}`)).body.stats
    return s.events_in === 1 ? s : undefined
  })
})

test('with Kafka configured and no broker at boot, the server starts and its pipelines are degraded, not gone', async (t) => {
  const dataDir = tempDir(t)
  {
    const server = await startServer(t, { dataDir })
    assert.equal(
      (await server.call('POST', '/api/pipelines', { name: 'k', source_topic: 'k-in', start: true })).status,
      201,
    )
    await server.close()
  }
  const deadBroker = `127.0.0.1:${await freePort()}`
  const server = await startServer(t, { dataDir, env: { KAFKA_BROKERS: deadBroker } })
  assert.equal((await server.call('GET', '/')).status, 200)
  const p = await eventually(
    async () => {
      const list = (await server.call('GET', '/api/pipelines')).body.pipelines
      return list[0]?.stats.condition === 'degraded' ? list[0] : undefined
    },
    60_000,
    'the pipeline to show it cannot reach the broker',
  )
  assert.equal(p.status, 'running')
  assert.match(p.stats.condition_reason, /^starting: /)
  const ingest = await server.call('POST', '/api/events/ingest', { topic: 'k-in', events: [event({})] })
  assert.equal(ingest.status, 503)
  assert.ok(ingest.headers.get('retry-after'))
  // it can still be stopped (which ends the retries)
  const stopped = await server.call('POST', `/api/pipelines/${p.id}/stop`)
  assert.equal(stopped.body.status, 'stopped')
  assert.equal(stopped.body.stats.condition, 'ok')
})

test('streams are capped: past --max-streams a new one gets 503 with Retry-After; closed ones free their place', async (t) => {
  const server = await startServer(t, { env: { DATAPULSE_MAX_STREAMS: '2' } })
  const open = await Promise.all([1, 2].map(() => fetch(`${server.url}/api/stream`)))
  for (const r of open) assert.equal(r.status, 200)
  const refused = await server.call('GET', '/api/stream')
  assert.equal(refused.status, 503)
  assert.equal(refused.body.error.code, 'unavailable')
  assert.equal(refused.headers.get('retry-after'), '5')
  for (const r of open) await r.body?.cancel()
  const again = await eventually(async () => {
    const r = await fetch(`${server.url}/api/stream`)
    if (r.status === 200) return r
    await r.body?.cancel()
    return undefined
  })
  await again.body?.cancel()
})
