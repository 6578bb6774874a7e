import type { AggregateLimits } from '../engine/aggregate.ts'
import { clearOutput, newPipelineOutput, Pipeline, type PipelineOutput } from '../engine/pipeline.ts'
import type { PipelineDefinition } from '../engine/pipeline-spec.ts'
import { eventJson } from '../engine/result-shape.ts'
import type { LookupSource } from '../engine/stages/enrich.ts'
import type { Event, WindowResult } from '../engine/types.ts'
import {
  type DeadLetterWrite,
  type EventLog,
  type LogReader,
  type Positions,
  type ReaderBatch,
  readerGroup,
  type SinkWrite,
  type TransactionalOutput,
} from '../log/log.ts'
import type { Logger } from '../logger.ts'
import type { Telemetry } from '../observability/telemetry.ts'
import {
  type Checkpoint,
  type CheckpointParts,
  checkpointPositions,
  type DeadLetterRecord,
  emptyPartitionStats,
  emptyStats,
  type Fence,
  FencedError,
  type MetricPoint,
  type OutboxMessage,
  type PartitionStats,
  type PipelineStats,
  partitionStates,
  type ReplayStats,
  type Store,
} from '../stores/store.ts'
import { OutboxRelay } from './outbox-relay.ts'

/** Most time one pipeline processes before it commits and lets other work (requests, other pipelines) run. */
const SLICE_MS = 5
/**
 * Work units (a key merged or a result built) firing windows may take per slice before yielding:
 * 20,000 held the thread up to 85 ms under the overload bench (a hopping window of 20k keys).
 */
const CLOSE_BUDGET = 5_000
/** Closed windows per store transaction when many close at once. */
const COMMIT_SLICE = 100
/** Outbox messages per store transaction. */
const OUTBOX_SLICE = 1_000
/** Longest a stop waits for the relay to send what the last checkpoint covered (the rest is sent by the next run). */
const DRAIN_MS = 10_000

/** A source partition as the API shows it. */
export interface PartitionProgress extends PartitionStats {
  partition: number
  /** the next offset to read (null: not read yet) */
  position: number | null
  lag: number
  /** the partition's own watermark: what its windows are closed to */
  watermark: number | null
}

/**
 * Checkpoints come at least this many times their own cost apart (≤ 5% of the time), so a state of
 * millions of keys is not snapshotted every second whatever --checkpoint-interval-ms says.
 */
const CHECKPOINT_COST_FACTOR = 20
/** Commits a runner may have queued before it waits for them. */
const MAX_COMMITS_IN_FLIGHT = 4
/**
 * The furthest one step of idle time moves the clock: after a long stall the watermark catches up
 * in steps, each committed before the next, so the windows it closes at once stay few (closing in
 * steps or at once gives the same results).
 */
const IDLE_STEP_MS = 1_000

/** The results table's order (window, then key): see `#write`. */
function storeOrder(a: WindowResult, b: WindowResult): number {
  return a.windowStart - b.windowStart || (a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0)
}

/** What one slice produced, on its way to the sink and the store. */
interface CommitJob {
  results: WindowResult[]
  records: Event[]
  closed: WindowResult[]
  deadLetters: DeadLetterRecord[]
  checkpoint: Checkpoint | undefined
}

export interface RunnerOptions {
  id: string
  definition: PipelineDefinition
  /** the spec's version: every result says which made it */
  version: number
  log: EventLog
  store: Store
  lookups: LookupSource
  limits: AggregateLimits
  logger: Logger
  clock: () => number
  checkpointIntervalMs: number
  deadLetterLimit: number
  telemetry?: Telemetry
  /** most events read at once */
  readBatch?: number
  /** how often a quiet aggregate pipeline moves its watermark (idle timeout, processing time) */
  tickMs?: number
  /** results and sink records handed to the committer and not yet written, past which the runner waits */
  maxPendingResults?: number
  /** in a cluster: the lease every commit is made under (a commit after a take-over fails, writing nothing) */
  fence?: Fence
  /**
   * In a cluster: whether the lease is still surely held, by this process's own clock (false
   * once it may have expired, as after a freeze). Checked before every sink write: the store
   * fences commits, this keeps a resumed owner from writing to the sink after a take-over.
   */
  owned?: () => boolean
  /**
   * Exactly-once output (Kafka): sink and .dlq messages go to the store's outbox with the commit,
   * and a relay sends what each checkpoint covers in Kafka transactions. Without it the runner
   * produces them itself before each commit (at least once).
   */
  output?: TransactionalOutput
}

/**
 * Runs one pipeline: reads its source topic from its own positions, feeds the engine, writes the
 * sink, then commits what came out (closed results, dead letters, series, and now and then a
 * checkpoint of positions + window state + counters) in one store transaction.
 */
export class PipelineRunner {
  readonly id: string
  readonly definition: PipelineDefinition
  readonly #o: RunnerOptions
  readonly #pipeline: Pipeline
  readonly #out: PipelineOutput = newPipelineOutput()
  #reader: LogReader | undefined
  /** read but not yet processed (a slice ended first) */
  #pending: ReaderBatch[] = []
  /** dead letters of the batch in progress so far (their ids count on across slices) */
  #batchDeadLetters = 0
  #positions: Positions = {}
  #checkpointed: Positions = {}
  #stats: PipelineStats = emptyStats()
  /** the input side of the counters, per source partition */
  readonly #partitionStats = new Map<number, PartitionStats>()
  #stopping = false
  #loop: Promise<void> | undefined
  #lastCheckpoint = 0
  #dirtySinceCheckpoint = false
  #failure: string | undefined
  /** the committer's chain, the jobs on it, and the error that stopped it */
  #committing: Promise<void> = Promise.resolve()
  readonly #inFlight: CommitJob[] = []
  #commitFailure: Error | undefined
  /** results and records in the committer's jobs (memory held until they are written) */
  #pendingResults = 0
  /** the clock the idle timeout last moved the watermark to */
  #advancedTo = Number.NEGATIVE_INFINITY
  /** a checkpoint in parts has been captured since the start: the next may carry only what changed */
  #partsWritten = false
  /** what the last checkpoint took (snapshot + commit), in ms */
  #checkpointCostMs = 0
  #sinkProblem: string | undefined
  #relay: OutboxRelay | undefined
  /** outbox messages committed since the last checkpoint (the next one covers them) */
  #uncovered = 0

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

  /** Why reading the source or writing the sink fails right now (it keeps retrying), or undefined. */
  get degraded(): string | undefined {
    return this.#reader?.degraded ?? this.#sinkProblem ?? this.#relay?.degraded
  }

  /** The positions of the last checkpoint: recovery replays from here, so the log keeps them. */
  get checkpointedPositions(): Positions {
    return this.#checkpointed
  }

  /** Window results and sink records produced and not yet written: ingestion backs off on these as on lag. */
  get pendingResults(): number {
    return this.#pendingResults + (this.#relay?.backlog ?? 0)
  }

  /** Outbox messages a checkpoint covered and the relay has not sent yet (as far as this run knows). */
  get outboxBacklog(): number {
    return this.#relay?.backlog ?? 0
  }

  /** Events on the source topic not yet processed. */
  get lag(): number {
    return this.#reader ? this.#reader.lag(this.#positions) : 0
  }

  /** Each source partition: position, lag, its own watermark and its counters. */
  partitions(): PartitionProgress[] {
    const watermarks = new Map(this.#pipeline.aggregate?.partitionWatermarks() ?? [])
    const known = new Set([
      ...Object.keys(this.#positions).map(Number),
      ...watermarks.keys(),
      ...this.#partitionStats.keys(),
    ])
    return [...known]
      .sort((a, b) => a - b)
      .map((partition) => {
        const position = this.#positions[String(partition)]
        const wm = watermarks.get(partition)
        return {
          partition,
          position: position ?? null,
          lag: this.#reader && position !== undefined ? this.#reader.lag({ [partition]: position }) : 0,
          watermark: wm === undefined || !Number.isFinite(wm) ? null : wm,
          ...(this.#partitionStats.get(partition) ?? emptyPartitionStats()),
        }
      })
  }

  get watermark(): number | null {
    const wm = this.#pipeline.aggregate?.watermark
    return wm === undefined || !Number.isFinite(wm) ? null : wm
  }

  /**
   * Restores the checkpoint (or starts from the earliest/latest offset) and begins reading.
   * `onFailure` gets the error that stopped the runner (a `FencedError` when another instance took
   * the pipeline over).
   */
  async start(onFailure: (err: Error) => void): Promise<void> {
    const { log, store, definition } = this.#o
    const checkpoint = await store.loadCheckpoint(this.id)
    const positions = checkpoint ? checkpointPositions(checkpoint) : undefined
    if (checkpoint) {
      this.#stats = { ...emptyStats(), ...checkpoint.stats }
      this.#pipeline.restore(checkpoint.state, partitionStates(checkpoint))
      for (const p of checkpoint.partitions) this.#partitionStats.set(p.partition, { ...p.stats })
    }
    this.#reader = await log.openReader({
      topic: definition.sourceTopic,
      group: readerGroup(this.id),
      positions,
      startFrom: definition.startFrom,
    })
    this.#positions = { ...this.#reader.initial }
    // every partition of the source holds the watermark (until idle), even before its first event
    this.#pipeline.addPartitions(this.#reader.partitions())
    if (definition.sinkTopic !== null)
      await log.prepareTopics([definition.sinkTopic, `${definition.sinkTopic}.dlq`])
    const { output } = this.#o
    if (output && definition.sinkTopic !== null) {
      // its producer's open fences a former owner's relay, so only this one sends from then on
      const relay = new OutboxRelay({
        pipelineId: this.id,
        store,
        output,
        logger: this.#o.logger,
        owned: this.#o.owned,
        onFenced: (err) => {
          this.#commitFailure ??= this.#o.fence ? new FencedError(this.id, this.#o.fence) : err
          this.#reader?.wake()
        },
      })
      relay.start()
      this.#relay = relay
    }
    // what the outbox holds past the checkpoint is written again by the replay from it
    const discardUncovered = this.#relay !== undefined
    if (positions) {
      this.#checkpointed = { ...positions }
      if (discardUncovered)
        await store.commit(this.id, { results: [], deadLetters: [], discardUncovered, fence: this.#o.fence })
    } else await this.#checkpoint(discardUncovered)
    this.#lastCheckpoint = this.#o.clock()
    this.#loop = this.#run().catch((err: Error) => {
      this.#failure = err.message
      if (err.name === 'FencedError')
        this.#o.logger.warn({ pipeline: this.id, err: err.message }, 'pipeline taken over')
      else this.#o.logger.error({ pipeline: this.id, err }, 'pipeline failed')
      onFailure(err)
    })
  }

  /** After a start that failed: lets go of what it opened, writing nothing (the stored checkpoint stays as it was). */
  async abandon(): Promise<void> {
    this.#stopping = true
    await this.#relay?.stop().catch(() => undefined)
    await this.#reader?.close().catch(() => undefined)
  }

  /**
   * Stops reading, commits what was processed with a checkpoint (so window state survives). With
   * `drain`, waits up to DRAIN_MS for the relay to send what that checkpoint covered; without, the
   * next start (here or on another instance) sends it.
   */
  async stop(drain = true): Promise<void> {
    this.#stopping = true
    this.#reader?.wake()
    await this.#loop
    await this.#committing
    if (this.#failure === undefined && this.#commitFailure === undefined && this.#reader) {
      await this.#checkpoint()
      if (drain && this.#relay && !(await this.#relay.drain(DRAIN_MS)))
        this.#o.logger.warn(
          { pipeline: this.id },
          'stopped before the outbox was sent; the next start sends it',
        )
    }
    await this.#relay?.stop()
    await this.#reader?.close()
  }

  async #run(): Promise<void> {
    const { log, definition } = this.#o
    const reader = this.#reader!
    const readBatch = this.#o.readBatch ?? 5_000
    const tickMs = this.#o.tickMs ?? 200
    const out = this.#out
    let behind = false
    // a stop waits for a half-processed batch or close: a checkpoint is only taken between batches
    while (!this.#stopping || this.#pipeline.busy) {
      const budget = { left: CLOSE_BUDGET }
      // batches left over from the last slice go first; no wait while idle time is still catching up
      // while windows fire a budget at a time, nothing new is read: the firing goes on first
      const firing = this.#pending.length === 0 && this.#pipeline.busy
      const batches =
        this.#pending.length > 0
          ? this.#pending.splice(0)
          : firing
            ? []
            : await reader.read(readBatch, behind ? 0 : tickMs)
      behind = false
      if (this.#stopping && batches.length === 0 && !firing) break
      const deadLetters: DeadLetterRecord[] = []
      if (firing) behind = !this.#pipeline.advance(this.#advancedTo, out, budget)
      else if (batches.length === 0) {
        // only when caught up, and not past the arrival time of a write still in flight, so a
        // replay closes exactly the windows the first run closed
        if (reader.caughtUp()) {
          const target = log.stableTime(definition.sourceTopic)
          const step = Number.isFinite(this.#advancedTo) ? this.#advancedTo + IDLE_STEP_MS : target
          this.#advancedTo = Math.min(target, step)
          // windows are fired a budget at a time: the loop comes straight back for the rest
          behind = !this.#pipeline.advance(this.#advancedTo, out, budget) || this.#advancedTo < target
        }
      } else {
        const sliceEnd = performance.now() + SLICE_MS
        for (let b = 0; b < batches.length; b++) {
          const batch = batches[b]
          const counted = { in: out.in, filtered: out.filtered, late: out.late, errors: out.errors }
          for (const bad of batch.invalid) {
            out.in++
            out.errors++
            deadLetters.push({
              id: `${batch.partition}:${bad.offset}:invalid`,
              reason: 'invalid_event',
              detail: bad.detail,
              event: {
                id: `${batch.partition}:${bad.offset}`,
                event_type: '',
                source: '',
                timestamp: batch.appendedAt,
                data: { raw: bad.raw },
              },
              at: batch.appendedAt,
            })
          }
          const before = out.deadLetters.length
          // a batch may take several slices when it fires many windows: the rest comes next round
          const done = this.#pipeline.process(batch.events, batch.appendedAt, out, budget, batch.partition)
          this.#countPartition(batch.partition, out, counted)
          const at = `${batch.partition}:${batch.offset}`
          for (let i = before; i < out.deadLetters.length; i++) {
            const d = out.deadLetters[i]
            deadLetters.push({
              id: `${at}:${this.#batchDeadLetters++}`,
              reason: d.reason,
              detail: d.detail,
              event: d.event,
              at: batch.appendedAt,
            })
          }
          if (!done) {
            this.#pending = batches.slice(b)
            break
          }
          this.#batchDeadLetters = 0
          this.#positions[String(batch.partition)] = batch.next
          this.#o.telemetry?.ingestToProcessed.observe(Math.max(0, this.#o.clock() - batch.appendedAt) / 1000)
          if (performance.now() > sliceEnd) {
            this.#pending = batches.slice(b + 1)
            break
          }
        }
        this.#dirtySinceCheckpoint = true
      }
      await this.#commit(out, deadLetters)
      clearOutput(out)
      // let requests in between slices: a pipeline that falls behind shows as lag (and 429s), not as a stalled server
      if (batches.length > 0 || behind) await new Promise((resolve) => setImmediate(resolve))
    }
  }

  /**
   * Hands what a slice produced to the committer and returns: the runner goes on processing (open
   * windows stay fresh) while closed windows of many keys are written. Commits run one after the
   * other, so each sink write precedes its store commit, and a checkpoint (captured here, with
   * the state as it is now) is committed only after every result before it.
   */
  async #commit(out: PipelineOutput, deadLetters: DeadLetterRecord[]): Promise<void> {
    if (this.#commitFailure) throw this.#commitFailure
    const s = this.#stats
    s.events_in += out.in
    s.events_out += out.out
    s.filtered += out.filtered
    s.late += out.late
    s.errors += out.errors
    if (s.replay) this.#followReplay(s.replay, out.skipped)
    const closed: WindowResult[] = []
    const version = this.#o.version
    for (const r of out.results) {
      r.version = version
      if (r.closed) closed.push(r)
    }
    s.results += closed.length
    if (out.results.length > 0) this.#dirtySinceCheckpoint = true
    const now = this.#o.clock()
    // large window state checkpoints less often: its cost stays a small share of the time
    const interval = Math.max(this.#o.checkpointIntervalMs, CHECKPOINT_COST_FACTOR * this.#checkpointCostMs)
    // never in the middle of a batch or of firing windows: the state would not match the positions
    const due = this.#dirtySinceCheckpoint && now - this.#lastCheckpoint >= interval && !this.#pipeline.busy
    if (
      closed.length === 0 &&
      deadLetters.length === 0 &&
      !due &&
      out.records.length === 0 &&
      out.results.length === 0
    )
      return
    const captureStarted = performance.now()
    const job: CommitJob = {
      results: out.results.slice(),
      records: out.records.slice(),
      closed,
      deadLetters,
      checkpoint: due ? this.#checkpointValue() : undefined,
    }
    if (due) {
      this.#checkpointCostMs = performance.now() - captureStarted
      this.#lastCheckpoint = now
      this.#dirtySinceCheckpoint = false
    }
    const weight = job.results.length + job.records.length
    this.#inFlight.push(job)
    this.#pendingResults += weight
    this.#committing = this.#committing.then(async () => {
      try {
        if (this.#commitFailure === undefined) await this.#write(job)
      } catch (err) {
        // a commit cut off by a freeze (the database ended its transaction) lost to the take-over
        const { fence, owned } = this.#o
        this.#commitFailure = fence && owned && !owned() ? new FencedError(this.id, fence) : (err as Error)
      } finally {
        this.#inFlight.splice(this.#inFlight.indexOf(job), 1)
        this.#pendingResults -= weight
      }
    })
    // bounded: a runner far ahead of its commits (in jobs or in results held) waits for them
    if (
      this.#inFlight.length >= MAX_COMMITS_IN_FLIGHT ||
      this.#pendingResults > (this.#o.maxPendingResults ?? 100_000)
    )
      await this.#committing
    // the relay's backlog holds the runner too (Kafka down: the outbox does not grow without end)
    await this.#relay?.room(this.#o.maxPendingResults ?? 100_000)
    if (this.#commitFailure) throw this.#commitFailure
  }

  /**
   * The sink first: a crash before the store commit replays into it again (at least once, same
   * ids); results, dead letters and series are keyed, so writing them twice changes nothing. Many
   * closed windows go in slices, letting requests in between; the checkpoint with the last one.
   */
  async #write(job: CommitJob): Promise<void> {
    const { fence, owned, store } = this.#o
    if (fence && owned && !owned()) throw new FencedError(this.id, fence)
    // exactly once: the messages go with the commits, relayed once the checkpoint covers them
    let outbox = this.#relay ? this.#outboxMessages(job) : []
    if (!this.#relay) await this.#retrying('writing the sink', () => this.#writeSink(job))
    // in the store's key order: a slice of neighbours fills few pages, not one page per result
    let rest = job.closed.sort(storeOrder)
    while (rest.length > COMMIT_SLICE || outbox.length > OUTBOX_SLICE) {
      const slice = rest.slice(0, COMMIT_SLICE)
      rest = rest.slice(COMMIT_SLICE)
      const messages = outbox.slice(0, OUTBOX_SLICE)
      outbox = outbox.slice(OUTBOX_SLICE)
      await store.commit(this.id, {
        results: slice,
        deadLetters: [],
        metrics: this.#series(slice),
        outbox: messages,
        fence,
      })
      this.#uncovered += messages.length
      await new Promise((resolve) => setImmediate(resolve))
    }
    const timer = this.#o.telemetry?.storeCommit.startTimer()
    const started = performance.now()
    await store.commit(this.id, {
      results: rest,
      deadLetters: job.deadLetters,
      metrics: this.#series(rest),
      checkpoint: job.checkpoint,
      outbox,
      fence,
    })
    timer?.()
    this.#uncovered += outbox.length
    if (job.checkpoint) {
      this.#covered()
      // the snapshot (taken at capture) plus writing it
      this.#checkpointCostMs += performance.now() - started
      await this.#checkpointed_(job.checkpoint, job.deadLetters.length > 0)
    }
  }

  /** A checkpoint was committed: the relay may send what it covers. */
  #covered(): void {
    this.#relay?.covered(this.#uncovered)
    this.#uncovered = 0
  }

  /** Closed windows handed to the committer and not yet in the store (readers show them too). */
  committingResults(): WindowResult[] {
    return this.#inFlight.flatMap((job) => job.closed)
  }

  /**
   * Runs `work` until it succeeds, backing off, with the reason shown as the pipeline's degraded
   * condition: nothing is committed meanwhile, so nothing is lost. Gives up only when stopping.
   */
  async #retrying(what: string, work: () => Promise<void>): Promise<void> {
    let delay = 200
    for (;;) {
      try {
        await work()
        this.#sinkProblem = undefined
        return
      } catch (err) {
        this.#sinkProblem = `${what}: ${(err as Error).message}`
        if (this.#stopping) throw err
        this.#o.logger.warn({ pipeline: this.id, err: this.#sinkProblem }, 'retrying')
        await new Promise((r) => setTimeout(r, delay))
        delay = Math.min(delay * 2, 5_000)
      }
    }
  }

  async #checkpointed_(checkpoint: Checkpoint, trim: boolean): Promise<void> {
    const positions = checkpointPositions(checkpoint)
    this.#checkpointed = positions
    if (trim) await this.#o.store.trimDeadLetters(this.id, this.#o.deadLetterLimit)
    // the group's offsets follow the checkpoint (Kafka); the checkpoint stays the authority on restart
    await this.#reader?.commit(positions)
  }

  async #writeSink(job: CommitJob): Promise<void> {
    const out = this.#sinkWrite(job)
    if (!out) return
    const { log } = this.#o
    if (out.write.results.length > 0 || out.write.records.length > 0) await log.writeSink(out.sink, out.write)
    if (out.letters.length > 0) await log.writeDeadLetters(`${out.sink}.dlq`, out.letters)
  }

  /** The same messages as `#writeSink` produces, for the outbox. */
  #outboxMessages(job: CommitJob): OutboxMessage[] {
    const out = this.#sinkWrite(job)
    const output = this.#o.output
    if (!out || !output) return []
    const messages = output.sinkMessages(out.sink, out.write)
    if (out.letters.length > 0) messages.push(...output.deadLetterMessages(`${out.sink}.dlq`, out.letters))
    return messages
  }

  /** What a job puts on the sink and its .dlq; undefined without a sink. */
  #sinkWrite({
    results: all,
    records,
    deadLetters,
  }: CommitJob): { sink: string; write: SinkWrite; letters: DeadLetterWrite[] } | undefined {
    const sink = this.definition.sinkTopic
    if (sink === null) return undefined
    return {
      sink,
      write: {
        pipelineId: this.id,
        pipelineName: this.definition.name,
        records,
        results: this.#pipeline.aggregate ? all : [],
      },
      letters: deadLetters.map(
        (d): DeadLetterWrite => ({
          pipelineId: this.id,
          reason: d.reason,
          detail: d.detail,
          payload: d.reason === 'invalid_event' ? d.event.data.raw : eventJson(d.event),
        }),
      ),
    }
  }

  #series(results: WindowResult[]): MetricPoint[] {
    const points: MetricPoint[] = []
    if (!this.definition.metrics) return points
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

  /** Counts what the replay skipped; once every partition has read to its target, the replay is done. */
  #followReplay(replay: ReplayStats, skipped: number): void {
    replay.skipped += skipped
    if (replay.finishedAt !== null) return
    for (const [partition, target] of Object.entries(replay.target))
      if ((this.#positions[partition] ?? 0) < target) return
    replay.finishedAt = this.#o.clock()
    this.#dirtySinceCheckpoint = true
  }

  /** Adds what a batch of `partition` counted (the output's counters since `before`) to that partition's. */
  #countPartition(
    partition: number,
    out: PipelineOutput,
    before: Record<'in' | 'filtered' | 'late' | 'errors', number>,
  ): void {
    const p = this.#partitionStats.get(partition) ?? emptyPartitionStats()
    this.#partitionStats.set(partition, p)
    p.events_in += out.in - before.in
    p.filtered += out.filtered - before.filtered
    p.late += out.late - before.late
    p.errors += out.errors - before.errors
  }

  /**
   * Positions and window state per partition (a partition known but not read yet has no position),
   * counters. Window state goes in parts: every part the first time after a start, then only what
   * changed, which the store applies in commit order to what it holds.
   */
  #checkpointValue(): Checkpoint {
    const snap = this.#pipeline.snapshot(this.#partsWritten ? 'changed' : 'all')
    this.#partsWritten = true
    const known = new Set([
      ...Object.keys(this.#positions).map(Number),
      ...snap.partitions.keys(),
      ...this.#partitionStats.keys(),
    ])
    return {
      state: snap.state,
      stats: { ...this.#stats, ...(this.#stats.replay ? { replay: { ...this.#stats.replay } } : {}) },
      partitions: [...known]
        .sort((a, b) => a - b)
        .map((partition) => ({
          partition,
          position: this.#positions[String(partition)] ?? null,
          state: snap.partitions.get(partition) ?? null,
          stats: { ...(this.#partitionStats.get(partition) ?? emptyPartitionStats()) },
          ...(snap.parts?.has(partition) ? { parts: snap.parts.get(partition) as CheckpointParts } : {}),
        })),
    }
  }

  async #checkpoint(discardUncovered = false): Promise<void> {
    const checkpoint = this.#checkpointValue()
    await this.#o.store.commit(this.id, {
      results: [],
      deadLetters: [],
      checkpoint,
      fence: this.#o.fence,
      ...(discardUncovered ? { discardUncovered } : {}),
    })
    this.#covered()
    this.#lastCheckpoint = this.#o.clock()
    this.#dirtySinceCheckpoint = false
    await this.#checkpointed_(checkpoint, false)
  }

  openWindows(q: Parameters<Pipeline['openWindows']>[0]): WindowResult[] {
    return this.#pipeline.openWindows(q)
  }
}
