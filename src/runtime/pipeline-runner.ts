import type { AggregateLimits } from '../engine/aggregate.ts'
import { clearOutput, newPipelineOutput, Pipeline, type PipelineOutput } from '../engine/pipeline.ts'
import type { PipelineDefinition } from '../engine/pipeline-spec.ts'
import type { LookupSource } from '../engine/stages/enrich.ts'
import type { Event, WindowResult } from '../engine/types.ts'
import type { EventLog } from '../log/log.ts'
import type { Logger } from '../logger.ts'
import type { Telemetry } from '../observability/telemetry.ts'
import {
  type DeadLetterRecord,
  emptyStats,
  type MetricPoint,
  type PipelineStats,
  type Store,
} from '../stores/store.ts'
import { resultEvent } from './result-shape.ts'

/** Most time one pipeline processes before it commits and lets other work (requests, other pipelines) run. */
const SLICE_MS = 10

export interface RunnerOptions {
  id: string
  definition: PipelineDefinition
  log: EventLog
  store: Store
  lookups: LookupSource
  limits: AggregateLimits
  logger: Logger
  clock: () => number
  checkpointIntervalMs: number
  deadLetterLimit: number
  telemetry?: Telemetry
  /** most events processed between two commits */
  readBatch?: number
  /** how often a quiet aggregate pipeline moves its watermark (idle timeout, processing time) */
  tickMs?: number
}

/**
 * Runs one pipeline: reads its source topic from its own offset, feeds the engine, and commits what
 * came out (closed results, dead letters, and now and then a checkpoint of offset + window state)
 * in one store transaction; then writes the sink topic and the metrics series.
 */
export class PipelineRunner {
  readonly id: string
  readonly definition: PipelineDefinition
  readonly #o: RunnerOptions
  readonly #pipeline: Pipeline
  readonly #out: PipelineOutput = newPipelineOutput()
  #offset = 0
  #stats: PipelineStats = emptyStats()
  #stopping = false
  #loop: Promise<void> | undefined
  #wake: (() => void) | undefined
  #unsubscribe: (() => void) | undefined
  #lastCheckpoint = 0
  #checkpointedOffset = 0
  #dirtySinceCheckpoint = false
  #failure: string | undefined

  constructor(options: RunnerOptions) {
    this.#o = options
    this.id = options.id
    this.definition = options.definition
    this.#pipeline = new Pipeline(options.definition.stages, options.lookups, options.limits)
  }

  get stats(): PipelineStats {
    return this.#stats
  }

  get failure(): string | undefined {
    return this.#failure
  }

  get offset(): number {
    return this.#offset
  }

  /** The offset of the last checkpoint: recovery replays from here, so the log keeps it. */
  get checkpointedOffset(): number {
    return this.#checkpointedOffset
  }

  /** Events on the source topic not yet processed. */
  get lag(): number {
    return Math.max(0, this.#o.log.endOffset(this.definition.sourceTopic) - this.#offset)
  }

  get watermark(): number | null {
    const wm = this.#pipeline.aggregate?.watermark
    return wm === undefined || !Number.isFinite(wm) ? null : wm
  }

  /** Restores the checkpoint (or starts from the earliest/latest offset) and begins reading. */
  async start(onFailure: (reason: string) => void): Promise<void> {
    const { log, store, definition } = this.#o
    const checkpoint = await store.loadCheckpoint(this.id)
    if (checkpoint) {
      this.#offset = checkpoint.offset
      this.#stats = { ...emptyStats(), ...checkpoint.stats }
      this.#pipeline.restore(checkpoint.state)
      this.#checkpointedOffset = checkpoint.offset
    } else {
      this.#offset =
        definition.startFrom === 'latest'
          ? log.endOffset(definition.sourceTopic)
          : log.startOffset(definition.sourceTopic)
      await this.#checkpoint()
    }
    this.#lastCheckpoint = this.#o.clock()
    this.#unsubscribe = log.subscribe(definition.sourceTopic, () => this.#wake?.())
    this.#loop = this.#run().catch((err: Error) => {
      this.#failure = err.message
      this.#o.logger.error({ pipeline: this.id, err }, 'pipeline failed')
      onFailure(err.message)
    })
  }

  /** Stops reading, commits what was processed with a checkpoint (so window state survives). */
  async stop(): Promise<void> {
    this.#stopping = true
    this.#wake?.()
    await this.#loop
    this.#unsubscribe?.()
    if (this.#failure === undefined) await this.#checkpoint()
  }

  async #run(): Promise<void> {
    const { log, definition } = this.#o
    const readBatch = this.#o.readBatch ?? 5_000
    const tickMs = this.#o.tickMs ?? 200
    while (!this.#stopping) {
      const batches = await log.read(definition.sourceTopic, this.#offset, readBatch)
      const out = this.#out
      const deadLetters: DeadLetterRecord[] = []
      if (batches.length === 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, tickMs)
          this.#wake = () => {
            clearTimeout(timer)
            resolve()
          }
        })
        this.#wake = undefined
        if (this.#stopping) break
        // not past the arrival time of a write still in flight, so a replay sees the same closes
        this.#pipeline.advance(log.stableTime(definition.sourceTopic), out)
      } else {
        const sliceEnd = performance.now() + SLICE_MS
        for (const batch of batches) {
          const before = out.deadLetters.length
          this.#pipeline.process(batch.events, batch.appendedAt, out)
          for (let i = before; i < out.deadLetters.length; i++) {
            const d = out.deadLetters[i]
            deadLetters.push({
              id: `${batch.offset}:${i - before}`,
              reason: d.reason,
              detail: d.detail,
              event: d.event,
              at: batch.appendedAt,
            })
          }
          this.#offset = batch.offset + batch.events.length
          this.#o.telemetry?.ingestToProcessed.observe(Math.max(0, this.#o.clock() - batch.appendedAt) / 1000)
          if (performance.now() > sliceEnd) break
        }
        this.#dirtySinceCheckpoint = true
      }
      await this.#commit(out, deadLetters)
      clearOutput(out)
      // let requests in between slices: a pipeline that falls behind shows as lag (and 429s), not as a stalled server
      if (batches.length > 0) await new Promise((resolve) => setImmediate(resolve))
    }
  }

  async #commit(out: PipelineOutput, deadLetters: DeadLetterRecord[]): Promise<void> {
    const s = this.#stats
    s.events_in += out.in
    s.events_out += out.out
    s.filtered += out.filtered
    s.late += out.late
    s.errors += out.errors
    const closed: WindowResult[] = []
    for (const r of out.results) if (r.closed) closed.push(r)
    s.results += closed.length
    if (closed.length > 0 || out.results.length > 0) this.#dirtySinceCheckpoint = true
    const now = this.#o.clock()
    const due = this.#dirtySinceCheckpoint && now - this.#lastCheckpoint >= this.#o.checkpointIntervalMs
    if (
      closed.length === 0 &&
      deadLetters.length === 0 &&
      !due &&
      out.records.length === 0 &&
      out.results.length === 0
    )
      return
    // the sink first: a crash before the commit replays into it again (at least once, same ids);
    // results, dead letters, series and the checkpoint then land in one transaction (exactly once)
    await this.#writeSink(out)
    const checkpoint = due ? this.#checkpointValue() : undefined
    const timer = this.#o.telemetry?.storeCommit.startTimer()
    await this.#o.store.commit(this.id, {
      results: closed,
      deadLetters,
      metrics: this.#series(closed),
      checkpoint,
    })
    timer?.()
    if (checkpoint) {
      this.#lastCheckpoint = now
      this.#checkpointedOffset = checkpoint.offset
      this.#dirtySinceCheckpoint = false
      if (deadLetters.length > 0) await this.#o.store.trimDeadLetters(this.id, this.#o.deadLetterLimit)
    }
  }

  async #writeSink(out: PipelineOutput): Promise<void> {
    const sink = this.definition.sinkTopic
    if (sink === null) return
    let events: Event[] = out.records
    if (this.#pipeline.aggregate)
      events = out.results.map((r) => resultEvent(this.id, this.definition.name, r))
    if (events.length > 0) await this.#o.log.append(sink, events.slice())
  }

  #series(results: WindowResult[]): MetricPoint[] {
    const points: MetricPoint[] = []
    const prefix = `pipeline.${this.definition.name}.`
    for (const r of results) {
      const tags: Record<string, string> = {}
      if (r.key)
        for (const [k, v] of Object.entries(r.key)) tags[k] = typeof v === 'string' ? v : JSON.stringify(v)
      for (const [name, value] of Object.entries(r.results)) {
        if (value !== null && Number.isFinite(value))
          points.push({ name: prefix + name, tags, value, timestamp: r.windowStart })
      }
    }
    return points
  }

  #checkpointValue() {
    return { offset: this.#offset, state: this.#pipeline.snapshot(), stats: { ...this.#stats } }
  }

  async #checkpoint(): Promise<void> {
    const checkpoint = this.#checkpointValue()
    await this.#o.store.commit(this.id, { results: [], deadLetters: [], checkpoint })
    this.#checkpointedOffset = checkpoint.offset
    this.#lastCheckpoint = this.#o.clock()
    this.#dirtySinceCheckpoint = false
  }

  forEachOpen(visit: (result: WindowResult) => void): void {
    this.#pipeline.forEachOpen(visit)
  }
}
