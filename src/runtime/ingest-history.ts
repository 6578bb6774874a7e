import { mod } from '../engine/windows.ts'
import type { MetricPoint } from '../stores/store.ts'

/** The series the ingest rate is kept in: events/s, one point per 10 s (the dashboard draws its history). */
export const INGEST_SERIES = 'datapulse.ingest.events_per_second'
const BUCKET_MS = 10_000

/**
 * The ingest rate as a stored series, written as events arrive: when a request falls in a new
 * 10 s bucket, the bucket before is written (and a 0 after it when a quiet stretch followed), so
 * nothing is written while nothing is ingested, and never from a timer.
 */
export class IngestHistory {
  readonly #write: (points: MetricPoint[]) => Promise<void>
  #bucket = Number.NaN
  #count = 0
  /** the writes so far (close waits for them) */
  written: Promise<void> = Promise.resolve()

  constructor(write: (points: MetricPoint[]) => Promise<void>) {
    this.#write = write
  }

  add(events: number, now: number): void {
    const bucket = now - mod(now, BUCKET_MS)
    if (bucket !== this.#bucket) {
      this.flush(bucket)
      this.#bucket = bucket
      this.#count = 0
    }
    this.#count += events
  }

  /** Writes the bucket in progress (at close; `next`: the bucket that follows, for the 0 between). */
  flush(next = Number.NaN): void {
    if (Number.isNaN(this.#bucket) || this.#count === 0) return
    const point = (timestamp: number, value: number): MetricPoint => ({
      name: INGEST_SERIES,
      tags: {},
      value,
      timestamp,
    })
    const points = [point(this.#bucket, this.#count / (BUCKET_MS / 1000))]
    if (!(next <= this.#bucket + BUCKET_MS)) points.push(point(this.#bucket + BUCKET_MS, 0))
    this.#count = 0
    const write = this.#write(points)
    this.written = this.written.then(() => write)
  }
}
