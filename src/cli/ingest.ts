import { createReadStream, statSync } from 'node:fs'
import { createInterface } from 'node:readline'
import cliProgress from 'cli-progress'
import { ApiError, type Client } from '../client/client.ts'
import { UsageError } from './output.ts'

export interface IngestOptions {
  file: string
  topic?: string
  batch: number
  /** lines to skip first (to resume where a run stopped) */
  skip: number
  /** progress for a person (a bar on a terminal), or plain lines */
  progress: 'bar' | 'lines' | 'none'
}

export interface IngestReport {
  events: number
  bytes: number
  seconds: number
  eventsPerSecond: number
  /** the first line not acknowledged, when the run stopped early */
  stoppedAtLine?: number
  error?: string
}

const IN_FLIGHT = 2
const MAX_RETRIES = 20

/** Sends one batch, waiting out 429/503 as the server's Retry-After says. */
async function send(client: Client, body: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await client.ingest(body)
      return
    } catch (err) {
      const retryable = err instanceof ApiError && (err.status === 429 || err.status === 503)
      if (!retryable || attempt >= MAX_RETRIES) throw err
      const seconds = (err as ApiError).retryAfterSeconds ?? 1
      await new Promise((resolve) => setTimeout(resolve, Math.min(30, Math.max(0.1, seconds)) * 1000))
    }
  }
}

/**
 * Streams an NDJSON file (or stdin) of any size to the ingest API in batches, a line an event
 * (sent as it is: the server checks it), two requests in flight. Stops at the first refused
 * batch and says from which line to resume.
 */
export async function ingestFile(client: Client, o: IngestOptions): Promise<IngestReport> {
  let total: number | undefined
  if (o.file !== '-') {
    try {
      total = statSync(o.file).size
    } catch (err) {
      throw new UsageError(`cannot read ${o.file}: ${(err as NodeJS.ErrnoException).code ?? err}`)
    }
  }
  const input = o.file === '-' ? process.stdin : createReadStream(o.file)
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })
  const started = performance.now()
  let events = 0
  let bytes = 0
  let line = 0
  const bar =
    o.progress === 'bar'
      ? new cliProgress.SingleBar(
          {
            format:
              ' {bar} {percentage}% | {events} events | {rate} events/s | {mb} MB | ETA {eta_formatted}',
            hideCursor: true,
            stream: process.stderr,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined
  bar?.start(total ?? 1, 0, { events: 0, rate: 0, mb: '0.0' })
  let lastLine = 0
  const report = () => {
    const seconds = (performance.now() - started) / 1000
    const rate = Math.round(events / Math.max(seconds, 1e-3))
    if (bar)
      bar.update(total === undefined ? 0 : Math.min(bytes, total), {
        events,
        rate,
        mb: (bytes / 2 ** 20).toFixed(1),
      })
    else if (o.progress === 'lines' && performance.now() - lastLine >= 1_000) {
      lastLine = performance.now()
      process.stderr.write(
        `ingested ${events} events (${rate} events/s, ${(bytes / 2 ** 20).toFixed(1)} MB)\n`,
      )
    }
  }
  const prefix = o.topic === undefined ? '{"events":[' : `{"topic":${JSON.stringify(o.topic)},"events":[`
  const inFlight = new Set<Promise<void>>()
  let failure: { line: number; error: string } | undefined
  let batch: string[] = []
  let batchBytes = 0
  let batchLine = o.skip + 1
  const flush = async () => {
    if (batch.length === 0) return
    const body = `${prefix}${batch.join(',')}]}`
    const count = batch.length
    const size = batchBytes
    const firstLine = batchLine
    batch = []
    batchBytes = 0
    const p: Promise<void> = send(client, body).then(
      () => {
        events += count
        bytes += size
        report()
      },
      (err: unknown) => {
        if (!failure || firstLine < failure.line) failure = { line: firstLine, error: (err as Error).message }
      },
    )
    inFlight.add(p)
    void p.finally(() => inFlight.delete(p))
    if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight)
  }
  for await (const text of lines) {
    line++
    if (line <= o.skip) continue
    if (failure) break
    if (text.trim() === '') {
      batchBytes += text.length + 1
      continue
    }
    if (batch.length === 0) batchLine = line
    batch.push(text)
    batchBytes += Buffer.byteLength(text) + 1
    if (batch.length >= o.batch) await flush()
  }
  if (!failure) await flush()
  await Promise.all(inFlight)
  lines.close()
  bar?.stop()
  const seconds = (performance.now() - started) / 1000
  const out: IngestReport = { events, bytes, seconds, eventsPerSecond: events / Math.max(seconds, 1e-3) }
  if (failure) {
    out.stoppedAtLine = failure.line
    out.error = failure.error
  }
  return out
}
