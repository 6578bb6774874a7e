/**
 * The memory the process holds for its work: the JavaScript heap as reserved plus buffers outside
 * it, sampled every `intervalMs` (an unref'd timer: it never keeps the process alive). Not the
 * RSS: V8 keeps the pages of a heap that shrank for reuse, so the RSS stays near its peak long
 * after the work that needed it is done, and a gate on it would refuse ingestion for good after
 * one overload; this falls once the heap does.
 */
export class MemorySampler {
  #heldMb = MemorySampler.#held()
  readonly #timer: NodeJS.Timeout

  constructor(intervalMs: number) {
    this.#timer = setInterval(() => {
      this.#heldMb = MemorySampler.#held()
    }, intervalMs)
    this.#timer.unref()
  }

  static #held(): number {
    const m = process.memoryUsage()
    return (m.heapTotal + m.external) / 2 ** 20
  }

  get heldMb(): number {
    return this.#heldMb
  }

  stop(): void {
    clearInterval(this.#timer)
  }
}
