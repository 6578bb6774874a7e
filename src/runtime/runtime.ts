import { randomBytes, randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
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
import { type EventLog, type Positions, readerGroup } from '../log/log.ts'
import type { Logger } from '../logger.ts'
import { Telemetry } from '../observability/telemetry.ts'
import {
  type Acquired,
  type Checkpoint,
  type ClusterChange,
  type ClusterStore,
  checkpointPositions,
  emptyPartitionStats,
  emptyStats,
  type Fence,
  FencedError,
  type PartitionStats,
  type PipelineRecord,
  type PipelineStats,
  PipelineStatus,
  type PipelineVersion,
  partitionStates,
  type ReplayStats,
  type ResultQuery,
  type Store,
} from '../stores/store.ts'
import { ClusterMembership, type ClusterView } from './cluster-membership.ts'
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
  /** sink and .dlq messages a checkpoint covered that the relay has not sent yet (exactly-once output) */
  outboxBacklog: number
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
  /** in a cluster: the lease the runner runs under */
  fence: Fence | undefined
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
  /** set when several instances share the store and the log (PostgreSQL and Kafka): see DESIGN §8 */
  #cluster: ClusterMembership | undefined
  #unlisten: (() => Promise<void>) | undefined
  #advertised: string
  #beats = 0
  /** a read of the progress of pipelines run elsewhere is under way */
  #refreshing = false
  #claiming = false

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
      instanceId: options.config.instanceId,
      pipelines: () =>
        [...this.#entries.values()].map((e) => {
          const v = this.#view(e)
          return {
            name: e.record.name,
            stats: v.stats,
            lag: v.lag,
            outbox: v.outboxBacklog,
            watermark: v.watermark,
            running: e.runner !== undefined,
          }
        }),
    })
    this.#limits = {
      maxKeysPerWindow: options.config.maxKeysPerWindow,
      maxWindowsPerEvent: options.config.maxWindowsPerEvent,
    }
    this.#advertised = advertisedUrl(options.config, options.config.port)
  }

  /** Opens on the store and the log the wiring (app.ts) built: loads lookups, keys and pipelines. */
  static async open(options: RuntimeOptions): Promise<Runtime> {
    const { config, store, log } = options
    const runtime = new Runtime(options, store, log, await KeyRing.open(config.apiKeys, store))
    await runtime.lookups.load()
    if (store.cluster && config.kafka) await runtime.#joinCluster(store.cluster)
    const starts: Promise<void>[] = []
    for (const record of await store.listPipelines()) {
      const entry = runtime.#loadedEntry(record, await store.loadCheckpoint(record.id))
      runtime.#entries.set(record.id, entry)
      if (entry.definition !== null && record.status === PipelineStatus.running)
        starts.push(runtime.#serial(entry, () => runtime.#startRunner(entry)))
    }
    // side by side; a start that fails (a broker away at boot) does not stop the server: it is retried
    await Promise.all(starts)
    runtime.#retentionTimer = setInterval(() => void runtime.enforceRetention(), 60_000)
    runtime.#retentionTimer.unref()
    return runtime
  }

  // ---- pipelines ----

  /** A stored pipeline as the runtime holds it; one whose spec no longer validates is kept, failed, with the reason. */
  #loadedEntry(record: PipelineRecord, checkpoint: Checkpoint | undefined): Entry {
    const parsed = parsePipeline(record.spec, this.#limits)
    const entry = newEntry(record, parsed.ok ? parsed.value : null, checkpoint?.stats ?? emptyStats())
    entry.partitions = storedPartitions(checkpoint?.partitions ?? [])
    if (!parsed.ok) {
      // kept visible (and deletable, its name still taken) rather than skipped
      const issue = parsed.issues[0]
      entry.failure = `the stored spec no longer validates: ${issue ? `${issue.path} ${issue.message}` : 'invalid'}`
      entry.record = { ...record, status: PipelineStatus.failed }
      this.logger.error(
        { pipeline: record.id, issues: parsed.issues },
        'stored pipeline no longer valid; marked failed',
      )
    }
    return entry
  }

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
    this.#announce({ kind: 'pipeline', id: record.id })
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
      await this.#stopRunner(entry, true, false)
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
          fence: entry.fence,
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
      this.#announce({ kind: 'pipeline', id })
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
      await this.#stopRunner(entry, true, false)
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
        fence: entry.fence,
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
      outboxBacklog: e.runner ? e.runner.outboxBacklog : 0,
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

  // ---- cluster (DESIGN §8): pipelines in the store, one lease per running pipeline ----

  /** This instance's view of its cluster, or undefined when it runs alone. */
  get cluster(): ClusterView | undefined {
    return this.#cluster?.view()
  }

  /** The live instance that runs pipeline `id` when that is another one: requests about it go there. */
  ownerElsewhere(id: string): { id: string; url: string } | undefined {
    return this.#cluster?.ownerElsewhere(id)
  }

  /** Where the other instances reach this one, once the server listens (the port may be picked then). */
  advertise(port: number): void {
    this.#advertised = advertisedUrl(this.config, port)
  }

  async #joinCluster(cluster: ClusterStore): Promise<void> {
    const leaseMs = this.config.clusterLeaseMs
    this.#cluster = new ClusterMembership({
      cluster,
      instanceId: this.config.instanceId,
      url: () => this.#advertised,
      startedAt: this.startedAt,
      leaseMs,
      heartbeatMs: Math.min(1_000, Math.max(100, Math.round(leaseMs / 10))),
      logger: this.logger,
      onBeat: (held) => this.#afterBeat(held),
    })
    this.keys.onChange = () => this.#announce({ kind: 'keys', id: '' })
    this.lookups.onChange = (table) => this.#announce({ kind: 'lookups', id: table })
    this.#unlisten = await cluster.listen((change) => void this.#onChange(change))
    await this.#cluster.start()
  }

  async #leave(): Promise<void> {
    const id = this.config.instanceId
    try {
      await this.store.cluster?.leave(id)
      await this.store.cluster?.announce({ kind: 'instances', id, from: id })
    } catch (err) {
      this.logger.warn(
        { err: (err as Error).message },
        'leaving the cluster failed; the others notice within a lease',
      )
    }
  }

  #announce(change: Omit<ClusterChange, 'from'>): void {
    if (!this.#cluster) return
    this.store.cluster
      ?.announce({ ...change, from: this.config.instanceId })
      .catch((err: Error) =>
        this.logger.warn(
          { err: err.message, change },
          'announcing a change failed; the others see it within seconds',
        ),
      )
  }

  async #onChange(change: ClusterChange): Promise<void> {
    if (change.from === this.config.instanceId || this.#closed) return
    try {
      // a fresh heartbeat sees who is alive now, and claims
      if (change.kind === 'instances') await this.#cluster?.beat()
      else if (change.kind === 'keys') await this.keys.reload()
      else if (change.kind === 'lookups') await this.lookups.reload(change.id)
      else if (change.id === '') await this.#reconcileAll()
      else await this.#reconcile(change.id, await this.store.getPipeline(change.id))
    } catch (err) {
      this.logger.warn(
        { err: (err as Error).message, change },
        'applying a change from another instance failed',
      )
    }
    // a pipeline to start, or one given up elsewhere: claimed now rather than at the next heartbeat
    void this.#claim()
  }

  /**
   * The counters of pipelines another instance runs, as of its last checkpoint: lists and
   * /api/stats here follow them (a request about one pipeline is forwarded to its owner).
   */
  async #refreshElsewhere(): Promise<void> {
    if (this.#refreshing) return
    this.#refreshing = true
    try {
      const elsewhere = [...this.#entries.values()].filter(
        (e) => !e.runner && e.record.status === PipelineStatus.running,
      )
      if (elsewhere.length === 0) return
      // two queries a heartbeat, however many pipelines
      const progress = await this.store.loadProgress(elsewhere.map((e) => e.record.id))
      for (const e of elsewhere) {
        const p = progress.get(e.record.id)
        // started here meanwhile: its own counters are newer
        if (!p || e.runner) continue
        e.stats = p.stats
        e.partitions = storedPartitions(p.partitions)
      }
    } catch (err) {
      this.logger.warn(
        { err: (err as Error).message },
        'reading the progress of pipelines run elsewhere failed',
      )
    } finally {
      this.#refreshing = false
    }
  }

  async #reconcileAll(): Promise<void> {
    const records = await this.store.listPipelines()
    const ids = new Set(records.map((r) => r.id))
    for (const r of records) await this.#reconcile(r.id, r)
    for (const id of [...this.#entries.keys()]) if (!ids.has(id)) await this.#reconcile(id, undefined)
  }

  /** Brings one pipeline here in line with the store, after another instance changed it. */
  async #reconcile(id: string, record: PipelineRecord | undefined): Promise<void> {
    const entry = this.#entries.get(id)
    if (!record) {
      if (!entry) return
      await this.#serial(entry, async () => {
        this.#stopRetrying(entry)
        // deleted elsewhere: its data are gone, nothing to checkpoint
        await this.#dropRunner(entry)
        this.#entries.delete(id)
      })
      return
    }
    if (!entry) {
      this.#entries.set(id, this.#loadedEntry(record, await this.store.loadCheckpoint(id)))
      return
    }
    const r = entry.record
    if (r.updatedAt === record.updatedAt && r.version === record.version && r.status === record.status) return
    await this.#serial(entry, async () => {
      const respecified = record.version !== entry.record.version
      if (respecified) {
        const fresh = this.#loadedEntry(record, undefined)
        entry.definition = fresh.definition
        entry.failure = fresh.failure
        entry.parked = undefined
        entry.generation++
      }
      entry.record = entry.definition === null ? { ...record, status: PipelineStatus.failed } : record
      if (record.status !== PipelineStatus.running) {
        // stopped (or failed) elsewhere: a runner here checkpoints and gives the lease up
        this.#stopRetrying(entry)
        await this.#stopRunner(entry)
      } else if (respecified && entry.runner) {
        await this.#stopRunner(entry, true, false)
        await this.#startRunner(entry)
      }
    })
  }

  /** After each heartbeat: runners whose lease was not renewed stop; pipelines nobody runs are claimed. */
  #afterBeat(held: ReadonlySet<string>): void {
    if (this.#closed) return
    for (const e of this.#entries.values())
      if (e.runner && e.fence && !held.has(e.record.id)) void this.#lost(e.record.id)
    // announcements can be missed (a dropped connection): everything is compared again now and then
    if (++this.#beats % 10 === 0)
      this.#reconcileAll().catch((err: Error) => this.logger.warn({ err: err.message }, 'reconciling failed'))
    void this.#claim()
    void this.#refreshElsewhere()
  }

  /**
   * Takes pipelines meant to run that no live instance runs, up to this instance's share of them;
   * above its share, while another instance runs fewer, it hands one over (checkpoint, then release).
   */
  async #claim(): Promise<void> {
    const cluster = this.#cluster
    if (!cluster || this.#claiming || this.#closed) return
    this.#claiming = true
    try {
      const running = [...this.#entries.values()].filter(
        (e) => e.definition !== null && e.record.status === PipelineStatus.running,
      )
      const share = cluster.share(running.length)
      const mine = () => running.filter((e) => e.runner !== undefined || e.retry !== undefined)
      for (const e of running) {
        if (mine().length >= share) break
        if (e.runner || e.retry || cluster.heldElsewhere(e.record.id)) continue
        await this.#serial(e, () => this.#startRunner(e))
      }
      const held = mine()
      if (held.length > share && cluster.peerBelowShare(running.length)) {
        const last = held[held.length - 1]
        this.logger.info({ pipeline: last.record.id }, 'handing a pipeline over to an instance with fewer')
        await this.#serial(last, () => this.#stopRunner(last, false, false))
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'claiming pipelines failed')
    } finally {
      this.#claiming = false
    }
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
    const cluster = this.#cluster
    let taken: { acquired: Acquired; at: number } | undefined
    if (cluster) {
      // the cluster runs it: here if this instance gets the lease, else where another holds it
      if (entry.record.status !== PipelineStatus.running) await this.#setStatus(entry, PipelineStatus.running)
      if (cluster.heldElsewhere(id)) return
      const acquired = await cluster.acquire(id).catch((err: Error) => {
        this.logger.warn(
          { pipeline: id, err: err.message },
          'taking the lease failed; trying again next heartbeat',
        )
        return undefined
      })
      if (!acquired) return
      entry.fence = { instanceId: cluster.instanceId, epoch: acquired.lease.epoch }
      taken = { acquired, at: performance.now() }
      // the old owner's lease ran out (it did not let go): its consumer may still hold the partitions
      const previous = acquired.previous
      if (previous && previous.instanceId !== cluster.instanceId && !previous.released)
        await this.log.evictMember?.(readerGroup(id), previous.instanceId)
    }
    const fence = entry.fence
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
      fence,
      owned: cluster && fence ? () => cluster.owns(id, fence) : undefined,
      output: this.log.transactional,
    })
    entry.failure = undefined
    try {
      await runner.start(
        (err) => void (err instanceof FencedError ? this.#lost(id) : this.#fail(id, err.message)),
      )
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
    if (!cluster || entry.record.status !== PipelineStatus.running)
      await this.#setStatus(entry, PipelineStatus.running)
    const previous = taken?.acquired.previous
    if (cluster && fence && taken && previous) {
      const handover = {
        from: previous.instanceId,
        to: cluster.instanceId,
        at: taken.acquired.lease.acquiredAt,
        pausedMs:
          Math.max(0, taken.acquired.lease.acquiredAt - previous.renewedAt) + (performance.now() - taken.at),
      }
      this.logger.info({ pipeline: id, ...handover }, 'pipeline taken over')
      await this.store.cluster?.recordHandover(id, fence, handover).catch(() => undefined)
    }
  }

  /** Another instance took the pipeline over (a commit was fenced, or the lease was not renewed): let go of it here. */
  async #lost(id: string): Promise<void> {
    const entry = this.#entries.get(id)
    if (!entry?.runner) return
    this.logger.warn({ pipeline: id }, 'lease lost: another instance runs the pipeline now')
    await this.#dropRunner(entry)
  }

  /** Lets go of a runner writing nothing more (the lease moved on, or the pipeline is gone). */
  async #dropRunner(entry: Entry): Promise<void> {
    const runner = entry.runner
    if (!runner) return
    entry.stats = runner.stats
    entry.partitions = runner.partitions().map((p) => ({ ...p, lag: 0 }))
    entry.runner = undefined
    entry.parked = undefined
    entry.generation++
    this.#cluster?.forget(entry.record.id)
    entry.fence = undefined
    await runner.abandon()
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
    this.#announce({ kind: 'pipeline', id: entry.record.id })
  }

  async stopPipeline(id: string): Promise<Outcome<PipelineView>> {
    const entry = this.#entries.get(id)
    if (!entry) return { ok: false, error: notFound('pipeline', id) }
    await this.#serial(entry, async () => {
      const retrying = entry.retry !== undefined
      this.#stopRetrying(entry)
      // in a cluster another instance may run it: the status in the store stops it there
      const elsewhere = this.#cluster !== undefined && entry.record.status === PipelineStatus.running
      if (!entry.runner && !retrying && !elsewhere) return
      await this.#stopRunner(entry)
      await this.#setStatus(entry, PipelineStatus.stopped)
    })
    return { ok: true, value: this.#view(entry) }
  }

  /**
   * Stops the runner with a checkpoint; in a cluster the lease goes too, unless `keepLease` (it
   * runs again here at once). With `drain` it waits (a while) for its output to reach Kafka: when
   * nobody goes on with the pipeline; a next owner's relay sends what is left.
   */
  async #stopRunner(entry: Entry, keepLease = false, drain = true): Promise<void> {
    const runner = entry.runner
    if (!runner) return
    try {
      await runner.stop(drain)
    } finally {
      entry.stats = runner.stats
      entry.partitions = runner.partitions().map((p) => ({ ...p, lag: 0 }))
      entry.runner = undefined
      entry.parked = undefined
      entry.generation++
    }
    // checkpointed: the next owner goes on from exactly here
    const fence = entry.fence
    if (keepLease) return
    entry.fence = undefined
    if (fence) await this.#cluster?.release(entry.record.id, fence)
  }

  async deletePipeline(id: string): Promise<Outcome<null>> {
    const entry = this.#entries.get(id)
    if (!entry) return { ok: false, error: notFound('pipeline', id) }
    await this.#serial(entry, async () => {
      this.#stopRetrying(entry)
      await this.#stopRunner(entry, false, false)
      await this.store.deletePipeline(id)
      await this.log.forgetPipeline?.(id)
      this.#entries.delete(id)
      this.#announce({ kind: 'pipeline', id })
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
    await this.#cluster?.stop()
    await this.#unlisten?.()
    // each runner checkpoints and gives its lease up: another instance goes on at once
    await Promise.all(
      [...this.#entries.values()].map((e) =>
        this.#serial(e, () => this.#stopRunner(e, false, !this.#cluster)),
      ),
    )
    // counted alive no more: the others take its share now, not once its last heartbeat is a lease old
    if (this.#cluster) await this.#leave()
    this.#history.flush()
    await this.#history.written
    await this.log.close()
    await this.store.close()
  }
}

/** Where other instances reach this one: --advertise-url, else the listen address (the machine's name for a wildcard). */
function advertisedUrl(config: Config, port: number): string {
  if (config.advertiseUrl !== '') return config.advertiseUrl
  const wildcard = config.host === '0.0.0.0' || config.host === '::' || config.host === ''
  const host = wildcard ? hostname() : config.host.includes(':') ? `[${config.host}]` : config.host
  return `${config.tls ? 'https' : 'http'}://${host}:${port}`
}

/** Partitions as a checkpoint left them (no reader here: no lag or watermark known). */
function storedPartitions(
  partitions: Array<{ partition: number; position: number | null; stats: PartitionStats }>,
): PartitionProgress[] {
  return partitions.map((p) => ({
    partition: p.partition,
    position: p.position,
    lag: 0,
    watermark: null,
    ...p.stats,
  }))
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
    fence: undefined,
  }
}
