import type { BenchRow } from './engine.ts'
import { benchDatabase } from './postgres.ts'
import { freePort, runLoad, startDataPulse, startProcess, stop } from './processes.ts'

const BATCH = 5_000
const WRITERS = 4

/**
 * Metrics store: points/s written over HTTP by 4 writers in 5,000-point batches (beside a bare
 * node:http + JSON.parse server under the same load), and the time to answer a 10-minute-step
 * average over a series of 1M points; then the same on the PostgreSQL store, beside SQLite's figures.
 */
export async function metricsBenches(quick: boolean): Promise<BenchRow[]> {
  const seconds = quick ? 4 : 10
  const barePort = await freePort()
  const bare = await startProcess(
    [new URL('./bare-server.ts', import.meta.url).pathname, String(barePort), 'metrics'],
    async () => false,
  )
  const ceiling = await runLoad(
    `http://127.0.0.1:${barePort}/api/metrics`,
    seconds,
    WRITERS,
    BATCH,
    0,
    'metrics',
  )
  await stop(bare)

  const sqlite = await measure([], seconds, quick)
  const rows: BenchRow[] = [
    {
      bench: `metrics write: ${WRITERS} writers, ${BATCH}-point batches over HTTP`,
      value: sqlite.written,
      unit: 'points/s',
      ceiling: ceiling.eventsPerSecond,
      ceilingName: 'bare node:http + JSON.parse',
      target: '>= 0.5M (InfluxDB 1.6 here: ~1M)',
      ok: sqlite.written >= 0.5e6,
    },
    {
      bench: `metrics query: 10-minute-step avg over ${(sqlite.total / 1e6).toFixed(1)}M points (median of 5)`,
      value: sqlite.queryMs,
      unit: 'ms',
      target: '< 100 ms (InfluxDB 1.6 here: ~85 ms)',
      ok: sqlite.queryMs < 100,
    },
  ]
  const db = await benchDatabase()
  if (!db) return rows
  try {
    const remote = await measure(['--database-url', db.url], seconds, quick)
    rows.push(
      {
        bench: `metrics write on PostgreSQL: ${WRITERS} writers, ${BATCH}-point batches over HTTP`,
        value: remote.written,
        unit: 'points/s',
        ceiling: sqlite.written,
        ceilingName: 'the same on SQLite',
      },
      {
        bench: `metrics query on PostgreSQL: 10-minute-step avg over ${(remote.total / 1e6).toFixed(1)}M points (median of 5)`,
        value: remote.queryMs,
        unit: 'ms',
        ceiling: sqlite.queryMs,
        ceilingName: 'the same on SQLite',
        target: '< 100 ms',
        ok: remote.queryMs < 100,
      },
    )
  } finally {
    await db.drop()
  }
  return rows
}

/** Points/s written by the writers, then the median time of a long-range query, on a server with `args`. */
async function measure(
  args: string[],
  seconds: number,
  quick: boolean,
): Promise<{ written: number; queryMs: number; total: number }> {
  const { base, close } = await startDataPulse(args)
  try {
    const written = (await runLoad(`${base}/api/metrics`, seconds, WRITERS, BATCH, 0, 'metrics'))
      .eventsPerSecond
    // one series of 1M points, one per second (11.6 days)
    const total = quick ? 200_000 : 1_000_000
    const start = Date.parse('2026-10-01T00:00:00Z')
    for (let i = 0; i < total; i += BATCH) {
      const metrics = Array.from({ length: BATCH }, (_, j) => ({
        name: 'bench.query',
        tags: { host: 'a' },
        value: (i + j) % 1000,
        timestamp: start + (i + j) * 1000,
      }))
      const res = await fetch(`${base}/api/metrics`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ metrics }),
      })
      if (!res.ok) throw new Error(`metrics write ${res.status}`)
    }
    const url = `${base}/api/metrics?name=bench.query&from=${start}&to=${start + total * 1000}&step=10m&agg=avg`
    await fetch(url) // the first query folds the new points into the rollups
    const times: number[] = []
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now()
      const res = await fetch(url)
      const body = (await res.json()) as { series: Array<{ points: unknown[] }> }
      times.push(performance.now() - t0)
      if (body.series[0].points.length !== Math.ceil(total / 600)) throw new Error('wrong bucket count')
    }
    times.sort((a, b) => a - b)
    return { written, queryMs: times[2], total }
  } finally {
    await close()
  }
}
