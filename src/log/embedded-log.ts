import {
  closeSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
} from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'
import { join } from 'node:path'
import type { Event } from '../engine/types.ts'
import type { Logger } from '../logger.ts'
import type { AppendResult, EventLog, LogBatch } from './log.ts'
import { decodeEvents, encodeRecord, scanRecord } from './record-format.ts'

export type FsyncPolicy = 'always' | 'batch' | 'off'

export interface EmbeddedLogOptions {
  dir: string
  /** batch: concurrent appends share one fdatasync (group commit); always: one per append; off: none */
  fsync: FsyncPolicy
  /** recent events kept parsed in memory per topic, so caught-up readers never touch the disk */
  cacheEvents: number
  logger: Logger
  /** wall clock for appended-at times (tests inject one) */
  clock?: () => number
}

interface Pending {
  events: Event[]
  resolve: (r: AppendResult) => void
  reject: (err: Error) => void
}

const SEGMENT = '00000000000000000000.log'

/** One topic: a segment file, its in-memory index of records, and a cache of the newest batches. */
class Topic {
  readonly name: string
  readonly #path: string
  readonly #options: EmbeddedLogOptions
  #fh: FileHandle | undefined
  #fd = -1
  #size = 0
  /** per record: first offset, count, file position, byte length, appended-at */
  readonly #offsets: number[] = []
  readonly #counts: number[] = []
  readonly #positions: number[] = []
  readonly #lengths: number[] = []
  readonly #appendedAt: number[] = []
  readonly #cache = new Map<number, Event[]>()
  #cachedEvents = 0
  #end = 0
  #lastAppendedAt = 0
  #pending: Pending[] = []
  #flushing = false
  readonly listeners = new Set<() => void>()

  constructor(name: string, dir: string, options: EmbeddedLogOptions) {
    this.name = name
    this.#options = options
    mkdirSync(dir, { recursive: true })
    this.#path = join(dir, SEGMENT)
    this.#recover()
  }

  get end(): number {
    return this.#end
  }

  get start(): number {
    return this.#offsets.length > 0 ? this.#offsets[0] : this.#end
  }

  /** Indexes the segment; a torn or corrupt tail is cut back to the last whole record. */
  #recover(): void {
    let buf: Buffer
    try {
      buf = readFileSync(this.#path)
    } catch {
      return
    }
    let pos = 0
    for (;;) {
      const r = scanRecord(buf, pos)
      if (r.kind === 'end') break
      if (r.kind === 'torn') {
        this.#options.logger.warn(
          { topic: this.name, position: pos, bytes: buf.length - pos, reason: r.reason },
          'log segment has a torn tail; truncating to the last whole record',
        )
        const fd = openSync(this.#path, 'r+')
        try {
          ftruncateSync(fd, pos)
        } finally {
          closeSync(fd)
        }
        break
      }
      this.#index(r.meta.offset, r.meta.count, pos, r.next - pos, r.meta.appendedAt)
      pos = r.next
    }
    this.#size = pos
  }

  #index(offset: number, count: number, pos: number, length: number, appendedAt: number): void {
    this.#offsets.push(offset)
    this.#counts.push(count)
    this.#positions.push(pos)
    this.#lengths.push(length)
    this.#appendedAt.push(appendedAt)
    this.#end = offset + count
    if (appendedAt > this.#lastAppendedAt) this.#lastAppendedAt = appendedAt
  }

  async #file(): Promise<FileHandle> {
    if (this.#fh === undefined) {
      this.#fh = await open(this.#path, 'a+')
      this.#fd = this.#fh.fd
      this.#size = statSync(this.#path).size
    }
    return this.#fh
  }

  append(events: Event[]): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ events, resolve, reject })
      if (!this.#flushing) {
        this.#flushing = true
        // let the appends of requests already parsed join this write (group commit)
        setImmediate(() => void this.#flush())
      }
    })
  }

  async #flush(): Promise<void> {
    while (this.#pending.length > 0) {
      const group = this.#options.fsync === 'always' ? this.#pending.splice(0, 1) : this.#pending.splice(0)
      const appendedAt = Math.max((this.#options.clock ?? Date.now)(), this.#lastAppendedAt)
      let offset = this.#end
      const buffers: Buffer[] = []
      const metas: Array<{ offset: number; count: number; length: number }> = []
      for (const p of group) {
        const buf = encodeRecord({ offset, appendedAt, count: p.events.length }, JSON.stringify(p.events))
        buffers.push(buf)
        metas.push({ offset, count: p.events.length, length: buf.length })
        offset += p.events.length
      }
      const startSize = this.#size
      try {
        const fh = await this.#file()
        await fh.writev(buffers)
        if (this.#options.fsync !== 'off') await fh.datasync()
      } catch (err) {
        // leave no partial record behind; the appends fail and nothing is acknowledged
        await this.#fh?.truncate(startSize).catch(() => undefined)
        for (const p of group) p.reject(err as Error)
        continue
      }
      let pos = startSize
      for (let i = 0; i < group.length; i++) {
        const m = metas[i]
        this.#index(m.offset, m.count, pos, m.length, appendedAt)
        this.#remember(this.#offsets.length - 1, group[i].events)
        pos += m.length
      }
      this.#size = pos
      for (let i = 0; i < group.length; i++)
        group[i].resolve({ topic: this.name, offset: metas[i].offset, count: metas[i].count })
      for (const listener of this.listeners) listener()
    }
    this.#flushing = false
  }

  #remember(record: number, events: Event[]): void {
    this.#cache.set(record, events)
    this.#cachedEvents += events.length
    for (const [key, cached] of this.#cache) {
      if (this.#cachedEvents <= this.#options.cacheEvents || key === record) break
      this.#cache.delete(key)
      this.#cachedEvents -= cached.length
    }
  }

  /** The index of the record holding `offset`, or the count of records when past the end. */
  #find(offset: number): number {
    const offsets = this.#offsets
    let lo = 0
    let hi = offsets.length - 1
    if (hi < 0 || offset >= this.#end) return offsets.length
    if (offset < offsets[0]) return 0
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (offsets[mid] <= offset) lo = mid
      else hi = mid - 1
    }
    return lo
  }

  #events(record: number): Event[] {
    const cached = this.#cache.get(record)
    if (cached !== undefined) return cached
    const length = this.#lengths[record]
    const buf = Buffer.allocUnsafe(length)
    const fd = this.#fd >= 0 ? this.#fd : openSync(this.#path, 'r')
    try {
      readSync(fd, buf, 0, length, this.#positions[record])
    } finally {
      if (fd !== this.#fd) closeSync(fd)
    }
    const scanned = scanRecord(buf, 0)
    if (scanned.kind !== 'record')
      throw new Error(`log ${this.name}: record ${record} unreadable (${scanned.kind})`)
    return decodeEvents<Event>(buf, scanned.jsonStart, scanned.next)
  }

  read(from: number, maxEvents: number): LogBatch[] {
    const out: LogBatch[] = []
    let total = 0
    for (let r = this.#find(from); r < this.#offsets.length && total < maxEvents; r++) {
      const offset = this.#offsets[r]
      let events = this.#events(r)
      let first = offset
      if (from > offset) {
        events = events.slice(from - offset)
        first = from
      }
      out.push({ offset: first, appendedAt: this.#appendedAt[r], events })
      total += events.length
    }
    return out
  }

  async close(): Promise<void> {
    while (this.#flushing) await new Promise((r) => setImmediate(r))
    await this.#fh?.close()
    this.#fh = undefined
    this.#fd = -1
  }
}

/** The embedded, durable, append-only log: one directory per topic under `<data dir>/log`. */
export class EmbeddedLog implements EventLog {
  readonly #options: EmbeddedLogOptions
  readonly #topics = new Map<string, Topic>()

  constructor(options: EmbeddedLogOptions) {
    this.#options = options
    mkdirSync(options.dir, { recursive: true })
    for (const entry of readdirSync(options.dir, { withFileTypes: true })) {
      if (entry.isDirectory()) this.#topic(entry.name)
    }
  }

  #topic(name: string): Topic {
    let topic = this.#topics.get(name)
    if (topic === undefined) {
      topic = new Topic(name, join(this.#options.dir, name), this.#options)
      this.#topics.set(name, topic)
    }
    return topic
  }

  append(topic: string, events: Event[]): Promise<AppendResult> {
    return this.#topic(topic).append(events)
  }

  async read(topic: string, from: number, maxEvents: number): Promise<LogBatch[]> {
    const t = this.#topics.get(topic)
    return t === undefined ? [] : t.read(from, maxEvents)
  }

  endOffset(topic: string): number {
    return this.#topics.get(topic)?.end ?? 0
  }

  startOffset(topic: string): number {
    return this.#topics.get(topic)?.start ?? 0
  }

  subscribe(topic: string, listener: () => void): () => void {
    const t = this.#topic(topic)
    t.listeners.add(listener)
    return () => t.listeners.delete(listener)
  }

  topics(): string[] {
    return [...this.#topics.keys()]
  }

  async close(): Promise<void> {
    await Promise.all([...this.#topics.values()].map((t) => t.close()))
  }
}
