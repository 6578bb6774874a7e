import { closeSync, ftruncateSync, openSync, readFileSync, readSync, statSync, unlinkSync } from 'node:fs'
import type { Event } from '../engine/types.ts'
import type { Logger } from '../logger.ts'
import { decodeEvents, FRAME_BYTES, scanRecord } from './record-format.ts'

/** How far past a bad record start-up looks for valid ones, to tell a torn tail from corruption. */
const CORRUPTION_SCAN_BYTES = 64 * 1024 * 1024

export class CorruptLogError extends Error {}

/** Segment files are named by the offset of their first event, zero-padded to sort. */
export function segmentName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}.log`
}

/**
 * One segment file of a topic and the index of its records (first offset, count, position,
 * length, appended-at), built at open without parsing any JSON.
 */
export class Segment {
  readonly path: string
  readonly baseOffset: number
  readonly offsets: number[] = []
  readonly counts: number[] = []
  readonly positions: number[] = []
  readonly lengths: number[] = []
  readonly appendedAt: number[] = []
  size = 0
  #fd = -1

  constructor(path: string, baseOffset: number) {
    this.path = path
    this.baseOffset = baseOffset
  }

  /** The offset after the last event of the segment. */
  get end(): number {
    const n = this.offsets.length
    return n === 0 ? this.baseOffset : this.offsets[n - 1] + this.counts[n - 1]
  }

  get lastAppendedAt(): number {
    const n = this.appendedAt.length
    return n === 0 ? 0 : this.appendedAt[n - 1]
  }

  /**
   * Indexes the file. A bad record at the very end (a write cut short by a crash) is truncated with
   * a warning when `isLast`; a bad record followed by good ones is corruption, and is reported.
   */
  recover(isLast: boolean, logger: Logger): void {
    let buf: Buffer
    try {
      buf = readFileSync(this.path)
    } catch {
      return
    }
    let pos = 0
    for (;;) {
      const r = scanRecord(buf, pos)
      if (r.kind === 'end') break
      if (r.kind === 'torn') {
        const goodAfter = findRecordAfter(buf, pos)
        if (!isLast || goodAfter !== -1)
          throw new CorruptLogError(
            `log segment ${this.path} has a corrupt record at byte ${pos} (${r.reason})${goodAfter !== -1 ? ` followed by valid records at byte ${goodAfter}` : ''}; ` +
              'refusing to drop data silently: move the file aside, or truncate it at that byte, to start without the records after it',
          )
        logger.warn(
          { segment: this.path, position: pos, bytes: buf.length - pos, reason: r.reason },
          'log segment has a torn tail; truncating to the last whole record',
        )
        const fd = openSync(this.path, 'r+')
        try {
          ftruncateSync(fd, pos)
        } finally {
          closeSync(fd)
        }
        break
      }
      this.index(r.meta.offset, r.meta.count, pos, r.next - pos, r.meta.appendedAt)
      pos = r.next
    }
    this.size = pos
  }

  index(offset: number, count: number, pos: number, length: number, appendedAt: number): void {
    this.offsets.push(offset)
    this.counts.push(count)
    this.positions.push(pos)
    this.lengths.push(length)
    this.appendedAt.push(appendedAt)
  }

  /** The index of the record holding `offset` (the first one when before the segment). */
  find(offset: number): number {
    const offsets = this.offsets
    let lo = 0
    let hi = offsets.length - 1
    if (hi < 0 || offset <= offsets[0]) return 0
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (offsets[mid] <= offset) lo = mid
      else hi = mid - 1
    }
    return lo
  }

  /** Reads and parses record `i` from disk. */
  read(i: number): Event[] {
    const length = this.lengths[i]
    const buf = Buffer.allocUnsafe(length)
    if (this.#fd < 0) this.#fd = openSync(this.path, 'r')
    readSync(this.#fd, buf, 0, length, this.positions[i])
    const scanned = scanRecord(buf, 0)
    if (scanned.kind !== 'record')
      throw new CorruptLogError(`${this.path}: record at byte ${this.positions[i]} is unreadable`)
    return decodeEvents(buf, scanned)
  }

  fileSize(): number {
    try {
      return statSync(this.path).size
    } catch {
      return 0
    }
  }

  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd)
    this.#fd = -1
  }

  remove(): void {
    this.close()
    unlinkSync(this.path)
  }
}

/** The position of the first valid record after `pos`, or -1. */
function findRecordAfter(buf: Buffer, pos: number): number {
  const limit = Math.min(buf.length - FRAME_BYTES, pos + CORRUPTION_SCAN_BYTES)
  for (let p = pos + 1; p <= limit; p++) if (scanRecord(buf, p).kind === 'record') return p
  return -1
}
