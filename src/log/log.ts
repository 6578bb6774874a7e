import type { Event } from '../engine/types.ts'

/** A run of events appended together; offsets are per event, `offset` is the first. */
export interface LogBatch {
  offset: number
  /** wall-clock time of the append (epoch ms): the batch's processing time, replayed as is */
  appendedAt: number
  events: Event[]
}

/** When whole segments may go: once every reader is past them, if older than maxAgeMs or over maxBytes. */
export interface RetentionPolicy {
  maxAgeMs: number
  maxBytes: number
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
  /**
   * A time no batch that becomes readable later will carry as its arrival time: what a reader
   * may move its clock to without ever seeing an earlier arrival (exact replays of idle time).
   */
  stableTime(topic: string): number
  /** Drops old data no reader needs: everything below `keepFrom` is past every reader. */
  retain(topic: string, keepFrom: number, policy: RetentionPolicy): number
  /** Calls `listener` whenever new durable events are on `topic`; returns the unsubscribe. */
  subscribe(topic: string, listener: () => void): () => void
  topics(): string[]
  close(): Promise<void>
}
