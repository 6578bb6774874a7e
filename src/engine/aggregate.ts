import { groupKeys } from './group-key.ts'
import { PaneMerge, type PartialMerge, SessionMerge } from './partial-merge.ts'
import { NO_TIME, PartitionTask } from './partition-task.ts'
import type { AggregateSpec, FunctionSpec } from './stages/aggregate-spec.ts'
import { type DeadLetter, DeadLetterReason, type Event, type JsonValue, type WindowResult } from './types.ts'
import { PaneWindows } from './window-state/panes.ts'
import { SessionWindows } from './window-state/sessions.ts'
import {
  Accumulation,
  type Budget,
  type OpenQuery,
  type PartialResult,
  type SavedSlot,
  type StateParts,
} from './window-state/slot.ts'

export interface AggregateLimits {
  /** distinct keys one window (pane) may hold; for sessions, open sessions in all */
  maxKeysPerWindow: number
}

/** What one call into the operator produced; the caller owns and clears it. */
export interface AggregateOutput {
  results: WindowResult[]
  deadLetters: DeadLetter[]
  late: number
  errors: number
  /** events before a replay's first window (see replayFrom): their windows are kept as they were */
  skipped: number
}

export function newAggregateOutput(): AggregateOutput {
  return { results: [], deadLetters: [], late: 0, errors: 0, skipped: 0 }
}

interface TaskSnapshot {
  partition: number
  watermark: number | null
  maxTs: number | null
  lastArrival: number | null
  slots: SavedSlot[]
  /** windows closed here and not yet finished across partitions */
  sealed: SavedSlot[]
  /** the window state kept in parts (rows of their own), as the store gives them back */
  parts?: Array<[part: number, slots: SavedSlot[]]>
}

/** A checkpoint as one document, partitions inside (the form before partitions had rows of their own). */
interface Snapshot {
  v: 2
  watermark: number | null
  firstArrival: number | null
  partitions: TaskSnapshot[]
}

/** The operator's own part of a checkpoint; each partition's part is a TaskSnapshot without its number. */
interface OperatorSnapshot {
  v: 3
  watermark: number | null
  firstArrival: number | null
  /** functions added to a running pipeline: result name → the first window start they cover */
  since?: Record<string, number>
  /** a replay from a point of the log: its first window start (see replayFrom) */
  from?: number
}

/** A checkpoint in parts: the operator's own, and one per partition (each saved as a row of its own). */
export type { OperatorSnapshot, TaskSnapshot }

export interface PartitionedSnapshot {
  state: JsonValue
  partitions: Map<number, JsonValue>
  /** per partition, its window state in parts (a snapshot in parts): the partition's own has no slots then */
  parts?: Map<number, StateParts>
}

/** How a snapshot holds window state: in each partition's document, or in parts (all, or what changed). */
export type SnapshotParts = 'none' | 'all' | 'changed'

/** The checkpoint of one window state before it was kept per partition. */
interface SnapshotV1 {
  v: 1
  watermark: number | null
  maxTs: number | null
  lastArrival: number | null
  slots: SavedSlot[]
}

/**
 * The window operator (Flink's WindowOperator, Kafka Streams' KStreamWindowAggregate): checks each
 * event's values, hands it to the window store of its partition, and fires windows as the
 * watermark passes their end (emitting changes too with `emit: "updates"`). Pure and synchronous:
 * time comes in as arguments (`arrivalMs`, `nowMs`).
 *
 * Each source partition is a task of its own (PartitionTask): its watermark is the highest event
 * time seen on it minus the allowed lateness, and an event is late when every window it falls into
 * has closed by its own partition's watermark, so a partition that runs behind the others never
 * has its events counted late. The pipeline's watermark is the minimum over the partitions that
 * are not idle (no batch for `idleTimeoutMs`); when every partition is idle it moves on at
 * wall-clock speed from the most advanced one. With several partitions, each closes its windows
 * into partials that are merged (PartialMerge) once the pipeline's watermark has passed them;
 * with one partition its windows are the results.
 */
export class AggregateOperator {
  readonly spec: AggregateSpec
  readonly #functions: FunctionSpec[]
  readonly #acc: Accumulation
  readonly #limits: AggregateLimits
  /** by partition number, and in partition order */
  readonly #tasks = new Map<number, PartitionTask>()
  #order: PartitionTask[] = []
  readonly #merge: PartialMerge
  /** the pipeline's watermark */
  #watermark = NO_TIME
  /** the arrival of the first batch: partitions never seen count as arrived then (for idleness) */
  #firstArrival = NO_TIME
  /** the time the last call was made at (idleness of the other partitions is judged at it) */
  #now = NO_TIME
  /** a close that ran out of budget is to be finished first */
  #closing = false
  /** partition-local updates waiting to be merged (several partitions, emit: updates) */
  readonly #updates: WindowResult[] = []

  constructor(spec: AggregateSpec, limits: AggregateLimits, partitions: readonly number[] = [0]) {
    this.spec = spec
    this.#functions = spec.functions
    this.#limits = limits
    this.#acc = new Accumulation(spec.functions, groupKeys(spec.groupBy), spec.emit === 'updates')
    this.#merge =
      spec.window.kind === 'session'
        ? new SessionMerge(this.#acc, spec.window.gapMs)
        : new PaneMerge(this.#acc)
    this.addPartitions(partitions)
  }

  /** Partitions the source has (more may be seen later); a partition never seen holds the watermark until idle. */
  addPartitions(partitions: readonly number[]): void {
    for (const p of partitions) this.#task(p)
  }

  #task(partition: number): PartitionTask {
    let task = this.#tasks.get(partition)
    if (task !== undefined) return task
    const w = this.spec.window
    // every partition may hold as many keys as the limit: the limit is on each window state
    const store =
      w.kind === 'session'
        ? new SessionWindows(this.#acc, w.gapMs, this.#limits.maxKeysPerWindow)
        : new PaneWindows(
            this.#acc,
            w.sizeMs,
            w.kind === 'hopping' ? w.slideMs : w.sizeMs,
            this.#limits.maxKeysPerWindow,
          )
    task = new PartitionTask(partition, store)
    // a partition that appears later cannot reopen what the pipeline has finished
    task.watermark = this.#watermark
    this.#tasks.set(partition, task)
    this.#order = [...this.#tasks.values()].sort((a, b) => a.partition - b.partition)
    this.#acc.partial = this.#order.length > 1
    return task
  }

  get watermark(): number {
    return this.#watermark
  }

  /**
   * Makes this (fresh) state a replay's that recomputes the windows starting at or after `cut` (a
   * window start, see replay.ts): events before it are skipped and no window starting earlier is
   * produced; those stay in the store as the first run left them.
   */
  replayFrom(cut: number): void {
    this.#acc.from = cut
  }

  /** Each function's empty accumulator as a checkpoint holds it (state migration: spec-change.ts). */
  freshAccumulatorsJson(): JsonValue[] {
    return this.#acc.freshJson()
  }

  /** Each partition's own watermark (what its windows are closed to), in partition order. */
  partitionWatermarks(): Array<[partition: number, watermark: number]> {
    return this.#order.map((t) => [t.partition, t.watermark])
  }

  /** Live (pane or session, key) accumulators, sealed partials included. */
  get size(): number {
    let n = 0
    for (const t of this.#order) n += t.store.size + t.sealed.length - t.head
    return n
  }

  /** A close ran out of budget: only `process`/`advance` may be called until it is done (no snapshot). */
  get busy(): boolean {
    return this.#closing
  }

  /**
   * Processes one batch of `partition` that arrived at `arrivalMs` (deterministic: replaying a
   * partition's batches gives the same output), from event `from` on; returns the index of the
   * next event to process. It stops short only when firing windows used up `budget` (work units,
   * see WindowStore.close): call it again with that index, and it goes on exactly where it
   * stopped, so a batch processed in slices gives the output of one call.
   */
  process(
    events: readonly Event[],
    arrivalMs: number,
    out: AggregateOutput,
    from = 0,
    budget: Budget = { left: Number.POSITIVE_INFINITY },
    partition = 0,
  ): number {
    if (this.#closing && !this.#closeMore(out, budget)) return from
    const task = this.#task(partition)
    if (from === 0) {
      if (this.#firstArrival === NO_TIME && events.length > 0) this.#firstArrival = arrivalMs
      if (!this.#advanceTo(arrivalMs, out, budget)) return 0
      // the partition with data is not idle while its batch is processed
      if (this.#order.length > 1 && events.length > 0 && arrivalMs > task.lastArrival)
        task.lastArrival = arrivalMs
    }
    const processing = this.spec.time === 'processing'
    const lateness = this.spec.latenessMs
    const store = task.store
    const single = this.#order.length === 1
    const first = this.#acc.from
    for (let i = from; i < events.length; i++) {
      const event = events[i]
      const ts = processing ? arrivalMs : event.timestamp
      if (ts < first) {
        // before a replay's first window: not applied, but it moves time as it did the first time
        out.skipped++
        if (!this.#extract(event, undefined)) continue
      } else {
        if (!this.#extract(event, out)) continue
        const applied = store.apply(event, ts, task.watermark, out.deadLetters)
        if (applied === 'late') {
          out.late++
          out.deadLetters.push({
            event,
            reason: DeadLetterReason.late,
            detail: lateDetail(ts, task.watermark),
          })
        } else if (applied === 'refused') out.errors++
      }
      if (ts > task.maxTs) {
        task.maxTs = ts
        const before = task.watermark
        if (ts - lateness > before) {
          task.watermark = ts - lateness
          if (single) {
            this.#watermark = task.watermark
            if (!store.close(task.watermark, out.results, budget)) {
              this.#closing = true
              return i + 1
            }
          } else if (
            !store.close(task.watermark, task.sealed, budget) ||
            // the pipeline's watermark can only move when this partition held it
            (before <= this.#watermark && !this.#settle(out, budget))
          ) {
            this.#closing = true
            return i + 1
          }
        }
      }
    }
    if (events.length > 0 && arrivalMs > task.lastArrival) task.lastArrival = arrivalMs
    this.#flushUpdates(out)
    return events.length
  }

  /** Moves time forward without input (idle timeout; processing time); false: call again (budget). */
  advance(nowMs: number, out: AggregateOutput, budget: Budget = { left: Number.POSITIVE_INFINITY }): boolean {
    if (this.#closing && !this.#closeMore(out, budget)) return false
    return this.#advanceTo(nowMs, out, budget)
  }

  #closeMore(out: AggregateOutput, budget: Budget): boolean {
    if (this.#order.length === 1) {
      const task = this.#order[0]
      this.#closing = !task.store.close(task.watermark, out.results, budget)
    } else this.#closing = !this.#settle(out, budget)
    return !this.#closing
  }

  #advanceTo(nowMs: number, out: AggregateOutput, budget: Budget): boolean {
    if (nowMs > this.#now) this.#now = nowMs
    if (this.#order.length > 1) {
      if (this.#settle(out, budget)) return true
      this.#closing = true
      return false
    }
    const task = this.#order[0]
    let target = NO_TIME
    if (this.spec.time === 'processing') target = nowMs - this.spec.latenessMs
    else if (task.lastArrival !== NO_TIME && task.maxTs !== NO_TIME) {
      const idleSince = task.lastArrival + this.spec.idleTimeoutMs
      if (nowMs > idleSince) target = task.maxTs - this.spec.latenessMs + (nowMs - idleSince)
    }
    if (target > task.watermark) {
      task.watermark = target
      this.#watermark = target
      if (!task.store.close(target, out.results, budget)) {
        this.#closing = true
        return false
      }
    }
    return true
  }

  /**
   * The pipeline's watermark from the partitions' (several partitions): the minimum over those
   * not idle at `#now`; when all are idle, the most advanced one moved on by the idle time.
   */
  #pipelineWatermark(): number {
    const lateness = this.spec.latenessMs
    if (this.spec.time === 'processing') return this.#now - lateness
    const idle = this.spec.idleTimeoutMs
    let active = Number.POSITIVE_INFINITY
    let anyActive = false
    let idleTarget = NO_TIME
    for (const t of this.#order) {
      const last = t.lastArrival === NO_TIME ? this.#firstArrival : t.lastArrival
      if (last !== NO_TIME && this.#now > last + idle) {
        if (t.maxTs !== NO_TIME)
          idleTarget = Math.max(idleTarget, t.maxTs - lateness + (this.#now - last - idle))
      } else {
        anyActive = true
        active = Math.min(active, t.own(lateness))
      }
    }
    return anyActive ? active : idleTarget
  }

  /**
   * Brings the partitions and the merge up to the pipeline's watermark (several partitions):
   * partitions behind it (idle) are closed up to it, then every window it passed is finished.
   * Resumable: after the budget ran out, calling it again goes on where it stopped.
   */
  #settle(out: AggregateOutput, budget: Budget): boolean {
    const w = this.#pipelineWatermark()
    if (w > this.#watermark) this.#watermark = w
    for (const t of this.#order) {
      if (t.watermark < this.#watermark) t.watermark = this.#watermark
      if (!t.store.close(t.watermark, t.sealed, budget)) return false
    }
    return this.#merge.finalize(this.#watermark, this.#order, out.results, budget)
  }

  #flushUpdates(out: AggregateOutput): void {
    if (this.#order.length === 1) {
      const task = this.#order[0]
      task.store.flushUpdates(task.watermark, out.results)
      return
    }
    if (this.spec.emit !== 'updates') return
    const partials = this.#updates
    for (const t of this.#order) t.store.flushUpdates(t.watermark, partials)
    for (const r of this.#merge.updates(partials as PartialResult[], this.#order)) out.results.push(r)
    partials.length = 0
  }

  /** Reads and checks every function's value; dead-letters the event when one is unusable (into `out`, when given). */
  #extract(event: Event, out: AggregateOutput | undefined): boolean {
    const fns = this.#functions
    const values = this.#acc.values
    for (let i = 0; i < fns.length; i++) {
      const f = fns[i]
      if (f.field === null) continue
      const v = f.field.get(event)
      values[i] = v
      if (f.value === 'present') continue
      if (v === undefined || v === null) {
        if (out === undefined) return false
        out.errors++
        out.deadLetters.push({
          event,
          reason: DeadLetterReason.missingField,
          detail: `${f.field.raw} is missing (needed by ${f.name})`,
        })
        return false
      }
      const ok =
        f.value === 'number'
          ? typeof v === 'number' && Number.isFinite(v)
          : typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
      if (!ok) {
        if (out === undefined) return false
        out.errors++
        out.deadLetters.push({
          event,
          reason: DeadLetterReason.typeMismatch,
          detail: `${f.field.raw} is ${describe(v)}, ${f.name} needs ${f.value === 'number' ? 'a finite number' : 'a string, number or boolean'}`,
        })
        return false
      }
    }
    return true
  }

  /** Open windows newest first, at most `q.limit` (`keyFilter` as /window takes it: path → text). */
  openWindows(q: Omit<OpenQuery, 'only'> & { keyFilter?: Record<string, string> }): WindowResult[] {
    const only =
      q.keyFilter && Object.keys(q.keyFilter).length > 0 ? this.#acc.keys.idsMatching(q.keyFilter) : undefined
    const query = { ...q, only }
    if (this.#order.length === 1) return this.#order[0].store.openWindows(this.#order[0].watermark, query)
    return this.#merge.openWindows(this.#order, query)
  }

  /**
   * The state as a checkpoint. `parts`: window state that can be kept in parts goes there — every
   * part, or only those changed since the last snapshot in parts (which the store applies to what
   * it holds) — so a checkpoint of a large state writes what changed, not all of it.
   */
  snapshot(parts: SnapshotParts = 'none'): PartitionedSnapshot {
    if (this.#closing) throw new Error('a snapshot while windows are being fired would lose them')
    const since: Record<string, number> = {}
    this.#functions.forEach((f, i) => {
      if (Number.isFinite(this.#acc.since[i])) since[f.name] = this.#acc.since[i]
    })
    const own: OperatorSnapshot = {
      v: 3,
      watermark: time(this.#watermark),
      firstArrival: time(this.#firstArrival),
      ...(Object.keys(since).length > 0 ? { since } : {}),
      ...(Number.isFinite(this.#acc.from) ? { from: this.#acc.from } : {}),
    }
    const partitions = new Map<number, JsonValue>()
    const inParts = new Map<number, StateParts>()
    for (const t of this.#order) {
      const split = parts !== 'none' && t.store.saveParts !== undefined
      if (split)
        inParts.set(t.partition, (t.store.saveParts as (all: boolean) => StateParts)(parts === 'all'))
      const part: Omit<TaskSnapshot, 'partition'> = {
        watermark: time(t.watermark),
        maxTs: time(t.maxTs),
        lastArrival: time(t.lastArrival),
        slots: split ? [] : t.store.save(),
        sealed: this.#merge
          .sealedOf(t)
          .map((p) => this.#acc.save(p.windowStart, p.windowEnd, p.keyId, p.accs)),
      }
      partitions.set(t.partition, part as unknown as JsonValue)
    }
    return { state: own as unknown as JsonValue, partitions, ...(inParts.size > 0 ? { parts: inParts } : {}) }
  }

  /**
   * Restores a snapshot taken from an operator with the same spec (into a fresh operator): the
   * operator's part and the partitions' parts, or a whole document from before parts (v1, v2).
   */
  restore(state: JsonValue, partitions: ReadonlyMap<number, JsonValue>): void {
    const saved = state as unknown as Snapshot | SnapshotV1 | OperatorSnapshot
    const snap: Snapshot =
      saved.v === 1
        ? {
            v: 2,
            watermark: saved.watermark,
            firstArrival: saved.lastArrival,
            partitions: [{ ...saved, partition: 0, sealed: [] }],
          }
        : saved.v === 2
          ? saved
          : {
              v: 2,
              watermark: saved.watermark,
              firstArrival: saved.firstArrival,
              partitions: [...partitions].map(([partition, part]) => ({
                ...(part as unknown as Omit<TaskSnapshot, 'partition'>),
                partition,
              })),
            }
    this.#watermark = noTime(snap.watermark)
    this.#firstArrival = noTime(snap.firstArrival)
    const since = saved.v === 3 ? (saved.since ?? {}) : {}
    this.#acc.from = saved.v === 3 ? (saved.from ?? Number.NEGATIVE_INFINITY) : Number.NEGATIVE_INFINITY
    this.#functions.forEach((f, i) => {
      this.#acc.since[i] = since[f.name] ?? Number.NEGATIVE_INFINITY
    })
    for (const p of snap.partitions) this.#task(p.partition)
    for (const p of snap.partitions) {
      const task = this.#task(p.partition)
      task.watermark = noTime(p.watermark)
      task.maxTs = noTime(p.maxTs)
      task.lastArrival = noTime(p.lastArrival)
      task.store.restore(p.slots, task.watermark)
      for (const [, slots] of p.parts ?? []) task.store.restore(slots, task.watermark)
      for (const s of p.sealed) {
        const slot = this.#acc.load(s)
        task.sealed.push(this.#acc.result(slot.start, slot.end, slot.keyId, slot, true) as PartialResult)
      }
    }
  }
}

/** The pipeline watermark a checkpoint's own part holds (every form of it); -Infinity when none. */
export function savedWatermark(state: JsonValue): number {
  const w = (state as { watermark?: unknown } | null)?.watermark
  return typeof w === 'number' ? w : NO_TIME
}

function time(t: number): number | null {
  return t === NO_TIME ? null : t
}

function noTime(t: number | null): number {
  return t === null ? NO_TIME : t
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array'
  if (v === null) return 'null'
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`
}

function lateDetail(ts: number, watermark: number): string {
  return `event time ${new Date(ts).toISOString()} is behind the watermark ${new Date(watermark).toISOString()}`
}
