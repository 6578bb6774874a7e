import type { DeadLetterReason, Event, WindowResult } from '../engine/types.ts'
import type { OutboxBatch, OutboxMessage } from '../stores/store.ts'
import type { RawRequest } from './record-format.ts'

/** A run of events appended together; offsets are per event, `offset` is the first. */
export interface LogBatch {
  offset: number
  /** wall-clock time of the append (epoch ms): the batch's processing time, replayed as is */
  appendedAt: number
  events: Event[]
}

/** Where a reader stands: partition → the next offset to read. */
export type Positions = Record<string, number>

/** A message on a source topic that is not a valid event (external producers). */
export interface InvalidMessage {
  offset: number
  raw: string
  detail: string
}

/** What a reader hands over: a batch from one partition, with what of it could not be read. */
export interface ReaderBatch extends LogBatch {
  partition: number
  /** the offset after this batch */
  next: number
  invalid: InvalidMessage[]
}

/** Events of one partition read outside any reader, oldest first (a preview's input, a replay's first events). */
export interface TailBatch {
  partition: number
  appendedAt: number
  events: Event[]
  invalid: InvalidMessage[]
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

export interface ReaderOptions {
  topic: string
  /** the consumer group (Kafka): datapulse.<pipeline id> */
  group: string
  /** restore to these positions (a checkpoint); otherwise start from `startFrom` */
  positions?: Positions
  startFrom: 'earliest' | 'latest'
}

/** One pipeline's way through its source topic. */
export interface LogReader {
  /** the positions the reader starts from (after `startFrom` was applied) */
  readonly initial: Positions
  /** the source's partitions, as far as known (the embedded log: [0]) */
  partitions(): number[]
  /** batches after what was read last, up to about `maxEvents`; waits up to `waitMs` for data */
  read(maxEvents: number, waitMs: number): Promise<ReaderBatch[]>
  /**
   * Whether everything on the topic has been handed over (as far as the reader knows): only then
   * may a pipeline move its clock for idle time, so a replay never closes windows early.
   */
  caughtUp(): boolean
  /** events on the topic not yet read (best known) */
  lag(positions: Positions): number
  /** why reading is failing right now (the reader keeps retrying), or undefined */
  readonly degraded: string | undefined
  /** progress is checkpointed up to `positions` (Kafka: commit the group's offsets) */
  commit(positions: Positions): Promise<void>
  /** ends a `read` that is waiting */
  wake(): void
  close(): Promise<void>
}

export interface SinkWrite {
  pipelineId: string
  pipelineName: string
  /** transformed events (pipelines without aggregate) */
  records: Event[]
  /** window results (pipelines with aggregate) */
  results: WindowResult[]
}

export interface DeadLetterWrite {
  pipelineId: string
  reason: DeadLetterReason | 'invalid_event'
  detail: string
  /** the event, or the raw message that was not one */
  payload: unknown
}

/**
 * Exactly-once output (Kafka): a pipeline's sink messages and dead letters are built here, kept in
 * the store's outbox with the checkpoint that covers them, and produced by a relay in Kafka
 * transactions that also commit the relay's position, so `read_committed` readers see each once.
 */
export interface TransactionalOutput {
  /** the messages `writeSink` would produce, built once */
  sinkMessages(topic: string, output: SinkWrite): OutboxMessage[]
  /** the messages `writeDeadLetters` would produce */
  deadLetterMessages(topic: string, letters: DeadLetterWrite[]): OutboxMessage[]
  /**
   * A transactional producer for one pipeline. Its `transactional.id` is the pipeline's: opening it
   * fences every other producer of the pipeline (a former owner's), aborting what it left open.
   */
  openSender(pipelineId: string): Promise<TransactionalSender>
}

export interface TransactionalSender {
  /** the outbox seq to relay next, as the last committed transaction left it (undefined: never one) */
  readonly next: number | undefined
  /** Produces the batches' messages and the seq after the last batch in one transaction; aborts it on failure. */
  send(batches: OutboxBatch[]): Promise<void>
  close(): Promise<void>
}

/** The consumer group of a pipeline's reader (its offsets follow the checkpoints, for lag tools). */
export function readerGroup(pipelineId: string): string {
  return `datapulse.${pipelineId}`
}

/** The producer of a relay was replaced by another's (the pipeline moved): it can send nothing more. */
export class ProducerFencedError extends Error {
  constructor(pipelineId: string, detail: string) {
    super(`the relay of pipeline ${pipelineId} was fenced by a newer one: ${detail}`)
    this.name = 'ProducerFencedError'
  }
}

/**
 * The seam between ingestion and processing: durable, append-only topics read by offset. The
 * embedded log is one partition per topic; Kafka is the other implementation.
 */
export interface EventLog {
  /**
   * Appends events; resolves once they are durable (fsync policy; Kafka: acks=all). With `raw`, the
   * embedded log stores the request's own bytes instead of serialising the events again.
   */
  append(topic: string, events: Event[], raw?: RawRequest): Promise<AppendResult>
  openReader(options: ReaderOptions): Promise<LogReader>
  /**
   * The newest events of a topic, at most `last` (split evenly over the partitions), each
   * partition's oldest first; none for a topic that does not exist. Reads only: no group, no commit.
   */
  tail(topic: string, last: number): Promise<TailBatch[]>
  /**
   * Where each partition of a topic stands: `from` is the first offset retained (`'earliest'`) or
   * the first appended at or after a time (epoch ms; the end when none is), `end` the next offset
   * to be written. A topic that does not exist has no partitions.
   */
  positionsAt(topic: string, at: 'earliest' | number): Promise<{ from: Positions; end: Positions }>
  /** Up to `max` events of each partition from `from` on, oldest first. Reads only: no group, no commit. */
  peek(topic: string, from: Positions, max: number): Promise<TailBatch[]>
  /** Creates the topics a pipeline writes to when missing (Kafka: through the admin API). */
  prepareTopics(topics: string[]): Promise<void>
  /** Writes a pipeline's output to its sink topic (embedded: as events; Kafka: windows as JSON, keyed). */
  writeSink(topic: string, output: SinkWrite): Promise<void>
  /** Writes dead letters to `<topic>` (Kafka: the sink's .dlq topic); the embedded log keeps them in the store only. */
  writeDeadLetters(topic: string, letters: DeadLetterWrite[]): Promise<void>
  /**
   * A time no batch that becomes readable later will carry as its arrival time: what a reader
   * may move its clock to without ever seeing an earlier arrival (exact replays of idle time).
   */
  stableTime(topic: string): number
  /** Drops old data no reader needs: everything below `keepFrom` is past every reader. */
  retain(topic: string, keepFrom: Positions, policy: RetentionPolicy): number
  topics(): string[]
  /**
   * Kafka: drops another instance's static membership of a reader's group (it is gone and its
   * session has not run out yet); the embedded log has no groups.
   */
  evictMember?(group: string, instanceId: string): Promise<void>
  /**
   * Kafka: deletes what the broker keeps of a deleted pipeline, its reader's and its relay's
   * consumer groups (best effort: a group still in use somewhere stays, with a warning).
   */
  forgetPipeline?(pipelineId: string): Promise<void>
  /** Kafka with exactly-once delivery; absent: `writeSink` and `writeDeadLetters` (at least once) */
  readonly transactional?: TransactionalOutput
  close(): Promise<void>
}
