/** A binary min-heap ordered by a numeric priority. */
export class MinHeap<T> {
  readonly #priorities: number[] = []
  readonly #items: T[] = []

  get size(): number {
    return this.#items.length
  }

  push(priority: number, item: T): void {
    const p = this.#priorities
    const items = this.#items
    let i = items.length
    p.push(priority)
    items.push(item)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (p[parent] <= priority) break
      p[i] = p[parent]
      items[i] = items[parent]
      i = parent
    }
    p[i] = priority
    items[i] = item
  }

  /** The lowest priority, or Infinity when empty. */
  peekPriority(): number {
    return this.#items.length === 0 ? Number.POSITIVE_INFINITY : this.#priorities[0]
  }

  pop(): T | undefined {
    const p = this.#priorities
    const items = this.#items
    if (items.length === 0) return undefined
    const top = items[0]
    const lastP = p.pop()!
    const lastItem = items.pop()!
    const n = items.length
    if (n > 0) {
      let i = 0
      for (;;) {
        let child = 2 * i + 1
        if (child >= n) break
        if (child + 1 < n && p[child + 1] < p[child]) child++
        if (p[child] >= lastP) break
        p[i] = p[child]
        items[i] = items[child]
        i = child
      }
      p[i] = lastP
      items[i] = lastItem
    }
    return top
  }
}
