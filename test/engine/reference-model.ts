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

export function runReference(spec: AggregateSpec, ops: Op[]): RefOutput {
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
          if (end <= wm) {
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
