/** Events per second over the last `windowSeconds`, from per-second buckets. */
export class RateMeter {
  readonly #clock: () => number
  readonly #buckets: Float64Array
  readonly #seconds: Float64Array
  readonly #window: number

  constructor(clock: () => number, windowSeconds = 10) {
    this.#clock = clock
    this.#window = windowSeconds
    this.#buckets = new Float64Array(windowSeconds + 1)
    this.#seconds = new Float64Array(windowSeconds + 1).fill(-1)
  }

  add(n: number): void {
    const second = Math.floor(this.#clock() / 1000)
    const i = second % this.#buckets.length
    if (this.#seconds[i] !== second) {
      this.#seconds[i] = second
      this.#buckets[i] = 0
    }
    this.#buckets[i] += n
  }

  /** The rate over the last full seconds (the current one is still filling). */
  perSecond(): number {
    const now = Math.floor(this.#clock() / 1000)
    let total = 0
    for (let i = 0; i < this.#buckets.length; i++) {
      const s = this.#seconds[i]
      if (s < now && s >= now - this.#window) total += this.#buckets[i]
    }
    return total / this.#window
  }
}
