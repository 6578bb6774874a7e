/**
 * A wait that ends after `ms` or when woken, whichever comes first: what a reader does when there
 * is nothing to read yet. `wake()` outside a wait does nothing.
 */
export class Wakeable {
  #wake: (() => void) | undefined

  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined
        resolve()
      }, ms)
      this.#wake = () => {
        clearTimeout(timer)
        this.#wake = undefined
        resolve()
      }
    })
  }

  wake(): void {
    this.#wake?.()
  }
}
