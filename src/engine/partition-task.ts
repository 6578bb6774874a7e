import type { PartialResult, WindowStore } from './window-state/slot.ts'

export const NO_TIME = Number.NEGATIVE_INFINITY

/**
 * One source partition's share of a window operator (Kafka Streams' task): its own window store,
 * its own event-time progress, and the windows it has closed that wait for the other partitions.
 * Everything in it depends on that partition's events alone, in their order, so a replay that
 * interleaves the partitions differently rebuilds exactly the same task.
 */
export class PartitionTask {
  readonly partition: number
  readonly store: WindowStore
  /** highest event time seen on this partition */
  maxTs = NO_TIME
  /** latest arrival (append) time of a batch of this partition */
  lastArrival = NO_TIME
  /**
   * What this partition's windows are closed to: its own watermark (maxTs − lateness), or the
   * pipeline's when that is ahead (the partition was idle and the others went on).
   */
  watermark = NO_TIME
  /** windows this partition closed that the pipeline has not finished yet, in order of end, from `head` */
  readonly sealed: PartialResult[] = []
  head = 0

  constructor(partition: number, store: WindowStore) {
    this.partition = partition
    this.store = store
  }

  /** The partition's own watermark: from its events only. */
  own(latenessMs: number): number {
    return this.maxTs === NO_TIME ? NO_TIME : this.maxTs - latenessMs
  }

  /** The sealed windows not yet taken by the merge. */
  waiting(): PartialResult[] {
    return this.sealed.slice(this.head)
  }

  /** Forgets what the merge has taken (now and then, so the array does not shift on every take). */
  compact(): void {
    if (this.head > 1024 && this.head * 2 > this.sealed.length) {
      this.sealed.splice(0, this.head)
      this.head = 0
    }
  }
}
