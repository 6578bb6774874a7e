import assert from 'node:assert/strict'
import { test } from 'node:test'
import { AggregateOperator, newAggregateOutput } from '../../src/engine/aggregate.ts'
import { parsePipeline } from '../../src/engine/pipeline-spec.ts'
import { DEFAULT_AGGREGATE_LIMITS } from '../../src/engine/stages/aggregate-spec.ts'

const limits = DEFAULT_AGGREGATE_LIMITS

function issues(body: unknown): string[] {
  const parsed = parsePipeline(body, limits)
  assert.equal(parsed.ok, false, 'expected problems')
  return parsed.ok ? [] : parsed.issues.map((i) => `${i.path} ${i.message}`)
}

function aggregate(agg: Record<string, unknown>) {
  const parsed = parsePipeline({ name: 'p', source_topic: 't', transformation: { aggregate: agg } }, limits)
  assert.ok(parsed.ok, parsed.ok ? '' : JSON.stringify(parsed.issues))
  const stage = parsed.value.stages[0]
  assert.equal(stage.kind, 'aggregate')
  return stage.kind === 'aggregate' ? stage.spec : undefined!
}

test('the seed example parses as a 60 s tumbling count', () => {
  const spec = aggregate({ window_seconds: 60, function: { count: null } })
  assert.deepEqual(spec.window, { kind: 'tumbling', sizeMs: 60_000 })
  assert.deepEqual(
    spec.functions.map((f) => f.name),
    ['count'],
  )
  assert.equal(spec.time, 'event')
  assert.equal(spec.emit, 'final')
  assert.equal(spec.idleTimeoutMs, 5_000)
})

test('every spelling of a function, and result names', () => {
  const spec = aggregate({
    window_seconds: 10,
    functions: [
      'count',
      { sum: 'data.amount' },
      { sum: { field: 'amount' } },
      { avg: { field: 'data.amount', as: 'mean' } },
      { min: 'data.amount' },
      { max: 'data.amount' },
      { count_distinct: { field: 'data.user', precision: 12 } },
      { p99: 'data.latency_ms' },
      { percentile: { field: 'data.latency_ms', q: 0.999 } },
      { count: 'data.tag' },
    ],
  })
  assert.deepEqual(
    spec.functions.map((f) => f.name),
    [
      'count',
      'sum_data_amount',
      'sum_amount',
      'mean',
      'min_data_amount',
      'max_data_amount',
      'count_distinct_data_user',
      'p99_data_latency_ms',
      'p99.9_data_latency_ms',
      'count_data_tag',
    ],
  )
  assert.deepEqual(aggregate({ window_seconds: 1, function: { count: {} } }).functions[0].name, 'count')
})

test('window kinds: hopping and session, with their bounds', () => {
  assert.deepEqual(aggregate({ window_seconds: 60, slide_seconds: 10, function: 'count' }).window, {
    kind: 'hopping',
    sizeMs: 60_000,
    slideMs: 10_000,
  })
  assert.deepEqual(aggregate({ session_gap_seconds: 30, function: 'count' }).window, {
    kind: 'session',
    gapMs: 30_000,
  })
  const agg = (a: Record<string, unknown>) => ({
    name: 'p',
    source_topic: 't',
    transformation: { aggregate: a },
  })
  assert.deepEqual(issues(agg({ window_seconds: 0, function: 'count' })), [
    '/transformation/aggregate/window_seconds must be > 0',
  ])
  assert.deepEqual(issues(agg({ window_seconds: -5, function: 'count' })), [
    '/transformation/aggregate/window_seconds must be > 0',
  ])
  assert.deepEqual(issues(agg({ window_seconds: 10, slide_seconds: 20, function: 'count' })), [
    '/transformation/aggregate/slide_seconds must be <= window_seconds',
  ])
  assert.match(
    issues(agg({ window_seconds: 3600, slide_seconds: 1, function: 'count' }))[0],
    /windows per event/,
  )
  assert.match(
    issues(agg({ window_seconds: 10, session_gap_seconds: 5, function: 'count' }))[0],
    /takes no window_seconds/,
  )
  assert.match(issues(agg({ function: 'count' }))[0], /window_seconds is required/)
  assert.match(issues(agg({ window_seconds: 10 }))[0], /function is required/)
  assert.match(issues(agg({ window_seconds: 10, function: { median: 'x' } }))[0], /unknown function 'median'/)
  assert.match(issues(agg({ window_seconds: 10, function: { sum: null } }))[0], /'sum' needs a field/)
  assert.match(
    issues(agg({ window_seconds: 10, function: { percentile: { field: 'x', q: 2 } } }))[0],
    /q must be a number in \[0, 1\]/,
  )
  assert.match(
    issues(agg({ window_seconds: 10, functions: ['count', { count: null }] }))[0],
    /two functions are named 'count'/,
  )
  assert.match(
    issues(agg({ window_seconds: 10, function: 'count', emit: 'sometimes' }))[0],
    /emit must be one of/,
  )
  assert.match(
    issues(agg({ window_seconds: 10, function: 'count', windw: 1 }))[0],
    /^\/transformation\/aggregate\/windw unknown field/,
  )
})

test('pipeline-level problems name their fields', () => {
  assert.deepEqual(issues({ source_topic: 't' })[0].split(' ')[0], '/name')
  assert.match(issues({ name: 'p', source_topic: 'bad topic!' })[0], /^\/source_topic must be a topic name/)
  assert.match(
    issues({ name: 'p', source_topic: 't', transformation: { reduce: {} } })[0],
    /unknown transformation 'reduce'/,
  )
  assert.match(
    issues({
      name: 'p',
      source_topic: 't',
      transformations: [
        { aggregate: { window_seconds: 1, function: 'count' } },
        { filter: { field: 'x', operator: 'exists' } },
      ],
    })[0],
    /aggregate must be the last transformation/,
  )
  assert.match(
    issues({ name: 'p', source_topic: 't', transformation: { filter: {} }, transformations: [] })[0],
    /either transformation or transformations/,
  )
  assert.match(issues({ name: 'p', source_topic: 't', sink_topic: 't' })[0], /must differ from source_topic/)
  assert.match(issues({ name: 'p', source_topic: 't', __proto__x: 1 })[0], /^\/__proto__x unknown field/)
  assert.match(issues([])[0], /must be an object/)
  const ok = parsePipeline({ name: 'pass', source_topic: 't' }, limits)
  assert.ok(ok.ok && ok.value.stages.length === 0, 'no transformation is a pass-through')
})

test('group-by cardinality is bounded: past it, a counted error, not memory', () => {
  const spec = aggregate({ window_seconds: 60, function: 'count', group_by: ['data.k'] })
  const op = new AggregateOperator(spec, { maxKeysPerWindow: 100 })
  const out = newAggregateOutput()
  const events = Array.from({ length: 250 }, (_, i) => ({
    id: `${i}`,
    event_type: 't',
    source: 's',
    timestamp: 1_000,
    data: { k: i % 150 },
  }))
  op.process(events, 1_000, out)
  assert.equal(op.size, 100)
  // every event of keys 100..149 is refused; the 100 keys first seen keep counting
  const refused = events.filter((e) => (e.data.k as number) >= 100).length
  assert.equal(out.errors, refused)
  assert.ok(out.deadLetters.every((d) => d.reason === 'too_many_keys'))
  op.advance(1_000_000, out)
  const counts = out.results.map((r) => r.results.count)
  assert.equal(
    counts.reduce((a, b) => a! + b!, 0),
    250 - refused,
  )
})
