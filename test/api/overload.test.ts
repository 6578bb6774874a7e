import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { ChildServer, freePort } from '../helpers/child-server.ts'
import { eventually, readTopic, startServer } from '../helpers/server.ts'
import { tempDir } from '../helpers/tmp.ts'

test('a pipeline that falls behind: ingestion answers 429 with Retry-After, memory stays bounded, every accepted event is processed', async (t) => {
  const server = await startServer(t, { env: { DATAPULSE_MAX_LAG: '1000' } })
  // slow on purpose: every changed key re-emits 500 overlapping windows per batch
  const p = (
    await server.call('POST', '/api/pipelines', {
      name: 'slow',
      source_topic: 'busy',
      start: true,
      transformation: {
        aggregate: {
          window_seconds: 20,
          slide_seconds: 0.1,
          function: { avg: 'data.v' },
          group_by: ['data.k'],
          emit: 'updates',
        },
      },
    })
  ).body
  let accepted = 0
  const statuses: Record<number, number> = {}
  let retryAfter: string | null = null
  const events = Array.from({ length: 500 }, (_, i) => ({
    event_type: 'e',
    source: 's',
    data: { k: `k${i % 50}`, v: i },
  }))
  const deadline = Date.now() + 3_000
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (Date.now() < deadline) {
        const r = await server.call('POST', '/api/events/ingest', { topic: 'busy', events })
        statuses[r.status] = (statuses[r.status] ?? 0) + 1
        if (r.status === 200) accepted += r.body.accepted
        if (r.status === 429) {
          retryAfter = r.headers.get('retry-after')
          assert.equal(r.body.error.code, 'overloaded')
          await new Promise((res) => setTimeout(res, 20))
        }
      }
    }),
  )
  assert.ok((statuses[429] ?? 0) > 0, `some requests were refused: ${JSON.stringify(statuses)}`)
  assert.ok(accepted > 0)
  assert.equal(retryAfter, '1')
  assert.ok(
    (await readTopic(server.runtime, 'busy')).length === accepted,
    'only accepted events are in the log',
  )
  assert.ok(process.memoryUsage().rss < 1_500 * 2 ** 20, `RSS ${process.memoryUsage().rss >> 20} MB`)
  const stats = await eventually(
    async () => {
      const s = (await server.call('GET', `/api/pipelines/${p.id}`)).body.stats
      return s.events_in === accepted ? s : undefined
    },
    60_000,
    'the pipeline to catch up',
  )
  assert.equal(stats.lag, 0)
  assert.equal(stats.errors + stats.late, 0)
})

test('the memory gate follows the heap and buffers the process holds: 429 above the limit, open again once they are freed', async (t) => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  gc()
  const held = () => {
    const m = process.memoryUsage()
    return (m.heapTotal + m.external) / 2 ** 20
  }
  const limit = Math.ceil(held()) + 96
  const server = await startServer(t, { env: { DATAPULSE_INGEST_MEMORY_LIMIT_MB: String(limit) } })
  const ingest = () =>
    server.call('POST', '/api/events/ingest', {
      topic: 'gate',
      events: [{ event_type: 'e', source: 's', data: {} }],
    })
  assert.equal((await ingest()).status, 200)
  // 192 MB of buffers held: the next sample (4 a second) closes the gate
  let ballast: Buffer | undefined = Buffer.alloc(192 * 2 ** 20, 1)
  const refused = await eventually(async () => {
    const r = await ingest()
    return r.status === 429 ? r : undefined
  })
  assert.equal(refused.body.error.code, 'overloaded')
  assert.match(refused.body.error.message, /MB of heap and buffers \(limit \d+ MB\)/)
  assert.equal(refused.headers.get('retry-after'), '1')
  assert.equal(ballast.length, 192 * 2 ** 20)
  // freed: the gate opens again (a gate on RSS would not: the pages stay with the process)
  ballast = undefined
  gc()
  await eventually(async () => ((await ingest()).status === 200 ? true : undefined))
})

test('after a load the RSS falls back: the pages V8 kept of a heap that shrank go back to the system once the server is quiet', async (t) => {
  const server = new ChildServer(await freePort(), ['--data-dir', tempDir(t), '--log-level', 'warn'])
  await server.start()
  t.after(() => server.kill('SIGKILL'))
  interface Answer {
    id: string
    memory: { rss_bytes: number }
    stats: { events_in: number }
  }
  const call = async (method: string, path: string, body?: unknown): Promise<Answer> => {
    const res = await fetch(server.url + path, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    return (await res.json()) as Answer
  }
  const rssMb = async () => (await call('GET', '/api/stats')).memory.rss_bytes / 2 ** 20
  const before = await rssMb()
  // 300k open windows: a few hundred MB of heap, garbage once the pipeline is deleted
  const p = await call('POST', '/api/pipelines', {
    name: 'ballast',
    source_topic: 'load',
    start: true,
    transformation: {
      aggregate: {
        window_seconds: 3600,
        functions: ['count', { count_distinct: 'data.s' }],
        group_by: 'data.u',
      },
    },
  })
  const total = 300_000
  for (let i = 0; i < total; i += 5_000)
    await call('POST', '/api/events/ingest', {
      topic: 'load',
      events: Array.from({ length: 5_000 }, (_, k) => ({
        event_type: 'e',
        source: 's',
        timestamp: '2026-11-26T10:00:00Z',
        data: { u: `user-${i + k}`, s: `s-${(i + k) % 7}` },
      })),
    })
  for (;;) {
    if ((await call('GET', `/api/pipelines/${p.id}`)).stats.events_in >= total) break
    await new Promise((r) => setTimeout(r, 200))
  }
  const peak = await rssMb()
  assert.ok(
    peak - before > 150,
    `the load grew the RSS from ${before.toFixed(0)} to only ${peak.toFixed(0)} MB`,
  )
  assert.equal((await fetch(`${server.url}/api/pipelines/${p.id}`, { method: 'DELETE' })).status, 204)
  // quiet now: once a second, so the polling itself leaves the server idle
  let now = peak
  const deadline = Date.now() + 90_000
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1_000))
    now = await rssMb()
    if (now < before + (peak - before) / 3) break
  }
  assert.ok(
    now < before + (peak - before) / 3,
    `RSS ${before.toFixed(0)} MB before the load, ${peak.toFixed(0)} MB after it, still ${now.toFixed(0)} MB 90 s later`,
  )
})
