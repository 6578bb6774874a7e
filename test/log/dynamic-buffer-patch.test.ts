import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DynamicBuffer } from '@platformatic/dynamic-buffer'
import fc from 'fast-check'

/**
 * patches/@platformatic+dynamic-buffer: a read resumes the chunk walk where the previous read
 * found its chunk. These tests hold the patched buffer to a plain Buffer of the same bytes
 * through every operation that moves offsets, and check that a read no longer costs a walk over
 * the chunks before it.
 */

type Op =
  | { kind: 'read'; at: number; width: 'u8' | 'i16' | 'u32' | 'i64' | 'varint' | 'varint64' | 'slice' }
  | { kind: 'append'; bytes: Uint8Array }
  | { kind: 'prepend'; bytes: Uint8Array }
  | { kind: 'consume'; at: number }

const widths = ['u8', 'i16', 'u32', 'i64', 'varint', 'varint64', 'slice'] as const
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      at: fc.nat(),
      width: fc.constantFrom(...widths),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('prepend' as const),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('consume' as const), at: fc.nat() }) },
)

/** The varint the protocol would read at `at` of a plain buffer, or undefined when it runs off the end. */
function varintAt(b: Buffer, at: number): [number, number] | undefined {
  let value = 0
  let shift = 0
  for (let i = at; i < b.length; i++) {
    value += (b[i] & 0x7f) << shift
    shift += 7
    if (b[i] < 0x80) return [value, i - at + 1]
  }
  return undefined
}

function read(d: DynamicBuffer, plain: Buffer, at: number, width: (typeof widths)[number]): void {
  const fits = (n: number) => at + n <= plain.length
  switch (width) {
    case 'u8':
      if (fits(1)) assert.equal(d.readUInt8(at), plain.readUInt8(at))
      return
    case 'i16':
      if (fits(2)) assert.equal(d.readInt16BE(at), plain.readInt16BE(at))
      return
    case 'u32':
      if (fits(4)) assert.equal(d.readUInt32BE(at), plain.readUInt32BE(at))
      return
    case 'i64':
      if (fits(8)) assert.equal(d.readBigInt64BE(at), plain.readBigInt64BE(at))
      return
    case 'varint': {
      const want = varintAt(plain, at)
      // a varint of more than 4 bytes overflows 32-bit shifts the same way in both
      if (want && want[1] <= 4) assert.deepEqual(d.readUnsignedVarInt(at), want)
      return
    }
    case 'varint64': {
      const want = varintAt(plain, at)
      if (want && want[1] <= 4) assert.deepEqual(d.readUnsignedVarInt64(at), [BigInt(want[0]), want[1]])
      return
    }
    case 'slice': {
      const end = Math.min(plain.length, at + 1 + (at % 23))
      if (at < plain.length) assert.deepEqual(Buffer.from(d.slice(at, end)), plain.subarray(at, end))
    }
  }
}

test('the patched DynamicBuffer reads what a plain Buffer of the same bytes holds, through appends, prepends and consumes', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 30 }), { minLength: 1, maxLength: 20 }),
      fc.array(op, { maxLength: 60 }),
      (chunks, ops) => {
        const d = new DynamicBuffer(chunks.map((c) => Buffer.from(c)))
        let plain = Buffer.concat(chunks)
        for (const o of ops) {
          if (o.kind === 'read') {
            if (plain.length > 0) read(d, plain, o.at % plain.length, o.width)
          } else if (o.kind === 'append') {
            d.append(Buffer.from(o.bytes))
            plain = Buffer.concat([plain, o.bytes])
          } else if (o.kind === 'prepend') {
            d.prepend(Buffer.from(o.bytes))
            plain = Buffer.concat([o.bytes, plain])
          } else {
            const at = plain.length === 0 ? 0 : o.at % (plain.length + 1)
            d.consume(at)
            plain = plain.subarray(at)
          }
          assert.equal(d.length, plain.length)
        }
        // reading backwards after forwards (the walk restarts from the first chunk)
        for (let at = plain.length - 1; at >= 0; at -= 7) read(d, plain, at, 'u8')
      },
    ),
    { seed: 19, numRuns: 400 },
  )
})

test('reading a buffer of many chunks from start to end costs time linear in its size', () => {
  const timeSequentialRead = (chunks: number): number => {
    const d = new DynamicBuffer(Array.from({ length: chunks }, (_, i) => Buffer.alloc(16, i & 0x7f)))
    const t0 = performance.now()
    let sum = 0
    for (let at = 0; at < d.length; at += 4) sum += d.readUnsignedVarInt(at)[0]
    assert.ok(sum > 0)
    return performance.now() - t0
  }
  timeSequentialRead(2_000) // warm up the JIT
  const small = Math.min(timeSequentialRead(2_000), timeSequentialRead(2_000))
  const large = Math.min(timeSequentialRead(40_000), timeSequentialRead(40_000))
  // 20× the chunks: ~20× the time when linear, ~400× when every read walks from the first chunk
  // (unpatched, the large read takes seconds); generous slack for a shared machine
  assert.ok(
    large < Math.max(small, 0.5) * 120,
    `2,000 chunks ${small.toFixed(1)} ms, 40,000 chunks ${large.toFixed(1)} ms`,
  )
})
