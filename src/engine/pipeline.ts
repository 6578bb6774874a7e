import {
  type AggregateLimits,
  AggregateOperator,
  type AggregateOutput,
  newAggregateOutput,
  type PartitionedSnapshot,
  type SnapshotParts,
} from './aggregate.ts'
import type { Stage } from './pipeline-spec.ts'
import { compileEnrich, type LookupSource } from './stages/enrich.ts'
import { compileCondition } from './stages/filter.ts'
import { compileMap } from './stages/map.ts'
import type { Event, JsonValue, WindowResult } from './types.ts'
import type { Budget } from './window-state/slot.ts'

/** What one batch produced. `records` are the transformed events of a pipeline without aggregate. */
export interface PipelineOutput extends AggregateOutput {
  records: Event[]
  /** events read */
  in: number
  /** events that passed every stage (into a window, or out as records) */
  out: number
  /** events dropped by filter (or enrich with on_missing: drop) */
  filtered: number
}

export function newPipelineOutput(): PipelineOutput {
  return { ...newAggregateOutput(), records: [], in: 0, out: 0, filtered: 0 }
}

export function clearOutput(out: PipelineOutput): void {
  out.records.length = 0
  out.results.length = 0
  out.deadLetters.length = 0
  out.in = out.out = out.filtered = out.late = out.errors = out.skipped = 0
}

type Step = (event: Event) => Event | undefined

/** A compiled transformation chain: stateless steps, then at most one window operator. */
export class Pipeline {
  readonly #steps: Step[]
  readonly aggregate: AggregateOperator | null
  /** events each stateless stage dropped, in stage order (counted on the drop path only) */
  readonly dropped: number[]
  readonly #passed: Event[] = []
  /** the batch being processed in slices, and the next of its events to hand to the aggregate */
  #resuming: readonly Event[] | undefined
  #from = 0

  constructor(
    stages: readonly Stage[],
    lookups: LookupSource,
    limits: AggregateLimits,
    partitions?: readonly number[],
  ) {
    const steps: Step[] = []
    let aggregate: AggregateOperator | null = null
    for (const stage of stages) {
      switch (stage.kind) {
        case 'filter': {
          const pred = compileCondition(stage.condition)
          steps.push((e) => (pred(e) ? e : undefined))
          break
        }
        case 'map':
          steps.push(compileMap(stage.spec))
          break
        case 'enrich':
          steps.push(compileEnrich(stage.spec, lookups))
          break
        case 'aggregate':
          aggregate = new AggregateOperator(stage.spec, limits, partitions)
          break
      }
    }
    this.#steps = steps
    this.dropped = steps.map(() => 0)
    this.aggregate = aggregate
  }

  /**
   * Runs a batch of one source partition through the chain. With a `budget`, firing windows may stop it short (false):
   * call again with the same batch and it goes on where it stopped (see AggregateOperator.process).
   */
  process(
    events: readonly Event[],
    arrivalMs: number,
    out: PipelineOutput,
    budget?: Budget,
    partition = 0,
  ): boolean {
    const steps = this.#steps
    const passed = this.aggregate ? this.#passed : out.records
    if (this.#resuming !== events) {
      const start = passed.length
      out.in += events.length
      outer: for (let i = 0; i < events.length; i++) {
        let e: Event | undefined = events[i]
        for (let s = 0; s < steps.length; s++) {
          e = steps[s](e)
          if (e === undefined) {
            out.filtered++
            this.dropped[s]++
            continue outer
          }
        }
        passed.push(e)
      }
      if (!this.aggregate) {
        out.out += passed.length - start
        return true
      }
      this.#from = 0
    }
    const aggregate = this.aggregate as AggregateOperator
    const before = out.late + out.errors + out.skipped
    const next = aggregate.process(passed, arrivalMs, out, this.#from, budget, partition)
    out.out += next - this.#from - (out.late + out.errors + out.skipped - before)
    if (next < passed.length || aggregate.busy) {
      this.#resuming = events
      this.#from = next
      return false
    }
    this.#resuming = undefined
    passed.length = 0
    return true
  }

  /** The source's partitions (each gets its window state; see AggregateOperator). */
  addPartitions(partitions: readonly number[]): void {
    this.aggregate?.addPartitions(partitions)
  }

  /** A fresh state as a replay's recomputing the windows from `cut` on (see AggregateOperator.replayFrom). */
  replayFrom(cut: number): void {
    this.aggregate?.replayFrom(cut)
  }

  /** Moves time on; false when firing windows used up `budget` (call again). */
  advance(nowMs: number, out: PipelineOutput, budget?: Budget): boolean {
    return this.aggregate ? this.aggregate.advance(nowMs, out, budget) : true
  }

  /** a batch or a close is half done: finish it before anything else (and before a snapshot) */
  get busy(): boolean {
    return this.#resuming !== undefined || (this.aggregate?.busy ?? false)
  }

  openWindows(q: Parameters<AggregateOperator['openWindows']>[0]): WindowResult[] {
    return this.aggregate?.openWindows(q) ?? []
  }

  /** The window state in parts (the operator's own, one per partition); nothing for a stateless chain. */
  snapshot(parts: SnapshotParts = 'none'): PartitionedSnapshot {
    return this.aggregate ? this.aggregate.snapshot(parts) : { state: null, partitions: new Map() }
  }

  restore(state: JsonValue, partitions: ReadonlyMap<number, JsonValue> = new Map()): void {
    if (this.aggregate && state !== null) this.aggregate.restore(state, partitions)
  }
}
