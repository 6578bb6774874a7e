import type { Event } from '../src/engine/types.ts'

/** A seeded PRNG (mulberry32), so every run sees the same events. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const TYPES = ['page_view', 'click', 'purchase', 'signup']
const PAGES = ['/home', '/search', '/cart', '/product', '/checkout', '/account']

/**
 * Realistic events: `keys` distinct users, a page, an amount and a latency; event time moves
 * forward `stepMs` per event with a little disorder (within `disorderMs`).
 */
export function generateEvents(
  n: number,
  options: { keys: number; start?: number; stepMs?: number; disorderMs?: number; seed?: number },
): Event[] {
  const random = seeded(options.seed ?? 42)
  const start = options.start ?? Date.parse('2026-11-26T00:00:00Z')
  const step = options.stepMs ?? 1
  const disorder = options.disorderMs ?? 0
  const out: Event[] = new Array(n)
  for (let i = 0; i < n; i++) {
    const user = Math.floor(random() * options.keys)
    out[i] = {
      id: `e${i}`,
      event_type: TYPES[i % TYPES.length],
      source: 'web',
      timestamp: start + i * step - Math.floor(random() * disorder),
      data: {
        user_id: `u${user}`,
        page: PAGES[user % PAGES.length],
        amount: Math.round(random() * 10_000) / 100,
        latency_ms: Math.round(5 + random() * random() * 2_000),
      },
    }
  }
  return out
}

/** Ingest request bodies: `batches` JSON bodies of `size` events each (no timestamps: server time). */
/** Ingest bodies: `batches` of `size` events over `keys` users; with `topic`, addressed to that topic. */
export function ingestBodies(
  batches: number,
  size: number,
  keys: number,
  seed = 7,
  topic?: string,
): string[] {
  const random = seeded(seed)
  const bodies: string[] = []
  for (let b = 0; b < batches; b++) {
    const events = []
    for (let i = 0; i < size; i++) {
      const user = Math.floor(random() * keys)
      events.push({
        event_type: TYPES[i % TYPES.length],
        source: 'web',
        data: {
          user_id: `u${user}`,
          page: PAGES[user % PAGES.length],
          amount: Math.round(random() * 10_000) / 100,
          latency_ms: Math.round(5 + random() * 500),
        },
      })
    }
    bodies.push(JSON.stringify(topic === undefined ? { events } : { events, topic }))
  }
  return bodies
}

/** Metric write bodies: `batches` of `size` points over 100 series (host × metric), one point per second each. */
export function metricBodies(batches: number, size: number, seed = 11): string[] {
  const random = seeded(seed)
  const bodies: string[] = []
  let t = Date.parse('2026-11-20T00:00:00Z')
  for (let b = 0; b < batches; b++) {
    const metrics = []
    for (let i = 0; i < size; i++) {
      if (i % 100 === 0) t += 1000
      metrics.push({
        name: `host.${['cpu', 'mem', 'disk', 'net'][i % 4]}`,
        tags: { host: `h${i % 25}`, dc: `dc${i % 3}` },
        value: random() * 100,
        timestamp: t,
      })
    }
    bodies.push(JSON.stringify({ metrics }))
  }
  return bodies
}
