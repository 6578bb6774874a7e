/**
 * A brute-force reference for the window operator: it keeps every accepted event in a plain list per
 * window (or session) and computes each result from scratch. It shares no code with the engine
 * except the spec types; the semantics it encodes are DESIGN §4.4:
 * - watermark = highest event time seen − lateness; after idle_timeout without events it moves at
 *   wall-clock speed; with processing time it is arrival − lateness;
 * - an event goes to each of its windows whose end > watermark; none → late;
 * - sessions: [ts, ts+gap) merges with overlapping open sessions of its key; late if the merged end ≤ watermark;
 * - a window closes when watermark ≥ end.
 */
import type { AggregateSpec } from '../../src/engine/stages/aggregate-spec.ts'
import type { Event } from '../../src/engine/types.ts'

export type Op = { kind: 'batch'; arrival: number; events: Event[] } | { kind: 'advance'; now: number }

export interface RefResult {
  start: number
  end: number
  key: string
  closed: boolean
  results: Record<string, number | null>
  /** the events the window holds */
  events: Event[]
}

export interface RefOutput {
  closed: RefResult[]
  /** per op, the open windows touched by it (emit: updates) */
  updates: RefResult[][]
  late: number
  deadLetters: Record<string, number>
}

interface Bucket {
  start: number
  end: number
  key: string
  events: Event[]
  touched: boolean
  alive: boolean
}

function keyOf(spec: AggregateSpec, e: Event): string {
  return JSON.stringify(spec.groupBy.map((f) => f.get(e) ?? null))
}

export function expectedResults(spec: AggregateSpec, events: Event[]): Record<string, number | null> {
  const out: Record<string, number | null> = {}
  for (const f of spec.functions) {
    const values =
      f.field === null ? [] : events.map((e) => f.field!.get(e)).filter((v) => v !== undefined && v !== null)
    const nums = values as number[]
    const sorted = [...nums].sort((a, b) => a - b)
    const sum = nums.reduce((a, b) => a + b, 0)
    out[f.name] =
      f.fn === 'count'
        ? f.field === null
          ? events.length
          : values.length
        : f.fn === 'count_distinct'
          ? new Set(values.map((v) => `${typeof v}:${v}`)).size
          : nums.length === 0
            ? null
            : f.fn === 'sum'
              ? sum
              : f.fn === 'avg'
                ? sum / nums.length
                : f.fn === 'min'
                  ? sorted[0]
                  : f.fn === 'max'
                    ? sorted[sorted.length - 1]
                    : sorted[Math.floor(f.q! * (sorted.length - 1))]
  }
  return out
}

/**
 * `ownSessionLate`: an event whose own session [ts, ts + gap) is closed is late even where it would
 * extend an open session (the rule with several source partitions).
 */
export function runReference(spec: AggregateSpec, ops: Op[], ownSessionLate = false): RefOutput {
  let wm = Number.NEGATIVE_INFINITY
  let maxTs = Number.NEGATIVE_INFINITY
  let lastArrival = Number.NEGATIVE_INFINITY
  const buckets: Bucket[] = []
  const out: RefOutput = { closed: [], updates: [], late: 0, deadLetters: {} }
  const result = (b: Bucket, closed: boolean): RefResult => ({
    start: b.start,
    end: b.end,
    key: b.key,
    closed,
    results: expectedResults(spec, b.events),
    events: b.events,
  })
  const advance = (now: number) => {
    let target = Number.NEGATIVE_INFINITY
    if (spec.time === 'processing') target = now - spec.latenessMs
    else if (lastArrival > Number.NEGATIVE_INFINITY && now > lastArrival + spec.idleTimeoutMs)
      target = maxTs - spec.latenessMs + (now - lastArrival - spec.idleTimeoutMs)
    wm = Math.max(wm, target)
  }
  const close = () => {
    for (const b of buckets) {
      if (b.alive && b.end <= wm) {
        b.alive = false
        out.closed.push(result(b, true))
      }
    }
  }
  const dead = (reason: string) => {
    out.deadLetters[reason] = (out.deadLetters[reason] ?? 0) + 1
  }
  for (const op of ops) {
    const touched: Bucket[] = []
    advance(op.kind === 'batch' ? op.arrival : op.now)
    if (op.kind === 'batch') {
      for (const e of op.events) {
        const ts = spec.time === 'processing' ? op.arrival : e.timestamp
        let unusable: string | undefined
        for (const f of spec.functions) {
          if (f.field === null || f.value === 'present') continue
          const v = f.field.get(e)
          if (v === undefined || v === null) unusable ??= 'missing_field'
          else if (
            f.value === 'number' ? typeof v !== 'number' : !['string', 'number', 'boolean'].includes(typeof v)
          )
            unusable ??= 'type_mismatch'
        }
        if (unusable) {
          dead(unusable)
          continue
        }
        const key = keyOf(spec, e)
        const w = spec.window
        if (w.kind === 'session') {
          const overlapping = buckets.filter(
            (b) => b.alive && b.key === key && b.end > wm && b.start < ts + w.gapMs && ts < b.end,
          )
          const start = Math.min(ts, ...overlapping.map((b) => b.start))
          const end = Math.max(ts + w.gapMs, ...overlapping.map((b) => b.end))
          if (end <= wm || (ownSessionLate && ts + w.gapMs <= wm)) {
            out.late++
            dead('late')
          } else {
            for (const b of overlapping) b.alive = false
            const merged: Bucket = {
              start,
              end,
              key,
              events: [...overlapping.flatMap((b) => b.events), e],
              touched: true,
              alive: true,
            }
            buckets.push(merged)
            touched.push(merged)
          }
        } else {
          const size = w.sizeMs
          const slide = w.kind === 'hopping' ? w.slideMs : size
          let applied = 0
          for (let s = Math.floor((ts - size) / slide) * slide; s <= ts; s += slide) {
            if (!(s <= ts && ts < s + size) || s + size <= wm) continue
            let b = buckets.find((x) => x.alive && x.start === s && x.key === key)
            if (!b) {
              b = { start: s, end: s + size, key, events: [], touched: false, alive: true }
              buckets.push(b)
            }
            b.events.push(e)
            touched.push(b)
            applied++
          }
          if (applied === 0) {
            out.late++
            dead('late')
          }
        }
        if (ts > maxTs) {
          maxTs = ts
          wm = Math.max(wm, ts - spec.latenessMs)
        }
      }
      if (op.events.length > 0) lastArrival = Math.max(lastArrival, op.arrival)
    }
    close()
    const seen = new Set<Bucket>()
    out.updates.push(
      touched.filter((b) => b.alive && !seen.has(b) && seen.add(b)).map((b) => result(b, false)),
    )
  }
  return out
}

/**
 * Several source partitions: each decides on its own what is late and which windows its events are
 * in (the single-partition reference, with the several-partition session rule); a window's result
 * is that of the union of every partition's events in it, sessions of a key that overlap merged.
 * `now` is the final advance (everything closes).
 */
export function runPartitionedReference(spec: AggregateSpec, perPartition: Op[][], now: number) {
  let late = 0
  const windows: Array<{ start: number; end: number; key: string; events: Event[] }> = []
  for (const ops of perPartition) {
    const out = runReference(spec, [...ops, { kind: 'advance', now }], true)
    late += out.late
    for (const c of out.closed) windows.push({ start: c.start, end: c.end, key: c.key, events: c.events })
  }
  const merged: Array<{ start: number; end: number; key: string; results: Record<string, number | null> }> =
    []
  if (spec.window.kind === 'session') {
    const byKey = new Map<string, typeof windows>()
    for (const w of windows) byKey.set(w.key, [...(byKey.get(w.key) ?? []), w])
    for (const [key, list] of byKey) {
      list.sort((a, b) => a.start - b.start)
      let cur: { start: number; end: number; events: Event[] } | undefined
      const flush = () => {
        if (cur)
          merged.push({ start: cur.start, end: cur.end, key, results: expectedResults(spec, cur.events) })
      }
      for (const w of list) {
        if (cur && w.start < cur.end) {
          cur.end = Math.max(cur.end, w.end)
          cur.events.push(...w.events)
        } else {
          flush()
          cur = { start: w.start, end: w.end, events: [...w.events] }
        }
      }
      flush()
    }
  } else {
    const byWindow = new Map<string, { start: number; end: number; key: string; events: Event[] }>()
    for (const w of windows) {
      const id = `${w.start}|${w.key}`
      const m = byWindow.get(id)
      if (m) m.events.push(...w.events)
      else byWindow.set(id, { ...w, events: [...w.events] })
    }
    for (const m of byWindow.values())
      merged.push({ start: m.start, end: m.end, key: m.key, results: expectedResults(spec, m.events) })
  }
  return { late, windows: merged }
}
