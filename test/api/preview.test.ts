import assert from 'node:assert/strict'
import { test } from 'node:test'
import { eventJson } from '../../src/engine/result-shape.ts'
import { randomOps, randomSpec } from '../engine/generators.ts'
import { rng } from '../helpers/random.ts'
import { eventually, manualClock, startServer } from '../helpers/server.ts'

type Window = {
  window_start: string
  window_end: string
  key: unknown
  results: unknown
  closed: boolean
  version?: number
}
const order = (ws: Window[]) =>
  [...ws].sort((a, b) =>
    `${a.window_start}|${a.window_end}|${JSON.stringify(a.key)}`.localeCompare(
      `${b.window_start}|${b.window_end}|${JSON.stringify(b.key)}`,
    ),
  )

test('a preview over a topic equals what the same spec produces when created and run (20 generated specs)', async (t) => {
  const clock = manualClock(1_700_000_100_000)
  const server = await startServer(t, { clock: clock.now })
  let windows = 0
  for (let seed = 1; seed <= 20; seed++) {
    const r = rng(seed)
    const aggregate = randomSpec(r)
    const topic = `preview-${seed}`
    const spec = {
      name: `p${seed}`,
      source_topic: topic,
      transformations: [
        { filter: { field: 'data.amount', operator: 'gt', value: 0 } },
        { aggregate: { ...aggregate, emit: 'final' } },
      ],
    }
    let total = 0
    // each batch is a request, all at the clock's one moment: no idle time passes in either run
    for (const op of randomOps(r)) {
      if (op.kind !== 'batch' || op.events.length === 0) continue
      const res = await server.call('POST', '/api/events/ingest', { topic, events: op.events.map(eventJson) })
      assert.equal(res.status, 200)
      total += op.events.length
    }
    const preview = await server.call('POST', '/api/pipelines/preview', { pipeline: spec, last: 10_000 })
    assert.equal(preview.status, 200, JSON.stringify(preview.body))
    assert.equal(preview.body.complete, true)
    assert.equal(preview.body.events, total)
    // nothing of the preview was kept
    assert.deepEqual((await server.call('GET', '/api/pipelines')).body.pipelines, [])

    const created = await server.call('POST', '/api/pipelines', { ...spec, start: true })
    assert.equal(created.status, 201)
    const id = created.body.id
    const stats = await eventually(async () => {
      const s = (await server.call('GET', `/api/pipelines/${id}`)).body.stats
      // everything read and written (the store's commit follows the counters)
      return s.events_in === total && s.pending_results === 0 ? s : undefined
    })
    const all = async () =>
      (await server.call('GET', `/api/pipelines/${id}/window?state=all&limit=10000`)).body.windows as Window[]
    // closed windows reach the store a moment after the counters (PostgreSQL commits are awaited apart)
    const ran =
      (await eventually(async () => {
        const w = await all()
        return w.length === preview.body.windows.length ? w : undefined
      }, 5_000).catch(() => undefined)) ?? (await all())
    // a running pipeline's windows say the version that made them; a preview has none
    assert.ok(ran.every((w) => w.version === 1))
    const unversioned = ran.map(({ version: _v, ...w }) => w)
    assert.deepEqual(order(preview.body.windows), order(unversioned), `seed ${seed}: windows`)
    windows += ran.length
    const [filter, agg] = preview.body.stages
    assert.deepEqual(
      [filter.in, filter.dropped, agg.late, agg.errors],
      [stats.events_in, stats.filtered, stats.late, stats.errors],
      `seed ${seed}: counts`,
    )
    const dead = await eventually(
      async () => {
        const stored = (await server.call('GET', `/api/pipelines/${id}/dead-letters?limit=1000`)).body
          .dead_letters
        return stored.length === preview.body.dead_letters.length ? stored : undefined
      },
      5_000,
      `seed ${seed}: dead letters`,
    )
    assert.deepEqual(
      dead.map((d: { reason: string }) => d.reason).sort(),
      preview.body.dead_letters.map((d: { reason: string }) => d.reason).sort(),
    )
    await server.call('DELETE', `/api/pipelines/${id}`)
  }
  assert.ok(windows > 100, `enough windows compared (${windows})`)
})

test('a preview over inline events: windows, transformed records, dead letters and counts per stage', async (t) => {
  const server = await startServer(t)
  const at = (s: number) => new Date(Date.parse('2026-12-01T00:00:00Z') + s * 1000).toISOString()
  const events = [
    { event_type: 'click', source: 's', timestamp: at(1), data: { user: 'a', v: 2 } },
    { event_type: 'view', source: 's', timestamp: at(2), data: { user: 'a', v: 3 } },
    { event_type: 'click', source: 's', timestamp: at(3), data: { user: 'b', v: 'x' } },
    { event_type: 'click', source: 's', timestamp: at(90), data: { user: 'b', v: 4 } },
    { event_type: 'click', source: 's', timestamp: at(10), data: { user: 'a', v: 5 } },
  ]
  const res = await server.call('POST', '/api/pipelines/preview', {
    pipeline: {
      name: 'clicks',
      source_topic: 'events',
      transformations: [
        { filter: { field: 'event_type', operator: 'eq', value: 'click' } },
        {
          aggregate: {
            window_seconds: 60,
            functions: ['count', { sum: 'data.v' }],
            group_by: ['data.user'],
          },
        },
      ],
    },
    events,
  })
  assert.equal(res.status, 200)
  const b = res.body
  assert.deepEqual(
    b.stages.map((s: Record<string, number>) => [s.stage, s.in, s.out]),
    [
      ['filter', 5, 4],
      ['aggregate', 4, 2],
    ],
  )
  assert.deepEqual(
    b.dead_letters.map((d: { reason: string; event: { data: unknown } }) => [d.reason, d.event.data]),
    [
      ['type_mismatch', { user: 'b', v: 'x' }],
      ['late', { user: 'a', v: 5 }],
    ],
  )
  assert.deepEqual(
    b.windows.map((w: Window) => [w.window_start, w.key, w.results, w.closed]),
    [
      [at(0), { 'data.user': 'a' }, { count: 1, sum_data_v: 2 }, true],
      [at(60), { 'data.user': 'b' }, { count: 1, sum_data_v: 4 }, false],
    ],
  )
  assert.equal(b.watermark, at(90))

  // a stateless chain answers with the events it would write
  const mapped = await server.call('POST', '/api/pipelines/preview', {
    pipeline: { name: 'm', source_topic: 'events', transformation: { map: { set: { 'data.seen': true } } } },
    events: events.slice(0, 2),
  })
  assert.equal(mapped.status, 200)
  assert.deepEqual(
    mapped.body.records.map((e: { data: unknown }) => e.data),
    [
      { user: 'a', v: 2, seen: true },
      { user: 'a', v: 3, seen: true },
    ],
  )
})

test('a preview is refused with the field at fault, stores nothing, and stops at its work budget', async (t) => {
  const server = await startServer(t)
  const spec = {
    name: 'x',
    source_topic: 't',
    transformation: { aggregate: { window_seconds: 60, function: 'count' } },
  }
  const refused = async (body: unknown, path: string) => {
    const res = await server.call('POST', '/api/pipelines/preview', body)
    assert.equal(res.status, 400, JSON.stringify(res.body))
    assert.equal(res.body.error.details[0].path, path, JSON.stringify(res.body))
  }
  await refused(
    {
      pipeline: { ...spec, transformation: { aggregate: { window_seconds: 0, function: 'count' } } },
      events: [],
    },
    '/pipeline/transformation/aggregate/window_seconds',
  )
  await refused({ events: [] }, '/pipeline')
  await refused(
    { pipeline: spec, events: [{ event_type: 'e', source: 's', timestamp: 'soon' }] },
    '/events/0/timestamp',
  )
  await refused({ pipeline: spec, events: [], topic: 't' }, '/topic')
  await refused({ pipeline: spec, last: 0 }, '/last')
  await refused({ pipeline: spec, last: 10_001 }, '/last')
  await refused({ pipeline: spec, topic: '..' }, '/topic')
  await refused({ pipeline: spec, later: 1 }, '/later')
  await refused([], '')
  assert.deepEqual((await server.call('GET', '/api/pipelines')).body.pipelines, [])
  assert.deepEqual(server.runtime.log.topics(), [])

  // a topic that does not exist previews as nothing
  const empty = await server.call('POST', '/api/pipelines/preview', { pipeline: spec, topic: 'nothing-here' })
  assert.equal(empty.status, 200)
  assert.deepEqual([empty.body.events, empty.body.windows], [0, []])

  // 10,000 events of distinct keys closing hopping windows of 1,000 panes each: far past the budget
  const base = Date.parse('2026-12-01T00:00:00Z')
  const many = Array.from({ length: 10_000 }, (_, i) => ({
    event_type: 'e',
    source: 's',
    timestamp: new Date(base + i * 1_000).toISOString(),
    data: { k: i },
  }))
  const started = performance.now()
  const heavy = await server.call('POST', '/api/pipelines/preview', {
    pipeline: {
      name: 'h',
      source_topic: 't',
      transformation: {
        aggregate: { window_seconds: 1_000, slide_seconds: 1, function: 'count', group_by: 'data.k' },
      },
    },
    events: many,
  })
  assert.equal(heavy.status, 200)
  assert.equal(heavy.body.complete, false)
  assert.ok(heavy.body.windows.length <= 1_000)
  assert.ok(performance.now() - started < 5_000, `answered in ${Math.round(performance.now() - started)} ms`)
})
