import { MinHeap } from '../heap.ts'
import { type DeadLetter, DeadLetterReason, type Event, type WindowResult } from '../types.ts'
import type { Accumulation, Applied, Budget, OpenQuery, SavedSlot, Slot, WindowStore } from './slot.ts'

/**
 * Session windows: each event opens [ts, ts + gap); it merges with the open sessions of its key
 * that it overlaps (touching is not overlapping), so a session is [first ts, last ts + gap). An
 * event is late when even the merged session would already be closed (Flink's rule); with several
 * source partitions, when its own session would already be closed (Kafka Streams' rule).
 */
export class SessionWindows implements WindowStore {
  readonly #acc: Accumulation
  readonly #gap: number
  readonly #maxSessions: number
  /** key id → its open sessions */
  readonly #sessions = new Map<string, Slot[]>()
  #count = 0
  /** sessions by end; an entry is stale once its session merged away or grew */
  readonly #closing = new MinHeap<Slot>()
  /** sessions changed since updates were last emitted */
  readonly #dirty: Slot[] = []

  constructor(acc: Accumulation, gapMs: number, maxSessions: number) {
    this.#acc = acc
    this.#gap = gapMs
    this.#maxSessions = maxSessions
  }

  get size(): number {
    return this.#count
  }

  apply(event: Event, ts: number, watermark: number, deadLetters: DeadLetter[]): Applied {
    const keyId = this.#acc.keys.id(event)
    const sessions = this.#sessions.get(keyId)
    const reach = ts + this.#gap
    // several partitions: an event whose own session is closed is late even where it would extend
    // an open session back (Kafka Streams' rule); a session then never reaches back past what
    // another partition may already have finished (see PartialMerge)
    if (this.#acc.partial && reach <= watermark) return 'late'
    let start = ts
    let end = reach
    let overlapping = 0
    if (sessions !== undefined) {
      for (let i = 0; i < sessions.length; i++) {
        const s = sessions[i]
        if (s.end > watermark && s.start < reach && ts < s.end) {
          overlapping++
          if (s.start < start) start = s.start
          if (s.end > end) end = s.end
        }
      }
    }
    if (end <= watermark) return 'late'
    let target: Slot | undefined
    if (overlapping === 0) {
      if (this.#count >= this.#maxSessions) {
        deadLetters.push({
          event,
          reason: DeadLetterReason.tooManyKeys,
          detail: `at most ${this.#maxSessions} open sessions`,
        })
        return 'refused'
      }
      target = this.#acc.newSlot(start, end, keyId)
      if (sessions === undefined) this.#sessions.set(keyId, [target])
      else sessions.push(target)
      this.#count++
      this.#closing.push(end, target)
    } else {
      const list = sessions!
      for (let i = 0; i < list.length; i++) {
        const s = list[i]
        if (!(s.end > watermark && s.start < reach && ts < s.end)) continue
        if (target === undefined) {
          target = s
          continue
        }
        this.#acc.mergeInto(target, s)
        s.alive = false
        list.splice(i--, 1)
        this.#count--
      }
      target = target!
      target.start = start
      if (end !== target.end) {
        target.end = end
        this.#closing.push(end, target)
      }
    }
    if (this.#acc.add(target)) this.#dirty.push(target)
    return 'applied'
  }

  /** The earliest start of the key's open sessions (Infinity: none): what a merge across partitions waits for. */
  earliestStart(keyId: string): number {
    let start = Number.POSITIVE_INFINITY
    for (const s of this.#sessions.get(keyId) ?? []) if (s.start < start) start = s.start
    return start
  }

  close(watermark: number, results: WindowResult[], budget: Budget): boolean {
    const heap = this.#closing
    while (heap.peekPriority() <= watermark) {
      if (budget.left <= 0) return false
      budget.left--
      const end = heap.peekPriority()
      const s = heap.pop()!
      if (!s.alive || s.end !== end) continue
      s.alive = false
      const list = this.#sessions.get(s.keyId)!
      list.splice(list.indexOf(s), 1)
      if (list.length === 0) this.#sessions.delete(s.keyId)
      this.#count--
      results.push(this.#acc.result(s.start, s.end, s.keyId, s, true))
    }
    return true
  }

  flushUpdates(_watermark: number, results: WindowResult[]): void {
    const dirty = this.#dirty
    for (const s of dirty) {
      s.dirty = false
      if (s.alive) results.push(this.#acc.result(s.start, s.end, s.keyId, s, false))
    }
    dirty.length = 0
  }

  /**
   * Newest sessions first (by start, then end). Sessions have no order to walk, so this looks at
   * every session of the keys asked for, keeping the newest `q.limit` in a heap: a result object
   * only for those that make it.
   */
  openWindows(_watermark: number, q: OpenQuery): WindowResult[] {
    const newest = new MinHeap<WindowResult>()
    const lists =
      q.only === undefined ? this.#sessions.values() : q.only.map((id) => this.#sessions.get(id) ?? [])
    for (const list of lists)
      for (const s of list) {
        if ((q.from !== undefined && s.end <= q.from) || (q.to !== undefined && s.start >= q.to)) continue
        if (newest.size >= q.limit && s.start <= newest.peekPriority()) continue
        const r = this.#acc.result(s.start, s.end, s.keyId, s, false)
        if (q.accept !== undefined && !q.accept(r)) continue
        newest.push(s.start, r)
        if (newest.size > q.limit) newest.pop()
      }
    const out: WindowResult[] = []
    while (newest.size > 0) out.push(newest.pop() as WindowResult)
    return out.sort((a, b) => b.windowStart - a.windowStart || b.windowEnd - a.windowEnd)
  }

  save(): SavedSlot[] {
    const out: SavedSlot[] = []
    for (const list of this.#sessions.values())
      for (const s of list) out.push(this.#acc.save(s.start, s.end, s.keyId, s))
    return out
  }

  restore(slots: SavedSlot[]): void {
    for (const saved of slots) {
      const s = this.#acc.load(saved)
      const list = this.#sessions.get(s.keyId)
      if (list) list.push(s)
      else this.#sessions.set(s.keyId, [s])
      this.#count++
      this.#closing.push(s.end, s)
    }
  }
}
