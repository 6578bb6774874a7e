import { constants, mkdirSync, readdirSync } from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'
import { join } from 'node:path'
import { isTopicName } from '../engine/pipeline-spec.ts'
import { resultEvent } from '../engine/result-shape.ts'
import type { Event } from '../engine/types.ts'
import type { Logger } from '../logger.ts'
import type {
  AppendResult,
  EventLog,
  LogBatch,
  LogReader,
  Positions,
  ReaderBatch,
  ReaderOptions,
  RetentionPolicy,
  SinkWrite,
  TailBatch,
} from './log.ts'
import { encodeRecord, type RawRequest, type RecordPayload } from './record-format.ts'
import { Segment, segmentName } from './segment.ts'
import { Wakeable } from './wake.ts'

export type FsyncPolicy = 'always' | 'batch' | 'off'

export interface EmbeddedLogOptions {
  dir: string
  /** batch: appends that arrive during a durable write share the next one (group commit); always: one write per append; off: the OS decides */
  fsync: FsyncPolicy
  /** recent events kept parsed in memory per topic, so caught-up readers never touch the disk */
  cacheEvents: number
  /** a new segment starts once the active one is this large */
  segmentBytes: number
  logger: Logger
  /** wall clock for appended-at times (tests inject one) */
  clock?: () => number
}

interface Pending {
  events: Event[]
  raw: RawRequest | undefined
  resolve: (r: AppendResult) => void
  reject: (err: Error) => void
}

/** Synchronised writes, where the platform has them (Linux, macOS); elsewhere a write and then an fdatasync. */
const O_DSYNC: number | undefined = constants.O_DSYNC

/** One topic: its segments, group commit of appends, and a cache of the newest batches. */
class Topic {
  readonly name: string
  readonly #dir: string
  readonly #o: EmbeddedLogOptions
  readonly #clock: () => number
  readonly #segments: Segment[] = []
  #fh: FileHandle | undefined
  readonly #cache = new Map<number, Event[]>()
  #cachedEvents = 0
  #lastAppendedAt = 0
  #pending: Pending[] = []
  #flushing = false
  /** appended-at of the write in progress (it becomes readable later), or undefined */
  #inFlightAt: number | undefined
  readonly listeners = new Set<() => void>()
  /** where each open reader will read next: cached batches all of them have passed are dropped */
  readonly readers = new Set<{ readonly next: number }>()

  constructor(name: string, dir: string, options: EmbeddedLogOptions) {
    this.name = name
    this.#dir = dir
    this.#o = options
    this.#clock = options.clock ?? Date.now
    mkdirSync(dir, { recursive: true })
    const files = readdirSync(dir)
      .filter((f) => /^\d{20}\.log$/.test(f))
      .sort()
    files.forEach((file, i) => {
      const segment = new Segment(join(dir, file), Number(file.slice(0, 20)))
      segment.recover(i === files.length - 1, options.logger)
      this.#segments.push(segment)
    })
    if (this.#segments.length === 0) this.#segments.push(new Segment(join(dir, segmentName(0)), 0))
    for (const s of this.#segments)
      if (s.lastAppendedAt > this.#lastAppendedAt) this.#lastAppendedAt = s.lastAppendedAt
  }

  get #active(): Segment {
    return this.#segments[this.#segments.length - 1]
  }

  get end(): number {
    return this.#active.end
  }

  get start(): number {
    return this.#segments[0].offsets.length > 0 ? this.#segments[0].offsets[0] : this.#segments[0].baseOffset
  }

  /** No batch that becomes readable later will carry an arrival time below this. */
  stableTime(): number {
    const now = this.#clock()
    return this.#inFlightAt === undefined ? now : Math.min(now, this.#inFlightAt)
  }

  append(events: Event[], raw?: RawRequest): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ events, raw, resolve, reject })
      if (!this.#flushing) {
        this.#flushing = true
        // let the appends of requests already parsed join this write (group commit)
        setImmediate(() => void this.#flush())
      }
    })
  }

  async #file(): Promise<FileHandle> {
    const active = this.#active
    if (active.size >= this.#o.segmentBytes && active.offsets.length > 0) {
      await this.#fh?.close()
      this.#fh = undefined
      this.#segments.push(new Segment(join(this.#dir, segmentName(active.end)), active.end))
    }
    if (this.#fh === undefined) {
      // durable appends: each write returns once its data (and the file size) is on disk, one
      // system call per group instead of a write and then an fdatasync (where there is no O_DSYNC)
      const { O_WRONLY, O_APPEND, O_CREAT } = constants
      const flags = O_WRONLY | O_APPEND | O_CREAT | (this.#o.fsync === 'off' ? 0 : (O_DSYNC ?? 0))
      this.#fh = await open(this.#active.path, flags, 0o644)
      this.#active.size = (await this.#fh.stat()).size
      // a new file's name lives in the directory: make it durable too, or a power cut could lose
      // the whole segment with what was acknowledged in it
      if (this.#active.size === 0 && this.#o.fsync !== 'off') {
        const dir = await open(this.#dir, 'r')
        try {
          await dir.sync()
        } finally {
          await dir.close()
        }
      }
    }
    return this.#fh
  }

  async #flush(): Promise<void> {
    while (this.#pending.length > 0) {
      const group = this.#o.fsync === 'always' ? this.#pending.splice(0, 1) : this.#pending.splice(0)
      const appendedAt = Math.max(this.#clock(), this.#lastAppendedAt)
      this.#inFlightAt = appendedAt
      let offset = this.end
      const buffers: Buffer[] = []
      const lengths: number[] = []
      for (const p of group) {
        const payload: RecordPayload = p.raw
          ? { kind: 'request', request: p.raw }
          : { kind: 'events', json: JSON.stringify(p.events) }
        let length = 0
        for (const part of encodeRecord({ offset, appendedAt, count: p.events.length }, payload)) {
          buffers.push(part)
          length += part.length
        }
        lengths.push(length)
        offset += p.events.length
      }
      let segment: Segment | undefined
      let startSize = 0
      try {
        const fh = await this.#file()
        segment = this.#active
        startSize = segment.size
        const total = buffers.reduce((n, b) => n + b.length, 0)
        const { bytesWritten } = await fh.writev(buffers)
        // a full disk can end a write short without an error: that is a failure too
        if (bytesWritten !== total)
          throw Object.assign(new Error(`short write: ${bytesWritten} of ${total} bytes`), { code: 'ENOSPC' })
        if (O_DSYNC === undefined && this.#o.fsync !== 'off') await fh.datasync()
      } catch (err) {
        // leave no partial record behind; the appends fail and nothing is acknowledged
        if (segment) await this.#fh?.truncate(startSize).catch(() => undefined)
        this.#inFlightAt = undefined
        for (const p of group) p.reject(err as Error)
        continue
      }
      this.#lastAppendedAt = appendedAt
      let pos = startSize
      let first = this.end
      for (let i = 0; i < group.length; i++) {
        const count = group[i].events.length
        segment.index(first, count, pos, lengths[i], appendedAt)
        this.#remember(first, group[i].events)
        group[i].resolve({ topic: this.name, offset: first, count })
        pos += lengths[i]
        first += count
      }
      segment.size = pos
      this.#inFlightAt = undefined
      for (const listener of this.listeners) listener()
    }
    this.#flushing = false
  }

  /**
   * Keeps a batch parsed for the readers that have yet to read it. Only while one has: events that
   * outlive a few young-generation collections are copied into the old generation, which costs more
   * than the parse they save, so a caught-up reader takes them at once and they go.
   */
  #remember(offset: number, events: Event[]): void {
    if (this.readers.size === 0) return
    this.#cache.set(offset, events)
    this.#cachedEvents += events.length
    this.trimCache()
  }

  /** Drops cached batches every reader has passed, and the oldest past the size budget. */
  trimCache(): void {
    let lowest = Number.POSITIVE_INFINITY
    for (const r of this.readers) if (r.next < lowest) lowest = r.next
    for (const [key, cached] of this.#cache) {
      if (key + cached.length > lowest && this.#cachedEvents <= this.#o.cacheEvents) break
      this.#cache.delete(key)
      this.#cachedEvents -= cached.length
    }
  }

  read(from: number, maxEvents: number): LogBatch[] {
    const out: LogBatch[] = []
    let total = 0
    const segments = this.#segments
    let s = segments.length - 1
    while (s > 0 && segments[s].baseOffset > from) s--
    for (; s < segments.length && total < maxEvents; s++) {
      const seg = segments[s]
      for (let r = seg.find(from); r < seg.offsets.length && total < maxEvents; r++) {
        const offset = seg.offsets[r]
        if (offset + seg.counts[r] <= from) continue
        let events = this.#cache.get(offset) ?? seg.read(r)
        let first = offset
        if (from > offset) {
          events = events.slice(from - offset)
          first = from
        }
        out.push({ offset: first, appendedAt: seg.appendedAt[r], events })
        total += events.length
      }
    }
    return out
  }

  /** The first offset appended at or after `time` (the end when none is). */
  offsetAt(time: number): number {
    for (const seg of this.#segments)
      for (let r = 0; r < seg.offsets.length; r++) if (seg.appendedAt[r] >= time) return seg.offsets[r]
    return this.end
  }

  /** Deletes whole, inactive segments below `keepFrom` that are too old, or past the size budget. */
  retain(keepFrom: number, policy: RetentionPolicy, now: number): number {
    let removed = 0
    let bytes = this.#segments.reduce((n, s) => n + s.size, 0)
    while (this.#segments.length > 1) {
      const oldest = this.#segments[0]
      if (oldest.end > keepFrom) break
      const tooOld = now - oldest.lastAppendedAt > policy.maxAgeMs
      const tooBig = bytes > policy.maxBytes
      if (!tooOld && !tooBig) break
      for (let o = oldest.baseOffset; o < oldest.end; ) {
        const cached = this.#cache.get(o)
        if (cached === undefined) break
        this.#cache.delete(o)
        this.#cachedEvents -= cached.length
        o += cached.length
      }
      oldest.remove()
      this.#segments.shift()
      bytes -= oldest.size
      removed++
    }
    return removed
  }

  get bytes(): number {
    return this.#segments.reduce((n, s) => n + s.size, 0)
  }

  get segmentCount(): number {
    return this.#segments.length
  }

  async close(): Promise<void> {
    while (this.#flushing) await new Promise((r) => setImmediate(r))
    await this.#fh?.close()
    this.#fh = undefined
    for (const s of this.#segments) s.close()
  }
}

/** A pipeline's reader of an embedded topic (one partition, "0"): offsets are its own, never committed elsewhere. */
class EmbeddedReader implements LogReader {
  readonly initial: Positions
  readonly degraded = undefined
  readonly #topic: Topic
  #next: number
  readonly #waiting = new Wakeable()
  readonly #unsubscribe: () => void

  constructor(topic: Topic, start: number) {
    this.#topic = topic
    this.#next = start
    this.initial = { '0': start }
    const listener = () => this.#waiting.wake()
    topic.listeners.add(listener)
    topic.readers.add(this)
    this.#unsubscribe = () => {
      topic.listeners.delete(listener)
      topic.readers.delete(this)
      topic.trimCache()
    }
  }

  get next(): number {
    return this.#next
  }

  partitions(): number[] {
    return [0]
  }

  async read(maxEvents: number, waitMs: number): Promise<ReaderBatch[]> {
    let batches = this.#topic.read(this.#next, maxEvents)
    if (batches.length === 0 && waitMs > 0) {
      await this.#waiting.wait(waitMs)
      batches = this.#topic.read(this.#next, maxEvents)
    }
    const out: ReaderBatch[] = batches.map((b) => ({
      ...b,
      partition: 0,
      next: b.offset + b.events.length,
      invalid: [],
    }))
    if (out.length > 0) {
      this.#next = out[out.length - 1].next
      this.#topic.trimCache()
    }
    return out
  }

  lag(positions: Positions): number {
    return Math.max(0, this.#topic.end - (positions['0'] ?? this.#next))
  }

  caughtUp(): boolean {
    return this.#next >= this.#topic.end
  }

  async commit(): Promise<void> {}

  wake(): void {
    this.#waiting.wake()
  }

  async close(): Promise<void> {
    this.#unsubscribe()
  }
}

/** The embedded, durable, append-only log: one directory of segments per topic under `<data dir>/log`. */
export class EmbeddedLog implements EventLog {
  readonly #options: EmbeddedLogOptions
  readonly #topics = new Map<string, Topic>()

  constructor(options: EmbeddedLogOptions) {
    this.#options = options
    mkdirSync(options.dir, { recursive: true })
    for (const entry of readdirSync(options.dir, { withFileTypes: true })) {
      if (entry.isDirectory() && isTopicName(entry.name)) this.#topic(entry.name)
    }
  }

  #topic(name: string): Topic {
    let topic = this.#topics.get(name)
    if (topic === undefined) {
      // a name is a folder under the log: never `.`, `..` or a path (the API checks first; this is the last line)
      if (!isTopicName(name)) throw new Error(`'${name}' is not a topic name`)
      topic = new Topic(name, join(this.#options.dir, name), this.#options)
      this.#topics.set(name, topic)
    }
    return topic
  }

  append(topic: string, events: Event[], raw?: RawRequest): Promise<AppendResult> {
    return this.#topic(topic).append(events, raw)
  }

  async read(topic: string, from: number, maxEvents: number): Promise<LogBatch[]> {
    const t = this.#topics.get(topic)
    return t === undefined ? [] : t.read(from, maxEvents)
  }

  async tail(topic: string, last: number): Promise<TailBatch[]> {
    const t = this.#topics.get(topic)
    if (t === undefined || last <= 0) return []
    const from = Math.max(t.start, t.end - last)
    return t
      .read(from, last)
      .map((b) => ({ partition: 0, appendedAt: b.appendedAt, events: b.events, invalid: [] }))
  }

  async positionsAt(topic: string, at: 'earliest' | number): Promise<{ from: Positions; end: Positions }> {
    const t = this.#topics.get(topic)
    if (t === undefined) return { from: {}, end: {} }
    return { from: { 0: at === 'earliest' ? t.start : Math.max(t.start, t.offsetAt(at)) }, end: { 0: t.end } }
  }

  async peek(topic: string, from: Positions, max: number): Promise<TailBatch[]> {
    const t = this.#topics.get(topic)
    if (t === undefined || max <= 0 || from['0'] === undefined) return []
    const out: TailBatch[] = []
    let left = max
    for (const b of t.read(Math.max(t.start, from['0']), max)) {
      if (left <= 0) break
      const events = b.events.length > left ? b.events.slice(0, left) : b.events
      left -= events.length
      out.push({ partition: 0, appendedAt: b.appendedAt, events, invalid: [] })
    }
    return out
  }

  endOffset(topic: string): number {
    return this.#topics.get(topic)?.end ?? 0
  }

  startOffset(topic: string): number {
    return this.#topics.get(topic)?.start ?? 0
  }

  stableTime(topic: string): number {
    return this.#topics.get(topic)?.stableTime() ?? (this.#options.clock ?? Date.now)()
  }

  topics(): string[] {
    return [...this.#topics.keys()]
  }

  retain(topic: string, keepFrom: Positions, policy: RetentionPolicy): number {
    const t = this.#topics.get(topic)
    return t?.retain(keepFrom['0'] ?? t.end, policy, (this.#options.clock ?? Date.now)()) ?? 0
  }

  async openReader(options: ReaderOptions): Promise<LogReader> {
    const topic = this.#topic(options.topic)
    const start = options.positions?.['0'] ?? (options.startFrom === 'latest' ? topic.end : topic.start)
    return new EmbeddedReader(topic, start)
  }

  async writeSink(topic: string, output: SinkWrite): Promise<void> {
    const events =
      output.results.length > 0
        ? output.results.map((r) => resultEvent(output.pipelineId, output.pipelineName, r))
        : output.records.slice()
    if (events.length > 0) await this.append(topic, events)
  }

  async prepareTopics(): Promise<void> {
    // embedded topics come into being with their first append
  }

  async writeDeadLetters(): Promise<void> {
    // the embedded log has no dead-letter topics: dead letters live in the store (/dead-letters)
  }

  describe(topic: string): { segments: number; bytes: number } | undefined {
    const t = this.#topics.get(topic)
    return t && { segments: t.segmentCount, bytes: t.bytes }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#topics.values()].map((t) => t.close()))
  }
}
