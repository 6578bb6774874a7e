import type { Event } from '../engine/types.ts'

/** A run of events appended together; offsets are per event, `offset` is the first. */
export interface LogBatch {
  offset: number
  /** wall-clock time of the append (epoch ms): the batch's processing time, replayed as is */
  appendedAt: number
  events: Event[]
}

export interface AppendResult {
  topic: string
  /** offset of the first appended event */
  offset: number
  count: number
}

/**
 * The seam between ingestion and processing: durable, append-only topics read by offset. The
 * embedded log is one partition per topic; Kafka is the other implementation.
 */
export interface EventLog {
  /** Appends events; resolves once they are durable (per the log's fsync policy). */
  append(topic: string, events: Event[]): Promise<AppendResult>
  /** Whole batches holding offsets ≥ `from`, up to about `maxEvents` events; only durable ones. */
  read(topic: string, from: number, maxEvents: number): Promise<LogBatch[]>
  /** The offset the next event will get (the durable end). */
  endOffset(topic: string): number
  /** The first retained offset. */
  startOffset(topic: string): number
  /** Calls `listener` whenever new durable events are on `topic`; returns the unsubscribe. */
  subscribe(topic: string, listener: () => void): () => void
  topics(): string[]
  close(): Promise<void>
}
