import type { GroupKeys } from '../group-key.ts'
import type { FunctionSpec } from '../stages/aggregate-spec.ts'
import type { DeadLetter, Event, JsonValue, WindowResult } from '../types.ts'

/** The accumulators of one key in one pane or session; session bounds move as sessions merge. */
export interface Slot {
  start: number
  end: number
  keyId: string
  key: Record<string, unknown> | null
  accs: unknown[]
  dirty: boolean
  alive: boolean
}

export type SavedSlot = [
  start: number,
  end: number,
  keyId: string,
  key: Record<string, unknown> | null,
  accs: JsonValue[],
]

/** What the window stores share: the functions, the values of the current event, and emission. */
export class Accumulation {
  readonly functions: FunctionSpec[]
  readonly keys: GroupKeys
  /** the current event's value for each function (filled by the operator) */
  readonly values: unknown[]
  readonly updates: boolean
  readonly dirty: Slot[] = []

  constructor(functions: FunctionSpec[], keys: GroupKeys, updates: boolean) {
    this.functions = functions
    this.keys = keys
    this.values = new Array(functions.length)
    this.updates = updates
  }

  newSlot(start: number, end: number, keyId: string, event: Event): Slot {
    const accs = new Array(this.functions.length)
    for (let i = 0; i < accs.length; i++) accs[i] = this.functions[i].aggregator.init()
    return { start, end, keyId, key: this.keys.object(event), accs, dirty: false, alive: true }
  }

  add(slot: Slot): void {
    const fns = this.functions
    const values = this.values
    for (let i = 0; i < fns.length; i++) {
      const f = fns[i]
      if (f.value === 'present' && (values[i] === undefined || values[i] === null)) continue
      f.aggregator.add(slot.accs[i], values[i])
    }
    if (this.updates && !slot.dirty) {
      slot.dirty = true
      this.dirty.push(slot)
    }
  }

  /** Fresh accumulators holding the merge of `parts`. */
  merged(parts: readonly unknown[][]): unknown[] {
    const fns = this.functions
    const accs = new Array(fns.length)
    for (let i = 0; i < fns.length; i++) {
      const acc = fns[i].aggregator.init()
      for (const p of parts) fns[i].aggregator.merge(acc, p[i])
      accs[i] = acc
    }
    return accs
  }

  mergeInto(into: unknown[], from: unknown[]): void {
    for (let i = 0; i < this.functions.length; i++) this.functions[i].aggregator.merge(into[i], from[i])
  }

  result(
    start: number,
    end: number,
    keyId: string,
    key: Record<string, unknown> | null,
    accs: unknown[],
    closed: boolean,
  ): WindowResult {
    const results: Record<string, number | null> = {}
    const fns = this.functions
    for (let i = 0; i < fns.length; i++) results[fns[i].name] = fns[i].aggregator.result(accs[i])
    return { windowStart: start, windowEnd: end, key, keyId, results, closed }
  }

  save(slot: Slot): SavedSlot {
    return [
      slot.start,
      slot.end,
      slot.keyId,
      slot.key,
      slot.accs.map((a, i) => this.functions[i].aggregator.toJson(a)),
    ]
  }

  load([start, end, keyId, key, accs]: SavedSlot): Slot {
    return {
      start,
      end,
      keyId,
      key,
      accs: accs.map((a, i) => this.functions[i].aggregator.fromJson(a)),
      dirty: false,
      alive: true,
    }
  }
}

/** Where an event went: applied to open windows, late (all its windows closed), or refused. */
export type Applied = 'applied' | 'late' | 'refused'

/** Window state of one kind (panes for tumbling and hopping; sessions). */
export interface WindowStore {
  readonly size: number
  apply(event: Event, ts: number, watermark: number, deadLetters: DeadLetter[]): Applied
  /** emits every window whose end ≤ watermark and forgets what no open window needs */
  close(watermark: number, results: WindowResult[]): void
  /** emits the open windows changed since the last call (emit: updates) */
  flushUpdates(watermark: number, results: WindowResult[]): void
  forEachOpen(watermark: number, visit: (result: WindowResult) => void): void
  save(): SavedSlot[]
  restore(slots: SavedSlot[], watermark: number): void
}
