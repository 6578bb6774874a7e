import type { AggregateLimits } from './aggregate.ts'
import { newPipelineOutput, Pipeline, type PipelineOutput } from './pipeline.ts'
import type { PipelineDefinition } from './pipeline-spec.ts'
import type { LookupSource } from './stages/enrich.ts'
import type { DeadLetter, Event, WindowResult } from './types.ts'

/** One step of a dry run: a batch arriving at `arrival` (its processing time), or processing time moving on. */
export type DryStep =
  | { kind: 'events'; arrival: number; events: readonly Event[]; partition?: number }
  | { kind: 'advance'; now: number }

/** What a stage did with the events that reached it. */
export interface StageCount {
  stage: 'filter' | 'map' | 'enrich' | 'aggregate'
  in: number
  out: number
  /** filter, or enrich with on_missing: drop */
  dropped?: number
  late?: number
  errors?: number
}

export interface DryRunResult {
  /** closed windows in the order they closed, then the windows still open (newest first) */
  windows: WindowResult[]
  /** windows left out past `maxWindows` */
  windowsOmitted: number
  /** what a pipeline without aggregate writes to its sink */
  records: Event[]
  recordsOmitted: number
  deadLetters: DeadLetter[]
  deadLettersOmitted: number
  stages: StageCount[]
  events: number
  watermark: number | null
  /** false when the run stopped at its work budget (`maxWork`): what is here is from the steps before */
  complete: boolean
}

export interface DryRunLimits extends AggregateLimits {
  /** most windows, records and dead letters kept in the answer (the counts stay exact) */
  maxItems: number
  /** most work units (events, windows fired, keys merged) the run may take */
  maxWork: number
}

/** work units per slice: a run checks its budget between slices */
const SLICE = 10_000

/**
 * Runs a pipeline over given steps in memory, exactly as a running pipeline would process them
 * (the same engine), and tells what it produced: for the preview endpoint and `datapulse test`.
 * Pure and synchronous; nothing is stored. Bounded by its input and `limits` (the caller bounds
 * the events).
 */
export function dryRun(
  definition: PipelineDefinition,
  lookups: LookupSource,
  limits: DryRunLimits,
  steps: readonly DryStep[],
): DryRunResult {
  const partitions = [...new Set(steps.flatMap((s) => (s.kind === 'events' ? [s.partition ?? 0] : [])))]
  const pipeline = new Pipeline(
    definition.stages,
    lookups,
    limits,
    partitions.length > 0 ? partitions.sort() : [0],
  )
  const closed: WindowResult[] = []
  const records: Event[] = []
  const deadLetters: DeadLetter[] = []
  const omitted = { windows: 0, records: 0, deadLetters: 0 }
  const totals = { in: 0, out: 0, late: 0, errors: 0 }
  const keep = <T>(into: T[], items: readonly T[], what: keyof typeof omitted) => {
    for (const item of items) {
      if (into.length < limits.maxItems) into.push(item)
      else omitted[what]++
    }
  }
  const collect = (out: PipelineOutput) => {
    totals.in += out.in
    totals.out += out.out
    totals.late += out.late
    totals.errors += out.errors
    keep(
      closed,
      out.results.filter((r) => r.closed),
      'windows',
    )
    keep(records, out.records, 'records')
    keep(deadLetters, out.deadLetters, 'deadLetters')
  }
  let work = 0
  let complete = true
  // each step in slices of bounded work, so a run that would take too long stops at its budget
  for (const step of steps) {
    if (work > limits.maxWork) {
      complete = false
      break
    }
    const out = newPipelineOutput()
    if (step.kind === 'events') work += step.events.length
    for (let done = false; !done && work <= limits.maxWork; ) {
      const budget = { left: SLICE }
      done =
        step.kind === 'events'
          ? pipeline.process(step.events, step.arrival, out, budget, step.partition ?? 0)
          : pipeline.advance(step.now, out, budget)
      work += SLICE - budget.left
      if (!done && work > limits.maxWork) complete = false
    }
    collect(out)
    if (!complete) break
  }
  const room = Math.max(0, limits.maxItems - closed.length)
  const open = pipeline.openWindows({ limit: room + 1 })
  if (open.length > room) omitted.windows += open.length - room
  const windows = [...closed, ...open.slice(0, room)]

  // per stage: what reached it, what it dropped, what went on
  const stages: StageCount[] = []
  let reached = totals.in
  let step = 0
  for (const stage of definition.stages) {
    if (stage.kind === 'aggregate') {
      stages.push({
        stage: 'aggregate',
        in: reached,
        out: reached - totals.late - totals.errors,
        late: totals.late,
        errors: totals.errors,
      })
      continue
    }
    const dropped = pipeline.dropped[step++]
    stages.push({
      stage: stage.kind,
      in: reached,
      out: reached - dropped,
      ...(dropped > 0 || stage.kind === 'filter' ? { dropped } : {}),
    })
    reached -= dropped
  }
  const wm = pipeline.aggregate?.watermark
  return {
    windows,
    windowsOmitted: omitted.windows,
    records,
    recordsOmitted: omitted.records,
    deadLetters,
    deadLettersOmitted: omitted.deadLetters,
    stages,
    events: totals.in,
    watermark: wm === undefined || !Number.isFinite(wm) ? null : wm,
    complete,
  }
}
