import { murmur32, SEED_HIGH, SEED_LOW } from './hash.ts'

export const HLL_MIN_PRECISION = 4
export const HLL_MAX_PRECISION = 18
export const HLL_DEFAULT_PRECISION = 14

/**
 * HyperLogLog over a 64-bit hash (two independent 32-bit halves). With precision p it keeps 2^p
 * one-byte registers; standard error ≈ 1.04 / sqrt(2^p) (0.81% at p = 14). Small cardinalities use
 * linear counting. Mergeable (register-wise max) and serialisable (registers as base64).
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

  estimate(): number {
    const m = this.registers.length
    let sum = 0
    let zeros = 0
    for (let i = 0; i < m; i++) {
      const r = this.registers[i]
      sum += 2 ** -r
      if (r === 0) zeros++
    }
    const alpha = m === 16 ? 0.673 : m === 32 ? 0.697 : m === 64 ? 0.709 : 0.7213 / (1 + 1.079 / m)
    const raw = (alpha * m * m) / sum
    if (raw <= 2.5 * m && zeros > 0) return Math.round(m * Math.log(m / zeros))
    return Math.round(raw)
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
