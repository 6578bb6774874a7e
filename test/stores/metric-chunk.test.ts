import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  decodeChunk,
  encodeChunk,
  foldIntoSummary,
  mergeChunk,
  summarize,
} from '../../src/stores/sqlite/metric-chunk.ts'
import { rng } from '../helpers/random.ts'

test('chunks: generated writes (in order, out of order, rewrites) read back as the last value per offset', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const r = rng(seed)
    const minute = r.int(-5, 5) * 60_000
    const model = new Map<number, number>()
    let blob = encodeChunk(decodeChunk(undefined))
    let cursor = 0
    for (let write = r.int(1, 8); write > 0; write--) {
      const pairs: number[] = []
      for (let i = r.int(1, 40); i > 0; i--) {
        // mostly ascending like a scrape, sometimes back in time or exactly on an earlier point
        const offset = r.chance(0.7) ? Math.min(59_999, cursor++ * r.int(1, 300)) : r.int(0, 59_999)
        const value = r.chance(0.1) ? -r.next() * 1e9 : r.int(-100, 100) / 4
        pairs.push(offset, value)
        model.set(offset, value)
      }
      blob = encodeChunk(mergeChunk(decodeChunk(blob), pairs))
    }
    const c = decodeChunk(blob)
    const want = [...model].sort((a, b) => a[0] - b[0])
    assert.deepEqual(
      [...c.offsets].map((o, i) => [o, c.values[i]]),
      want,
      `seed ${seed}`,
    )
    const values = want.map(([, v]) => v)
    assert.deepEqual(summarize(c, minute), {
      n: want.length,
      sum: c.values.reduce((a, b) => a + b, 0),
      min: Math.min(...values),
      max: Math.max(...values),
      lastTs: minute + want[want.length - 1][0],
      lastValue: want[want.length - 1][1],
    })
  }
})

test('chunks: a blob at an unaligned offset decodes; a summary without raw points takes late points', () => {
  const blob = encodeChunk(mergeChunk(decodeChunk(undefined), [5, 1.5, 10, -2]))
  const shifted = new Uint8Array(blob.byteLength + 3)
  shifted.set(blob, 3)
  const c = decodeChunk(shifted.subarray(3))
  assert.deepEqual([...c.offsets], [5, 10])
  assert.deepEqual([...c.values], [1.5, -2])
  const s = summarize(c, 60_000)
  assert.deepEqual(foldIntoSummary(s, [7, 9, 59_000, -3], 60_000), {
    n: 4,
    sum: 1.5 - 2 + 9 - 3,
    min: -3,
    max: 9,
    lastTs: 119_000,
    lastValue: -3,
  })
})
