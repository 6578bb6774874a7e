/**
 * 64-bit hashing for sketches, as two 32-bit halves: MurmurHash3 (x86, 32-bit) of the UTF-16 code
 * units with two seeds, finalised independently. Pure arithmetic, no allocation.
 */
export function murmur32(text: string, seed: number): number {
  let h = seed >>> 0
  const len = text.length
  let i = 0
  for (; i + 1 < len; i += 2) {
    let k = (text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16)) >>> 0
    k = Math.imul(k, 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, 0x1b873593)
    h ^= k
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  if (i < len) {
    let k = text.charCodeAt(i)
    k = Math.imul(k, 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, 0x1b873593)
    h ^= k
  }
  h ^= len
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

export const SEED_HIGH = 0x9747b28c
export const SEED_LOW = 0x5bd1e995
