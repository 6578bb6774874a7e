import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { parsePipeline } from '../src/engine/pipeline-spec.ts'
import { DEFAULT_AGGREGATE_LIMITS } from '../src/engine/stages/aggregate-spec.ts'
import { EmbeddedLog } from '../src/log/embedded-log.ts'
import { silentLogger } from '../src/logger.ts'
import { type Op, runReference } from './engine/reference-model.ts'
import { ChildServer, freePort } from './helpers/child-server.ts'
import { rng } from './helpers/random.ts'
import { tempDir } from './helpers/tmp.ts'

const TOPIC = 'crash'
const PIPELINES = {
  tumbling: {
    window_seconds: 1,
    functions: ['count', { sum: 'data.v' }],
    group_by: ['data.k'],
    allowed_lateness_seconds: 0.3,
    idle_timeout_seconds: 0.5,
  },
  sessions: {
    session_gap_seconds: 0.4,
    functions: ['count', { max: 'data.v' }],
    group_by: ['data.k'],
    idle_timeout_seconds: 0.5,
  },
  hopping: {
    window_seconds: 2,
    slide_seconds: 0.5,
    functions: [{ avg: 'data.v' }, { p50: 'data.v' }],
    idle_timeout_seconds: 0.5,
  },
}

async function post(url: string, body: unknown): Promise<number> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    await res.arrayBuffer()
    return res.status
  } catch {
    return 0
  }
}

test('kill -9 at random moments: no acknowledged event lost, every window equals a run without crashes', async (t) => {
  const dataDir = tempDir(t)
  const server = new ChildServer(await freePort(), [
    '--data-dir',
    dataDir,
    '--checkpoint-interval-ms',
    '150',
    '--log-level',
    'warn',
  ])
  t.after(() => server.kill('SIGKILL'))
  await server.start()
  const ids: Record<string, string> = {}
  for (const [name, aggregate] of Object.entries(PIPELINES)) {
    const res = await fetch(`${server.url}/api/pipelines`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name, source_topic: TOPIC, start: true, transformation: { aggregate } }),
    })
    ids[name] = ((await res.json()) as { id: string }).id
  }

  const acked = new Set<string>()
  const base = Date.parse('2026-11-26T00:00:00Z')
  let running = true
  let tick = 0
  const client = async (c: number) => {
    const r = rng(100 + c)
    for (let seq = 0; running; seq++) {
      const events = Array.from({ length: r.int(1, 40) }, (_, i) => {
        tick += r.int(0, 3)
        return {
          id: `c${c}-${seq}-${i}`,
          event_type: 'm',
          source: `client-${c}`,
          timestamp: base + tick * 7 - r.int(0, r.chance(0.1) ? 2_000 : 200),
          data: { k: `k${r.int(0, 5)}`, v: r.int(-100, 1000) },
        }
      })
      const status = await post(`${server.url}/api/events/ingest`, { topic: TOPIC, events })
      if (status === 200) for (const e of events) acked.add(e.id)
      else await new Promise((res) => setTimeout(res, 30))
    }
  }
  const clients = [0, 1, 2, 3].map(client)

  const r = rng(2026)
  const kills = 6
  for (let k = 0; k < kills; k++) {
    await new Promise((res) => setTimeout(res, r.int(200, 800)))
    await server.kill('SIGKILL')
    await server.start()
  }
  await new Promise((res) => setTimeout(res, 300))
  running = false
  await Promise.all(clients)

  // quiet input: the idle timeout closes every window
  const windows = async (id: string, state: string) =>
    (
      (await (await fetch(`${server.url}/api/pipelines/${id}/window?state=${state}&limit=10000`)).json()) as {
        windows: Array<{
          window_start: string
          window_end: string
          key: Record<string, unknown> | null
          results: Record<string, number | null>
        }>
      }
    ).windows
  for (const id of Object.values(ids)) {
    for (let i = 0; (await windows(id, 'open')).length > 0; i++) {
      assert.ok(i < 400, 'windows close once input stops')
      await new Promise((res) => setTimeout(res, 25))
    }
  }
  const stats: Record<string, { events_in: number; late: number; errors: number }> = {}
  const closed: Record<string, Awaited<ReturnType<typeof windows>>> = {}
  for (const [name, id] of Object.entries(ids)) {
    stats[name] = (
      (await (await fetch(`${server.url}/api/pipelines/${id}`)).json()) as { stats: (typeof stats)[string] }
    ).stats
    closed[name] = await windows(id, 'closed')
  }
  assert.equal(await server.kill('SIGTERM'), 0)

  // the log is the truth: every acknowledged event is in it, once
  const log = new EmbeddedLog({
    dir: join(dataDir, 'log'),
    fsync: 'off',
    cacheEvents: 0,
    segmentBytes: 1 << 30,
    logger: silentLogger(),
  })
  const batches = await log.read(TOPIC, 0, Number.MAX_SAFE_INTEGER)
  await log.close()
  const logged = batches.flatMap((b) => b.events.map((e) => e.id))
  assert.equal(new Set(logged).size, logged.length, 'no event stored twice')
  const inLog = new Set(logged)
  const lost = [...acked].filter((id) => !inLog.has(id))
  assert.deepEqual(lost, [], 'no acknowledged event lost')
  assert.ok(acked.size > 500, `enough traffic (${acked.size} acknowledged)`)

  // every window equals the reference computed from exactly what is in the log
  const ops: Op[] = batches.map((b) => ({ kind: 'batch', arrival: b.appendedAt, events: b.events }))
  ops.push({ kind: 'advance', now: Number.MAX_SAFE_INTEGER / 2 })
  for (const [name, aggregate] of Object.entries(PIPELINES)) {
    const parsed = parsePipeline(
      { name, source_topic: TOPIC, transformation: { aggregate } },
      DEFAULT_AGGREGATE_LIMITS,
    )
    assert.ok(parsed.ok && parsed.value.stages[0].kind === 'aggregate')
    const spec = parsed.value.stages[0].spec
    const expected = runReference(spec, ops)
    assert.equal(stats[name].events_in, logged.length, `${name}: every logged event read once`)
    assert.equal(stats[name].late, expected.late, `${name}: late`)
    const want = new Map(expected.closed.map((w) => [`${w.start}|${w.end}|${w.key}`, w.results]))
    assert.equal(closed[name].length, want.size, `${name}: closed windows`)
    for (const w of closed[name]) {
      const keyId = JSON.stringify(w.key === null ? [] : Object.values(w.key))
      const id = `${Date.parse(w.window_start)}|${Date.parse(w.window_end)}|${keyId}`
      const ref = want.get(id)
      assert.ok(ref, `${name}: unexpected window ${id}`)
      for (const [fn, value] of Object.entries(ref)) {
        const got = w.results[fn]
        const tolerance = fn.startsWith('p') ? 0.01 : 1e-9
        assert.ok(
          value === null
            ? got === null
            : Math.abs((got as number) - value) <= tolerance * Math.abs(value) + 1e-9,
          `${name} ${id} ${fn}: got ${got}, want ${value}`,
        )
      }
    }
  }
})

test('a segment with a torn tail: the server restarts, cuts the tail with a warning, keeps every whole record', async (t) => {
  const dataDir = tempDir(t)
  const server = new ChildServer(await freePort(), ['--data-dir', dataDir, '--log-level', 'warn'])
  t.after(() => server.kill('SIGKILL'))
  await server.start()
  const created = await fetch(`${server.url}/api/pipelines`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'p',
      source_topic: 'torn',
      start: true,
      transformation: { aggregate: { window_seconds: 3600, function: 'count' } },
    }),
  })
  const { id } = (await created.json()) as { id: string }
  for (let i = 0; i < 3; i++)
    assert.equal(
      await post(`${server.url}/api/events/ingest`, {
        topic: 'torn',
        events: [{ event_type: 'e', source: 's' }],
      }),
      200,
    )
  assert.equal(await server.kill('SIGKILL'), null)
  const { appendFileSync, statSync } = await import('node:fs')
  const segment = join(dataDir, 'log', 'torn', '00000000000000000000.log')
  const size = statSync(segment).size
  appendFileSync(segment, Buffer.from([0, 0, 0, 200, 1, 2, 3, 4, 5, 6, 7]))
  await server.start()
  assert.match(server.output, /torn tail; truncating/)
  assert.equal(statSync(segment).size, size)
  for (let i = 0; ; i++) {
    const w = (await (await fetch(`${server.url}/api/pipelines/${id}/window`)).json()) as {
      windows: Array<{ results: { count: number } }>
    }
    if (w.windows[0]?.results.count === 3) break
    assert.ok(i < 200, JSON.stringify(w))
    await new Promise((res) => setTimeout(res, 25))
  }
  assert.equal(
    await post(`${server.url}/api/events/ingest`, {
      topic: 'torn',
      events: [{ event_type: 'e', source: 's' }],
    }),
    200,
  )
})
