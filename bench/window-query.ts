import type { BenchRow } from './engine.ts'
import { json, percentile } from './http.ts'
import { startDataPulse } from './processes.ts'

const KEYS = 1_000_000
const BATCH = 5_000
const STREAMS = 20

/** Open-window queries and dashboard streams over a pipeline holding a million open keys. */
export async function windowBenches(quick: boolean): Promise<BenchRow[]> {
  const seconds = quick ? 4 : 10
  const rows: BenchRow[] = []
  const { base, close } = await startDataPulse([
    '--max-keys-per-window',
    String(2 * KEYS),
    '--ingest-memory-limit-mb',
    '8192',
  ])
  try {
    const created = await json(`${base}/api/pipelines`, 'POST', {
      name: 'keys',
      source_topic: 'keys',
      start: true,
      transformation: {
        aggregate: { window_seconds: 3600, functions: ['count', { sum: 'data.n' }], group_by: ['data.user'] },
      },
    })
    const id = (created.body as { id: string }).id
    for (let sent = 0; sent < KEYS; sent += BATCH) {
      const events = Array.from({ length: BATCH }, (_, i) => ({
        event_type: 'e',
        source: 'bench',
        timestamp: '2026-11-26T10:00:00Z',
        data: { user: `u${sent + i}`, n: 1 },
      }))
      for (;;) {
        const r = await json(`${base}/api/events/ingest`, 'POST', { topic: 'keys', events })
        if (r.status === 200) break
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
    for (;;) {
      const p = (await json(`${base}/api/pipelines/${id}`)).body as {
        stats: { events_in: number; lag: number }
      }
      if (p.stats.events_in >= KEYS && p.stats.lag === 0) break
      await new Promise((resolve) => setTimeout(resolve, 200))
    }

    // /window?limit=100 one at a time, each beside a GET / on the same server
    const query: number[] = []
    const trivial: number[] = []
    let returned = 0
    for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline; ) {
      let t0 = performance.now()
      const w = (await json(`${base}/api/pipelines/${id}/window?state=open&limit=100`)).body as {
        windows: unknown[]
      }
      query.push(performance.now() - t0)
      returned = w.windows.length
      t0 = performance.now()
      await (await fetch(`${base}/`)).text()
      trivial.push(performance.now() - t0)
    }
    query.sort((a, b) => a - b)
    trivial.sort((a, b) => a - b)
    rows.push({
      bench: `/window?state=open&limit=100 (${returned} returned) over ${KEYS / 1e6}M open keys, p99 (${query.length} queries)`,
      value: percentile(query, 0.99),
      unit: 'ms',
      ceiling: percentile(trivial, 0.99),
      ceilingName: 'GET / p99, same server, interleaved',
      target: '< 20 ms',
      ok: percentile(query, 0.99) < 20,
    })

    // the dashboard: event-loop delay and RSS with no stream, then with 20 open on this pipeline
    const sample = async () => {
      const text = await (await fetch(`${base}/metrics`)).text()
      const metric = (name: string) =>
        Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN)
      return {
        lagP99Ms: metric('datapulse_nodejs_eventloop_lag_p99_seconds') * 1000,
        rssMb: metric('datapulse_process_resident_memory_bytes') / 2 ** 20,
      }
    }
    await sample() // resets the event-loop histogram
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
    const idle = await sample()
    const streams = await Promise.all(
      Array.from({ length: STREAMS }, async () => {
        const abort = new AbortController()
        const res = await fetch(`${base}/api/stream?pipeline=${id}`, { signal: abort.signal })
        const reader = res.body?.getReader()
        void (async () => {
          while (reader && !(await reader.read().catch(() => ({ done: true }))).done);
        })()
        return abort
      }),
    )
    await sample()
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
    const busy = await sample()
    for (const s of streams) s.abort()
    rows.push({
      bench: `event-loop delay p99 with ${STREAMS} dashboard streams open on a ${KEYS / 1e6}M-key pipeline`,
      value: busy.lagP99Ms,
      unit: 'ms',
      ceiling: idle.lagP99Ms,
      ceilingName: 'same server, no stream',
      target: '',
    })
    rows.push({
      bench: `RSS with ${STREAMS} dashboard streams open on a ${KEYS / 1e6}M-key pipeline`,
      value: busy.rssMb,
      unit: 'MB',
      ceiling: idle.rssMb,
      ceilingName: 'same server, no stream',
      target: '',
    })
  } finally {
    await close()
  }
  return rows
}
