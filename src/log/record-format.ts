import { crc32 } from 'node:zlib'

/**
 * A log record on disk, one appended batch:
 *   [body length u32 BE][crc32 of body u32 BE][body]
 *   body = [first offset f64 BE][appended-at ms f64 BE][event count u32 BE][JSON array of the events]
 * Length and checksum let start-up find a torn tail; the fixed fields let it index a segment
 * without parsing any JSON.
 */
export const FRAME_BYTES = 8
export const META_BYTES = 20
export const MAX_RECORD_BYTES = 512 * 1024 * 1024

export interface RecordMeta {
  offset: number
  appendedAt: number
  count: number
}

export function encodeRecord(meta: RecordMeta, eventsJson: string): Buffer {
  const jsonBytes = Buffer.byteLength(eventsJson)
  const bodyLength = META_BYTES + jsonBytes
  const out = Buffer.allocUnsafe(FRAME_BYTES + bodyLength)
  out.writeUInt32BE(bodyLength, 0)
  out.writeDoubleBE(meta.offset, 8)
  out.writeDoubleBE(meta.appendedAt, 16)
  out.writeUInt32BE(meta.count, 24)
  out.write(eventsJson, FRAME_BYTES + META_BYTES, 'utf8')
  out.writeUInt32BE(crc32(out.subarray(FRAME_BYTES)), 4)
  return out
}

export type Scanned =
  | { kind: 'record'; meta: RecordMeta; jsonStart: number; next: number }
  | { kind: 'end' }
  | { kind: 'torn'; reason: string }

/** Reads the record at `pos` of `buf` and checks its length and checksum. */
export function scanRecord(buf: Buffer, pos: number): Scanned {
  if (pos === buf.length) return { kind: 'end' }
  if (pos + FRAME_BYTES > buf.length) return { kind: 'torn', reason: 'truncated header' }
  const length = buf.readUInt32BE(pos)
  if (length < META_BYTES || length > MAX_RECORD_BYTES)
    return { kind: 'torn', reason: `implausible length ${length}` }
  const bodyStart = pos + FRAME_BYTES
  if (bodyStart + length > buf.length) return { kind: 'torn', reason: 'truncated record' }
  if (crc32(buf.subarray(bodyStart, bodyStart + length)) !== buf.readUInt32BE(pos + 4))
    return { kind: 'torn', reason: 'checksum mismatch' }
  const meta = {
    offset: buf.readDoubleBE(bodyStart),
    appendedAt: buf.readDoubleBE(bodyStart + 8),
    count: buf.readUInt32BE(bodyStart + 16),
  }
  return { kind: 'record', meta, jsonStart: bodyStart + META_BYTES, next: bodyStart + length }
}

export function decodeEvents<T>(buf: Buffer, jsonStart: number, end: number): T[] {
  return JSON.parse(buf.toString('utf8', jsonStart, end)) as T[]
}
