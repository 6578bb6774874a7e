import { constants } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BenchRow } from './engine.ts'
import { freePort, runLoad, startDataPulse, startProcess, stop } from './processes.ts'

export const BATCH = 500
/** The windowed pipeline every ingest bench runs: tumbling 10 s count and sum by user (10k users). */
export const BENCH_PIPELINE = {
  name: 'bench',
  source_topic: 'bench-events',
  start: true,
  transformation: {
    aggregate: {
      window_seconds: 10,
      functions: ['count', { sum: 'data.amount' }],
      group_by: ['data.user_id'],
    },
  },
}
export const CONNECTIONS = 8

export async function json(
  url: string,
  method = 'GET',
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  })
  return { status: res.status, body: await res.json() }
}

/** The value at quantile `q` of an ascending list. */
export function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

/** The floor for any latency here: `GET /` (no work at all) one at a time on the same server under the same load. */
export async function probeTrivial(base: string, seconds: number): Promise<number[]> {
  const out: number[] = []
  const deadline = Date.now() + seconds * 1000
  while (Date.now() < deadline) {
    const t0 = performance.now()
    await (await fetch(`${base}/`)).text()
    out.push(performance.now() - t0)
    await new Promise((r) => setTimeout(r, 20))
  }
  return out.sort((a, b) => a - b)
}

/**
 * The disk's part in any durable acknowledgement: one request-sized (56 KB) O_DSYNC write at a
 * time into the temp dir (the server's data dir is there too), every 20 ms, under the same load.
 */
export async function probeDisk(seconds: number): Promise<number[]> {
  const path = join(tmpdir(), `datapulse-disk-probe-${process.pid}`)
  const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_DSYNC, 0o600)
  const bytes = Buffer.alloc(56 * 1024, 'x')
  const out: number[] = []
  try {
    const deadline = Date.now() + seconds * 1000
    for (let position = 0; Date.now() < deadline; position += bytes.length) {
      const t0 = performance.now()
      await fh.write(bytes, 0, bytes.length, position)
      out.push(performance.now() - t0)
      await new Promise((r) => setTimeout(r, 20))
    }
  } finally {
    await fh.close()
    await rm(path, { force: true })
  }
  return out.sort((a, b) => a - b)
}

/** Ingest → open-window result visible, one probe at a time, while the load runs. */
export async function probeLatency(base: string, pipelineId: string, seconds: number): Promise<number[]> {
  const out: number[] = []
  const deadline = Date.now() + seconds * 1000
  for (let i = 0; Date.now() < deadline; i++) {
    const user = `probe-${Date.now()}-${i}`
    const t0 = performance.now()
    await json(`${base}/api/events/ingest`, 'POST', {
      events: [{ event_type: 'probe', source: 'bench', data: { user_id: user, amount: 1 } }],
    })
    for (const giveUp = Date.now() + 10_000; Date.now() < giveUp; ) {
      const w = (
        await json(`${base}/api/pipelines/${pipelineId}/window?state=open&limit=1&key.data.user_id=${user}`)
      ).body as { windows: unknown[] }
      if (w.windows.length > 0) break
    }
    out.push(performance.now() - t0)
    await new Promise((r) => setTimeout(r, 20))
  }
  return out.sort((a, b) => a - b)
}

export async function httpBenches(quick: boolean): Promise<BenchRow[]> {
  const seconds = quick ? 5 : 15
  const rows: BenchRow[] = []

  // the ceiling: bare node:http + JSON.parse under the same load
  const barePort = await freePort()
  const bare = await startProcess(
    [new URL('./bare-server.ts', import.meta.url).pathname, String(barePort)],
    async () => false,
  )
  const ceiling = await runLoad(`http://127.0.0.1:${barePort}/api/events/ingest`, seconds, CONNECTIONS, BATCH)
  await stop(bare)

  // the HTTP path alone: the same server and load, no pipeline (parse, check, durable log append);
  // the bodies name the topic, as nothing else would store them
  const alone = await startDataPulse([])
  try {
    const r = await runLoad(
      `${alone.base}/api/events/ingest`,
      seconds,
      CONNECTIONS,
      BATCH,
      0,
      'events',
      BENCH_PIPELINE.source_topic,
    )
    rows.push({
      bench: `HTTP ingest alone, durable ack, ${BATCH}-event batches, ${CONNECTIONS} connections, no pipeline`,
      value: r.eventsPerSecond,
      unit: 'events/s',
      ceiling: ceiling.eventsPerSecond,
      ceilingName: 'bare node:http + JSON.parse',
      target: '',
    })
  } finally {
    await alone.close()
  }

  const { base, close } = await startDataPulse([])
  try {
    const created = await json(`${base}/api/pipelines`, 'POST', BENCH_PIPELINE)
    const id = (created.body as { id: string }).id
    const peak = await runLoad(`${base}/api/events/ingest`, seconds, CONNECTIONS, BATCH)
    rows.push({
      bench: `HTTP ingest, durable ack, ${BATCH}-event batches, ${CONNECTIONS} connections, windowed pipeline running`,
      value: peak.eventsPerSecond,
      unit: 'events/s',
      ceiling: ceiling.eventsPerSecond,
      ceilingName: 'bare node:http + JSON.parse',
      target: '>= 1M and >= 0.6x ceiling',
      ok: peak.eventsPerSecond >= 1e6 && peak.eventsPerSecond >= 0.6 * ceiling.eventsPerSecond,
    })
    // let the pipeline catch up, then measure latency at half of the peak
    await new Promise((r) => setTimeout(r, 2_000))
    const half = (peak.requests / seconds / 2) | 0
    const [load, probes, floor, disk] = await Promise.all([
      runLoad(`${base}/api/events/ingest`, seconds, CONNECTIONS, BATCH, half),
      probeLatency(base, id, seconds - 1),
      probeTrivial(base, seconds - 1),
      probeDisk(seconds - 1),
    ])
    const pct = (q: number) => percentile(probes, q)
    rows.push({
      bench: `ingest → open-window result visible, p50 (at ${(load.eventsPerSecond / 1e6).toFixed(2)}M events/s, half of peak)`,
      value: pct(0.5),
      unit: 'ms',
      ceiling: percentile(floor, 0.5),
      ceilingName: 'GET / p50, same server, same load',
      target: '',
    })
    rows.push({
      bench: `ingest → open-window result visible, p99 (${probes.length} probes)`,
      value: pct(0.99),
      unit: 'ms',
      ceiling: percentile(floor, 0.99),
      ceilingName: 'GET / p99, same server, same load',
      target: '< 20 ms',
      ok: pct(0.99) < 20,
    })
    rows.push({
      bench: `durable 56 KB write (O_DSYNC) on the same disk under the same load, p99 (${disk.length} writes; p50 ${percentile(disk, 0.5).toFixed(1)} ms)`,
      value: percentile(disk, 0.99),
      unit: 'ms',
      target: '',
    })
    const statuses = JSON.stringify(peak.statuses)
    if (Object.keys(peak.statuses).some((s) => s !== '200'))
      console.error(`ingest statuses at peak: ${statuses}`)
  } finally {
    await close()
  }
  return rows
}
