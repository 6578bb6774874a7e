import { crc32 } from 'node:zlib'
import { IdSequence, normalizeEvents } from '../engine/events.ts'
import type { Event } from '../engine/types.ts'

/**
 * A log record on disk, one appended batch:
 *   [body length u32 BE][crc32 of body u32 BE][body]
 *   body = [first offset f64 BE][appended-at ms f64 BE][event count u32 BE][kind u8][payload]
 * Kind 0: the payload is the JSON array of the events. Kind 1: the payload is the ingest request's
 * own bytes, after [id prefix length u16][id prefix][first id number f64][ingestion time f64]: what
 * it takes to give the events exactly the ids and timestamps they got at ingestion, without
 * serialising them again. Length and checksum let start-up find a torn tail; the fixed fields let
 * it index a segment without parsing any JSON.
 */
export const FRAME_BYTES = 8
export const META_BYTES = 21
export const MAX_RECORD_BYTES = 512 * 1024 * 1024

export interface RecordMeta {
  offset: number
  appendedAt: number
  count: number
}

/** The events of an ingest request as it arrived, with what normalised them. */
export interface RawRequest {
  body: Buffer
  idPrefix: string
  idStart: number
  now: number
}

export type RecordPayload = { kind: 'events'; json: string } | { kind: 'request'; request: RawRequest }

/**
 * The record's bytes, in parts to write one after the other: a request's body is not copied, its
 * header is written before it (the checksum runs over both).
 */
export function encodeRecord(meta: RecordMeta, payload: RecordPayload): Buffer[] {
  const head = (payloadHeadBytes: number, payloadBytes: number) => {
    const bodyLength = META_BYTES + payloadBytes
    const out = Buffer.allocUnsafe(FRAME_BYTES + META_BYTES + payloadHeadBytes)
    out.writeUInt32BE(bodyLength, 0)
    out.writeDoubleBE(meta.offset, 8)
    out.writeDoubleBE(meta.appendedAt, 16)
    out.writeUInt32BE(meta.count, 24)
    out.writeUInt8(payload.kind === 'events' ? 0 : 1, 28)
    return out
  }
  if (payload.kind === 'events') {
    const payloadBytes = Buffer.byteLength(payload.json)
    const out = head(payloadBytes, payloadBytes)
    out.write(payload.json, FRAME_BYTES + META_BYTES, 'utf8')
    out.writeUInt32BE(crc32(out.subarray(FRAME_BYTES)), 4)
    return [out]
  }
  const r = payload.request
  const prefixBytes = Buffer.byteLength(r.idPrefix)
  const own = 2 + prefixBytes + 16
  const out = head(own, own + r.body.length)
  let pos = FRAME_BYTES + META_BYTES
  out.writeUInt16BE(prefixBytes, pos)
  out.write(r.idPrefix, pos + 2, 'utf8')
  pos += 2 + prefixBytes
  out.writeDoubleBE(r.idStart, pos)
  out.writeDoubleBE(r.now, pos + 8)
  out.writeUInt32BE(crc32(r.body, crc32(out.subarray(FRAME_BYTES))), 4)
  return [out, r.body]
}

export type Scanned =
  | { kind: 'record'; meta: RecordMeta; payloadKind: number; payloadStart: number; next: number }
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
  return {
    kind: 'record',
    meta,
    payloadKind: buf.readUInt8(bodyStart + 20),
    payloadStart: bodyStart + META_BYTES,
    next: bodyStart + length,
  }
}

/** The events of a record, as they were at ingestion (kind 1 records are normalised again, identically). */
export function decodeEvents(buf: Buffer, record: Extract<Scanned, { kind: 'record' }>): Event[] {
  const { payloadStart: start, next: end } = record
  if (record.payloadKind === 0) return JSON.parse(buf.toString('utf8', start, end)) as Event[]
  const prefixBytes = buf.readUInt16BE(start)
  const idPrefix = buf.toString('utf8', start + 2, start + 2 + prefixBytes)
  let pos = start + 2 + prefixBytes
  const idStart = buf.readDoubleBE(pos)
  const now = buf.readDoubleBE(pos + 8)
  pos += 16
  const body = JSON.parse(buf.toString('utf8', pos, end)) as { events: unknown[] }
  const normalized = normalizeEvents(body.events, now, new IdSequence(idPrefix, idStart).next)
  if (!normalized.ok) throw new Error('a stored ingest request no longer validates')
  return normalized.events
}
