import { groupKeys } from './group-key.ts'
import type { AggregateSpec, FunctionSpec } from './stages/aggregate-spec.ts'
import { type DeadLetter, DeadLetterReason, type Event, type JsonValue, type WindowResult } from './types.ts'
import { PaneWindows } from './window-state/panes.ts'
import { SessionWindows } from './window-state/sessions.ts'
import {
  Accumulation,
  type Budget,
  type OpenQuery,
  type SavedSlot,
  type WindowStore,
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
}

export function newAggregateOutput(): AggregateOutput {
  return { results: [], deadLetters: [], late: 0, errors: 0 }
}

interface Snapshot {
  v: 1
  watermark: number | null
  maxTs: number | null
  lastArrival: number | null
  slots: SavedSlot[]
}

const NO_TIME = Number.NEGATIVE_INFINITY

/**
 * The window operator (Flink's WindowOperator, Kafka Streams' KStreamWindowAggregate): checks each
 * event's values, hands it to the window store of its kind, advances the watermark, and fires
 * windows as the watermark passes their end (emitting changes too with `emit: "updates"`). Pure and
 * synchronous: time comes in as arguments (`arrivalMs`, `nowMs`).
 *
 * The watermark is the highest event time seen minus the allowed lateness; a window is open while
 * watermark < end. An event none of whose windows is open is late. When no event arrived for
 * `idleTimeoutMs`, the watermark moves on at wall-clock speed from where it stood.
 */
export class AggregateOperator {
  readonly spec: AggregateSpec
  readonly #functions: FunctionSpec[]
  readonly #acc: Accumulation
  readonly #store: WindowStore
  #watermark = NO_TIME
  #maxTs = NO_TIME
  #lastArrival = NO_TIME
  /** a close that ran out of budget is to be finished first */
  #closing = false

  constructor(spec: AggregateSpec, limits: AggregateLimits) {
    this.spec = spec
    this.#functions = spec.functions
    this.#acc = new Accumulation(spec.functions, groupKeys(spec.groupBy), spec.emit === 'updates')
    const w = spec.window
    this.#store =
      w.kind === 'session'
        ? new SessionWindows(this.#acc, w.gapMs, limits.maxKeysPerWindow)
        : new PaneWindows(
            this.#acc,
            w.sizeMs,
            w.kind === 'hopping' ? w.slideMs : w.sizeMs,
            limits.maxKeysPerWindow,
          )
  }

  get watermark(): number {
    return this.#watermark
  }

  /** Live (pane or session, key) accumulators. */
  get size(): number {
    return this.#store.size
  }

  /** A close ran out of budget: only `process`/`advance` may be called until it is done (no snapshot). */
  get busy(): boolean {
    return this.#closing
  }

  /**
   * Processes one batch that arrived at `arrivalMs` (deterministic: replaying a batch gives the
   * same output), from event `from` on; returns the index of the next event to process. It stops
   * short only when firing windows used up `budget` (work units, see WindowStore.close): call it
   * again with that index, and it goes on exactly where it stopped, so a batch processed in
   * slices gives the output of one call.
   */
  process(
    events: readonly Event[],
    arrivalMs: number,
    out: AggregateOutput,
    from = 0,
    budget: Budget = { left: Number.POSITIVE_INFINITY },
  ): number {
    if (this.#closing && !this.#closeMore(out, budget)) return from
    if (from === 0 && !this.#advanceTo(arrivalMs, out, budget)) return 0
    const processing = this.spec.time === 'processing'
    const lateness = this.spec.latenessMs
    const store = this.#store
    for (let i = from; i < events.length; i++) {
      const event = events[i]
      const ts = processing ? arrivalMs : event.timestamp
      if (!this.#extract(event, out)) continue
      const applied = store.apply(event, ts, this.#watermark, out.deadLetters)
      if (applied === 'late') {
        out.late++
        out.deadLetters.push({
          event,
          reason: DeadLetterReason.late,
          detail: lateDetail(ts, this.#watermark),
        })
      } else if (applied === 'refused') out.errors++
      if (ts > this.#maxTs) {
        this.#maxTs = ts
        if (ts - lateness > this.#watermark) {
          this.#watermark = ts - lateness
          if (!store.close(this.#watermark, out.results, budget)) {
            this.#closing = true
            return i + 1
          }
        }
      }
    }
    if (events.length > 0 && arrivalMs > this.#lastArrival) this.#lastArrival = arrivalMs
    store.flushUpdates(this.#watermark, out.results)
    return events.length
  }

  /** Moves time forward without input (idle timeout; processing time); false: call again (budget). */
  advance(nowMs: number, out: AggregateOutput, budget: Budget = { left: Number.POSITIVE_INFINITY }): boolean {
    if (this.#closing && !this.#closeMore(out, budget)) return false
    return this.#advanceTo(nowMs, out, budget)
  }

  #closeMore(out: AggregateOutput, budget: Budget): boolean {
    this.#closing = !this.#store.close(this.#watermark, out.results, budget)
    return !this.#closing
  }

  #advanceTo(nowMs: number, out: AggregateOutput, budget: Budget): boolean {
    let target = NO_TIME
    if (this.spec.time === 'processing') target = nowMs - this.spec.latenessMs
    else if (this.#lastArrival !== NO_TIME && this.#maxTs !== NO_TIME) {
      const idleSince = this.#lastArrival + this.spec.idleTimeoutMs
      if (nowMs > idleSince) target = this.#maxTs - this.spec.latenessMs + (nowMs - idleSince)
    }
    if (target > this.#watermark) {
      this.#watermark = target
      if (!this.#store.close(target, out.results, budget)) {
        this.#closing = true
        return false
      }
    }
    return true
  }

  /** Reads and checks every function's value; dead-letters the event when one is unusable. */
  #extract(event: Event, out: AggregateOutput): boolean {
    const fns = this.#functions
    const values = this.#acc.values
    for (let i = 0; i < fns.length; i++) {
      const f = fns[i]
      if (f.field === null) continue
      const v = f.field.get(event)
      values[i] = v
      if (f.value === 'present') continue
      if (v === undefined || v === null) {
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
    return this.#store.openWindows(this.#watermark, { ...q, only })
  }

  snapshot(): JsonValue {
    if (this.#closing) throw new Error('a snapshot while windows are being fired would lose them')
    const time = (t: number) => (t === NO_TIME ? null : t)
    const snap: Snapshot = {
      v: 1,
      watermark: time(this.#watermark),
      maxTs: time(this.#maxTs),
      lastArrival: time(this.#lastArrival),
      slots: this.#store.save(),
    }
    return snap as unknown as JsonValue
  }

  /** Restores a snapshot taken from an operator with the same spec (into a fresh operator). */
  restore(json: JsonValue): void {
    const snap = json as unknown as Snapshot
    const time = (t: number | null) => (t === null ? NO_TIME : t)
    this.#watermark = time(snap.watermark)
    this.#maxTs = time(snap.maxTs)
    this.#lastArrival = time(snap.lastArrival)
    this.#store.restore(snap.slots, this.#watermark)
  }
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array'
  if (v === null) return 'null'
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`
}

function lateDetail(ts: number, watermark: number): string {
  return `event time ${new Date(ts).toISOString()} is behind the watermark ${new Date(watermark).toISOString()}`
}
