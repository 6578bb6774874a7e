import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createRecord, createRecordsBatch, Reader, readRecordsBatch } from '@platformatic/kafka'
import fc from 'fast-check'

/**
 * patches/@platformatic+kafka: a batch's records are written into one buffer. These tests hold it
 * to the client's own record writer (`createRecord`, a buffer per field), byte for byte, and read
 * the batches back.
 */

/** The fixed part of a record batch before its records (magic 2): 61 bytes. */
const BATCH_HEADER = 61

interface Message {
  key: Buffer | undefined
  value: Buffer | undefined
  headers: Map<Buffer, Buffer | undefined> | undefined
  timestamp: bigint
  topic: string
}

const bytes = fc.oneof(
  fc.constant(undefined),
  fc.constant(Buffer.alloc(0)),
  fc.uint8Array({ maxLength: 300, size: 'max' }).map((a) => Buffer.from(a)),
  fc.string({ unit: 'grapheme', maxLength: 80, size: 'max' }).map((s) => Buffer.from(s)),
)

const messages = fc.array(
  fc.record({
    key: bytes,
    value: bytes,
    headers: fc.option(
      fc
        .array(
          fc.tuple(
            fc.string({ minLength: 1, maxLength: 20 }).map((s) => Buffer.from(s)),
            bytes,
          ),
          {
            maxLength: 4,
          },
        )
        .map((entries) => new Map(entries)),
      { nil: undefined },
    ),
    // deltas of either sign around the first, up to a day, as a batch of late and early records has
    timestamp: fc.integer({ min: -86_400_000, max: 86_400_000 }).map((d) => 1_765_000_000_000n + BigInt(d)),
    topic: fc.constant('t'),
  }),
  // sizes across the varint steps (lengths past 63 and 8191 take another byte)
  { minLength: 1, maxLength: 200, size: 'max' },
)

/** The records as the unpatched client wrote them: createRecord each, one after the other. */
function reference(batch: Message[]): Buffer {
  const first = batch[0].timestamp
  return Buffer.concat(batch.map((m, i) => createRecord(m as never, i, first).buffer))
}

test('record batches: the records in one buffer are the bytes createRecord writes, and read back as sent', () => {
  fc.assert(
    fc.property(messages, (batch) => {
      const expected = reference(batch)
      const written = createRecordsBatch(batch.map((m) => ({ ...m })) as never).buffer
      assert.deepEqual(written.subarray(BATCH_HEADER), expected)
      const read = readRecordsBatch(Reader.from(written))
      assert.equal(read.records.length, batch.length)
      read.records.forEach((r, i) => {
        const m = batch[i]
        assert.equal(r.offsetDelta, i)
        assert.equal(read.firstTimestamp + r.timestampDelta, m.timestamp)
        assert.deepEqual(r.key ?? undefined, m.key?.length === 0 ? Buffer.alloc(0) : m.key)
        assert.deepEqual(r.value ?? undefined, m.value?.length === 0 ? Buffer.alloc(0) : m.value)
        assert.deepEqual(
          r.headers.map(([k, v]) => [k, v ?? undefined]),
          [...(m.headers ?? new Map())].map(([k, v]) => [k, v?.length === 0 ? Buffer.alloc(0) : v]),
        )
      })
    }),
    { numRuns: 300 },
  )
})

test('record batches: compressed (lz4) they decompress to the same records', () => {
  fc.assert(
    fc.property(messages, (batch) => {
      const written = createRecordsBatch(batch.map((m) => ({ ...m })) as never, { compression: 'lz4' }).buffer
      const read = readRecordsBatch(Reader.from(written))
      assert.deepEqual(
        read.records.map((r) => r.value ?? undefined),
        batch.map((m) => (m.value?.length === 0 ? Buffer.alloc(0) : m.value)),
      )
    }),
    { numRuns: 100 },
  )
})
