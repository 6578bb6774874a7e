import { BATCH, BENCH_PIPELINE, CONNECTIONS, json, percentile, probeLatency } from './http.ts'
import { runLoad, startDataPulse } from './processes.ts'

const SLICE_SECONDS = 30

/**
 * `npm run bench -- --soak 600`: holds 80% of the measured peak ingest rate for that long against
 * a running windowed pipeline, and every 30 s reports RSS, ingest request p99 and the
 * ingest → open-window p99. Flat means: RSS and p99 at the end within 1.25× / 2× of the first slice.
 */
export async function soak(seconds: number): Promise<boolean> {
  const { base, close } = await startDataPulse()
  try {
    const id = ((await json(`${base}/api/pipelines`, 'POST', BENCH_PIPELINE)).body as { id: string }).id
    const peak = await runLoad(`${base}/api/events/ingest`, 5, CONNECTIONS, BATCH)
    const rate = Math.floor((peak.requests / 5) * 0.8)
    console.log(
      `peak ${(peak.eventsPerSecond / 1e6).toFixed(2)}M events/s; soaking at 80%: ${rate} requests/s for ${seconds} s`,
    )
    console.log('| t (s) | events/s | RSS (MB) | request p99 (ms) | ingest → window p99 (ms) | non-200 |')
    console.log('| --- | --- | --- | --- | --- | --- |')
    const samples: Array<{ rss: number; p99: number; visible: number }> = []
    for (let t = 0; t < seconds; t += SLICE_SECONDS) {
      const [load, probes] = await Promise.all([
        runLoad(`${base}/api/events/ingest`, SLICE_SECONDS, CONNECTIONS, BATCH, rate),
        probeLatency(base, id, SLICE_SECONDS - 2),
      ])
      const stats = (await json(`${base}/api/stats`)).body as { memory: { rss_bytes: number } }
      const visible = percentile(probes, 0.99) ?? Number.NaN
      const sample = { rss: stats.memory.rss_bytes / 2 ** 20, p99: load.p99, visible }
      samples.push(sample)
      const refused = Object.entries(load.statuses)
        .filter(([s]) => s !== '200')
        .reduce((n, [, c]) => n + c, 0)
      console.log(
        `| ${t + SLICE_SECONDS} | ${(load.eventsPerSecond / 1e6).toFixed(3)}M | ${sample.rss.toFixed(0)} | ${sample.p99.toFixed(1)} | ${visible.toFixed(1)} | ${refused} |`,
      )
    }
    const first = samples[0]
    const last = samples[samples.length - 1]
    const flat = last.rss <= first.rss * 1.25 && last.visible <= Math.max(first.visible * 2, 20)
    console.log(flat ? 'flat: RSS and latency held' : 'NOT flat: RSS or latency grew')
    return flat
  } finally {
    await close()
  }
}
