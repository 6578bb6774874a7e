import { foldPoint, type PointSummary } from '../metrics-plan.ts'
/**
 * The raw points of one series within one minute, stored as one blob: the values as
 * float64 (so the blob's start stays 8-byte aligned), then each point's offset from the
 * minute in milliseconds as uint16 (0 to 59 999). 10 bytes a point, no per-point row.
 * Offsets are strictly increasing: a point written again at the same time replaces the old one.
 */
export interface Chunk {
  n: number
  values: Float64Array
  offsets: Uint16Array
}

/** What a chunk row keeps beside its blob; it stays when raw retention drops the blob (the 1-minute rollup). */
export type ChunkSummary = PointSummary

export const POINT_BYTES = 10
const EMPTY: Chunk = { n: 0, values: new Float64Array(0), offsets: new Uint16Array(0) }

export function decodeChunk(blob: Uint8Array | null | undefined): Chunk {
  if (!blob || blob.byteLength === 0) return EMPTY
  const n = blob.byteLength / POINT_BYTES
  // typed array views need an aligned start: copy the rare blob that does not have one
  const bytes = blob.byteOffset % 8 === 0 ? blob : blob.slice()
  return {
    n,
    values: new Float64Array(bytes.buffer, bytes.byteOffset, n),
    offsets: new Uint16Array(bytes.buffer, bytes.byteOffset + n * 8, n),
  }
}

export function encodeChunk(c: Chunk): Uint8Array {
  const out = new Uint8Array(c.n * POINT_BYTES)
  new Float64Array(out.buffer, 0, c.n).set(c.n === c.values.length ? c.values : c.values.subarray(0, c.n))
  new Uint16Array(out.buffer, c.n * 8, c.n).set(
    c.n === c.offsets.length ? c.offsets : c.offsets.subarray(0, c.n),
  )
  return out
}

/**
 * The chunk with `add` written over `base`: `add` holds points as flat (offset, value) pairs
 * in arrival order; at an offset written twice, the later write wins.
 */
export function mergeChunk(base: Chunk, add: ArrayLike<number>): Chunk {
  const count = add.length / 2
  // the common case: new points after the old ones, in order
  let ordered = true
  let prev = base.n > 0 ? base.offsets[base.n - 1] : -1
  for (let i = 0; i < count; i++) {
    const offset = add[2 * i]
    if (offset <= prev) {
      ordered = false
      break
    }
    prev = offset
  }
  const n = base.n + count
  const values = new Float64Array(n)
  const offsets = new Uint16Array(n)
  if (ordered) {
    values.set(base.values)
    offsets.set(base.offsets)
    for (let i = 0; i < count; i++) {
      offsets[base.n + i] = add[2 * i]
      values[base.n + i] = add[2 * i + 1]
    }
    return { n, values, offsets }
  }
  // out of order or rewritten: sort every point by offset, later writes after earlier ones, keep the last of each offset
  const order = new Uint32Array(n)
  for (let i = 0; i < n; i++) order[i] = i
  const offsetOf = (i: number) => (i < base.n ? base.offsets[i] : add[2 * (i - base.n)])
  order.sort((a, b) => offsetOf(a) - offsetOf(b) || a - b)
  let out = 0
  for (let k = 0; k < n; k++) {
    const i = order[k]
    const offset = offsetOf(i)
    const value = i < base.n ? base.values[i] : add[2 * (i - base.n) + 1]
    if (out > 0 && offsets[out - 1] === offset) values[out - 1] = value
    else {
      offsets[out] = offset
      values[out] = value
      out++
    }
  }
  return { n: out, values, offsets }
}

export function summarize(c: Chunk, minute: number): ChunkSummary {
  let sum = 0
  let min = Number.POSITIVE_INFINITY
  let max = Number.NEGATIVE_INFINITY
  for (let i = 0; i < c.n; i++) {
    const v = c.values[i]
    sum += v
    if (v < min) min = v
    if (v > max) max = v
  }
  return { n: c.n, sum, min, max, lastTs: minute + c.offsets[c.n - 1], lastValue: c.values[c.n - 1] }
}

/**
 * Folds points into a summary whose raw points are gone (a late write to a minute past raw
 * retention): counts and sums add up; a time written twice cannot be told apart any more.
 */
export function foldIntoSummary(s: ChunkSummary, add: ArrayLike<number>, minute: number): ChunkSummary {
  const out = { ...s }
  for (let i = 0; i < add.length / 2; i++) foldPoint(out, minute + add[2 * i], add[2 * i + 1])
  return out
}
