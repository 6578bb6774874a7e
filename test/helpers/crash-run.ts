import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { parsePipeline } from '../../src/engine/pipeline-spec.ts'
import { DEFAULT_AGGREGATE_LIMITS } from '../../src/engine/stages/aggregate-spec.ts'
import type { LogBatch } from '../../src/log/log.ts'
import { type Op, runReference } from '../engine/reference-model.ts'
import { ChildServer, freePort } from './child-server.ts'
import { rng } from './random.ts'

/** The pipelines a crash run checks: every window kind. */
export const CRASH_PIPELINES = {
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

type Windows = Array<{
  window_start: string
  window_end: string
  key: Record<string, unknown> | null
  results: Record<string, number | null>
}>

/** A server in a child process as the crash tests run it (checkpoints every 150 ms), killed after the test. */
export async function crashServer(
  t: TestContext,
  dataDir: string,
  extra: string[] = [],
): Promise<ChildServer> {
  const server = new ChildServer(await freePort(), [
    '--data-dir',
    dataDir,
    '--checkpoint-interval-ms',
    '150',
    '--log-level',
    'warn',
    ...extra,
  ])
  t.after(() => server.kill('SIGKILL'))
  await server.start()
  return server
}

export async function post(url: string, body: unknown): Promise<number> {
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

/** The sink topic of a crash pipeline (with `sinks`). */
export function sinkOf(topic: string, pipeline: string): string {
  return `${topic}-${pipeline}-out`
}

/**
 * Creates the pipelines (with `sinks`, each writing to `sinkOf(topic, name)`), runs 4 ingesting clients while the server is killed with SIGKILL
 * `kills` times at seeded random moments (and restarted), waits for every window to close, and
 * returns what the server says beside the ids it acknowledged.
 */
export async function crashRun(server: ChildServer, topic: string, kills: number, sinks = false) {
  const ids: Record<string, string> = {}
  for (const [name, aggregate] of Object.entries(CRASH_PIPELINES)) {
    const res = await fetch(`${server.url}/api/pipelines`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        name,
        source_topic: topic,
        start: true,
        transformation: { aggregate },
        ...(sinks ? { sink_topic: sinkOf(topic, name) } : {}),
      }),
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
      const status = await post(`${server.url}/api/events/ingest`, { topic, events })
      if (status === 200) for (const e of events) acked.add(e.id)
      else await new Promise((res) => setTimeout(res, 30))
    }
  }
  const clients = [0, 1, 2, 3].map(client)
  const r = rng(2026)
  try {
    for (let k = 0; k < kills; k++) {
      await new Promise((res) => setTimeout(res, r.int(200, 800)))
      await server.kill('SIGKILL')
      await server.start()
    }
    await new Promise((res) => setTimeout(res, 300))
  } finally {
    // the clients stop whatever happened: a failed restart must end the test, not leave them posting
    running = false
    await Promise.all(clients)
  }

  const windows = async (id: string, state: string) =>
    (
      (await (await fetch(`${server.url}/api/pipelines/${id}/window?state=${state}&limit=10000`)).json()) as {
        windows: Windows
      }
    ).windows
  for (const id of Object.values(ids)) {
    for (let i = 0; (await windows(id, 'open')).length > 0; i++) {
      assert.ok(i < 800, 'windows close once input stops')
      await new Promise((res) => setTimeout(res, 25))
    }
  }
  const stats: Record<string, { events_in: number; late: number; errors: number }> = {}
  const closed: Record<string, Windows> = {}
  for (const [name, id] of Object.entries(ids)) {
    stats[name] = (
      (await (await fetch(`${server.url}/api/pipelines/${id}`)).json()) as { stats: (typeof stats)[string] }
    ).stats
    closed[name] = await windows(id, 'closed')
  }
  return { acked, stats, closed }
}

/** Every acknowledged event is in `batches` once, and every window equals the reference computed from them. */
export function assertExact(
  run: Awaited<ReturnType<typeof crashRun>>,
  topic: string,
  batches: LogBatch[],
): void {
  const logged = batches.flatMap((b) => b.events.map((e) => e.id))
  assert.equal(new Set(logged).size, logged.length, 'no event stored twice')
  const inLog = new Set(logged)
  assert.deepEqual(
    [...run.acked].filter((id) => !inLog.has(id)),
    [],
    'no acknowledged event lost',
  )
  assert.ok(run.acked.size > 500, `enough traffic (${run.acked.size} acknowledged)`)
  const ops: Op[] = batches.map((b) => ({ kind: 'batch', arrival: b.appendedAt, events: b.events }))
  ops.push({ kind: 'advance', now: Number.MAX_SAFE_INTEGER / 2 })
  for (const [name, aggregate] of Object.entries(CRASH_PIPELINES)) {
    const parsed = parsePipeline(
      { name, source_topic: topic, transformation: { aggregate } },
      DEFAULT_AGGREGATE_LIMITS,
    )
    assert.ok(parsed.ok && parsed.value.stages[0].kind === 'aggregate')
    const expected = runReference(parsed.value.stages[0].spec, ops)
    assert.equal(run.stats[name].events_in, logged.length, `${name}: every logged event read once`)
    assert.equal(run.stats[name].late, expected.late, `${name}: late`)
    const want = new Map(expected.closed.map((w) => [`${w.start}|${w.end}|${w.key}`, w.results]))
    assert.equal(run.closed[name].length, want.size, `${name}: closed windows`)
    for (const w of run.closed[name]) {
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
}
