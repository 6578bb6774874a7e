/**
 * The load generator, in its own process: POSTs pre-made bodies over `connections` keep-alive
 * connections for `seconds`, at most `rate` requests/s (0: as fast as the server answers). Prints
 * one JSON line: requests, events, statuses, latency percentiles.
 */
import { Agent, request } from 'node:http'
import { ingestBodies, metricBodies } from './generate.ts'
import { percentile } from './http.ts'

const [url, secondsArg, connectionsArg, batchArg, rateArg, kind, topic, keysArg] = process.argv.slice(2)
const seconds = Number(secondsArg)
const connections = Number(connectionsArg)
const batch = Number(batchArg)
const rate = Number(rateArg ?? 0)
const bodies = (
  kind === 'metrics'
    ? metricBodies(64, batch)
    : ingestBodies(64, batch, Number(keysArg ?? 10_000), 7, topic || undefined)
).map((b) => Buffer.from(b))
const target = new URL(url)
const agent = new Agent({ keepAlive: true, maxSockets: connections })
const statuses: Record<number, number> = {}
const latencies: number[] = []
let requests = 0
let events = 0
let bytes = 0
const started = performance.now()
const deadline = started + seconds * 1000
const interval = rate > 0 ? (1000 * connections) / rate : 0

function post(body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

async function worker(id: number): Promise<void> {
  let i = id
  let next = performance.now()
  while (performance.now() < deadline) {
    const body = bodies[i++ % bodies.length]
    const t0 = performance.now()
    const status = await post(body)
    latencies.push(performance.now() - t0)
    statuses[status] = (statuses[status] ?? 0) + 1
    requests++
    bytes += body.length
    if (status === 200) events += batch
    else if (status !== 429) throw new Error(`unexpected status ${status}`)
    if (interval > 0) {
      next += interval
      const wait = next - performance.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    }
  }
}

await Promise.all(Array.from({ length: connections }, (_, i) => worker(i)))
const elapsed = (performance.now() - started) / 1000
latencies.sort((a, b) => a - b)
const pct = (q: number) => percentile(latencies, q) ?? 0
process.stdout.write(
  `${JSON.stringify({ requests, events, eventsPerSecond: events / elapsed, mbPerSecond: bytes / elapsed / 2 ** 20, statuses, p50: pct(0.5), p99: pct(0.99) })}\n`,
)
agent.destroy()
