import type { BenchRow } from './engine.ts'
import { json, percentile } from './http.ts'
import { runLoad, startDataPulse } from './processes.ts'

const KEYS = 20_000
const WRITERS = 4
const RECOVERY_S = 20

/**
 * Overload (issue 12's scenario): a slow hopping 60 s / 1 s pipeline over 20k keys with count,
 * avg, p99 and count_distinct, `--max-lag 200000`, 4 writers as fast as they are let. Probes
 * GET / and /api/stats every 200 ms throughout and for 20 s after; RSS from /api/stats.
 */
export async function overloadBenches(quick: boolean): Promise<BenchRow[]> {
  const seconds = quick ? 15 : 40
  const { base, close } = await startDataPulse(['--max-lag', '200000'])
  try {
    const created = await json(`${base}/api/pipelines`, 'POST', {
      name: 'overload',
      source_topic: 'bench-events',
      start: true,
      transformation: {
        aggregate: {
          window_seconds: 60,
          slide_seconds: 1,
          group_by: ['data.user_id'],
          functions: [
            'count',
            { avg: 'data.amount' },
            { p99: 'data.latency_ms' },
            { count_distinct: 'data.page' },
          ],
        },
      },
    })
    if (created.status !== 201) throw new Error(`overload pipeline: ${JSON.stringify(created.body)}`)
    const rss = async () =>
      ((await json(`${base}/api/stats`)).body as { memory: { rss_bytes: number } }).memory.rss_bytes
    const startRss = await rss()
    const trivial: number[] = []
    const stats: number[] = []
    let peakRss = startRss
    let loadDone = false
    const probing = (async () => {
      for (let after = 0; !loadDone || after < RECOVERY_S * 5; after += loadDone ? 1 : 0) {
        let t0 = performance.now()
        await (await fetch(`${base}/`)).text()
        trivial.push(performance.now() - t0)
        t0 = performance.now()
        const s = (await json(`${base}/api/stats`)).body as { memory: { rss_bytes: number } }
        stats.push(performance.now() - t0)
        peakRss = Math.max(peakRss, s.memory.rss_bytes)
        await new Promise((r) => setTimeout(r, 200))
      }
    })()
    const load = await runLoad(`${base}/api/events/ingest`, seconds, WRITERS, 500, 0, 'events', '', KEYS)
    loadDone = true
    await probing
    const endRss = await rss()
    // then quiet (the pipeline has closed what the load opened): the RSS goes back, polled gently
    const loadEnded = performance.now()
    let settledRss = endRss
    while (performance.now() - loadEnded < 150_000) {
      await new Promise((r) => setTimeout(r, 2_000))
      settledRss = Math.min(settledRss, await rss())
      if (settledRss < startRss + (peakRss - startRss) / 4) break
    }
    const settledAfter = (performance.now() - loadEnded) / 1000 + RECOVERY_S
    trivial.sort((a, b) => a - b)
    stats.sort((a, b) => a - b)
    const mb = (b: number) => b / 2 ** 20
    const statuses = Object.entries(load.statuses)
      .map(([s, n]) => `${n}×${s}`)
      .join(' ')
    return [
      {
        bench: `overload (${WRITERS} writers ${seconds} s: ${statuses}; hopping 60s/1s, ${KEYS / 1000}k keys): /api/stats p99 (${stats.length} probes, through ${RECOVERY_S} s after)`,
        value: percentile(stats, 0.99),
        unit: 'ms',
        ceiling: percentile(trivial, 0.99),
        ceilingName: 'GET / p99, same probes',
        target: '< 100 ms',
        ok: percentile(stats, 0.99) < 100,
      },
      {
        bench: `overload: peak RSS (${mb(endRss).toFixed(0)} MB ${RECOVERY_S} s after the load)`,
        value: mb(peakRss),
        unit: 'MB',
        ceiling: mb(startRss),
        ceilingName: 'RSS before the load',
        target: '< 1024 MB',
        ok: mb(peakRss) < 1024,
      },
      {
        bench: `overload: RSS once quiet again (lowest within ${settledAfter.toFixed(0)} s after the load)`,
        value: mb(settledRss),
        unit: 'MB',
        ceiling: mb(peakRss),
        ceilingName: 'peak RSS',
        target: 'back below half way between start and peak',
        ok: settledRss < startRss + (peakRss - startRss) / 2,
      },
    ]
  } finally {
    await close()
  }
}
