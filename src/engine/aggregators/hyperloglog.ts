import { murmur32, SEED_HIGH, SEED_LOW } from './hash.ts'

export const HLL_MIN_PRECISION = 4
export const HLL_MAX_PRECISION = 18
export const HLL_DEFAULT_PRECISION = 14

/**
 * HyperLogLog over a 64-bit hash (two independent 32-bit halves). With precision p it keeps 2^p
 * one-byte registers; standard error ≈ 1.04 / sqrt(2^p) (0.81% at p = 14) at every cardinality.
 * Mergeable (register-wise max) and serialisable (registers as base64).
 */
export class HyperLogLog {
  readonly precision: number
  readonly registers: Uint8Array

  constructor(precision = HLL_DEFAULT_PRECISION, registers?: Uint8Array) {
    if (!Number.isInteger(precision) || precision < HLL_MIN_PRECISION || precision > HLL_MAX_PRECISION)
      throw new RangeError(`precision must be an integer in [${HLL_MIN_PRECISION}, ${HLL_MAX_PRECISION}]`)
    this.precision = precision
    this.registers = registers ?? new Uint8Array(1 << precision)
  }

  /** Adds a value already reduced to a canonical string. */
  add(text: string): void {
    const high = murmur32(text, SEED_HIGH)
    const low = murmur32(text, SEED_LOW)
    const p = this.precision
    const index = high >>> (32 - p)
    // the remaining 64 - p bits: the low (32 - p) bits of `high`, then all of `low`
    const restHigh = (high << p) >>> 0
    let rank: number
    if (restHigh !== 0) rank = Math.clz32(restHigh) + 1
    else rank = 32 - p + (low === 0 ? 32 : Math.clz32(low)) + 1
    if (rank > this.registers[index]) this.registers[index] = rank
  }

  merge(other: HyperLogLog): void {
    if (other.precision !== this.precision)
      throw new RangeError('cannot merge sketches of different precision')
    const a = this.registers
    const b = other.registers
    for (let i = 0; i < a.length; i++) if (b[i] > a[i]) a[i] = b[i]
  }

  /**
   * Ertl's improved estimator ("New cardinality estimation algorithms for HyperLogLog sketches",
   * 2017, algorithm 6): from the histogram of register values, with corrections for registers
   * still at 0 (small counts) and at their maximum (huge counts). Unbiased across the whole range,
   * so there is no switch from linear counting to a raw estimate and no bias table.
   */
  estimate(): number {
    const m = this.registers.length
    const q = 64 - this.precision
    const histogram = new Float64Array(q + 2)
    for (let i = 0; i < m; i++) histogram[this.registers[i]]++
    let z = m * tau(1 - histogram[q + 1] / m)
    for (let k = q; k >= 1; k--) z = 0.5 * (z + histogram[k])
    z += m * sigma(histogram[0] / m)
    return Math.round((m * m) / (2 * Math.LN2 * z))
  }

  toBase64(): string {
    return Buffer.from(this.registers.buffer, this.registers.byteOffset, this.registers.byteLength).toString(
      'base64',
    )
  }

  static fromBase64(precision: number, base64: string): HyperLogLog {
    const bytes = Buffer.from(base64, 'base64')
    if (bytes.length !== 1 << precision) throw new RangeError('register count does not match precision')
    return new HyperLogLog(precision, new Uint8Array(bytes))
  }
}

/** σ(x) = x + Σ_{k≥1} x^(2^k) 2^(k-1): the correction for registers still at 0. */
function sigma(x: number): number {
  if (x === 1) return Number.POSITIVE_INFINITY
  let y = 1
  let z = x
  let previous: number
  do {
    x *= x
    previous = z
    z += x * y
    y += y
  } while (z !== previous)
  return z
}

/** τ(x) = (1 - x - Σ_{k≥1} (1 - x^(2^-k))^2 2^-k) / 3: the correction for registers at their maximum. */
function tau(x: number): number {
  if (x === 0 || x === 1) return 0
  let y = 1
  let z = 1 - x
  let previous: number
  do {
    x = Math.sqrt(x)
    previous = z
    y *= 0.5
    z -= (1 - x) ** 2 * y
  } while (z !== previous)
  return z / 3
}
