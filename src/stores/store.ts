import type { ApiKeyRecord } from '../auth/key-types.ts'
import type { DeadLetterReason, Event, JsonValue, WindowResult } from '../engine/types.ts'

export const PipelineStatus = {
  created: 'created',
  running: 'running',
  stopped: 'stopped',
  failed: 'failed',
} as const
export type PipelineStatus = (typeof PipelineStatus)[keyof typeof PipelineStatus]

export interface PipelineRecord {
  id: string
  name: string
  /** the definition as the user gave it (without `start`) */
  spec: Record<string, unknown>
  status: PipelineStatus
  createdAt: number
  updatedAt: number
  /** 1 at create; each accepted change (PUT) adds one */
  version: number
}

/** One version of a pipeline's spec, as it was accepted. */
export interface PipelineVersion {
  version: number
  spec: Record<string, unknown>
  createdAt: number
  /** the change dropped the window state (`"reset": true`) */
  reset: boolean
}

export interface PipelineStats {
  events_in: number
  events_out: number
  filtered: number
  late: number
  errors: number
  results: number
  /** the last replay (POST …/replay), kept with the counters so a restart goes on showing it */
  replay?: ReplayStats
}

/** A replay of the source topic: from where, what it recomputes, how far it has come. */
export interface ReplayStats {
  /** as asked: "earliest", an RFC 3339 time or an offset */
  from: string | number
  /** the first window start it recomputes; null: every window */
  cut: number | null
  startedAt: number
  /** when the reading reached `target` (null: still replaying) */
  finishedAt: number | null
  /** partition → the offset it began at */
  start: Record<string, number>
  /** partition → the end of the topic when it was asked: past this the pipeline is live again */
  target: Record<string, number>
  /** events read that belong to windows before the cut (kept as they were) */
  skipped: number
}

export function emptyStats(): PipelineStats {
  return { events_in: 0, events_out: 0, filtered: 0, late: 0, errors: 0, results: 0 }
}

/**
 * A pipeline's checkpoint: its own part (state that is no one partition's, and the counters) and
 * a part per source partition (position and that partition's window state), each kept as a row of
 * its own and all saved in one transaction with the output they account for, so recovery is exact.
 */
export interface Checkpoint {
  state: JsonValue
  stats: PipelineStats
  partitions: PartitionCheckpoint[]
}

/** What a checkpoint says of a pipeline's progress: counters and positions, no window state. */
export interface CheckpointProgress {
  stats: PipelineStats
  partitions: Array<{ partition: number; position: number | null; stats: PartitionStats }>
}

export interface PartitionCheckpoint {
  partition: number
  /** the next offset to read; null for a partition known but not read yet */
  position: number | null
  state: JsonValue
  /** what was read from this partition (the pipeline's counters are the totals) */
  stats: PartitionStats
  /**
   * Window state kept as rows of their own (a pane each), so a checkpoint writes only what
   * changed: `all` replaces every part, otherwise `dropped` go and `changed` replace theirs.
   * Without it `state` is the whole state and the partition's parts go. Loaded: every part.
   */
  parts?: CheckpointParts
}

export interface CheckpointParts {
  all: boolean
  changed: Array<[part: number, value: JsonValue]>
  dropped: number[]
}

/** The input side of a pipeline's counters, for one source partition. */
export interface PartitionStats {
  events_in: number
  filtered: number
  late: number
  errors: number
}

export function emptyPartitionStats(): PartitionStats {
  return { events_in: 0, filtered: 0, late: 0, errors: 0 }
}

/** each partition's saved window state, as the engine restores it: its parts beside it, under `parts` */
export function partitionStates(c: Checkpoint): Map<number, JsonValue> {
  return new Map(
    c.partitions
      .filter((p) => p.state !== null)
      .map((p) => [
        p.partition,
        p.parts ? ({ ...(p.state as object), parts: p.parts.changed } as unknown as JsonValue) : p.state,
      ]),
  )
}

/** partition → next offset to read, as the log takes positions */
export function checkpointPositions(c: Checkpoint): Record<string, number> {
  const positions: Record<string, number> = {}
  for (const p of c.partitions) if (p.position !== null) positions[String(p.partition)] = p.position
  return positions
}

export interface DeadLetterRecord {
  /** deterministic: the log offset of the batch and the position in its output, so replays do not repeat it */
  id: string
  reason: DeadLetterReason
  detail: string
  event: Event
  at: number
}

/** Everything one processed stretch of the log produced, written in one transaction. */
export interface PipelineCommit {
  /** first deletes the results of windows starting at or after this (a replay recomputes them) */
  dropResultsFrom?: number
  results: WindowResult[]
  deadLetters: DeadLetterRecord[]
  /** the results as series points (pipeline.<name>.<function>) */
  metrics?: MetricPoint[]
  /** the pipeline's part replaces the saved one; of the partitions, those named replace theirs, the others stay */
  checkpoint?: Checkpoint
  /**
   * In a cluster: the ownership this commit is made under. The store commits only while it still
   * holds (same instance, same epoch), else throws `FencedError` and writes nothing, so an owner
   * that was frozen or cut off cannot commit after another took the pipeline over.
   */
  fence?: Fence
  /**
   * Messages for Kafka (sink and .dlq) to be relayed exactly once: stored here in commit order,
   * handed to the relay only once a checkpoint commit covers them (their input is then never
   * read again), so a replay after a crash regenerates what was not yet covered instead of
   * sending it twice.
   */
  outbox?: OutboxMessage[]
  /**
   * Drops outbox messages no checkpoint covers, before anything else of this commit: a runner's
   * first commit after a start, as the replay from the checkpoint writes them again.
   */
  discardUncovered?: boolean
}

/** A message the relay produces to Kafka: built once when its result is committed. */
export interface OutboxMessage {
  topic: string
  key: string | null
  value: string
  headers: Record<string, string>
}

/**
 * The outbox messages of one commit, stored as one row (a row per message cost the store three
 * times as much): `seq` increases in commit order within a pipeline and is never used again.
 */
export interface OutboxBatch {
  seq: number
  messages: OutboxMessage[]
}

/** Who may commit for a pipeline: an instance and the epoch of its lease (moved by every take-over). */
export interface Fence {
  instanceId: string
  epoch: number
}

/** A commit under an ownership that has moved on: nothing of it was written. */
export class FencedError extends Error {
  constructor(pipelineId: string, fence: Fence) {
    super(`pipeline ${pipelineId} is no longer owned by ${fence.instanceId} at epoch ${fence.epoch}`)
    this.name = 'FencedError'
  }
}

export interface ResultQuery {
  from?: number
  to?: number
  limit: number
  /** group key filters: path → value as text */
  key?: Record<string, string>
}

export interface LookupTableInfo {
  name: string
  keyField: string
  rows: number
  updatedAt: number
}

export interface MetricPoint {
  name: string
  tags: Record<string, string>
  value: number
  timestamp: number
}

export interface SeriesInfo {
  name: string
  tags: Record<string, string>
  lastValue: number
  lastTimestamp: number
  points: number
}

export const METRIC_AGGS = ['avg', 'sum', 'min', 'max', 'count', 'last'] as const
export type MetricAgg = (typeof METRIC_AGGS)[number]

export interface MetricQuery {
  name: string
  tags: Record<string, string>
  from: number
  to: number
  stepMs: number
  agg: MetricAgg
  /** refuse (return null) when more points than this would be scanned */
  maxPoints: number
}

/** Cut-offs (epoch ms): raw points, 1-minute and 1-hour rollups older than these go. */
export interface MetricRetention {
  rawBefore: number
  minuteBefore: number
  hourBefore: number
  /** past this many raw points the oldest go first (retention by size) */
  maxRawPoints: number
}

export interface SeriesPoints {
  name: string
  tags: Record<string, string>
  points: Array<{ timestamp: number; value: number }>
}

export type InsertOutcome = { ok: true } | { ok: false; conflict: 'name' }

/** An instance of a cluster, as it last said it was alive (the database's clock). */
export interface InstanceRecord {
  id: string
  /** where other instances reach its API (requests for the pipelines it runs are forwarded there) */
  url: string
  startedAt: number
  lastSeen: number
}

/** Who runs a pipeline: a lease renewed by its owner; another instance takes it once it expires. */
export interface LeaseRecord {
  pipelineId: string
  instanceId: string
  /** one more at every acquisition: the fence its commits carry */
  epoch: number
  acquiredAt: number
  /** the owner's last renewal: its last sign of life */
  renewedAt: number
  expiresAt: number
  /** the last change of owner: from whom, and how long the pipeline did not run */
  handover: Handover | null
}

export interface Handover {
  from: string
  to: string
  at: number
  /** from the old owner's last renewal to the new owner's runner reading again */
  pausedMs: number
}

export interface Acquired {
  lease: LeaseRecord
  /** who held it before, when it last renewed, and whether it let go (a clean release) */
  previous: { instanceId: string; renewedAt: number; released: boolean } | undefined
}

/** What changed, as instances tell each other (PostgreSQL NOTIFY). */
export interface ClusterChange {
  /** `instances`: an instance left (the others look again at who is alive and take its share) */
  kind: 'pipeline' | 'keys' | 'lookups' | 'instances'
  /** the pipeline id, lookup table name or instance id; '' for keys */
  id: string
  /** the instance that made the change */
  from: string
}

/**
 * What instances sharing one store use to act as one (PostgreSQL only; the clock is the
 * database's, so instances need not agree on time).
 */
export interface ClusterStore {
  /** says this instance is alive and renews its leases for `leaseMs`; returns the leases it still holds */
  heartbeat(instance: Omit<InstanceRecord, 'lastSeen'>, leaseMs: number): Promise<LeaseRecord[]>
  /** instances seen within `aliveMs` */
  instances(aliveMs: number): Promise<InstanceRecord[]>
  leases(): Promise<LeaseRecord[]>
  /**
   * Takes the pipeline's lease when nobody holds it, it has expired, or `instanceId` holds it
   * already (a restarted instance takes its own back at once); the epoch moves on. Undefined when
   * another instance holds it.
   */
  acquire(pipelineId: string, instanceId: string, leaseMs: number): Promise<Acquired | undefined>
  /** gives the lease up (after a clean stop), if still held under `fence`: it expires at once */
  release(pipelineId: string, fence: Fence): Promise<void>
  /** a clean shutdown: the instance is no longer counted alive (its leases released before) */
  leave(instanceId: string): Promise<void>
  /** records a hand-over on the lease (held under `fence`) */
  recordHandover(pipelineId: string, fence: Fence, handover: Handover): Promise<void>
  /** tells every instance (itself included) */
  announce(change: ClusterChange): Promise<void>
  /** calls `onChange` for every announcement until the returned function is called; reconnects by itself */
  listen(onChange: (change: ClusterChange) => void): Promise<() => Promise<void>>
}

/** Every store the runtime uses; embedded SQLite by default, PostgreSQL when configured. */
export interface Store {
  /** present when several instances can share the store (PostgreSQL) */
  readonly cluster?: ClusterStore

  listPipelines(): Promise<PipelineRecord[]>
  getPipeline(id: string): Promise<PipelineRecord | undefined>
  /** inserts the pipeline and its version 1 */
  insertPipeline(record: PipelineRecord): Promise<InsertOutcome>
  /** replaces name, spec and version (a row in the versions with `reset`), in one transaction */
  updatePipeline(record: PipelineRecord, reset: boolean): Promise<InsertOutcome>
  /** every version, oldest first */
  listVersions(pipelineId: string): Promise<PipelineVersion[]>
  setPipelineStatus(id: string, status: PipelineStatus, at: number): Promise<void>
  /** deletes the pipeline with its results, dead letters and checkpoint */
  deletePipeline(id: string): Promise<void>

  commit(pipelineId: string, commit: PipelineCommit): Promise<void>
  loadCheckpoint(pipelineId: string): Promise<Checkpoint | undefined>
  /**
   * The counters and positions of the pipelines' last checkpoints, without their window state
   * (cheap to read often, all in one go): a pipeline without a checkpoint is not in the map.
   */
  loadProgress(pipelineIds: readonly string[]): Promise<Map<string, CheckpointProgress>>
  queryResults(pipelineId: string, query: ResultQuery): Promise<WindowResult[]>
  listDeadLetters(pipelineId: string, limit: number): Promise<DeadLetterRecord[]>
  /** keeps the newest `keep` dead letters of a pipeline */
  trimDeadLetters(pipelineId: string, keep: number): Promise<void>
  /**
   * Outbox batches a checkpoint covers, from `from` (a seq) on, oldest first: whole batches of at
   * most `limit` messages in all, and at least one when one is there.
   */
  readOutbox(pipelineId: string, from: number, limit: number): Promise<OutboxBatch[]>
  /** Deletes the outbox batches before `seq` (they are in Kafka). */
  trimOutbox(pipelineId: string, before: number): Promise<void>

  putLookupTable(
    name: string,
    keyField: string,
    rows: Array<[key: string, row: Record<string, unknown>]>,
    at: number,
  ): Promise<void>
  listLookupTables(): Promise<LookupTableInfo[]>
  loadLookupTable(name: string): Promise<Map<string, Record<string, unknown>> | undefined>
  deleteLookupTable(name: string): Promise<boolean>

  writeMetrics(points: MetricPoint[]): Promise<void>
  listSeries(limit: number, offset: number): Promise<{ series: SeriesInfo[]; total: number }>
  /** how many series exist, without waiting for staged points to be folded (cheap: /api/stats reads it) */
  countSeries(): Promise<number>
  /** refuses (`tooMany`) a query over too many points or series */
  queryMetrics(query: MetricQuery): Promise<SeriesPoints[] | { tooMany: number; what: 'points' | 'series' }>
  /** deletes raw points and rollups past their retention; returns the raw points deleted */
  enforceMetricsRetention(retention: MetricRetention): Promise<number>

  /** API keys made through the API (hashes only; configured keys are never stored) */
  listApiKeys(): Promise<ApiKeyRecord[]>
  insertApiKey(record: ApiKeyRecord): Promise<void>
  deleteApiKey(id: string): Promise<boolean>

  close(): Promise<void>
}
