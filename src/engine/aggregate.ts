import { type GroupKeys, groupKeys } from './group-key.ts'
import { MinHeap } from './heap.ts'
import type { AggregateSpec, FunctionSpec } from './stages/aggregate-spec.ts'
import { type DeadLetter, DeadLetterReason, type Event, type JsonValue, type WindowResult } from './types.ts'
import { forEachWindow } from './windows.ts'

export interface AggregateLimits {
  /** distinct keys one window may hold (for sessions: open sessions in all) before events are refused */
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

/** The accumulators of one (window, key); for sessions the bounds move as sessions merge. */
interface Slot {
  start: number
  end: number
  keyId: string
  key: Record<string, unknown> | null
  accs: unknown[]
  dirty: boolean
  alive: boolean
}

interface Snapshot {
  v: 1
  watermark: number | null
  maxTs: number | null
  lastArrival: number | null
  slots: Array<
    [start: number, end: number, keyId: string, key: Record<string, unknown> | null, accs: JsonValue[]]
  >
}

const NO_TIME = Number.NEGATIVE_INFINITY

/**
 * The window operator (Flink's WindowOperator, Kafka Streams' KStreamWindowAggregate): assigns each
 * event to its windows, keeps one accumulator per (window, key), advances the watermark, and emits
 * results when windows close (and on change with `emit: "updates"`). Pure and synchronous: time
 * comes in as arguments (`arrivalMs`, `nowMs`).
 *
 * The watermark is the highest event time seen minus the allowed lateness; a window is open while
 * watermark < end. An event none of whose windows is open is late. When no event arrived for
 * `idleTimeoutMs`, the watermark moves on at wall-clock speed from where it stood.
 */
export class AggregateOperator {
  readonly spec: AggregateSpec
  readonly #limits: AggregateLimits
  readonly #functions: FunctionSpec[]
  readonly #keys: GroupKeys
  readonly #values: unknown[]
  #watermark = NO_TIME
  #maxTs = NO_TIME
  #lastArrival = NO_TIME
  /** tumbling and hopping: window start → key id → slot */
  readonly #windows = new Map<number, Map<string, Slot>>()
  /** sessions: key id → open sessions of that key */
  readonly #sessions = new Map<string, Slot[]>()
  #sessionCount = 0
  /** slots (or windows' first slots) by end, for closing; stale entries are skipped */
  readonly #closing = new MinHeap<Slot | number>()
  readonly #dirty: Slot[] = []

  constructor(spec: AggregateSpec, limits: AggregateLimits) {
    this.spec = spec
    this.#limits = limits
    this.#functions = spec.functions
    this.#keys = groupKeys(spec.groupBy)
    this.#values = new Array(spec.functions.length)
  }

  get watermark(): number {
    return this.#watermark
  }

  /** Live (window, key) slots. */
  get size(): number {
    if (this.spec.window.kind === 'session') return this.#sessionCount
    let n = 0
    for (const w of this.#windows.values()) n += w.size
    return n
  }

  /** Processes one batch that arrived at `arrivalMs` (deterministic: replaying a batch gives the same output). */
  process(events: readonly Event[], arrivalMs: number, out: AggregateOutput): void {
    this.#advanceTo(arrivalMs)
    const processing = this.spec.time === 'processing'
    const lateness = this.spec.latenessMs
    for (let i = 0; i < events.length; i++) {
      const event = events[i]
      const ts = processing ? arrivalMs : event.timestamp
      if (!this.#extract(event, out)) continue
      const applied =
        this.spec.window.kind === 'session'
          ? this.#applySession(event, ts, out)
          : this.#applyWindows(event, ts, out)
      if (applied === 'late') {
        out.late++
        out.deadLetters.push({
          event,
          reason: DeadLetterReason.late,
          detail: lateDetail(ts, this.#watermark),
        })
      }
      if (ts > this.#maxTs) {
        this.#maxTs = ts
        if (ts - lateness > this.#watermark) this.#watermark = ts - lateness
      }
    }
    if (events.length > 0 && arrivalMs > this.#lastArrival) this.#lastArrival = arrivalMs
    this.#close(out)
    this.#flushUpdates(out)
  }

  /** Moves time forward without input (idle timeout; processing time). */
  advance(nowMs: number, out: AggregateOutput): void {
    this.#advanceTo(nowMs)
    this.#close(out)
  }

  #advanceTo(nowMs: number): void {
    let target = NO_TIME
    if (this.spec.time === 'processing') target = nowMs - this.spec.latenessMs
    else if (this.#lastArrival !== NO_TIME && this.#maxTs !== NO_TIME) {
      const idleSince = this.#lastArrival + this.spec.idleTimeoutMs
      if (nowMs > idleSince) target = this.#maxTs - this.spec.latenessMs + (nowMs - idleSince)
    }
    if (target > this.#watermark) this.#watermark = target
  }

  /** Reads and checks every function's value into #values; dead-letters the event when one is unusable. */
  #extract(event: Event, out: AggregateOutput): boolean {
    const fns = this.#functions
    for (let i = 0; i < fns.length; i++) {
      const f = fns[i]
      if (f.field === null) continue
      const v = f.field.get(event)
      this.#values[i] = v
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

  #add(slot: Slot): void {
    const fns = this.#functions
    for (let i = 0; i < fns.length; i++) {
      const f = fns[i]
      if (f.value === 'present' && (this.#values[i] === undefined || this.#values[i] === null)) continue
      f.aggregator.add(slot.accs[i], this.#values[i])
    }
    if (this.spec.emit === 'updates' && !slot.dirty) {
      slot.dirty = true
      this.#dirty.push(slot)
    }
  }

  #newSlot(start: number, end: number, keyId: string, event: Event): Slot {
    const accs = this.#functions.map((f) => f.aggregator.init())
    return { start, end, keyId, key: this.#keys.object(event), accs, dirty: false, alive: true }
  }

  #applyWindows(event: Event, ts: number, out: AggregateOutput): 'applied' | 'late' | 'refused' {
    const window = this.spec.window
    const size = window.kind === 'session' ? 0 : window.sizeMs
    const slide = window.kind === 'hopping' ? window.slideMs : size
    const wm = this.#watermark
    const keyId = this.#keys.id(event)
    const max = this.#limits.maxKeysPerWindow
    let open = 0
    let full = false
    forEachWindow(ts, size, slide, (start) => {
      if (start + size <= wm) return
      open++
      const slots = this.#windows.get(start)
      if (slots !== undefined && slots.size >= max && !slots.has(keyId)) full = true
    })
    if (open === 0) return 'late'
    if (full) {
      out.errors++
      out.deadLetters.push({
        event,
        reason: DeadLetterReason.tooManyKeys,
        detail: `a window holds at most ${max} keys`,
      })
      return 'refused'
    }
    forEachWindow(ts, size, slide, (start) => {
      const end = start + size
      if (end <= wm) return
      let slots = this.#windows.get(start)
      if (slots === undefined) {
        slots = new Map()
        this.#windows.set(start, slots)
        this.#closing.push(end, start)
      }
      let slot = slots.get(keyId)
      if (slot === undefined) {
        slot = this.#newSlot(start, end, keyId, event)
        slots.set(keyId, slot)
      }
      this.#add(slot)
    })
    return 'applied'
  }

  #applySession(event: Event, ts: number, out: AggregateOutput): 'applied' | 'late' | 'refused' {
    if (this.spec.window.kind !== 'session') return 'refused'
    const gap = this.spec.window.gapMs
    const wm = this.#watermark
    const keyId = this.#keys.id(event)
    let start = ts
    let end = ts + gap
    const sessions = this.#sessions.get(keyId)
    let overlapping = 0
    if (sessions !== undefined) {
      for (const s of sessions) {
        if (s.end > wm && s.start < ts + gap && ts < s.end) {
          overlapping++
          if (s.start < start) start = s.start
          if (s.end > end) end = s.end
        }
      }
    }
    if (end <= wm) return 'late'
    let target: Slot | undefined
    if (overlapping === 0) {
      if (this.#sessionCount >= this.#limits.maxKeysPerWindow) {
        out.errors++
        out.deadLetters.push({
          event,
          reason: DeadLetterReason.tooManyKeys,
          detail: `at most ${this.#limits.maxKeysPerWindow} open sessions`,
        })
        return 'refused'
      }
      target = this.#newSlot(start, end, keyId, event)
      if (sessions === undefined) this.#sessions.set(keyId, [target])
      else sessions.push(target)
      this.#sessionCount++
      this.#closing.push(end, target)
    } else {
      const list = sessions!
      for (let i = 0; i < list.length; i++) {
        const s = list[i]
        if (!(s.end > wm && s.start < ts + gap && ts < s.end)) continue
        if (target === undefined) {
          target = s
          continue
        }
        for (let f = 0; f < this.#functions.length; f++)
          this.#functions[f].aggregator.merge(target.accs[f], s.accs[f])
        s.alive = false
        list.splice(i, 1)
        i--
        this.#sessionCount--
      }
      target = target!
      target.start = start
      if (end !== target.end) {
        target.end = end
        this.#closing.push(end, target)
      }
    }
    this.#add(target)
    return 'applied'
  }

  #close(out: AggregateOutput): void {
    const wm = this.#watermark
    const heap = this.#closing
    while (heap.peekPriority() <= wm) {
      const end = heap.peekPriority()
      const item = heap.pop()!
      if (typeof item === 'number') {
        const slots = this.#windows.get(item)
        if (slots === undefined) continue
        this.#windows.delete(item)
        for (const slot of slots.values()) {
          slot.alive = false
          out.results.push(this.#result(slot, true))
        }
      } else {
        if (!item.alive || item.end !== end) continue
        item.alive = false
        const list = this.#sessions.get(item.keyId)!
        list.splice(list.indexOf(item), 1)
        if (list.length === 0) this.#sessions.delete(item.keyId)
        this.#sessionCount--
        out.results.push(this.#result(item, true))
      }
    }
  }

  #flushUpdates(out: AggregateOutput): void {
    const dirty = this.#dirty
    for (let i = 0; i < dirty.length; i++) {
      const slot = dirty[i]
      slot.dirty = false
      if (slot.alive) out.results.push(this.#result(slot, false))
    }
    dirty.length = 0
  }

  #result(slot: Slot, closed: boolean): WindowResult {
    const results: Record<string, number | null> = {}
    const fns = this.#functions
    for (let i = 0; i < fns.length; i++) results[fns[i].name] = fns[i].aggregator.result(slot.accs[i])
    return { windowStart: slot.start, windowEnd: slot.end, key: slot.key, keyId: slot.keyId, results, closed }
  }

  /** Calls `visit` with the partial result of every open window. */
  forEachOpen(visit: (result: WindowResult) => void): void {
    for (const slots of this.#windows.values())
      for (const slot of slots.values()) visit(this.#result(slot, false))
    for (const list of this.#sessions.values()) for (const slot of list) visit(this.#result(slot, false))
  }

  snapshot(): JsonValue {
    const fns = this.#functions
    const slots: Snapshot['slots'] = []
    const save = (s: Slot) =>
      slots.push([s.start, s.end, s.keyId, s.key, s.accs.map((a, i) => fns[i].aggregator.toJson(a))])
    for (const w of this.#windows.values()) for (const s of w.values()) save(s)
    for (const list of this.#sessions.values()) for (const s of list) save(s)
    const time = (t: number) => (t === NO_TIME ? null : t)
    const snap: Snapshot = {
      v: 1,
      watermark: time(this.#watermark),
      maxTs: time(this.#maxTs),
      lastArrival: time(this.#lastArrival),
      slots,
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
    const fns = this.#functions
    for (const [start, end, keyId, key, accs] of snap.slots) {
      const slot: Slot = {
        start,
        end,
        keyId,
        key,
        accs: accs.map((a, i) => fns[i].aggregator.fromJson(a)),
        dirty: false,
        alive: true,
      }
      if (this.spec.window.kind === 'session') {
        const list = this.#sessions.get(keyId)
        if (list) list.push(slot)
        else this.#sessions.set(keyId, [slot])
        this.#sessionCount++
        this.#closing.push(end, slot)
      } else {
        let slots = this.#windows.get(start)
        if (slots === undefined) {
          slots = new Map()
          this.#windows.set(start, slots)
          this.#closing.push(end, start)
        }
        slots.set(keyId, slot)
      }
    }
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
