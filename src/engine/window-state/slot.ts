import type { GroupKeys } from '../group-key.ts'
import type { FunctionSpec } from '../stages/aggregate-spec.ts'
import type { DeadLetter, Event, JsonValue, WindowResult } from '../types.ts'

/**
 * The accumulators of one key in one pane: numeric functions' state side by side in one array of
 * numbers, the others as objects. Nothing else: a pane knows its bounds and keys, and a million
 * keys cost a million of these.
 */
export interface Accs {
  nums: number[]
  /** null when every function is numeric */
  objs: unknown[] | null
  /** changed since the last update was emitted (emit: updates) */
  dirty: boolean
}

/** A window of one partition on its way to the merge: its accumulators instead of results. */
export interface PartialResult extends WindowResult {
  accs: Accs
}

const NO_RESULTS: Record<string, number | null> = Object.freeze({}) as Record<string, number | null>

/** The accumulators of one key in one session, with its bounds (they move as sessions merge). */
export interface Slot extends Accs {
  start: number
  end: number
  keyId: string
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
  /**
   * Several source partitions: the window stores (one per partition) hand their windows over as
   * partials (accumulators, no results), merged across partitions before a result is built.
   */
  partial = false
  /**
   * per function: windows starting before this show it as null (a function added to a running
   * pipeline starts with the windows that open after the change); -Infinity: every window
   */
  readonly since: number[]
  /**
   * A replay's first window start: no window starting before it is this state's (the store keeps
   * those as they were), and events before it are skipped; -Infinity: every window
   */
  from = Number.NEGATIVE_INFINITY
  /** per function: where its state is, in `nums` (numeric) or in `objs` */
  readonly #at: number[] = []
  readonly #objects: number
  readonly #width: number

  constructor(functions: FunctionSpec[], keys: GroupKeys, updates: boolean) {
    this.functions = functions
    this.keys = keys
    this.values = new Array(functions.length)
    this.since = functions.map(() => Number.NEGATIVE_INFINITY)
    this.updates = updates
    let width = 0
    let objects = 0
    for (const f of functions) {
      if (f.aggregator.numeric) {
        this.#at.push(width)
        width += f.aggregator.width
      } else this.#at.push(objects++)
    }
    this.#objects = objects
    this.#width = width
  }

  /** Filled with NaN so the array is an array of doubles from the start (from small integers it would be re-allocated at the first fraction). */
  #numbers(): number[] {
    return new Array<number>(this.#width).fill(Number.NaN)
  }

  /** Fresh accumulators; the number array is allocated at its exact size (growing by push would leave slack in every one). */
  fresh(): Accs {
    const nums = this.#numbers()
    const objs = this.#objects > 0 ? new Array<unknown>(this.#objects) : null
    const fns = this.functions
    for (let i = 0; i < fns.length; i++) {
      const a = fns[i].aggregator
      if (a.numeric) a.init(nums, this.#at[i])
      else (objs as unknown[])[this.#at[i]] = a.init()
    }
    return { nums, objs, dirty: false }
  }

  newSlot(start: number, end: number, keyId: string): Slot {
    const { nums, objs } = this.fresh()
    return { start, end, keyId, nums, objs, dirty: false, alive: true }
  }

  /** Adds the current event's values; true when `slot` just became dirty (emit: updates), so the caller lists it. */
  add(slot: Accs): boolean {
    const fns = this.functions
    const values = this.values
    const at = this.#at
    for (let i = 0; i < fns.length; i++) {
      const f = fns[i]
      const v = values[i]
      if (f.value === 'present' && (v === undefined || v === null)) continue
      const a = f.aggregator
      if (a.numeric) a.add(slot.nums, at[i], v as number)
      else {
        const objs = slot.objs as unknown[]
        objs[at[i]] = a.add(objs[at[i]], v)
      }
    }
    if (!this.updates || slot.dirty) return false
    slot.dirty = true
    return true
  }

  /** Fresh accumulators holding the merge of `parts`. */
  merged(parts: readonly Accs[]): Accs {
    const out = this.fresh()
    for (const p of parts) this.mergeInto(out, p)
    return out
  }

  mergeInto(into: Accs, from: Accs): void {
    const fns = this.functions
    for (let i = 0; i < fns.length; i++) {
      const a = fns[i].aggregator
      if (a.numeric) a.merge(into.nums, from.nums, this.#at[i])
      else {
        const objs = into.objs as unknown[]
        objs[this.#at[i]] = a.merge(objs[this.#at[i]], (from.objs as unknown[])[this.#at[i]])
      }
    }
  }

  /** What a window store emits: a result, or (`partial`) the accumulators for the merge across partitions. */
  result(start: number, end: number, keyId: string, accs: Accs, closed: boolean): WindowResult {
    if (this.partial) {
      const p: PartialResult = {
        windowStart: start,
        windowEnd: end,
        key: this.keys.decode(keyId),
        keyId,
        results: NO_RESULTS,
        closed,
        accs,
      }
      return p
    }
    return this.finish(start, end, keyId, accs, closed)
  }

  /** The result of `accs`. */
  finish(start: number, end: number, keyId: string, accs: Accs, closed: boolean): WindowResult {
    const results: Record<string, number | null> = {}
    const fns = this.functions
    for (let i = 0; i < fns.length; i++) {
      const a = fns[i].aggregator
      results[fns[i].name] =
        start < this.since[i]
          ? null
          : a.numeric
            ? a.result(accs.nums, this.#at[i])
            : a.result((accs.objs as unknown[])[this.#at[i]])
    }
    return { windowStart: start, windowEnd: end, key: this.keys.decode(keyId), keyId, results, closed }
  }

  /** Each function's empty accumulator in the checkpoint form (for a function added to saved state). */
  freshJson(): JsonValue[] {
    return this.#json(this.fresh())
  }

  /** The checkpoint form: bounds, key, and one JSON value per function, as it always was. */
  save(start: number, end: number, keyId: string, accs: Accs): SavedSlot {
    return [start, end, keyId, this.keys.decode(keyId), this.#json(accs)]
  }

  #json(accs: Accs): JsonValue[] {
    const json: JsonValue[] = []
    const fns = this.functions
    for (let i = 0; i < fns.length; i++) {
      const a = fns[i].aggregator
      json.push(
        a.numeric ? a.toJson(accs.nums, this.#at[i]) : a.toJson((accs.objs as unknown[])[this.#at[i]]),
      )
    }
    return json
  }

  load([start, end, keyId, , json]: SavedSlot): Slot {
    const nums = this.#numbers()
    const objs = this.#objects > 0 ? new Array<unknown>(this.#objects) : null
    const fns = this.functions
    for (let i = 0; i < fns.length; i++) {
      const a = fns[i].aggregator
      if (a.numeric) a.fromJson(json[i], nums, this.#at[i])
      else (objs as unknown[])[this.#at[i]] = a.fromJson(json[i])
    }
    return { start, end, keyId, nums, objs, dirty: false, alive: true }
  }
}

/**
 * A window state in parts, for checkpoints that write only what changed: a part is a pane's
 * slots, by pane start. `all`: these are every part (the others are gone); otherwise the parts
 * changed since the last time, and the ones dropped since.
 */
export interface StateParts {
  all: boolean
  changed: Array<[part: number, slots: SavedSlot[]]>
  dropped: number[]
}

/** Where an event went: applied to open windows, late (all its windows closed), or refused. */
export type Applied = 'applied' | 'late' | 'refused'

/** Work a call may still do (counted down); Infinity: all of it. */
export interface Budget {
  left: number
}

/** Which open windows `/window` wants. */
export interface OpenQuery {
  limit: number
  /** windows ending after this */
  from?: number
  /** windows starting before this */
  to?: number
  /** just these key ids (a lookup each, not a walk over every key) */
  only?: readonly string[]
  /** further filters (a key filter naming some of the group-by paths) */
  accept?: (result: WindowResult) => boolean
}

/** Window state of one kind (panes for tumbling and hopping; sessions). */
export interface WindowStore {
  readonly size: number
  apply(event: Event, ts: number, watermark: number, deadLetters: DeadLetter[]): Applied
  /**
   * Emits every window whose end ≤ watermark and forgets what no open window needs, spending at
   * most `budget` units of work (a unit: one key of one pane merged, or one result built).
   * Returns false when the budget ran out first: the next call goes on where this one stopped,
   * and nothing else may touch the store in between (no event applied, no snapshot).
   */
  close(watermark: number, results: WindowResult[], budget: Budget): boolean
  /** emits the open windows changed since the last call (emit: updates) */
  flushUpdates(watermark: number, results: WindowResult[]): void
  /** open windows newest first, at most `q.limit` accepted: work in proportion to what is returned */
  openWindows(watermark: number, q: OpenQuery): WindowResult[]
  save(): SavedSlot[]
  /**
   * The state in parts (a store that keeps them): every part (`all`), or those changed and
   * dropped since the last call; either way changes count from here on.
   */
  saveParts?(all: boolean): StateParts
  restore(slots: SavedSlot[], watermark: number): void
}
