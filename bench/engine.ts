import { clearOutput, newPipelineOutput, Pipeline } from '../src/engine/pipeline.ts'
import { parsePipeline } from '../src/engine/pipeline-spec.ts'
import { DEFAULT_AGGREGATE_LIMITS } from '../src/engine/stages/aggregate-spec.ts'
import type { Event } from '../src/engine/types.ts'
import { generateEvents } from './generate.ts'

export interface BenchRow {
  bench: string
  value: number
  unit: string
  ceiling?: number
  ceilingName?: string
  target?: string
  ok?: boolean
}

function pipelineOf(
  transformations: unknown[],
  lookups = new Map<string, Record<string, unknown>>(),
): Pipeline {
  const parsed = parsePipeline(
    { name: 'bench', source_topic: 't', transformations },
    DEFAULT_AGGREGATE_LIMITS,
  )
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues))
  return new Pipeline(
    parsed.value.stages,
    { get: (_t, k) => lookups.get(k) },
    { maxKeysPerWindow: 10_000_000 },
  )
}

/**
 * Runs `events` through a fresh pipeline in 1,000-event batches, pass after pass for about
 * `seconds`; events per second. Each pass starts from empty state (event time restarts).
 */
function throughput(make: () => Pipeline, events: Event[], seconds: number): number {
  const out = newPipelineOutput()
  const batch = 1_000
  let processed = 0
  const started = performance.now()
  const deadline = started + seconds * 1000
  let arrival = events[0].timestamp
  while (performance.now() < deadline) {
    const pipeline = make()
    for (let i = 0; i + batch <= events.length; i += batch) {
      const slice = events.slice(i, i + batch)
      arrival = slice[slice.length - 1].timestamp
      pipeline.process(slice, arrival, out)
      clearOutput(out)
      processed += batch
    }
  }
  return processed / ((performance.now() - started) / 1000)
}

/** The ceiling for per-event work: a loop that reads one field of each event and counts it in a Map. */
function bareLoop(events: Event[], seconds: number): number {
  const counts = new Map<string, number>()
  let processed = 0
  const started = performance.now()
  const deadline = started + seconds * 1000
  while (performance.now() < deadline) {
    for (let i = 0; i < events.length; i++) {
      const k = events[i].data.user_id as string
      counts.set(k, (counts.get(k) ?? 0) + 1)
    }
    processed += events.length
  }
  return processed / ((performance.now() - started) / 1000)
}

export function engineBenches(quick: boolean): BenchRow[] {
  const seconds = quick ? 0.6 : 2
  // time restarts for every pass, so windows keep closing as in a live stream
  const n = quick ? 200_000 : 1_000_000
  const events = generateEvents(n, { keys: 10_000, stepMs: 1, disorderMs: 50 })
  const ceiling = bareLoop(events, seconds)
  const row = (
    bench: string,
    value: number,
    target: number,
    what = 'bare loop: read a field, count in a Map',
  ) => ({
    bench,
    value,
    unit: 'events/s',
    ceiling,
    ceilingName: what,
    target: `>= ${target / 1e6}M`,
    ok: value >= target,
  })
  const rows: BenchRow[] = [row('engine bare loop (the ceiling itself)', ceiling, 0)]
  rows.push(
    row(
      'engine: filter (eq)',
      throughput(
        () => pipelineOf([{ filter: { field: 'event_type', operator: 'eq', value: 'click' } }]),
        events,
        seconds,
      ),
      10e6,
    ),
  )
  rows.push(
    row(
      'engine: map (rename + set)',
      throughput(
        () => pipelineOf([{ map: { mappings: { 'data.user_id': 'data.user' }, set: { 'data.v': 1 } } }]),
        events,
        seconds,
      ),
      3e6,
    ),
  )
  const users = new Map(
    Array.from({ length: 10_000 }, (_, i) => [`u${i}`, { tier: i % 3 === 0 ? 'gold' : 'free' }]),
  )
  rows.push(
    row(
      'engine: enrich',
      throughput(
        () =>
          pipelineOf(
            [{ enrich: { table: 'users', key_field: 'data.user_id', target_field: 'data.user' } }],
            users,
          ),
        events,
        seconds,
      ),
      3e6,
    ),
  )
  rows.push(
    row(
      'engine: tumbling count by key (10k keys)',
      throughput(
        () =>
          pipelineOf([{ aggregate: { window_seconds: 60, function: 'count', group_by: ['data.user_id'] } }]),
        events,
        seconds,
      ),
      2e6,
    ),
  )
  rows.push(
    row(
      'engine: hopping 60s/10s avg by key',
      throughput(
        () =>
          pipelineOf([
            {
              aggregate: {
                window_seconds: 60,
                slide_seconds: 10,
                function: { avg: 'data.amount' },
                group_by: ['data.user_id'],
              },
            },
          ]),
        events,
        seconds,
      ),
      0.5e6,
    ),
  )
  rows.push(
    row(
      'engine: session count by key (gap 30s)',
      throughput(
        () =>
          pipelineOf([
            { aggregate: { session_gap_seconds: 30, function: 'count', group_by: ['data.user_id'] } },
          ]),
        events,
        seconds,
      ),
      0.5e6,
    ),
  )
  rows.push(
    row(
      'engine: tumbling p99 by page',
      throughput(
        () =>
          pipelineOf([
            {
              aggregate: {
                window_seconds: 60,
                function: { p99: 'data.latency_ms' },
                group_by: ['data.page'],
              },
            },
          ]),
        events,
        seconds,
      ),
      0.5e6,
    ),
  )
  rows[0].target = undefined
  rows[0].ok = undefined
  return rows
}
