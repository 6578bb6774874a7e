import assert from 'node:assert/strict'
import { test } from 'node:test'
import { eventually, manualClock, startServer, type TestServer } from '../helpers/server.ts'
import { tempDir } from '../helpers/tmp.ts'

type Window = {
  window_start: string
  key: { 'data.k': string } | null
  results: Record<string, number | null>
  closed: boolean
  version?: number
}
type Replay = {
  from: string | number
  state: 'replaying' | 'done'
  recomputes_from: string | null
  start: number
  position: number
  target: number
  skipped: number
  events_per_second: number | null
}

const BASE = Date.parse('2026-11-26T10:00:00Z')
const at = (ms: number) => new Date(BASE + ms).toISOString()
const id = (w: Window) => `${w.window_start}|${w.key?.['data.k']}`

/** 60 s of event time, 5 keys, every tenth event 'noise' and every seventh 'x': in request-sized batches. */
function stream(): Array<Array<{ event_type: string; source: string; timestamp: string; data: object }>> {
  const batches = []
  for (let b = 0; b < 30; b++)
    batches.push(
      Array.from({ length: 20 }, (_, j) => {
        const i = b * 20 + j
        return {
          event_type: i % 10 === 0 ? 'noise' : i % 7 === 0 ? 'x' : 'e',
          source: 's',
          timestamp: at(i * 100),
          data: { k: `k${i % 5}`, v: i % 13 },
        }
      }),
    )
  return batches
}

/** Tumbling 10 s count and sum by key, after a filter on event_type. */
const spec = (name: string, drop: string[]) => ({
  name,
  source_topic: 'in',
  transformations: [
    ...drop.map((value) => ({ filter: { field: 'event_type', operator: 'ne', value } })),
    { aggregate: { window_seconds: 10, functions: ['count', { sum: 'data.v' }], group_by: ['data.k'] } },
  ],
})

/** The windows a spec dropping `drop` gives over the stream, by brute force: window start|key → [count, sum]. */
function reference(drop: string[], from = Number.NEGATIVE_INFINITY): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>()
  for (const e of stream().flat()) {
    const ts = Date.parse(e.timestamp)
    if (drop.includes(e.event_type) || ts < from) continue
    const start = ts - (ts % 10_000)
    const k = `${new Date(start).toISOString()}|${(e.data as { k: string }).k}`
    const [n, sum] = out.get(k) ?? [0, 0]
    out.set(k, [n + 1, sum + (e.data as { v: number }).v])
  }
  return out
}

async function send(server: TestServer, events: object[]): Promise<void> {
  const res = await server.call('POST', '/api/events/ingest', { topic: 'in', events })
  assert.equal(res.status, 200, JSON.stringify(res.body))
}

/** One event far ahead: every window of the stream closes. */
const flush = { event_type: 'e', source: 's', timestamp: at(1_000_000), data: { k: 'flush', v: 0 } }

/** Sends the batches in order, the clock moving on between them, then (`flushed`) the flush; the events sent. */
async function sendAll(
  server: TestServer,
  clock: ReturnType<typeof manualClock>,
  batches: object[][],
  flushed = true,
): Promise<number> {
  let sent = 0
  for (const batch of batches) {
    await send(server, batch)
    sent += batch.length
    clock.advance(100)
  }
  if (flushed) await send(server, [flush])
  return sent + (flushed ? 1 : 0)
}

async function settled(server: TestServer, pipeline: string, events: number) {
  return eventually(async () => {
    const p = (await server.call('GET', `/api/pipelines/${pipeline}`)).body
    const replay = p.stats.replay as Replay | undefined
    return p.stats.events_in === events &&
      p.stats.pending_results === 0 &&
      p.stats.lag === 0 &&
      (replay === undefined || replay.state === 'done')
      ? p
      : undefined
  }, 15_000)
}

async function closed(server: TestServer, pipeline: string): Promise<Window[]> {
  const res = await server.call('GET', `/api/pipelines/${pipeline}/window?state=closed&limit=10000`)
  assert.equal(res.status, 200)
  return res.body.windows as Window[]
}

test('a replay from earliest gives the same closed results as the first run, no duplicate rows, then runs live; a restart still shows it', async (t) => {
  const clock = manualClock(BASE + 3_600_000)
  const dataDir = tempDir(t)
  let server = await startServer(t, { clock: clock.now, dataDir })
  const p = (await server.call('POST', '/api/pipelines', { ...spec('p', ['noise']), start: true })).body
  const sent = await sendAll(server, clock, stream())
  await settled(server, p.id, sent)
  const first = await closed(server, p.id)
  assert.equal(first.length, reference(['noise']).size)

  clock.advance(1_000)
  const res = await server.call('POST', `/api/pipelines/${p.id}/replay`, { from: 'earliest' })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.equal(res.body.status, 'running')
  const asked = res.body.stats.replay as Replay
  assert.deepEqual(
    [asked.from, asked.recomputes_from, asked.start, asked.target],
    ['earliest', null, 0, sent],
  )
  const after = await settled(server, p.id, sent)
  const replay = after.stats.replay as Replay
  assert.deepEqual([replay.state, replay.position, replay.target, replay.skipped], ['done', sent, sent, 0])
  // the test's clock stands still: no time passed, no rate to give
  assert.equal(replay.events_per_second, null)
  const again = await closed(server, p.id)
  assert.equal(new Set(again.map(id)).size, again.length, 'no window twice')
  assert.deepEqual(
    again.sort((a, b) => id(a).localeCompare(id(b))),
    first.sort((a, b) => id(a).localeCompare(id(b))),
  )
  // the counters started again: one pass over the log, not two
  assert.equal(after.stats.events_in, sent)

  // live again: a new event is read and its window opens
  await send(server, [{ ...flush, timestamp: at(1_000_001), data: { k: 'live', v: 1 } }])
  await settled(server, p.id, sent + 1)
  const open = (await server.call('GET', `/api/pipelines/${p.id}/window?state=open&key.data.k=live`)).body
    .windows
  assert.equal(open[0].results.count, 1)

  await server.close()
  server = await startServer(t, { clock: clock.now, dataDir })
  const restarted = (await server.call('GET', `/api/pipelines/${p.id}`)).body
  assert.equal(restarted.stats.replay.state, 'done')
  assert.equal(restarted.stats.replay.from, 'earliest')
})

test('after a changed filter, a replay from a time or an offset recomputes from there with the new spec; the windows before stay as made', async (t) => {
  const clock = manualClock(BASE + 3_600_000)
  const server = await startServer(t, { clock: clock.now })
  const p = (await server.call('POST', '/api/pipelines', { ...spec('p', ['noise']), start: true })).body
  const sent = await sendAll(server, clock, stream())
  await settled(server, p.id, sent)

  // the filter now drops 'x' too: a change the window state survives, so no reset
  const put = await server.call('PUT', `/api/pipelines/${p.id}`, spec('p', ['noise', 'x']))
  assert.equal(put.status, 200, JSON.stringify(put.body))
  assert.equal(put.body.version, 2)

  // from 10:00:34.5: the window holding it (10:00:30) is the first recomputed
  const res = await server.call('POST', `/api/pipelines/${p.id}/replay`, { from: at(34_500) })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.equal(res.body.stats.replay.recomputes_from, at(30_000))
  const after = await settled(server, p.id, 2 * sent)
  const oldSpec = reference(['noise'])
  const newSpec = reference(['noise', 'x'])
  const check = (windows: Window[], cut: number) => {
    const keys = new Set<string>()
    for (const w of windows) {
      if (w.key?.['data.k'] === 'flush') continue
      keys.add(id(w))
      const recomputed = Date.parse(w.window_start) >= BASE + cut
      const want = (recomputed ? newSpec : oldSpec).get(id(w))
      assert.ok(want, `${id(w)} is a window of the stream`)
      assert.deepEqual([w.results.count, w.results.sum_data_v], want, id(w))
      assert.equal(w.version, recomputed ? 2 : 1, `${id(w)}: version`)
    }
    const expected = [...oldSpec.keys()].filter((k) => Date.parse(k.split('|')[0]) < BASE + cut)
    expected.push(...[...newSpec.keys()].filter((k) => Date.parse(k.split('|')[0]) >= BASE + cut))
    assert.deepEqual([...keys].sort(), expected.sort())
  }
  check(await closed(server, p.id), 30_000)
  // the events before 10:00:30 that pass the filter were read and skipped: their windows stayed
  const before = stream()
    .flat()
    .filter((e) => e.event_type === 'e' && Date.parse(e.timestamp) < BASE + 30_000).length
  assert.equal(after.stats.replay.skipped, before)

  // from an offset: the event there (offset 100, at 10:00:10) begins the recomputed windows; the
  // log is read from the first record appended after that time (here: all of it, appended later)
  const fromOffset = await server.call('POST', `/api/pipelines/${p.id}/replay`, { from: 100 })
  assert.equal(fromOffset.status, 200, JSON.stringify(fromOffset.body))
  assert.equal(fromOffset.body.stats.replay.recomputes_from, at(10_000))
  assert.equal(fromOffset.body.stats.replay.start, 0)
  await settled(server, p.id, 3 * sent)
  check(await closed(server, p.id), 10_000)
})

test('a replay never drops an open window: asked inside them, it begins at the oldest still open; counts equal a pipeline never replayed', async (t) => {
  const clock = manualClock(BASE + 3_600_000)
  const server = await startServer(t, { clock: clock.now })
  const p = (await server.call('POST', '/api/pipelines', { ...spec('p', ['noise']), start: true })).body
  const ref = (await server.call('POST', '/api/pipelines', { ...spec('ref', ['noise']), start: true })).body
  const batches = stream()
  let sent = await sendAll(server, clock, batches.slice(0, 20), false)
  await settled(server, p.id, sent)
  const openBefore = (await server.call('GET', `/api/pipelines/${p.id}/window?state=open`)).body.windows
  assert.ok(openBefore.length > 0)
  // the stream is at 10:00:39.9: the window 10:00:30 is open; asking for 10:00:39 gives it back whole
  const res = await server.call('POST', `/api/pipelines/${p.id}/replay`, { from: at(39_000) })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.equal(res.body.stats.replay.recomputes_from, at(30_000))
  const replayed = sent
  await settled(server, p.id, sent + replayed)
  const openAfter = (await server.call('GET', `/api/pipelines/${p.id}/window?state=open`)).body.windows
  assert.deepEqual(
    openAfter.map((w: Window) => [id(w), w.results.count]),
    openBefore.map((w: Window) => [id(w), w.results.count]),
  )
  sent += await sendAll(server, clock, batches.slice(20))
  await settled(server, ref.id, sent)
  await settled(server, p.id, sent + replayed)
  const got = (await closed(server, p.id)).map((w) => [id(w), w.results.count, w.results.sum_data_v])
  const want = (await closed(server, ref.id)).map((w) => [id(w), w.results.count, w.results.sum_data_v])
  assert.deepEqual(got.sort(), want.sort())
})

test('replay refusals: a bad "from" is a 400, a session from a time and an offset past the end are 409s; nothing changes', async (t) => {
  const clock = manualClock(BASE + 3_600_000)
  const server = await startServer(t, { clock: clock.now })
  const p = (await server.call('POST', '/api/pipelines', { ...spec('p', ['noise']), start: true })).body
  const sessions = (
    await server.call('POST', '/api/pipelines', {
      name: 's',
      source_topic: 'in',
      transformation: { aggregate: { session_gap_seconds: 5, functions: ['count'], group_by: ['data.k'] } },
      start: true,
    })
  ).body
  await send(server, stream()[0])
  await settled(server, p.id, 20)
  for (const body of [
    {},
    { from: 'yesterday' },
    { from: -1 },
    { from: 1.5 },
    { from: '2026-02-30T00:00:00Z' },
    { from: null },
    { from: 'earliest', extra: 1 },
    [],
  ]) {
    const res = await server.call('POST', `/api/pipelines/${p.id}/replay`, body)
    assert.equal(res.status, 400, JSON.stringify(body))
    assert.equal(res.body.error.code, 'validation_error', JSON.stringify(res.body))
  }
  assert.equal((await server.call('POST', '/api/pipelines/nope/replay', { from: 'earliest' })).status, 404)
  const session = await server.call('POST', `/api/pipelines/${sessions.id}/replay`, { from: at(0) })
  assert.equal(session.status, 409)
  assert.match(session.body.error.message, /earliest/)
  const past = await server.call('POST', `/api/pipelines/${p.id}/replay`, { from: 1_000 })
  assert.equal(past.status, 409)
  assert.match(past.body.error.message, /nothing to replay/)
  const now = (await server.call('GET', `/api/pipelines/${p.id}`)).body
  assert.equal(now.stats.replay, undefined)
  assert.equal(now.status, 'running')
  assert.equal(now.stats.events_in, 20)
  // sessions replay the whole log
  const whole = await server.call('POST', `/api/pipelines/${sessions.id}/replay`, { from: 'earliest' })
  assert.equal(whole.status, 200, JSON.stringify(whole.body))
  await settled(server, sessions.id, 20)
})
