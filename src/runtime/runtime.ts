import { randomBytes, randomUUID } from 'node:crypto'
import { KeyRing } from '../auth/key-ring.ts'
import type { Config } from '../config.ts'
import { type AggregateLimits, savedWatermark } from '../engine/aggregate.ts'
import { type DryRunResult, type DryStep, dryRun } from '../engine/dry-run.ts'
import { IdSequence, normalizeEvents } from '../engine/events.ts'
import { keyPasses, parseKeyFilters } from '../engine/key-filter.ts'
import { Pipeline } from '../engine/pipeline.ts'
import { type PipelineDefinition, parsePipeline } from '../engine/pipeline-spec.ts'
import { replayCut } from '../engine/replay.ts'
import { changeLoses, migrateState } from '../engine/spec-change.ts'
import { isPlainObject, type JsonValue, type WindowResult } from '../engine/types.ts'
import { AppError, notFound, type Outcome, validationError } from '../errors.ts'
import type { EventLog, Positions } from '../log/log.ts'
import type { Logger } from '../logger.ts'
import { Telemetry } from '../observability/telemetry.ts'
import {
  type Checkpoint,
  checkpointPositions,
  emptyPartitionStats,
  emptyStats,
  type PipelineRecord,
  type PipelineStats,
  PipelineStatus,
  type PipelineVersion,
  partitionStates,
  type ReplayStats,
  type ResultQuery,
  type Store,
} from '../stores/store.ts'
import { IngestHistory } from './ingest-history.ts'
import { Lookups } from './lookups.ts'
import { MemorySampler } from './memory-sampler.ts'
import { type PartitionProgress, PipelineRunner } from './pipeline-runner.ts'
import { PREVIEW_ITEMS, PREVIEW_WORK, previewInput } from './preview-input.ts'
import { RateMeter } from './rate-meter.ts'
import { type ReplayFrom, replayFrom } from './replay-from.ts'

export interface RuntimeOptions {
  config: Config
  logger: Logger
  store: Store
  log: EventLog
  clock?: () => number
}

export interface PipelineView {
  record: PipelineRecord
  stats: PipelineStats
  /** each source partition (the last known ones while not running) */
  partitions: PartitionProgress[]
  lag: number
  pendingResults: number
  watermark: number | null
  failure: string | undefined
  /** why a running pipeline cannot read or write right now (it keeps retrying) */
  degraded: string | undefined
  /** the last replay and how far it has come */
  replay: ReplayProgress | undefined
}

/** A replay as the API shows it: offsets summed over the partitions. */
export interface ReplayProgress {
  from: string | number
  cut: number | null
  startedAt: number
  finishedAt: number | null
  /** where it began, where it stands, where it is live again */
  start: number
  position: number
  target: number
  skipped: number
  /** events read per second since it began (until it finished); null when no time has passed to tell */
  eventsPerSecond: number | null
}

export interface WindowQuery extends ResultQuery {
  state: 'open' | 'closed' | 'all'
}

interface ReplayPlan {
  /** the first window start recomputed; null: every window */
  cut: number | null
  positions: Positions
  target: Positions
  checkpoint: Checkpoint | undefined
  /** the whole log is read again: the counters start again too */
  resetCounters: boolean
}

interface Entry {
  record: PipelineRecord
  /** null when the stored spec no longer validates (listed as failed with the reason; deletable) */
  definition: PipelineDefinition | null
  runner: PipelineRunner | undefined
  /** the last known counters of a pipeline that is not running */
  stats: PipelineStats
  partitions: PartitionProgress[]
  failure: string | undefined
  /** why the last start failed while the pipeline should run; it is retried with backoff */
  startProblem: string | undefined
  retry: { timer: NodeJS.Timeout; delayMs: number } | undefined
  /** serialises start/stop/delete of one pipeline */
  busy: Promise<unknown>
  /**
   * The window state of a pipeline that is not running, decoded once from its last checkpoint,
   * so /window and the dashboard do not parse it on every call; `generation` (moved by every
   * start and stop) keeps a decode begun before one from landing after it.
   */
  parked: Pipeline | undefined
  generation: number
}

/** Backoff between attempts to start a pipeline whose start failed (the broker is away, say). */
const START_RETRY_MIN_MS = 1_000
const START_RETRY_MAX_MS = 30_000

/** Owns the log, the store, the lookup tables and one runner per running pipeline. */
export class Runtime {
  readonly config: Config
  readonly store: Store
  readonly log: EventLog
  readonly lookups: Lookups
  /** the API keys the server accepts (any key turns authentication on) */
  readonly keys: KeyRing
  readonly logger: Logger
  readonly clock: () => number
  readonly startedAt: number
  readonly ingestRate: RateMeter
  readonly telemetry: Telemetry
  readonly #entries = new Map<string, Entry>()
  readonly #limits: AggregateLimits & { maxWindowsPerEvent: number }
  readonly #ids = new IdSequence(randomBytes(6).toString('base64url'))
  readonly #history: IngestHistory
  #ingested = 0
  /** the heap and buffers the process holds, sampled a few times a second (not per request) */
  readonly #memory = new MemorySampler(250)
  #retentionTimer: NodeJS.Timeout | undefined
  #closed = false

  private constructor(options: RuntimeOptions, store: Store, log: EventLog, keys: KeyRing) {
    this.config = options.config
    this.keys = keys
    this.logger = options.logger
    this.clock = options.clock ?? Date.now
    this.store = store
    this.log = log
    this.lookups = new Lookups(store)
    this.startedAt = this.clock()
    this.ingestRate = new RateMeter(this.clock)
    this.#history = new IngestHistory((points) =>
      this.store
        .writeMetrics(points)
        .catch((err: Error) => this.logger.warn({ err }, 'ingest history not written')),
    )
    this.telemetry = new Telemetry({
      pipelines: () =>
        [...this.#entries.values()].map((e) => {
          const v = this.#view(e)
          return {
            name: e.record.name,
            stats: v.stats,
            lag: v.lag,
            watermark: v.watermark,
            running: e.runner !== undefined,
          }
        }),
    })
    this.#limits = {
      maxKeysPerWindow: options.config.maxKeysPerWindow,
      maxWindowsPerEvent: options.config.maxWindowsPerEvent,
    }
  }

  /** Opens on the store and the log the wiring (app.ts) built: loads lookups, keys and pipelines. */
  static async open(options: RuntimeOptions): Promise<Runtime> {
    const { config, store, log, logger } = options
    const runtime = new Runtime(options, store, log, await KeyRing.open(config.apiKeys, store))
    await runtime.lookups.load()
    const starts: Promise<void>[] = []
    for (const record of await store.listPipelines()) {
      const parsed = parsePipeline(record.spec, runtime.#limits)
      const checkpoint = await store.loadCheckpoint(record.id)
      const entry = newEntry(record, parsed.ok ? parsed.value : null, checkpoint?.stats ?? emptyStats())
      entry.partitions = (checkpoint?.partitions ?? []).map((p) => ({
        partition: p.partition,
        position: p.position,
        lag: 0,
        watermark: null,
        ...p.stats,
      }))
      runtime.#entries.set(record.id, entry)
      if (!parsed.ok) {
        // kept visible (and deletable, its name still taken) rather than skipped
        const issue = parsed.issues[0]
        entry.failure = `the stored spec no longer validates: ${issue ? `${issue.path} ${issue.message}` : 'invalid'}`
        entry.record = { ...record, status: PipelineStatus.failed }
        logger.error(
          { pipeline: record.id, issues: parsed.issues },
          'stored pipeline no longer valid; marked failed',
        )
        continue
      }
      if (record.status === PipelineStatus.running)
        starts.push(runtime.#serial(entry, () => runtime.#startRunner(entry)))
    }
    // side by side; a start that fails (a broker away at boot) does not stop the server: it is retried
    await Promise.all(starts)
    runtime.#retentionTimer = setInterval(() => void runtime.enforceRetention(), 60_000)
    runtime.#retentionTimer.unref()
    return runtime
  }

  // ---- pipelines ----

  async createPipeline(body: unknown): Promise<Outcome<PipelineView>> {
    const parsed = parsePipeline(body, this.#limits)
    if (!parsed.ok) return { ok: false, error: validationError(parsed.issues) }
    const { start, ...spec } = body as Record<string, unknown>
    const now = this.clock()
    const record: PipelineRecord = {
      id: randomUUID(),
      name: parsed.value.name,
      spec,
      status: PipelineStatus.created,
      createdAt: now,
      updatedAt: now,
      version: 1,
    }
    const inserted = await this.store.insertPipeline(record)
    if (!inserted.ok)
      return { ok: false, error: new AppError('conflict', `a pipeline named '${record.name}' exists`) }
    this.#entries.set(record.id, newEntry(record, parsed.value, emptyStats()))
    if (start === true) return this.startPipeline(record.id)
    return { ok: true, value: this.#view(this.#entries.get(record.id)!) }
  }

  /**
   * Replaces a pipeline's spec (PUT /api/pipelines/{id}). A change that keeps the window state's
   * meaning is applied with the open windows and counters kept (functions remapped, see
   * spec-change.ts); one that does not is a 409 listing what would be lost, unless `reset` drops
   * the window state (positions and counters stay). A running pipeline stops (checkpointing),
   * changes and runs again; every version is kept.
   */
  async updatePipeline(id: string, body: unknown): Promise<Outcome<PipelineView>> {
    const entry = this.#entries.get(id)
    if (!entry) return { ok: false, error: notFound('pipeline', id) }
    if (!isPlainObject(body))
      return {
        ok: false,
        error: validationError([{ path: '', message: 'must be an object: a pipeline spec' }]),
      }
    const { reset: resetField, start: _start, ...spec } = body
    if (resetField !== undefined && typeof resetField !== 'boolean')
      return { ok: false, error: validationError([{ path: '/reset', message: 'must be true or false' }]) }
    const parsed = parsePipeline(spec, this.#limits)
    if (!parsed.ok) return { ok: false, error: validationError(parsed.issues) }
    const next = parsed.value
    const reset = resetField === true
    for (const other of this.#entries.values())
      if (other !== entry && other.record.name === next.name)
        return { ok: false, error: new AppError('conflict', `a pipeline named '${next.name}' exists`) }
    const old = entry.definition
    if (old && !reset) {
      const aggregateAt = (i: number) =>
        'transformation' in spec ? '/transformation/aggregate' : `/transformations/${i}/aggregate`
      const lost = changeLoses(old, next, aggregateAt)
      if (lost.length > 0)
        return {
          ok: false,
          error: new AppError(
            'conflict',
            `this change would lose the window state: ${lost[0].path} ${lost[0].message}${lost.length > 1 ? ` (and ${lost.length - 1} more)` : ''}; send "reset": true to apply it anyway`,
            lost,
          ),
        }
    }
    const outcome = await this.#serial(entry, async (): Promise<Outcome<PipelineView>> => {
      const wasRunning = entry.runner !== undefined || entry.retry !== undefined
      this.#stopRetrying(entry)
      await this.#stopRunner(entry)
      const checkpoint = await this.store.loadCheckpoint(id)
      const now = this.clock()
      const record: PipelineRecord = {
        ...entry.record,
        name: next.name,
        spec,
        version: entry.record.version + 1,
        updatedAt: now,
        ...(entry.definition === null ? { status: PipelineStatus.stopped } : {}),
      }
      const updated = await this.store.updatePipeline(record, reset)
      if (!updated.ok) {
        if (wasRunning) await this.#startRunner(entry)
        return { ok: false, error: new AppError('conflict', `a pipeline named '${next.name}' exists`) }
      }
      if (checkpoint) {
        const oldAgg = old?.stages.find((s) => s.kind === 'aggregate')
        const newAgg = next.stages.find((s) => s.kind === 'aggregate')
        const migrated =
          !reset && oldAgg?.kind === 'aggregate' && newAgg?.kind === 'aggregate'
            ? migrateState(
                oldAgg.spec,
                newAgg.spec,
                this.#limits,
                checkpoint.state,
                partitionStates(checkpoint),
              )
            : { state: null, partitions: new Map<number, JsonValue>() }
        await this.store.commit(id, {
          results: [],
          deadLetters: [],
          checkpoint: {
            state: migrated.state,
            stats: checkpoint.stats,
            partitions: checkpoint.partitions.map((p) => ({
              ...p,
              state: migrated.partitions.get(p.partition) ?? null,
            })),
          },
        })
      }
      entry.record = record
      entry.definition = next
      entry.failure = undefined
      entry.parked = undefined
      entry.generation++
      if (wasRunning) await this.#startRunner(entry)
      return { ok: true, value: this.#view(entry) }
    })
    return outcome
  }

  /**
   * Recomputes a pipeline from a point of its source topic (POST /api/pipelines/{id}/replay): the
   * windows from that point on (see engine/replay.ts for where exactly) are deleted and computed
   * again from the log with fresh state, in the same commit that moves the positions back; the
   * pipeline then runs (live once it has read to where the topic ended when asked). A replay
   * from "earliest" starts the counters again too; otherwise they count on, the replay included.
   */
  async replayPipeline(id: string, body: unknown): Promise<Outcome<PipelineView>> {
    const entry = this.#entries.get(id)
    if (!entry) return { ok: false, error: notFound('pipeline', id) }
    const asked = replayFrom(body)
    if (!asked.ok) return asked
    const definition = entry.definition
    if (definition === null)
      return {
        ok: false,
        error: new AppError('conflict', `pipeline '${entry.record.name}' cannot replay: ${entry.failure}`),
      }
    return this.#serial(entry, async (): Promise<Outcome<PipelineView>> => {
      const wasRunning = entry.runner !== undefined || entry.retry !== undefined
      this.#stopRetrying(entry)
      await this.#stopRunner(entry)
      const planned = await this.#planReplay(id, definition, asked.value).catch(
        (err: Error): Outcome<ReplayPlan> => ({
          ok: false,
          error: new AppError('unavailable', `the source topic cannot be read: ${err.message}`),
        }),
      )
      if (!planned.ok) {
        if (wasRunning) await this.#startRunner(entry)
        return planned
      }
      const { cut, positions, target, checkpoint, resetCounters } = planned.value
      const fresh = new Pipeline(definition.stages, this.lookups, this.#limits)
      if (cut !== null) fresh.replayFrom(cut)
      const state = fresh.snapshot().state
      const keep = !resetCounters && checkpoint !== undefined
      const stats: PipelineStats = {
        ...(keep ? checkpoint.stats : emptyStats()),
        replay: {
          from: asked.value.given,
          cut,
          startedAt: this.clock(),
          finishedAt: null,
          start: positions,
          target,
          skipped: 0,
        },
      }
      const before = new Map(checkpoint?.partitions.map((p) => [p.partition, p.stats]) ?? [])
      await this.store.commit(id, {
        dropResultsFrom: cut ?? Number.MIN_SAFE_INTEGER,
        results: [],
        deadLetters: [],
        checkpoint: {
          state,
          stats,
          partitions: Object.keys(target).map((p) => ({
            partition: Number(p),
            position: positions[p],
            state: null,
            stats: { ...((keep ? before.get(Number(p)) : undefined) ?? emptyPartitionStats()) },
          })),
        },
      })
      entry.stats = stats
      entry.parked = undefined
      entry.generation++
      await this.#startRunner(entry)
      return { ok: true, value: this.#view(entry) }
    })
  }

  /** Where a replay begins on each partition, what it recomputes, and where it is live again. */
  async #planReplay(
    id: string,
    definition: PipelineDefinition,
    asked: ReplayFrom,
  ): Promise<Outcome<ReplayPlan>> {
    const topic = definition.sourceTopic
    const aggregate = definition.stages.find((s) => s.kind === 'aggregate')
    const processing = aggregate?.kind === 'aggregate' && aggregate.spec.time === 'processing'
    const checkpoint = await this.store.loadCheckpoint(id)
    const bounds = await this.log.positionsAt(topic, 'earliest')
    const target = bounds.end
    const clamp = (p: string, offset: number) => Math.min(Math.max(offset, bounds.from[p]), target[p])
    // the first event's time at some positions (processing time: its arrival)
    const firstTime = async (at: Record<string, number>) => {
      let t = Number.POSITIVE_INFINITY
      for (const b of await this.log.peek(topic, at, 1)) {
        if (processing) t = Math.min(t, b.appendedAt)
        else for (const e of b.events) t = Math.min(t, e.timestamp)
      }
      return Number.isFinite(t) ? t : null
    }
    let time: number | null = null
    if (asked.kind === 'time') time = asked.at
    else if (asked.kind === 'offset') {
      const at: Record<string, number> = {}
      for (const p of Object.keys(target)) at[p] = clamp(p, asked.offset)
      time = await firstTime(at)
      if (time === null)
        return {
          ok: false,
          error: new AppError(
            'conflict',
            `nothing to replay from offset ${asked.offset}: '${topic}' ends at ${JSON.stringify(target)}`,
          ),
        }
    }
    if (aggregate?.kind !== 'aggregate') {
      // without windows a replay is a position: the events from there go through the chain again
      const positions =
        asked.kind === 'earliest'
          ? bounds.from
          : asked.kind === 'offset'
            ? Object.fromEntries(Object.keys(target).map((p) => [p, clamp(p, asked.offset)]))
            : (await this.log.positionsAt(topic, asked.at)).from
      return {
        ok: true,
        value: { cut: null, positions, target, checkpoint, resetCounters: asked.kind === 'earliest' },
      }
    }
    const dropped = Object.values(bounds.from).some((offset) => offset > 0)
    let retainedFrom: number | null = null
    if (dropped)
      for (const b of await this.log.peek(topic, bounds.from, 1))
        retainedFrom = Math.max(retainedFrom ?? b.appendedAt, b.appendedAt)
    const watermark = checkpoint ? savedWatermark(checkpoint.state) : Number.NEGATIVE_INFINITY
    const planned = replayCut(aggregate.spec.window, time, watermark, retainedFrom)
    if (!planned.ok) return { ok: false, error: new AppError('conflict', `cannot replay: ${planned.reason}`) }
    const { cut } = planned
    const positions = cut === null ? bounds.from : (await this.log.positionsAt(topic, cut)).from
    return { ok: true, value: { cut, positions, target, checkpoint, resetCounters: cut === null } }
  }

  async listVersions(id: string): Promise<Outcome<PipelineVersion[]>> {
    if (!this.#entries.has(id)) return { ok: false, error: notFound('pipeline', id) }
    return { ok: true, value: await this.store.listVersions(id) }
  }

  /**
   * Runs a spec over inline events or a topic's newest events without saving anything, and tells
   * what it would produce (POST /api/pipelines/preview). The same validation as create.
   */
  async previewPipeline(body: unknown): Promise<Outcome<DryRunResult>> {
    const input = previewInput(body, this.config.maxBatch)
    if (!input.ok) return input
    const parsed = parsePipeline(input.value.pipeline, this.#limits)
    if (!parsed.ok)
      return {
        ok: false,
        error: validationError(parsed.issues.map((i) => ({ ...i, path: `/pipeline${i.path}` }))),
      }
    let steps: DryStep[]
    if (input.value.events) {
      let n = 0
      const normalized = normalizeEvents(input.value.events, this.clock(), () => `preview-${n++}`, '/events')
      if (!normalized.ok) return { ok: false, error: validationError(normalized.issues) }
      steps = [{ kind: 'events', arrival: this.clock(), events: normalized.events }]
    } else {
      const topic = input.value.topic ?? parsed.value.sourceTopic
      const batches = await this.log.tail(topic, input.value.last)
      steps = batches.map((b) => ({
        kind: 'events',
        arrival: b.appendedAt,
        events: b.events,
        partition: b.partition,
      }))
    }
    return {
      ok: true,
      value: dryRun(
        parsed.value,
        this.lookups,
        { ...this.#limits, maxItems: PREVIEW_ITEMS, maxWork: PREVIEW_WORK },
        steps,
      ),
    }
  }

  listPipelines(): PipelineView[] {
    return [...this.#entries.values()].map((e) => this.#view(e))
  }

  getPipeline(id: string): Outcome<PipelineView> {
    const entry = this.#entries.get(id)
    return entry ? { ok: true, value: this.#view(entry) } : { ok: false, error: notFound('pipeline', id) }
  }

  #view(e: Entry): PipelineView {
    const stats = e.runner ? e.runner.stats : e.stats
    const partitions = e.runner ? e.runner.partitions() : e.partitions
    return {
      record: e.record,
      stats,
      partitions,
      replay: stats.replay && this.#replayProgress(stats.replay, partitions),
      lag: e.runner ? e.runner.lag : 0,
      pendingResults: e.runner ? e.runner.pendingResults : 0,
      watermark: e.runner ? e.runner.watermark : null,
      failure: e.failure,
      degraded: e.runner?.degraded ?? e.startProblem,
    }
  }

  #replayProgress(r: ReplayStats, partitions: PartitionProgress[]): ReplayProgress {
    const at = new Map(partitions.map((p) => [String(p.partition), p.position]))
    let start = 0
    let position = 0
    let target = 0
    for (const [p, end] of Object.entries(r.target)) {
      const from = r.start[p] ?? 0
      start += from
      target += end
      position += Math.min(end, Math.max(from, at.get(p) ?? from))
    }
    const seconds = ((r.finishedAt ?? this.clock()) - r.startedAt) / 1000
    const eventsPerSecond = seconds > 0 ? Math.round((position - start) / seconds) : null
    return { ...r, start, position, target, eventsPerSecond }
  }

  #serial<T>(entry: Entry, work: () => Promise<T>): Promise<T> {
    const next = entry.busy.then(work, work)
    entry.busy = next.catch(() => undefined)
    return next
  }

  async startPipeline(id: string): Promise<Outcome<PipelineView>> {
    const entry = this.#entries.get(id)
    if (!entry) return { ok: false, error: notFound('pipeline', id) }
    if (entry.definition === null)
      return {
        ok: false,
        error: new AppError('conflict', `pipeline '${entry.record.name}' cannot start: ${entry.failure}`),
      }
    await this.#serial(entry, () => this.#startRunner(entry))
    return { ok: true, value: this.#view(entry) }
  }

  /**
   * Starts the runner; when that fails (the log or the broker is away) the pipeline stays
   * `running` with the reason as its degraded condition and is tried again with backoff, as during
   * an outage of a running pipeline. A stop or delete ends the retries.
   */
  async #startRunner(entry: Entry): Promise<void> {
    this.#cancelRetry(entry)
    if (entry.runner || this.#closed || entry.definition === null || !this.#entries.has(entry.record.id))
      return
    const id = entry.record.id
    const runner = new PipelineRunner({
      id,
      definition: entry.definition,
      version: entry.record.version,
      log: this.log,
      store: this.store,
      lookups: this.lookups,
      limits: this.#limits,
      logger: this.logger,
      clock: this.clock,
      checkpointIntervalMs: this.config.checkpointIntervalMs,
      maxPendingResults: this.config.maxPendingResults,
      deadLetterLimit: this.config.deadLetterLimit,
      telemetry: this.telemetry,
    })
    entry.failure = undefined
    try {
      await runner.start((reason) => void this.#fail(id, reason))
    } catch (err) {
      await runner.abandon()
      entry.startProblem = `starting: ${(err as Error).message}`
      const delayMs = Math.min((entry.retry?.delayMs ?? START_RETRY_MIN_MS / 2) * 2, START_RETRY_MAX_MS)
      this.logger.warn({ pipeline: id, err, retryInMs: delayMs }, 'pipeline could not start; retrying')
      const timer = setTimeout(() => void this.#serial(entry, () => this.#startRunner(entry)), delayMs)
      timer.unref()
      entry.retry = { timer, delayMs }
      if (entry.record.status !== PipelineStatus.running) await this.#setStatus(entry, PipelineStatus.running)
      return
    }
    entry.runner = runner
    entry.parked = undefined
    entry.generation++
    entry.startProblem = undefined
    entry.retry = undefined
    await this.#setStatus(entry, PipelineStatus.running)
  }

  #cancelRetry(entry: Entry): void {
    if (entry.retry) clearTimeout(entry.retry.timer)
  }

  #stopRetrying(entry: Entry): void {
    this.#cancelRetry(entry)
    entry.retry = undefined
    entry.startProblem = undefined
  }

  async #fail(id: string, reason: string): Promise<void> {
    const entry = this.#entries.get(id)
    if (!entry?.runner) return
    entry.stats = entry.runner.stats
    entry.partitions = entry.runner.partitions().map((p) => ({ ...p, lag: 0 }))
    entry.runner = undefined
    entry.generation++
    entry.failure = reason
    await this.#setStatus(entry, PipelineStatus.failed)
  }

  async #setStatus(entry: Entry, status: PipelineStatus): Promise<void> {
    const now = this.clock()
    entry.record = { ...entry.record, status, updatedAt: now }
    await this.store.setPipelineStatus(entry.record.id, status, now)
  }

  async stopPipeline(id: string): Promise<Outcome<PipelineView>> {
    const entry = this.#entries.get(id)
    if (!entry) return { ok: false, error: notFound('pipeline', id) }
    await this.#serial(entry, async () => {
      const retrying = entry.retry !== undefined
      this.#stopRetrying(entry)
      if (!entry.runner && !retrying) return
      await this.#stopRunner(entry)
      await this.#setStatus(entry, PipelineStatus.stopped)
    })
    return { ok: true, value: this.#view(entry) }
  }

  async #stopRunner(entry: Entry): Promise<void> {
    const runner = entry.runner
    if (!runner) return
    await runner.stop()
    entry.stats = runner.stats
    entry.partitions = runner.partitions().map((p) => ({ ...p, lag: 0 }))
    entry.runner = undefined
    entry.parked = undefined
    entry.generation++
  }

  async deletePipeline(id: string): Promise<Outcome<null>> {
    const entry = this.#entries.get(id)
    if (!entry) return { ok: false, error: notFound('pipeline', id) }
    await this.#serial(entry, async () => {
      this.#stopRetrying(entry)
      await this.#stopRunner(entry)
      await this.store.deletePipeline(id)
      this.#entries.delete(id)
    })
    return { ok: true, value: null }
  }

  /**
   * Open windows from live state (or the saved state of a stopped pipeline), closed ones from the
   * store; newest first. Each source gives at most `limit`, found through its own index (window
   * start, then key), so the work follows what is returned, not how many keys are open.
   */
  async windows(id: string, q: WindowQuery): Promise<Outcome<WindowResult[]>> {
    const entry = this.#entries.get(id)
    if (!entry) return { ok: false, error: notFound('pipeline', id) }
    const filters = parseKeyFilters(q.key ?? {})
    const accept = filters.length === 0 ? undefined : (r: WindowResult) => keyPasses(filters, r.key)
    const matches = (r: WindowResult) => {
      if (q.from !== undefined && r.windowEnd <= q.from) return false
      if (q.to !== undefined && r.windowStart >= q.to) return false
      return accept === undefined || accept(r)
    }
    const out: WindowResult[] = []
    if (q.state !== 'closed') {
      const open = { limit: q.limit, from: q.from, to: q.to, keyFilter: q.key, accept }
      const source = entry.runner ?? (await this.#parkedState(entry))
      if (source) for (const w of source.openWindows(open)) out.push({ ...w, version: entry.record.version })
    }
    if (q.state !== 'open') {
      // closed windows on their way to the store count as stored (a replay may have stored them before)
      const committing = entry.runner?.committingResults().filter(matches) ?? []
      const seen = new Set(committing.map((r) => `${r.windowStart}\u0000${r.keyId}`))
      out.push(...committing)
      for (const r of await this.store.queryResults(id, q))
        if (!seen.has(`${r.windowStart}\u0000${r.keyId}`)) out.push(r)
    }
    out.sort(
      (a, b) =>
        b.windowStart - a.windowStart ||
        b.windowEnd - a.windowEnd ||
        (a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0),
    )
    if (out.length > q.limit) out.length = q.limit
    return { ok: true, value: out }
  }

  async #parkedState(entry: Entry): Promise<Pipeline | undefined> {
    if (entry.parked || !entry.definition) return entry.parked
    const generation = entry.generation
    const checkpoint = await this.store.loadCheckpoint(entry.record.id)
    if (!checkpoint) return undefined
    const pipeline = new Pipeline(entry.definition.stages, this.lookups, this.#limits)
    pipeline.restore(checkpoint.state, partitionStates(checkpoint))
    if (entry.generation === generation && !entry.runner) entry.parked = pipeline
    return pipeline
  }

  async deadLetters(id: string, limit: number) {
    if (!this.#entries.has(id)) return { ok: false as const, error: notFound('pipeline', id) }
    return { ok: true as const, value: await this.store.listDeadLetters(id, limit) }
  }

  // ---- ingestion ----

  /**
   * Checks and appends a request's events (to `topic`, or to every running pipeline's topic).
   * `raw`, the request's bytes, lets the embedded log store them without serialising again.
   */
  async ingest(
    raw: unknown[],
    topic: string | undefined,
    body?: Buffer,
  ): Promise<Outcome<{ accepted: number; topics: string[] }>> {
    if (raw.length > this.config.maxBatch)
      return {
        ok: false,
        error: validationError([
          { path: '/events', message: `at most ${this.config.maxBatch} events per request` },
        ]),
      }
    const now = this.clock()
    const idStart = this.#ids.position
    const normalized = normalizeEvents(raw, now, this.#ids.next)
    if (!normalized.ok) return { ok: false, error: validationError(normalized.issues) }
    const request = body && { body, idPrefix: this.#ids.prefix, idStart, now }
    // without a topic: every running pipeline's; with none running, the default topic (acknowledged means stored)
    const running = topic === undefined ? this.#runningSourceTopics() : []
    const topics = topic !== undefined ? [topic] : running.length > 0 ? running : [this.config.defaultTopic]
    const heldMb = this.#memory.heldMb
    if (heldMb > this.config.ingestMemoryLimitMb)
      return {
        ok: false,
        error: new AppError(
          'overloaded',
          `the server holds ${Math.round(heldMb)} MB of heap and buffers (limit ${this.config.ingestMemoryLimitMb} MB) while pipelines catch up; retry later`,
          [],
          1,
        ),
      }
    for (const e of this.#entries.values()) {
      const r = e.runner
      if (!r || !topics.includes(r.definition.sourceTopic)) continue
      // every kind of pending work: events not yet read, results not yet written
      const behind =
        r.lag > this.config.maxLag
          ? `is ${r.lag} events behind`
          : r.pendingResults > this.config.maxPendingResults
            ? `has ${r.pendingResults} results still to write`
            : undefined
      if (behind !== undefined)
        return {
          ok: false,
          error: new AppError('overloaded', `pipeline '${e.record.name}' ${behind}; retry later`, [], 1),
        }
    }
    const events = normalized.events
    const timer = this.telemetry.logAppend.startTimer()
    try {
      await Promise.all(topics.map((t) => this.log.append(t, events, request)))
      timer()
    } catch (err) {
      this.logger.error({ err }, 'log append failed')
      return {
        ok: false,
        error: new AppError('unavailable', 'the event log could not store the events', [], 5),
      }
    }
    this.#ingested += events.length
    this.ingestRate.add(events.length)
    this.#history.add(events.length, this.clock())
    this.telemetry.ingestEvents.inc(events.length)
    return { ok: true, value: { accepted: events.length, topics } }
  }

  #runningSourceTopics(): string[] {
    const set = new Set<string>()
    // every pipeline meant to run: one still restoring or retrying its start gets its events too
    for (const e of this.#entries.values())
      if (e.definition !== null && e.record.status === PipelineStatus.running)
        set.add(e.definition.sourceTopic)
    return [...set]
  }

  get ingested(): number {
    return this.#ingested
  }

  /**
   * Drops log segments every pipeline has checkpointed past (when old or over the size budget) and
   * metric points past their retention. Runs every minute.
   */
  async enforceRetention(): Promise<void> {
    try {
      const keepFrom = new Map<string, Positions>()
      for (const e of this.#entries.values()) {
        if (e.definition === null) continue
        const positions = e.runner
          ? e.runner.checkpointedPositions
          : await this.store.loadCheckpoint(e.record.id).then((c) => c && checkpointPositions(c))
        if (positions === undefined) continue
        const topic = e.definition.sourceTopic
        const keep = keepFrom.get(topic) ?? {}
        for (const [p, o] of Object.entries(positions))
          keep[p] = Math.min(keep[p] ?? Number.POSITIVE_INFINITY, o)
        keepFrom.set(topic, keep)
      }
      const policy = {
        maxAgeMs: this.config.logRetentionHours * 3_600_000,
        maxBytes: this.config.logRetentionBytes,
      }
      for (const topic of this.log.topics()) {
        const removed = this.log.retain(topic, keepFrom.get(topic) ?? {}, policy)
        if (removed > 0) this.logger.info({ topic, segments: removed }, 'log retention removed segments')
      }
      const now = this.clock()
      const day = 86_400_000
      await this.store.enforceMetricsRetention({
        rawBefore: now - this.config.metricsRetentionDays * day,
        minuteBefore: now - this.config.metricsRollupDays * day,
        hourBefore: now - 10 * this.config.metricsRollupDays * day,
        maxRawPoints: this.config.metricsMaxPoints,
      })
    } catch (err) {
      this.logger.error({ err }, 'retention failed')
    }
  }

  /** Stops every runner (each checkpoints), then closes the log and the store. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#retentionTimer)
    this.#memory.stop()
    for (const e of this.#entries.values()) this.#cancelRetry(e)
    await Promise.all([...this.#entries.values()].map((e) => this.#serial(e, () => this.#stopRunner(e))))
    this.#history.flush()
    await this.#history.written
    await this.log.close()
    await this.store.close()
  }
}

function newEntry(
  record: PipelineRecord,
  definition: PipelineDefinition | null,
  stats: PipelineStats,
): Entry {
  return {
    record,
    definition,
    runner: undefined,
    stats,
    partitions: [],
    failure: undefined,
    startProblem: undefined,
    retry: undefined,
    busy: Promise.resolve(),
    parked: undefined,
    generation: 0,
  }
}
