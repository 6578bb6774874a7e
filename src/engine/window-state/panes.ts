import { MinHeap } from '../heap.ts'
import { type DeadLetter, DeadLetterReason, type Event, type WindowResult } from '../types.ts'
import { lastWindowStart } from '../windows.ts'
import type {
  Accs,
  Accumulation,
  Applied,
  Budget,
  OpenQuery,
  SavedSlot,
  StateParts,
  WindowStore,
} from './slot.ts'

/** Where the firing of one window stands. */
interface Firing {
  start: number
  parts: Map<string, Accs>[]
  /** the pane being merged (several panes), and where in it */
  part: number
  entries: Iterator<[string, Accs]> | undefined
  merged: Map<string, Accs> | undefined
  /** where in the (merged) keys emission stands */
  emitting: Iterator<[string, Accs]> | undefined
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b]
  return a
}

/**
 * Tumbling and hopping windows by stream slicing: each event updates one pane (width =
 * gcd(size, slide)); a window's result is the merge of its panes when it fires. An event costs one
 * update however many windows it falls into; a tumbling window is a window of one pane.
 * A pane is kept until the last window containing it has fired.
 */
export class PaneWindows implements WindowStore {
  readonly #acc: Accumulation
  readonly #size: number
  readonly #slide: number
  readonly #pane: number
  readonly #maxKeys: number
  /** pane start → key id → accumulators */
  readonly #panes = new Map<number, Map<string, Accs>>()
  /** (pane start, key id) pairs, flat, changed since updates were last emitted */
  readonly #dirty: Array<number | string> = []
  /** window starts due to fire, by end; `#scheduled` dedupes them */
  readonly #due = new MinHeap<number>()
  readonly #scheduled = new Set<number>()
  #lastPaneStart = Number.NaN
  #lastPane: Map<string, Accs> | undefined
  /** the window being fired when a close ran out of budget */
  #firing: Firing | undefined
  /** a window fired since panes were last dropped */
  #fired = false
  /** panes changed, and dropped, since the state was last saved in parts (see saveParts) */
  readonly #changed = new Set<number>()
  readonly #dropped = new Set<number>()

  constructor(acc: Accumulation, sizeMs: number, slideMs: number, maxKeys: number) {
    this.#acc = acc
    this.#size = sizeMs
    this.#slide = slideMs
    this.#pane = gcd(sizeMs, slideMs)
    this.#maxKeys = maxKeys
  }

  /** Panes one window spans (validation bounds it). */
  static panesPerWindow(sizeMs: number, slideMs: number): number {
    return sizeMs / gcd(sizeMs, slideMs)
  }

  get size(): number {
    let n = 0
    for (const p of this.#panes.values()) n += p.size
    return n
  }

  apply(event: Event, ts: number, watermark: number, deadLetters: DeadLetter[]): Applied {
    // the latest window holding ts ends at lastWindowStart + size; if that one is closed, all are
    if (lastWindowStart(ts, this.#slide) + this.#size <= watermark) return 'late'
    const paneStart = ts - (((ts % this.#pane) + this.#pane) % this.#pane)
    let pane = paneStart === this.#lastPaneStart ? this.#lastPane : this.#panes.get(paneStart)
    if (pane === undefined) {
      pane = new Map()
      this.#panes.set(paneStart, pane)
      this.#schedule(paneStart, watermark)
    }
    // a pane is marked changed once per run of events into it (saveParts starts a new run)
    if (paneStart !== this.#lastPaneStart) this.#changed.add(paneStart)
    this.#lastPaneStart = paneStart
    this.#lastPane = pane
    const keyId = this.#acc.keys.id(event)
    let slot = pane.get(keyId)
    if (slot === undefined) {
      if (pane.size >= this.#maxKeys) {
        deadLetters.push({
          event,
          reason: DeadLetterReason.tooManyKeys,
          detail: `a window holds at most ${this.#maxKeys} keys`,
        })
        return 'refused'
      }
      slot = this.#acc.fresh()
      pane.set(keyId, slot)
    }
    if (this.#acc.add(slot)) this.#dirty.push(paneStart, keyId)
    return 'applied'
  }

  /** Schedules every still-open window that contains the pane at `paneStart`. */
  #schedule(paneStart: number, watermark: number): void {
    for (
      let start = lastWindowStart(paneStart, this.#slide);
      start > paneStart - this.#size;
      start -= this.#slide
    ) {
      const end = start + this.#size
      if (end <= watermark || start < this.#acc.from || this.#scheduled.has(start)) continue
      this.#scheduled.add(start)
      this.#due.push(end, start)
    }
  }

  /**
   * Fires due windows a unit of work at a time (see WindowStore.close): a window of one pane emits
   * its keys; a window of several first merges its panes key by key, then emits. Where it stopped
   * is kept in `#firing`.
   */
  close(watermark: number, results: WindowResult[], budget: Budget): boolean {
    const due = this.#due
    for (;;) {
      let f = this.#firing
      if (f === undefined) {
        if (due.peekPriority() > watermark) break
        const start = due.pop() as number
        this.#scheduled.delete(start)
        const parts: Map<string, Accs>[] = []
        for (let p = start; p < start + this.#size; p += this.#pane) {
          const pane = this.#panes.get(p)
          if (pane !== undefined && pane.size > 0) parts.push(pane)
        }
        f = {
          start,
          parts,
          part: 0,
          entries: undefined,
          merged: parts.length > 1 ? new Map() : undefined,
          emitting: undefined,
        }
        this.#firing = f
        this.#fired = true
      }
      if (!this.#fire(f, results, budget)) return false
      this.#firing = undefined
    }
    if (!this.#fired) return true
    this.#fired = false
    for (const paneStart of this.#panes.keys()) {
      if (lastWindowStart(paneStart, this.#slide) + this.#size <= watermark) {
        this.#panes.delete(paneStart)
        this.#changed.delete(paneStart)
        this.#dropped.add(paneStart)
        if (paneStart === this.#lastPaneStart) this.#lastPane = undefined
      }
    }
    if (this.#lastPane === undefined) this.#lastPaneStart = Number.NaN
    return true
  }

  /** Goes on firing one window; true once every key of it is emitted. */
  #fire(f: Firing, results: WindowResult[], budget: Budget): boolean {
    const end = f.start + this.#size
    if (f.merged !== undefined) {
      // merge the panes, key by key
      while (f.part < f.parts.length) {
        f.entries ??= f.parts[f.part].entries()
        for (;;) {
          if (budget.left <= 0) return false
          const next = f.entries.next()
          if (next.done) break
          budget.left--
          const [keyId, accs] = next.value
          const m = f.merged.get(keyId)
          if (m === undefined) f.merged.set(keyId, this.#acc.merged([accs]))
          else this.#acc.mergeInto(m, accs)
        }
        f.entries = undefined
        f.part++
      }
    }
    const source = f.merged ?? f.parts[0]
    if (source === undefined) return true
    f.emitting ??= source.entries()
    for (;;) {
      if (budget.left <= 0) return false
      const next = f.emitting.next()
      if (next.done) return true
      budget.left--
      const [keyId, accs] = next.value
      // a partial outlives the close: a pane later windows share still takes events, so it is copied
      const held = this.#acc.partial && f.merged === undefined && this.#slide !== this.#size
      results.push(this.#acc.result(f.start, end, keyId, held ? this.#acc.merged([accs]) : accs, true))
    }
  }

  flushUpdates(watermark: number, results: WindowResult[]): void {
    const dirty = this.#dirty
    if (dirty.length === 0) return
    const done = new Set<string>()
    for (let d = 0; d < dirty.length; d += 2) {
      const paneStart = dirty[d] as number
      const keyId = dirty[d + 1] as string
      const accs = this.#panes.get(paneStart)?.get(keyId)
      // gone: its pane was dropped when its last window fired
      if (accs === undefined) continue
      accs.dirty = false
      for (
        let start = lastWindowStart(paneStart, this.#slide);
        start > paneStart - this.#size;
        start -= this.#slide
      ) {
        const end = start + this.#size
        const id = `${start}\u0000${keyId}`
        if (end <= watermark || done.has(id)) continue
        done.add(id)
        const parts: Accs[] = []
        for (let p = start; p < end; p += this.#pane) {
          const s = this.#panes.get(p)?.get(keyId)
          if (s !== undefined) parts.push(s)
        }
        results.push(this.#acc.result(start, end, keyId, this.#acc.merged(parts), false))
      }
    }
    dirty.length = 0
  }

  /**
   * Newest window first; inside a window, keys as they first arrived (newest pane first). Stops
   * at `q.limit`: a key costs one lookup per pane of its window, so `limit = 100` over a million
   * open keys touches about a hundred of them.
   */
  openWindows(watermark: number, q: OpenQuery): WindowResult[] {
    const starts: number[] = []
    for (const start of this.#scheduled) {
      const end = start + this.#size
      if (
        end <= watermark ||
        (q.from !== undefined && end <= q.from) ||
        (q.to !== undefined && start >= q.to)
      )
        continue
      starts.push(start)
    }
    starts.sort((a, b) => b - a)
    const out: WindowResult[] = []
    for (const start of starts) {
      if (out.length >= q.limit) break
      const end = start + this.#size
      const parts: Map<string, Accs>[] = []
      for (let p = end - this.#pane; p >= start; p -= this.#pane) {
        const pane = this.#panes.get(p)
        if (pane !== undefined && pane.size > 0) parts.push(pane)
      }
      const take = (keyId: string): boolean => {
        const found: Accs[] = []
        for (const pane of parts) {
          const accs = pane.get(keyId)
          if (accs !== undefined) found.push(accs)
        }
        if (found.length === 0) return true
        const r = this.#acc.result(
          start,
          end,
          keyId,
          found.length === 1 ? found[0] : this.#acc.merged(found),
          false,
        )
        if (q.accept === undefined || q.accept(r)) out.push(r)
        return out.length < q.limit
      }
      if (q.only !== undefined) {
        for (const keyId of q.only) if (!take(keyId)) break
        continue
      }
      // a key in several panes is taken at its newest one
      const seen = parts.length > 1 ? new Set<string>() : undefined
      walk: for (const pane of parts)
        for (const keyId of pane.keys()) {
          if (seen !== undefined) {
            if (seen.has(keyId)) continue
            seen.add(keyId)
          }
          if (!take(keyId)) break walk
        }
    }
    return out
  }

  save(): SavedSlot[] {
    const out: SavedSlot[] = []
    for (const [paneStart, pane] of this.#panes) this.#saveInto(out, paneStart, pane)
    return out
  }

  #saveInto(out: SavedSlot[], paneStart: number, pane: Map<string, Accs>): SavedSlot[] {
    for (const [keyId, accs] of pane) out.push(this.#acc.save(paneStart, paneStart + this.#pane, keyId, accs))
    return out
  }

  saveParts(all: boolean): StateParts {
    const changed: Array<[number, SavedSlot[]]> = []
    for (const paneStart of all ? this.#panes.keys() : this.#changed) {
      const pane = this.#panes.get(paneStart)
      if (pane !== undefined) changed.push([paneStart, this.#saveInto([], paneStart, pane)])
    }
    const parts: StateParts = { all, changed, dropped: all ? [] : [...this.#dropped] }
    this.#changed.clear()
    this.#dropped.clear()
    // the next event marks its pane again
    this.#lastPaneStart = Number.NaN
    this.#lastPane = undefined
    return parts
  }

  restore(slots: SavedSlot[], watermark: number): void {
    for (const saved of slots) {
      const slot = this.#acc.load(saved)
      let pane = this.#panes.get(slot.start)
      if (pane === undefined) {
        pane = new Map()
        this.#panes.set(slot.start, pane)
        this.#schedule(slot.start, watermark)
      }
      // only the accumulators: the pane has the bounds and the key
      pane.set(slot.keyId, { nums: slot.nums, objs: slot.objs, dirty: false })
    }
  }
}
