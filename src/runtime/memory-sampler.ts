/** The process's resident memory, sampled every `intervalMs` (an unref'd timer: it never keeps the process alive). */
export class MemorySampler {
  #rssMb = process.memoryUsage.rss() / 2 ** 20
  readonly #timer: NodeJS.Timeout

  constructor(intervalMs: number) {
    this.#timer = setInterval(() => {
      this.#rssMb = process.memoryUsage.rss() / 2 ** 20
    }, intervalMs)
    this.#timer.unref()
  }

  get rssMb(): number {
    return this.#rssMb
  }

  stop(): void {
    clearInterval(this.#timer)
  }
}
