import { MinHeap } from './heap.ts'
import type { PartitionTask } from './partition-task.ts'
import type { WindowResult } from './types.ts'
import type { SessionWindows } from './window-state/sessions.ts'
import type { Accs, Accumulation, Budget, OpenQuery, PartialResult } from './window-state/slot.ts'

/**
 * How the windows of several source partitions meet: every partition closes its windows at its own
 * watermark into partials (accumulators); a window is finished, its partials merged, once the
 * pipeline watermark (the minimum over the partitions) has passed it. Partials are merged in
 * partition order, so a result does not depend on how the partitions interleaved.
 */
export interface PartialMerge {
  /**
   * Finishes every window the pipeline `watermark` has passed. False when `budget` ran out: call
   * again with the same watermark before anything else touches the tasks.
   */
  finalize(
    watermark: number,
    tasks: readonly PartitionTask[],
    results: WindowResult[],
    budget: Budget,
  ): boolean
  /** open windows across the partitions, newest first, at most `q.limit` */
  openWindows(tasks: readonly PartitionTask[], q: OpenQuery): WindowResult[]
  /** the whole windows (across partitions) of partition-local updates */
  updates(partials: readonly PartialResult[], tasks: readonly PartitionTask[]): WindowResult[]
  /** what `task` has closed and the pipeline has not finished (its share of a checkpoint) */
  sealedOf(task: PartitionTask): PartialResult[]
}

const EVERYTHING = Number.MAX_SAFE_INTEGER

function matches(p: PartialResult, q: OpenQuery): boolean {
  if (q.from !== undefined && p.windowEnd <= q.from) return false
  if (q.to !== undefined && p.windowStart >= q.to) return false
  if (q.only !== undefined && !q.only.includes(p.keyId)) return false
  return q.accept === undefined || q.accept(p)
}

function newestFirst(a: WindowResult, b: WindowResult): number {
  return b.windowStart - a.windowStart || b.windowEnd - a.windowEnd
}

/** Tumbling and hopping windows: partials of one window and key are merged as they are. */
export class PaneMerge implements PartialMerge {
  readonly #acc: Accumulation
  /** the window being finished when the budget ran out */
  #firing:
    | {
        start: number
        end: number
        merged: Map<string, Accs[]>
        task: number
        emitting: Iterator<[string, Accs[]]> | undefined
      }
    | undefined

  constructor(acc: Accumulation) {
    this.#acc = acc
  }

  finalize(
    watermark: number,
    tasks: readonly PartitionTask[],
    results: WindowResult[],
    budget: Budget,
  ): boolean {
    for (;;) {
      let f = this.#firing
      if (f === undefined) {
        // windows of one size: the same end is the same window
        let end = Number.POSITIVE_INFINITY
        let start = 0
        for (const t of tasks) {
          const p = t.sealed[t.head]
          if (p !== undefined && p.windowEnd < end) {
            end = p.windowEnd
            start = p.windowStart
          }
        }
        if (end > watermark) break
        f = { start, end, merged: new Map(), task: 0, emitting: undefined }
        this.#firing = f
      }
      for (; f.task < tasks.length; f.task++) {
        const t = tasks[f.task]
        for (;;) {
          const p = t.sealed[t.head]
          if (p === undefined || p.windowEnd !== f.end) break
          if (budget.left <= 0) return false
          budget.left--
          t.head++
          const parts = f.merged.get(p.keyId)
          if (parts === undefined) f.merged.set(p.keyId, [p.accs])
          else parts.push(p.accs)
        }
      }
      f.emitting ??= f.merged.entries()
      for (;;) {
        if (budget.left <= 0) return false
        const next = f.emitting.next()
        if (next.done) break
        budget.left--
        const [keyId, parts] = next.value
        results.push(this.#acc.finish(f.start, f.end, keyId, this.#merge(parts), true))
      }
      this.#firing = undefined
    }
    for (const t of tasks) t.compact()
    return true
  }

  #merge(parts: Accs[]): Accs {
    return parts.length === 1 ? parts[0] : this.#acc.merged(parts)
  }

  /** sealed partials by window and key, in partition order */
  #sealed(tasks: readonly PartitionTask[]): Map<string, Accs[]> {
    const out = new Map<string, Accs[]>()
    for (const t of tasks)
      for (let i = t.head; i < t.sealed.length; i++) {
        const p = t.sealed[i]
        const id = `${p.windowStart}\u0000${p.keyId}`
        const parts = out.get(id)
        if (parts === undefined) out.set(id, [p.accs])
        else parts.push(p.accs)
      }
    return out
  }

  /** The whole (not yet finished) window of one key: every partition's open and sealed part. */
  #whole(
    tasks: readonly PartitionTask[],
    sealed: Map<string, Accs[]>,
    start: number,
    end: number,
    keyId: string,
  ) {
    const parts: Accs[] = []
    const one = { limit: 1, only: [keyId], from: end - 1, to: start + 1 }
    for (const t of tasks) {
      const open = t.store.openWindows(t.watermark, one)[0] as PartialResult | undefined
      if (open !== undefined && open.windowStart === start) parts.push(open.accs)
    }
    for (const accs of sealed.get(`${start}\u0000${keyId}`) ?? []) parts.push(accs)
    return this.#acc.finish(start, end, keyId, this.#acc.merged(parts), false)
  }

  openWindows(tasks: readonly PartitionTask[], q: OpenQuery): WindowResult[] {
    const candidates = new Map<string, WindowResult>()
    const add = (p: WindowResult) => {
      const id = `${p.windowStart}\u0000${p.keyId}`
      if (!candidates.has(id)) candidates.set(id, p)
    }
    for (const t of tasks) for (const p of t.store.openWindows(t.watermark, q)) add(p)
    for (const t of tasks)
      for (let i = t.head; i < t.sealed.length; i++) if (matches(t.sealed[i], q)) add(t.sealed[i])
    const chosen = [...candidates.values()].sort(newestFirst).slice(0, q.limit)
    const sealed = this.#sealed(tasks)
    return chosen.map((c) => this.#whole(tasks, sealed, c.windowStart, c.windowEnd, c.keyId))
  }

  updates(partials: readonly PartialResult[], tasks: readonly PartitionTask[]): WindowResult[] {
    if (partials.length === 0) return []
    const sealed = this.#sealed(tasks)
    const done = new Set<string>()
    const out: WindowResult[] = []
    for (const p of partials) {
      const id = `${p.windowStart}\u0000${p.keyId}`
      if (done.has(id)) continue
      done.add(id)
      out.push(this.#whole(tasks, sealed, p.windowStart, p.windowEnd, p.keyId))
    }
    return out
  }

  sealedOf(task: PartitionTask): PartialResult[] {
    return task.waiting()
  }
}

interface Part {
  p: PartialResult
  partition: number
}

/** Overlapping sessions of one key (from any partition) as one: sorted by start, then partition. */
function components(parts: Part[]): Part[][] {
  parts.sort((a, b) => a.p.windowStart - b.p.windowStart || a.partition - b.partition)
  const out: Part[][] = []
  let current: Part[] = []
  let end = Number.NEGATIVE_INFINITY
  for (const part of parts) {
    if (current.length > 0 && part.p.windowStart >= end) {
      out.push(current)
      current = []
      end = Number.NEGATIVE_INFINITY
    }
    current.push(part)
    if (part.p.windowEnd > end) end = part.p.windowEnd
  }
  if (current.length > 0) out.push(current)
  return out
}

function bounds(parts: readonly Part[]): { start: number; end: number } {
  let start = Number.POSITIVE_INFINITY
  let end = Number.NEGATIVE_INFINITY
  for (const { p } of parts) {
    if (p.windowStart < start) start = p.windowStart
    if (p.windowEnd > end) end = p.windowEnd
  }
  return { start, end }
}

/**
 * Session windows: the sessions of one key that overlap, from whichever partitions, are one
 * session. A merged session [start, end) is finished once the pipeline watermark has passed
 * end + gap (no partition can still open a session that starts before `end`: a new one starts
 * after its partition's watermark − gap) and no partition holds an open session of the key that
 * starts before `end`.
 */
export class SessionMerge implements PartialMerge {
  readonly #acc: Accumulation
  readonly #gap: number
  /** key id → the closed partials waiting to be finished */
  readonly #pending = new Map<string, Part[]>()
  /** keys by the watermark at which they may finish (stale entries are checked and dropped) */
  readonly #due = new MinHeap<string>()

  constructor(acc: Accumulation, gapMs: number) {
    this.#acc = acc
    this.#gap = gapMs
  }

  finalize(
    watermark: number,
    tasks: readonly PartitionTask[],
    results: WindowResult[],
    budget: Budget,
  ): boolean {
    for (const t of tasks) {
      for (; t.head < t.sealed.length; t.head++) {
        const p = t.sealed[t.head]
        const parts = this.#pending.get(p.keyId)
        if (parts === undefined) this.#pending.set(p.keyId, [{ p, partition: t.partition }])
        else parts.push({ p, partition: t.partition })
        this.#due.push(p.windowEnd + this.#gap, p.keyId)
      }
      t.compact()
    }
    while (this.#due.peekPriority() <= watermark) {
      if (budget.left <= 0) return false
      const keyId = this.#due.pop() as string
      const parts = this.#pending.get(keyId)
      if (parts === undefined) continue
      budget.left -= parts.length
      this.#settle(keyId, parts, watermark, tasks, results)
    }
    return true
  }

  #settle(
    keyId: string,
    parts: Part[],
    watermark: number,
    tasks: readonly PartitionTask[],
    results: WindowResult[],
  ) {
    let open = Number.POSITIVE_INFINITY
    for (const t of tasks) open = Math.min(open, (t.store as SessionWindows).earliestStart(keyId))
    const left: Part[] = []
    for (const c of components(parts)) {
      const { start, end } = bounds(c)
      if (watermark >= end + this.#gap && open >= end)
        results.push(this.#acc.finish(start, end, keyId, this.#acc.merged(c.map((x) => x.p.accs)), true))
      else {
        left.push(...c)
        // waiting for an open session: it comes back here when that one closes
        if (watermark < end + this.#gap) this.#due.push(end + this.#gap, keyId)
      }
    }
    if (left.length === 0) this.#pending.delete(keyId)
    else this.#pending.set(keyId, left)
  }

  /** Every session of the keys, merged: open ones of every partition and the pending ones. */
  #whole(tasks: readonly PartitionTask[], keyIds: Iterable<string>, q: OpenQuery): WindowResult[] {
    const out: WindowResult[] = []
    for (const keyId of keyIds) {
      const parts: Part[] = []
      for (const t of tasks)
        for (const p of t.store.openWindows(t.watermark, { limit: EVERYTHING, only: [keyId] }))
          parts.push({ p: p as PartialResult, partition: t.partition })
      for (const t of tasks)
        for (let i = t.head; i < t.sealed.length; i++)
          if (t.sealed[i].keyId === keyId) parts.push({ p: t.sealed[i], partition: t.partition })
      for (const part of this.#pending.get(keyId) ?? []) parts.push(part)
      for (const c of components(parts)) {
        const { start, end } = bounds(c)
        const r = this.#acc.finish(start, end, keyId, this.#acc.merged(c.map((x) => x.p.accs)), false)
        if ((q.from === undefined || end > q.from) && (q.to === undefined || start < q.to)) out.push(r)
      }
    }
    return out.sort(newestFirst)
  }

  openWindows(tasks: readonly PartitionTask[], q: OpenQuery): WindowResult[] {
    const keys = new Set<string>()
    for (const t of tasks) for (const p of t.store.openWindows(t.watermark, q)) keys.add(p.keyId)
    for (const [keyId, parts] of this.#pending) if (parts.some((x) => matches(x.p, q))) keys.add(keyId)
    for (const t of tasks)
      for (let i = t.head; i < t.sealed.length; i++) if (matches(t.sealed[i], q)) keys.add(t.sealed[i].keyId)
    return this.#whole(tasks, keys, q).slice(0, q.limit)
  }

  updates(partials: readonly PartialResult[], tasks: readonly PartitionTask[]): WindowResult[] {
    if (partials.length === 0) return []
    const keys = new Set(partials.map((p) => p.keyId))
    const all = this.#whole(tasks, keys, { limit: EVERYTHING })
    return all.filter((r) =>
      partials.some((p) => p.keyId === r.keyId && p.windowStart < r.windowEnd && r.windowStart < p.windowEnd),
    )
  }

  sealedOf(task: PartitionTask): PartialResult[] {
    const out = task.waiting()
    for (const parts of this.#pending.values())
      for (const x of parts) if (x.partition === task.partition) out.push(x.p)
    return out
  }
}
