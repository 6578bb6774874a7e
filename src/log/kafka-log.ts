import { randomUUID } from 'node:crypto'
import {
  Admin,
  Consumer,
  type ConsumerOptions,
  findErrorBy,
  type Message,
  type MessagesStream,
  Producer,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka'
import { normalizeEvent } from '../engine/events.ts'
import { eventJson, ResultWire } from '../engine/result-shape.ts'
import type { Event, Issue } from '../engine/types.ts'
import type { Logger } from '../logger.ts'
import type { OutboxBatch, OutboxMessage } from '../stores/store.ts'
import {
  type AppendResult,
  type DeadLetterWrite,
  type EventLog,
  type InvalidMessage,
  type LogReader,
  type Positions,
  ProducerFencedError,
  type ReaderBatch,
  type ReaderOptions,
  readerGroup,
  type SinkWrite,
  type TailBatch,
  type TransactionalOutput,
  type TransactionalSender,
} from './log.ts'
import { Wakeable } from './wake.ts'

export interface KafkaSettings {
  brokers: string[]
  clientId: string
  /** partitions and replication factor of the topics DataPulse creates */
  partitions: number
  replication: number
  sasl?: { mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'; username: string; password: string }
  tls: boolean
  /** of every produce request (record batches are compressed whole; 'none' sends them as they are) */
  compression: 'lz4' | 'zstd' | 'gzip' | 'snappy' | 'none'
  /** sink and .dlq: through the outbox and transactions (exactly once), or produced directly (at least once) */
  delivery: 'exactly-once' | 'at-least-once'
  /**
   * this instance's id: each reader is a static group member under it, so a restarted instance
   * takes back its partitions at once instead of waiting out the old process's session
   */
  instanceId?: string
}

type Str = string
/** the client's transaction (its class is not exported) */
type Transaction = Awaited<ReturnType<Producer<Str, Str, Str, Str>['beginTransaction']>>
interface OutMessage {
  topic: string
  key?: string
  value: string
  timestamp?: bigint
  headers?: Record<string, string>
}
/** Bytes per produce request, under the brokers' default message.max.bytes (1 MB). */
const SEND_BYTES = 512 * 1024
/**
 * Bytes per fetch, and per partition in it. The client's default (50 MB for both) had one fetch
 * decode up to 50 MB at once and hold the messages of all of it: 860 MB RSS on the Kafka bench
 * where 16 MB / 4 MB holds 480 MB at the same throughput (4 MB / 1 MB lost 10-20% to round trips).
 */
const FETCH_BYTES = 16 * 1024 * 1024
const FETCH_PARTITION_BYTES = 4 * 1024 * 1024
/** Messages read ahead per reader before its stream is paused (backpressure on the partitions). */
const READ_AHEAD = 20_000
const LAG_REFRESH_MS = 2_000
/** Longest a produced message is expected to take to become readable. */
const IN_FLIGHT_MARGIN_MS = 1_000

/**
 * The topic whose partition 0 holds the relays' positions: each relay commits its next outbox seq
 * as the offset of its own group (`datapulse.<pipeline>.relay`) in every transaction. Nothing is
 * ever written to it.
 */
const RELAY_POSITIONS = 'datapulse.relay-positions'

/** The group whose committed offset is a relay's position. */
function relayGroup(pipelineId: string): string {
  return `datapulse.${pipelineId}.relay`
}

/** An event as it travels on a Kafka topic: the API's JSON shape (RFC 3339 timestamp). */
export function wireEvent(e: Event): string {
  return JSON.stringify(eventJson(e))
}

/**
 * The log on Kafka: ingestion produces with acks=all; each pipeline reads in its own consumer
 * group; sinks get window results as JSON keyed by the group key; dead letters go to `<sink>.dlq`.
 * Topics DataPulse needs are created when missing.
 */
export class KafkaLog implements EventLog {
  readonly #settings: KafkaSettings
  readonly #logger: Logger
  readonly #clock: () => number
  readonly #producer: Producer<Str, Str, Str, Str>
  readonly #admin: Admin
  readonly #known = new Set<string>()
  readonly #readers = new Set<KafkaReader>()

  constructor(settings: KafkaSettings, logger: Logger, clock: () => number = Date.now) {
    this.#settings = settings
    this.#logger = logger
    this.#clock = clock
    this.#producer = new Producer({
      ...this.connection('producer'),
      serializers: stringSerializers,
      acks: -1,
      // the broker drops a batch the client sends again after a lost answer: a retry never
      // writes an event twice (the events of one acknowledged request are counted once)
      idempotent: true,
      retries: 3,
      ...(settings.compression === 'none' ? {} : { compression: settings.compression }),
    })
    this.#admin = new Admin({ ...this.connection('admin'), retries: 3 })
    // their calls fail with the error (and are retried by the callers); one emitted besides must not end the process
    for (const client of [this.#producer, this.#admin])
      client.on('error', (err: Error) => this.#logger.warn({ err: describeError(err) }, 'Kafka client error'))
  }

  get instanceId(): string | undefined {
    return this.#settings.instanceId
  }

  /**
   * Removes the static member `instanceId` from `group` at once (the instance that ran it is gone:
   * its lease ran out), so the new owner's consumer gets the partitions now instead of after the
   * old member's session timeout. Best effort: a member already gone is fine.
   */
  async evictMember(group: string, instanceId: string): Promise<void> {
    try {
      const described = await this.#admin.describeGroups({ groups: [group] })
      const members = [...(described.get(group)?.members.values() ?? [])].filter(
        (m) => m.groupInstanceId === instanceId,
      )
      if (members.length === 0) return
      await this.#admin.removeMembersFromConsumerGroup({
        groupId: group,
        members: members.map((m) => ({ memberId: m.id, reason: 'its DataPulse instance lost the lease' })),
      })
      this.#logger.info({ group, instance: instanceId }, 'removed the old owner from the consumer group')
    } catch (err) {
      this.#logger.warn(
        { group, instance: instanceId, err: describeError(err) },
        'could not remove the old owner from the group',
      )
    }
  }

  async forgetPipeline(pipelineId: string): Promise<void> {
    for (const group of [readerGroup(pipelineId), relayGroup(pipelineId)]) {
      try {
        await this.#admin.deleteGroups({ groups: [group] })
      } catch (err) {
        // a pipeline that never read or never relayed has no such group
        if (findErrorBy(err as Error, 'apiId', 'GROUP_ID_NOT_FOUND')) continue
        this.#logger.warn(
          { group, err: describeError(err) },
          'could not delete the group of a deleted pipeline',
        )
      }
    }
  }

  /** Client options shared by producer, admin and consumers (SASL and TLS passed through). */
  connection(role: string) {
    const s = this.#settings
    return {
      clientId: `${s.clientId}-${role}`,
      bootstrapBrokers: s.brokers,
      connectTimeout: 5_000,
      requestTimeout: 10_000,
      ...(s.sasl
        ? { sasl: { mechanism: s.sasl.mechanism, username: s.sasl.username, password: s.sasl.password } }
        : {}),
      ...(s.tls ? { tls: {} } : {}),
    }
  }

  async ensureTopic(topic: string): Promise<void> {
    if (this.#known.has(topic)) return
    try {
      await this.#admin.createTopics({
        topics: [topic],
        partitions: this.#settings.partitions,
        replicas: this.#settings.replication,
      })
      this.#logger.info({ topic }, 'created Kafka topic')
    } catch (err) {
      if (!/already exists/i.test(describeError(err))) throw err
    }
    this.#known.add(topic)
  }

  async append(topic: string, events: Event[]): Promise<AppendResult> {
    await this.ensureTopic(topic)
    const timestamp = BigInt(this.#clock())
    await this.#send(events.map((e) => ({ topic, key: e.id, value: wireEvent(e), timestamp })))
    return { topic, offset: -1, count: events.length }
  }

  async #send(messages: OutMessage[]): Promise<void> {
    await sendInChunks(messages, (chunk) => this.#producer.send({ messages: chunk, acks: -1 }))
  }

  async prepareTopics(topics: string[]): Promise<void> {
    for (const topic of topics) await this.ensureTopic(topic)
  }

  async openReader(options: ReaderOptions): Promise<LogReader> {
    await this.ensureTopic(options.topic)
    const reader = new KafkaReader(this, options, this.#logger, () => this.#readers.delete(reader))
    this.#readers.add(reader)
    await reader.connect()
    return reader
  }

  /** The newest messages of each partition: read from (end − share) up to the end seen at the start, at most 10 s. */
  async tail(topic: string, last: number): Promise<TailBatch[]> {
    if (last <= 0) return []
    return this.#withConsumer([], async (consumer) => {
      const { starts, ends } = await this.#bounds(consumer, topic)
      const share = BigInt(Math.ceil(last / Math.max(1, ends.length)))
      const from = ends.map((end, p) => {
        const start = starts[p] ?? 0n
        return end - share > start ? end - share : start
      })
      return this.#readRange(consumer, topic, from, ends)
    })
  }

  async positionsAt(topic: string, at: 'earliest' | number): Promise<{ from: Positions; end: Positions }> {
    const none = { from: {}, end: {} }
    return this.#withConsumer(none, async (consumer) => {
      const { starts, ends } = await this.#bounds(consumer, topic)
      // the first offset whose timestamp (the append time DataPulse produced it with) is at or after `at`
      const found =
        at === 'earliest'
          ? starts
          : ((await consumer.listOffsets({ topics: [topic], timestamp: BigInt(at) })).get(topic) ?? [])
      const from: Positions = {}
      const end: Positions = {}
      ends.forEach((e, p) => {
        const f = found[p]
        const start = starts[p] ?? 0n
        from[String(p)] = Number(f === undefined || f < 0n ? e : f < start ? start : f)
        end[String(p)] = Number(e)
      })
      return { from, end }
    })
  }

  async peek(topic: string, from: Positions, max: number): Promise<TailBatch[]> {
    if (max <= 0) return []
    return this.#withConsumer([], async (consumer) => {
      const { starts, ends } = await this.#bounds(consumer, topic)
      const begin = ends.map((_, p) => {
        const f = from[String(p)]
        const start = starts[p] ?? 0n
        return f === undefined ? ends[p] : BigInt(f) < start ? start : BigInt(f)
      })
      const stop = ends.map((e, p) => (begin[p] + BigInt(max) < e ? begin[p] + BigInt(max) : e))
      return this.#readRange(consumer, topic, begin, stop)
    })
  }

  /** Runs `work` with a consumer of its own group (nothing committed); `none` for a topic that does not exist. */
  async #withConsumer<T>(none: T, work: (consumer: Consumer<Str, Str, Str, Str>) => Promise<T>): Promise<T> {
    const consumer = new Consumer({
      ...this.connection('peek'),
      groupId: `datapulse.peek.${randomUUID()}`,
      deserializers: stringDeserializers,
    })
    // errors reach `work` through its calls; one emitted besides must not end the process
    consumer.on('error', () => undefined)
    try {
      return await work(consumer)
    } catch (err) {
      if (/unknown topic|does not exist/i.test(describeError(err))) return none
      throw err
    } finally {
      await consumer.close(true).catch(() => undefined)
    }
  }

  /** Each partition's first retained offset and its end. */
  async #bounds(
    consumer: Consumer<Str, Str, Str, Str>,
    topic: string,
  ): Promise<{ starts: bigint[]; ends: bigint[] }> {
    const ends = (await consumer.listOffsets({ topics: [topic] })).get(topic) ?? []
    const starts =
      ends.length === 0
        ? []
        : ((await consumer.listOffsets({ topics: [topic], timestamp: -2n })).get(topic) ?? [])
    return { starts, ends: [...ends] }
  }

  /** The messages of each partition in [from, to), in batches of one append time; at most 10 s. */
  async #readRange(
    consumer: Consumer<Str, Str, Str, Str>,
    topic: string,
    from: bigint[],
    to: bigint[],
  ): Promise<TailBatch[]> {
    const wanted = to.reduce((n, end, p) => n + Number(end - from[p]), 0)
    if (wanted <= 0) return []
    const stream = await consumer.consume({
      topics: [topic],
      mode: 'manual',
      autocommit: false,
      maxWaitTime: 100,
      offsets: from.map((offset, partition) => ({ topic, partition, offset })),
    })
    const byPartition = new Map<number, Message<Str, Str, Str, Str>[]>()
    await new Promise<void>((resolve) => {
      let got = 0
      const timer = setTimeout(resolve, 10_000)
      stream.on('data', (m: Message<Str, Str, Str, Str>) => {
        if (m.offset >= to[m.partition] || m.offset < from[m.partition]) return
        const list = byPartition.get(m.partition) ?? []
        byPartition.set(m.partition, list)
        list.push(m)
        if (++got >= wanted) {
          clearTimeout(timer)
          resolve()
        }
      })
      stream.on('error', () => {
        clearTimeout(timer)
        resolve()
      })
    })
    await stream.close().catch(() => undefined)
    const out: TailBatch[] = []
    for (const partition of [...byPartition.keys()].sort((a, b) => a - b)) {
      let current: TailBatch | undefined
      for (const m of byPartition.get(partition) ?? []) {
        const appendedAt = Number(m.timestamp)
        if (current === undefined || current.appendedAt !== appendedAt) {
          current = { partition, appendedAt, events: [], invalid: [] }
          out.push(current)
        }
        const parsed = parseMessage(m, topic)
        if ('detail' in parsed) current.invalid.push(parsed)
        else current.events.push(parsed)
      }
    }
    return out
  }

  async writeSink(topic: string, output: SinkWrite): Promise<void> {
    await this.ensureTopic(topic)
    const messages = this.sinkMessages(topic, output)
    if (messages.length > 0) await this.#send(messages.map(outMessage))
  }

  /** A result travels as the embedded log keeps it: an event (`window_result`, the window in `data`), keyed by the group key. */
  sinkMessages(topic: string, output: SinkWrite): OutboxMessage[] {
    if (output.results.length === 0)
      return output.records.map((e) => ({
        topic,
        key: e.id,
        value: wireEvent(e),
        headers: { pipeline_id: output.pipelineId },
      }))
    // another pipeline reads this sink as it reads any topic; the text of each built once
    const wire = new ResultWire(output.pipelineId, output.pipelineName)
    return output.results.map((r) => {
      const keyJson = JSON.stringify(r.key)
      return {
        topic,
        // windows without group_by have no key: a null Kafka key, not the text "null"
        key: r.key === null ? null : keyJson,
        value: wire.value(r, keyJson),
        headers: {
          pipeline_id: output.pipelineId,
          window_start: wire.iso(r.windowStart),
          window_end: wire.iso(r.windowEnd),
        },
      }
    })
  }

  async writeDeadLetters(topic: string, letters: DeadLetterWrite[]): Promise<void> {
    await this.ensureTopic(topic)
    await this.#send(this.deadLetterMessages(topic, letters).map(outMessage))
  }

  deadLetterMessages(topic: string, letters: DeadLetterWrite[]): OutboxMessage[] {
    return letters.map((d) => ({
      topic,
      key: null,
      value: JSON.stringify({
        pipeline_id: d.pipelineId,
        reason: d.reason,
        detail: d.detail,
        payload: d.payload,
      }),
      headers: { pipeline_id: d.pipelineId, reason: d.reason },
    }))
  }

  /** Exactly-once output through the outbox, unless `--kafka-delivery at-least-once`. */
  get transactional(): TransactionalOutput | undefined {
    return this.#settings.delivery === 'exactly-once' ? this : undefined
  }

  async openSender(pipelineId: string): Promise<TransactionalSender> {
    await this.ensureTopic(RELAY_POSITIONS)
    const sender = new KafkaSender(this, pipelineId, this.#settings.compression, this.#logger)
    try {
      await sender.open()
    } catch (err) {
      await sender.close()
      throw err
    }
    return sender
  }

  /**
   * Message timestamps are set when a request is produced, and the message becomes readable a
   * little later: idle time moves only up to a margin behind the clock, so a batch still in flight
   * is never overtaken (and a replay closes the same windows).
   */
  stableTime(): number {
    return this.#clock() - IN_FLIGHT_MARGIN_MS
  }

  retain(): number {
    return 0 // Kafka applies its own retention
  }

  topics(): string[] {
    return [...this.#known]
  }

  async close(): Promise<void> {
    await Promise.all([...this.#readers].map((r) => r.close()))
    await this.#producer.close().catch(() => undefined)
    await this.#admin.close().catch(() => undefined)
  }
}

/** Produces with acks=all in requests of at most SEND_BYTES (brokers refuse batches over message.max.bytes). */
async function sendInChunks(
  messages: OutMessage[],
  send: (chunk: OutMessage[]) => Promise<unknown>,
): Promise<void> {
  let chunk: OutMessage[] = []
  let bytes = 0
  for (const m of messages) {
    const size = m.value.length + (m.key?.length ?? 0) + 64
    if (chunk.length > 0 && bytes + size > SEND_BYTES) {
      await send(chunk)
      chunk = []
      bytes = 0
    }
    chunk.push(m)
    bytes += size
  }
  if (chunk.length > 0) await send(chunk)
}

function outMessage(m: OutboxMessage): OutMessage {
  return { topic: m.topic, ...(m.key === null ? {} : { key: m.key }), value: m.value, headers: m.headers }
}

/** Whether the broker refused a transactional producer because a newer one has its transactional.id. */
function isFenced(err: unknown): boolean {
  if (findErrorBy(err as Error, 'producerFenced', true)) return true
  for (const id of ['PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH'])
    if (findErrorBy(err as Error, 'apiId', id)) return true
  return false
}

/**
 * One pipeline's transactional producer. Opening it begins a transaction, which initialises the
 * transactional.id (fencing the producer of a former owner and aborting its open transaction),
 * then reads where the last committed transaction left the relay. Each `send` produces the rows
 * and commits the position after them to the relay's group in the same transaction.
 */
class KafkaSender implements TransactionalSender {
  readonly #pipelineId: string
  readonly #producer: Producer<Str, Str, Str, Str>
  /** never joins its group: it only gives the transaction the group and its coordinator */
  readonly #positions: Consumer<Str, Str, Str, Str>
  #transaction: Transaction | undefined
  #coordinator = -1
  #next: number | undefined

  constructor(log: KafkaLog, pipelineId: string, compression: KafkaSettings['compression'], logger: Logger) {
    this.#pipelineId = pipelineId
    this.#producer = new Producer({
      ...log.connection('relay'),
      serializers: stringSerializers,
      acks: -1,
      idempotent: true,
      transactionalId: `datapulse.${pipelineId}`,
      // also the transaction timeout: one abandoned by a process that froze is aborted after it
      timeout: 30_000,
      retries: 3,
      ...(compression === 'none' ? {} : { compression }),
    })
    this.#positions = new Consumer({
      ...log.connection('relay-position'),
      groupId: relayGroup(pipelineId),
      deserializers: stringDeserializers,
    })
    for (const client of [this.#producer, this.#positions])
      client.on('error', (err: Error) =>
        logger.warn({ pipeline: pipelineId, err: describeError(err) }, 'Kafka relay client error'),
      )
  }

  get next(): number | undefined {
    return this.#next
  }

  async open(): Promise<void> {
    this.#transaction = await this.#begin()
    this.#coordinator = await this.#positions.findGroupCoordinator()
    const committed = await this.#stablePosition()
    this.#next = committed === undefined || committed < 0n ? undefined : Number(committed)
  }

  /**
   * The position the last committed transaction left. `requireStable` (KIP-447, patched into the
   * client): while the group coordinator still completes a transaction's offset commit it answers
   * UNSTABLE_OFFSET_COMMIT, not the offset before it; without it a relay restarted right after a
   * kill read a stale position and sent a committed batch again.
   */
  async #stablePosition(): Promise<bigint | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        const offsets = await this.#positions.listCommittedOffsets({
          topics: [{ topic: RELAY_POSITIONS, partitions: [0] }],
          requireStable: true,
        })
        return offsets.get(RELAY_POSITIONS)?.[0]
      } catch (err) {
        if (attempt >= 50 || !findErrorBy(err as Error, 'apiId', 'UNSTABLE_OFFSET_COMMIT')) throw err
        await new Promise((r) => setTimeout(r, 200))
      }
    }
  }

  async send(batches: OutboxBatch[]): Promise<void> {
    if (batches.length === 0) return
    const tx = this.#transaction ?? (await this.#begin())
    this.#transaction = tx
    try {
      const messages = batches.flatMap((b) => b.messages.map(outMessage))
      await sendInChunks(messages, (chunk) => tx.send({ messages: chunk, acks: -1 }))
      await tx.addConsumer(this.#positions)
      const last = batches[batches.length - 1].seq
      // committed as offset + 1: the seq to relay next
      await tx.addOffset(this.#positionMessage(last))
      await tx.commit()
      this.#next = last + 1
    } catch (err) {
      await tx.abort().catch(() => undefined)
      if (isFenced(err)) throw new ProducerFencedError(this.#pipelineId, describeError(err))
      throw err
    } finally {
      this.#transaction = undefined
    }
  }

  async #begin(): Promise<Transaction> {
    try {
      // no producer id of ours to prove (-1): the client's default (0) is taken for one, and the
      // broker then refuses the init as fenced while it aborts a transaction a former owner left open
      return await this.#producer.beginTransaction({ producerId: -1n, producerEpoch: -1 })
    } catch (err) {
      if (isFenced(err)) throw new ProducerFencedError(this.#pipelineId, describeError(err))
      throw err
    }
  }

  /** What `addOffset` needs of a consumed message: where, and which group (no generation: the group has no members). */
  #positionMessage(seq: number): Message<Str, Str, Str, Str> {
    return {
      topic: RELAY_POSITIONS,
      partition: 0,
      offset: BigInt(seq),
      metadata: {
        consumer: {
          groupId: this.#positions.groupId,
          generationId: -1,
          memberId: '',
          coordinatorId: this.#coordinator,
        },
      },
    } as unknown as Message<Str, Str, Str, Str>
  }

  async close(): Promise<void> {
    await this.#transaction?.cancel().catch(() => undefined)
    await this.#producer.close().catch(() => undefined)
    await this.#positions.close(true).catch(() => undefined)
  }
}

function describeError(err: unknown): string {
  if (err instanceof AggregateError) return err.errors.map(describeError).join('; ')
  const e = err as { message?: string; errors?: unknown[]; cause?: unknown }
  let text = e?.message ?? String(err)
  if (Array.isArray(e?.errors)) text += ` ${e.errors.map(describeError).join('; ')}`
  return text
}

/**
 * A pipeline's consumer: a group member that buffers what it fetches (pausing the stream past
 * READ_AHEAD), hands it over in batches of one partition and one producer timestamp, and rebuilds
 * itself from the last positions with backoff when the broker goes away.
 */
class KafkaReader implements LogReader {
  readonly initial: Positions
  readonly #log: KafkaLog
  readonly #o: ReaderOptions
  readonly #logger: Logger
  readonly #onClose: () => void
  #consumer: Consumer<Str, Str, Str, Str> | undefined
  #stream: MessagesStream<Str, Str, Str, Str> | undefined
  readonly #queue: Message<Str, Str, Str, Str>[] = []
  /** the offset after the last message queued, per partition: where a rebuilt consumer resumes */
  readonly #fetched: Positions
  #high: Positions = {}
  /** when the high watermarks were last read (0: never) */
  #highAt = 0
  #lagTimer: NodeJS.Timeout | undefined
  readonly #waiting = new Wakeable()
  #degraded: string | undefined
  #closed = false
  #reconnecting = false

  constructor(log: KafkaLog, options: ReaderOptions, logger: Logger, onClose: () => void) {
    this.#log = log
    this.#o = options
    this.#logger = logger
    this.#onClose = onClose
    this.initial = { ...(options.positions ?? {}) }
    this.#fetched = { ...this.initial }
  }

  get degraded(): string | undefined {
    return this.#degraded
  }

  async connect(): Promise<void> {
    const consumerOptions: ConsumerOptions<Str, Str, Str, Str> = {
      ...this.#log.connection('consumer'),
      groupId: this.#o.group,
      ...(this.#log.instanceId ? { groupInstanceId: this.#log.instanceId } : {}),
      deserializers: stringDeserializers,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      rebalanceTimeout: 10_000,
    }
    const consumer = new Consumer(consumerOptions)
    // the client emits 'error' on the consumer too (a rejoin on a connection that closed, even
    // after close began): unheard, that would end the process
    consumer.on('error', (err: Error) => this.#fail(err))
    const known = Object.entries(this.#fetched)
    const stream = await consumer.consume({
      topics: [this.#o.topic],
      autocommit: false,
      maxWaitTime: 100,
      maxBytes: FETCH_BYTES,
      maxBytesPerPartition: FETCH_PARTITION_BYTES,
      mode: known.length > 0 ? 'manual' : this.#o.startFrom === 'latest' ? 'latest' : 'committed',
      fallbackMode: this.#o.startFrom === 'latest' ? 'latest' : 'earliest',
      ...(known.length > 0
        ? {
            offsets: known.map(([p, o]) => ({
              topic: this.#o.topic,
              partition: Number(p),
              offset: BigInt(o),
            })),
          }
        : {}),
    })
    this.#consumer = consumer
    this.#stream = stream
    stream.on('data', (m: Message<Str, Str, Str, Str>) => {
      this.#queue.push(m)
      this.#fetched[String(m.partition)] = Number(m.offset) + 1
      if (this.#queue.length >= READ_AHEAD && !stream.isPaused()) stream.pause()
      this.#waiting.wake()
    })
    stream.on('error', (err: Error) => this.#fail(err))
    this.#degraded = undefined
    this.#lagTimer ??= setInterval(() => void this.#refreshLag(), LAG_REFRESH_MS)
    this.#lagTimer.unref()
    // the partitions are known before the first batch: each holds the pipeline's watermark
    await this.#refreshLag()
  }

  partitions(): number[] {
    const known = new Set([...Object.keys(this.#high), ...Object.keys(this.#fetched)].map(Number))
    return [...known].sort((a, b) => a - b)
  }

  #fail(err: unknown): void {
    if (this.#closed) return
    this.#degraded = `Kafka: ${describeError(err)}`
    this.#logger.warn(
      { topic: this.#o.topic, group: this.#o.group, err: this.#degraded },
      'reader lost the broker; retrying',
    )
    if (this.#reconnecting) return
    this.#reconnecting = true
    void this.#reconnect()
  }

  async #reconnect(): Promise<void> {
    let delay = 250
    while (!this.#closed) {
      await this.#teardown()
      try {
        await this.#log.ensureTopic(this.#o.topic)
        await this.connect()
        this.#logger.info({ topic: this.#o.topic, group: this.#o.group }, 'reader reconnected')
        break
      } catch (err) {
        this.#degraded = `Kafka: ${describeError(err)}`
        await new Promise((r) => setTimeout(r, delay))
        delay = Math.min(delay * 2, 5_000)
      }
    }
    this.#reconnecting = false
  }

  async #teardown(): Promise<void> {
    const stream = this.#stream
    const consumer = this.#consumer
    this.#stream = undefined
    this.#consumer = undefined
    stream?.removeAllListeners('data')
    await stream?.close().catch(() => undefined)
    await consumer?.close(true).catch(() => undefined)
  }

  async #refreshLag(): Promise<void> {
    try {
      const offsets = await this.#consumer?.listOffsets({ topics: [this.#o.topic] })
      const ends = offsets?.get(this.#o.topic)
      if (ends) {
        this.#high = Object.fromEntries(ends.map((o, p) => [String(p), Number(o)]))
        this.#highAt = Date.now()
      }
    } catch (err) {
      this.#fail(err)
    }
  }

  async read(maxEvents: number, waitMs: number): Promise<ReaderBatch[]> {
    if (this.#queue.length === 0 && waitMs > 0) {
      await this.#waiting.wait(waitMs)
    }
    const taken = this.#queue.splice(0, maxEvents)
    if (this.#stream?.isPaused() && this.#queue.length < READ_AHEAD / 2) this.#stream.resume()
    const out: ReaderBatch[] = []
    let current: ReaderBatch | undefined
    for (const m of taken) {
      const offset = Number(m.offset)
      const appendedAt = Number(m.timestamp)
      if (current === undefined || current.partition !== m.partition || current.appendedAt !== appendedAt) {
        current = { partition: m.partition, offset, next: offset, appendedAt, events: [], invalid: [] }
        out.push(current)
      }
      const parsed = parseMessage(m, this.#o.topic)
      if ('detail' in parsed) current.invalid.push(parsed)
      else current.events.push(parsed)
      current.next = offset + 1
    }
    return out
  }

  caughtUp(): boolean {
    if (this.#queue.length > 0 || this.#highAt === 0) return false
    for (const [p, high] of Object.entries(this.#high))
      if ((this.#fetched[p] ?? 0) < high && high > 0) return false
    return true
  }

  lag(positions: Positions): number {
    let lag = 0
    for (const [p, high] of Object.entries(this.#high)) lag += Math.max(0, high - (positions[p] ?? high))
    return lag
  }

  async commit(positions: Positions): Promise<void> {
    const offsets = Object.entries(positions).map(([p, o]) => ({
      topic: this.#o.topic,
      partition: Number(p),
      offset: BigInt(o),
      leaderEpoch: -1,
    }))
    if (offsets.length === 0 || !this.#consumer) return
    try {
      await this.#consumer.commit({ offsets })
    } catch (err) {
      // the store's checkpoint stays the authority on restart; the group offsets catch up next time
      this.#logger.warn({ group: this.#o.group, err: describeError(err) }, 'committing group offsets failed')
    }
  }

  wake(): void {
    this.#waiting.wake()
  }

  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#lagTimer)
    this.#waiting.wake()
    await this.#teardown()
    this.#onClose()
  }
}

/** A source message as an event; external producers' messages are checked like ingested events. */
function parseMessage(m: Message<Str, Str, Str, Str>, topic: string): Event | InvalidMessage {
  const offset = Number(m.offset)
  const raw = m.value ?? ''
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch (err) {
    return { offset, raw, detail: `not JSON: ${(err as Error).message}` }
  }
  const at = Number(m.timestamp)
  // a message without an id gets one from its place in the topic, the same on every replay
  const issues: Issue[] = []
  const event = normalizeEvent(value, at, () => `${topic}:${m.partition}:${offset}`, '/message', 0, issues)
  if (event === undefined)
    return { offset, raw, detail: issues.map((i) => `${i.path} ${i.message}`).join('; ') }
  return event
}
