/**
 * `npm run bench -- --peers`: DataPulse beside Kafka Streams and Flink on one broker, the same job
 * for each: 1M events (10k keys, 1 ms apart) from a topic, a tumbling 60 s count by
 * data.user_id with 2 s of lateness, the final results to a sink topic. Each system in turn, a
 * few rounds; each system's sink is read back whole and checked against the reference.
 *
 * Timed from the first record the system reads to the broker's log-append time of its last
 * result. The stream ends with one event an hour ahead, which closes every window on event time
 * alone (its own window never closes). CPU is the system's process CPU over the same span.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka'
import { kafkaUnavailableReason, startKafka } from '../scripts/kafka.ts'
import type { BenchRow } from './engine.ts'
import { generateEvents } from './generate.ts'
import { consumeOnlyRate } from './kafka.ts'
import { startDataPulse, stop } from './processes.ts'

const WINDOW_MS = 60_000
const LATENESS_MS = 2_000
const PEERS = new URL('./peers/', import.meta.url).pathname
const SOURCE = 'peers-in'
/** Longest a system may take to write every result (a run takes 10-40 s here). */
const SINK_TIMEOUT_MS = 300_000

type System = 'datapulse' | 'datapulse-no-metrics' | 'kafka-streams' | 'flink'

interface Run {
  system: System
  round: number
  eventsPerSecond: number
  cpuSecondsPerMillion: number
  peakRssMb: number
  exact: boolean
}

/** Builds the Maven projects (their classes and classpath); undefined when that fails, with why. */
function buildPeers(): string | undefined {
  for (const project of ['kafka-streams', 'flink']) {
    try {
      execFileSync(
        'mvn',
        ['-q', '-B', 'compile', 'dependency:build-classpath', '-Dmdep.outputFile=target/classpath.txt'],
        { cwd: join(PEERS, project), stdio: ['ignore', 'ignore', 'inherit'] },
      )
    } catch (err) {
      return `mvn could not build bench/peers/${project}: ${(err as Error).message}`
    }
  }
  return undefined
}

function classpath(project: string): string {
  const dir = join(PEERS, project, 'target')
  return `${join(dir, 'classes')}:${readFileSync(join(dir, 'classpath.txt'), 'utf8').trim()}`
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

function peakRssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/)
  return line ? Number(line[1]) / 1024 : 0
}

/** A JVM running one of the peers' main classes; resolves `first` when it prints "first-record <ms>". */
function startJava(
  project: string,
  main: string,
  args: string[],
): { child: ChildProcess; first: Promise<{ at: number; cpu: number }>; done: Promise<number> } {
  const child = spawn(
    'java',
    ['-Xmx2g', '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn', '-cp', classpath(project), main, ...args],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  let onFirst: (v: { at: number; cpu: number }) => void = () => {}
  let onDone: (at: number) => void = () => {}
  const first = new Promise<{ at: number; cpu: number }>((r) => {
    onFirst = r
  })
  const done = new Promise<number>((r) => {
    onDone = r
  })
  let text = ''
  child.stdout?.on('data', (d: Buffer) => {
    text += d.toString()
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
      const line = text.slice(0, nl)
      text = text.slice(nl + 1)
      const [word, ms] = line.split(' ')
      if (word === 'first-record') onFirst({ at: Number(ms), cpu: cpuSeconds(child.pid as number) })
      if (word === 'done') onDone(Number(ms))
    }
  })
  return { child, first, done }
}

/** (window start, user) → count, from the events before the closing one. */
function reference(events: Array<{ timestamp: number; data: Record<string, unknown> }>): Map<string, number> {
  const counts = new Map<string, number>()
  for (const e of events) {
    const key = `${e.timestamp - (e.timestamp % WINDOW_MS)}|${e.data.user_id}`
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return counts
}

/** One sink message as (window start, user, count): DataPulse's window_result events or the peers' flat JSON. */
function resultOf(value: string): [number, string, number] {
  const v = JSON.parse(value)
  if (v.event_type === 'window_result')
    return [Date.parse(v.data.window_start), String(Object.values(v.data.key)[0]), v.data.results.count]
  return [v.window_start, v.key, v.count]
}

/**
 * Reads `topic` from the start (read_committed) until it holds as many distinct windows as the
 * reference; then whether every one matches and none came twice, and the last log-append time.
 */
async function readSink(
  brokers: string,
  topic: string,
  expected: Map<string, number>,
  timeoutMs: number,
): Promise<{ lastAppend: number; exact: boolean }> {
  const consumer = new Consumer({
    clientId: 'bench-peers-check',
    groupId: `bench-peers-check-${topic}`,
    bootstrapBrokers: [brokers],
    deserializers: stringDeserializers,
  })
  const seen = new Map<string, number>()
  let duplicates = 0
  let wrong = 0
  let lastAppend = 0
  try {
    const stream = await consumer.consume({
      topics: [topic],
      mode: 'earliest',
      autocommit: false,
      maxWaitTime: 200,
    })
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs)
      stream.on('data', (m) => {
        const [start, user, count] = resultOf(m.value)
        const key = `${start}|${user}`
        if (seen.has(key)) duplicates++
        else if (expected.get(key) !== count) wrong++
        seen.set(key, count)
        lastAppend = Math.max(lastAppend, Number(m.timestamp))
        if (seen.size >= expected.size) {
          clearTimeout(timer)
          resolve()
        }
      })
    })
    await stream.close()
  } finally {
    await consumer.close(true)
  }
  const exact = seen.size === expected.size && duplicates === 0 && wrong === 0
  if (!exact)
    console.error(
      `${topic}: ${seen.size} of ${expected.size} windows, ${duplicates} duplicates, ${wrong} wrong counts`,
    )
  return { lastAppend, exact }
}

async function createSink(brokers: string, topic: string): Promise<void> {
  const admin = new Admin({ clientId: 'bench-peers', bootstrapBrokers: [brokers] })
  // the definition of done is the broker's clock: when the last result was appended
  await admin.createTopics({
    topics: [topic],
    partitions: 1,
    replicas: 1,
    configs: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }],
  })
  await admin.close()
}

interface Started {
  pid: number
  /** wall-clock time of the first record read, and the process CPU then */
  first: number
  cpuAtFirst: number
  stop: () => Promise<void>
}

/** DataPulse with the job as a pipeline through its API; the first read is seen in its counters. */
async function startDataPulseJob(brokers: string, sink: string, metrics: boolean): Promise<Started> {
  // at least once, as the peers' sinks are (Flink AT_LEAST_ONCE, Kafka Streams' default)
  const dp = await startDataPulse(['--kafka-brokers', brokers, '--kafka-delivery', 'at-least-once'])
  const created = await fetch(`${dp.base}/api/pipelines`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'peers-count',
      source_topic: SOURCE,
      sink_topic: sink,
      start: true,
      start_from: 'earliest',
      metrics,
      transformation: {
        aggregate: {
          window_seconds: WINDOW_MS / 1000,
          allowed_lateness_seconds: LATENESS_MS / 1000,
          function: 'count',
          group_by: ['data.user_id'],
        },
      },
    }),
  })
  const { id } = (await created.json()) as { id: string }
  for (;;) {
    const p = (await (await fetch(`${dp.base}/api/pipelines/${id}`)).json()) as {
      stats: { events_in: number }
    }
    if (p.stats.events_in > 0)
      return { pid: dp.pid, first: Date.now(), cpuAtFirst: cpuSeconds(dp.pid), stop: dp.close }
    await new Promise((r) => setTimeout(r, 10))
  }
}

async function startPeerJob(
  project: 'kafka-streams' | 'flink',
  brokers: string,
  sink: string,
  round: number,
): Promise<Started> {
  const state = mkdtempSync(join(tmpdir(), `bench-${project}-`))
  const job = startJava(project, 'datapulse.bench.CountJob', [
    brokers,
    SOURCE,
    sink,
    `${project}-${round}`,
    state,
  ])
  const first = await Promise.race([
    job.first,
    new Promise<never>((_, reject) =>
      job.child.once('exit', (code) => reject(new Error(`${project} exited with ${code}`))),
    ),
  ])
  return {
    pid: job.child.pid as number,
    first: first.at,
    cpuAtFirst: first.cpu,
    stop: async () => {
      await stop(job.child)
      rmSync(state, { recursive: true, force: true })
    },
  }
}

async function runJob(
  system: System,
  round: number,
  brokers: string,
  expected: Map<string, number>,
  total: number,
): Promise<Run> {
  const sink = `peers-out-${system}-${round}`
  await createSink(brokers, sink)
  const job =
    system === 'datapulse' || system === 'datapulse-no-metrics'
      ? await startDataPulseJob(brokers, sink, system === 'datapulse')
      : await startPeerJob(system, brokers, sink, round)
  try {
    const { lastAppend, exact } = await readSink(brokers, sink, expected, SINK_TIMEOUT_MS)
    const seconds = (lastAppend - job.first) / 1000
    return {
      system,
      round,
      eventsPerSecond: total / seconds,
      cpuSecondsPerMillion: ((cpuSeconds(job.pid) - job.cpuAtFirst) / total) * 1e6,
      peakRssMb: peakRssMb(job.pid),
      exact,
    }
  } finally {
    await job.stop()
  }
}

/** Our client reading the topic and parsing each value, beside a plain Java consumer with Jackson. */
async function consumeOnly(
  brokers: string,
  total: number,
  round: number,
): Promise<{ js: number; java: number }> {
  const js = await consumeOnlyRate(brokers, SOURCE, total, `peers-consume-only-${round}`)
  const java = startJava('kafka-streams', 'datapulse.bench.ConsumeOnly', [
    brokers,
    SOURCE,
    `java-consume-${round}`,
    String(total),
  ])
  const first = await java.first
  const done = await java.done
  await stop(java.child)
  return { js, java: total / ((done - first.at) / 1000) }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0
    ? Number.NaN
    : s.length % 2
      ? s[(s.length - 1) / 2]
      : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

export async function peerBenches(quick: boolean): Promise<BenchRow[]> {
  const reason = kafkaUnavailableReason() ?? buildPeers()
  if (reason) {
    console.error(`peers bench skipped: ${reason}`)
    return []
  }
  const events = generateEvents(quick ? 200_000 : 1_000_000, { keys: 10_000, stepMs: 1 })
  const expected = reference(events)
  const last = events[events.length - 1]
  // an hour ahead: every window closes on event time (the closing event's own window never does)
  events.push({
    ...last,
    id: 'close',
    timestamp: last.timestamp + 3_600_000,
    data: { ...last.data, user_id: 'close' },
  })
  const total = events.length
  const rounds = quick ? 1 : 4
  const broker = await startKafka()
  const runs: Run[] = []
  const consume: Array<{ js: number; java: number }> = []
  try {
    const admin = new Admin({ clientId: 'bench', bootstrapBrokers: [broker.brokers] })
    await admin.createTopics({ topics: [SOURCE], partitions: 1, replicas: 1 })
    await admin.close()
    const producer = new Producer({
      clientId: 'bench',
      bootstrapBrokers: [broker.brokers],
      serializers: stringSerializers,
    })
    for (let i = 0; i < total; i += 5_000)
      await producer.send({
        messages: events.slice(i, i + 5_000).map((e) => ({
          topic: SOURCE,
          key: e.id,
          value: JSON.stringify({ ...e, timestamp: new Date(e.timestamp).toISOString() }),
        })),
        acks: -1,
      })
    await producer.close()
    for (let round = 1; round <= rounds; round++) {
      for (const system of ['datapulse', 'datapulse-no-metrics', 'kafka-streams', 'flink'] as const) {
        const run = await runJob(system, round, broker.brokers, expected, total)
        runs.push(run)
        console.error(
          `round ${round} ${system}: ${Math.round(run.eventsPerSecond)} events/s, ${run.cpuSecondsPerMillion.toFixed(1)} CPU s per 1M, peak RSS ${Math.round(run.peakRssMb)} MB${run.exact ? '' : ' — NOT EXACT'}`,
        )
      }
      consume.push(await consumeOnly(broker.brokers, total, round))
    }
  } finally {
    await broker.destroy()
  }
  return peerRows(runs, consume, rounds, total)
}

const NAMES: Record<System, string> = {
  datapulse: 'DataPulse (pipeline through the API, at-least-once sink as the peers)',
  'datapulse-no-metrics': 'DataPulse, the same pipeline with "metrics": false',
  'kafka-streams': 'Kafka Streams 4.4, 1 stream thread, suppress(untilWindowCloses)',
  flink: 'Flink 2.2, parallelism 1, checkpoint every 1 s',
}

function peerRows(
  runs: Run[],
  consume: Array<{ js: number; java: number }>,
  rounds: number,
  total: number,
): BenchRow[] {
  const of = (system: System, round: number) =>
    runs.find((r) => r.system === system && r.round === round) as Run
  const phases = rounds > 1 ? (['cold', 'warm'] as const) : (['cold'] as const)
  const pick = (system: System, phase: 'cold' | 'warm', f: (r: Run) => number) =>
    phase === 'cold'
      ? f(of(system, 1))
      : median(runs.filter((r) => r.system === system && r.round > 1).map(f))
  const job = `${(total / 1e6).toFixed(1)}M events, 10k keys, 60 s count by key → sink`
  const rows: BenchRow[] = []
  for (const phase of phases) {
    const label = phase === 'cold' ? 'round 1' : `median of rounds 2-${rounds}`
    const dp = pick('datapulse', phase, (r) => r.eventsPerSecond)
    const flink = pick('flink', phase, (r) => r.eventsPerSecond)
    const ks = pick('kafka-streams', phase, (r) => r.eventsPerSecond)
    rows.push(
      { bench: `peers (${phase}, ${label}): ${NAMES.flink}, ${job}`, value: flink, unit: 'events/s' },
      { bench: `peers (${phase}, ${label}): ${NAMES['kafka-streams']}, ${job}`, value: ks, unit: 'events/s' },
      {
        bench: `peers (${phase}, ${label}): ${NAMES.datapulse}, ${job}`,
        value: dp,
        unit: 'events/s',
        ceiling: flink,
        ceilingName: 'Flink p1, same run',
        target: '>= 1.0x Flink p1',
        ok: dp >= flink,
      },
      {
        bench: `peers (${phase}): DataPulse beside Kafka Streams one thread`,
        value: dp,
        unit: 'events/s',
        ceiling: ks,
        ceilingName: 'Kafka Streams, same run',
        target: '>= 2.0x Kafka Streams',
        ok: dp >= 2 * ks,
      },
      {
        bench: `peers (${phase}): ${NAMES['datapulse-no-metrics']}`,
        value: pick('datapulse-no-metrics', phase, (r) => r.eventsPerSecond),
        unit: 'events/s',
        ceiling: flink,
        ceilingName: 'Flink p1, same run',
      },
    )
    for (const system of ['datapulse', 'kafka-streams', 'flink'] as const)
      rows.push({
        bench: `peers (${phase}): CPU s per 1M events, ${system}`,
        value: pick(system, phase, (r) => r.cpuSecondsPerMillion),
        unit: 's',
        ...(system === 'datapulse'
          ? {
              ceiling: pick('flink', phase, (r) => r.cpuSecondsPerMillion),
              ceilingName: 'Flink p1, same run',
            }
          : {}),
      })
  }
  const rss = (system: System) => Math.max(...runs.filter((r) => r.system === system).map((r) => r.peakRssMb))
  rows.push({
    bench: 'peers: peak RSS of DataPulse over the rounds',
    value: rss('datapulse'),
    unit: 'MB',
    ceiling: rss('flink'),
    ceilingName: 'Flink p1 (-Xmx2g), same rounds',
    target: "<= Flink's",
    ok: rss('datapulse') <= rss('flink'),
  })
  const perRound = (peer: System) =>
    Array.from({ length: rounds }, (_, i) =>
      (of('datapulse', i + 1).eventsPerSecond / of(peer, i + 1).eventsPerSecond).toFixed(2),
    ).join(', ')
  const exact = runs.every((r) => r.exact)
  rows.push({
    bench: `peers: DataPulse ÷ Flink per round ${perRound('flink')}; ÷ Kafka Streams ${perRound('kafka-streams')}; every sink exact: ${exact ? 'yes' : 'NO'}`,
    value: median(
      runs
        .filter((r) => r.system === 'datapulse')
        .map((r) => r.eventsPerSecond / of('flink', r.round).eventsPerSecond),
    ),
    unit: 'x',
    ok: exact,
  })
  const js = median(consume.map((c) => c.js))
  const java = median(consume.map((c) => c.java))
  rows.push({
    bench: `consume only + JSON parse, median of ${consume.length}: @platformatic/kafka (patched) beside a plain Java consumer + Jackson`,
    value: js,
    unit: 'events/s',
    ceiling: java,
    ceilingName: 'Java KafkaConsumer 4.4 + Jackson, same broker',
    target: '>= 0.5x Java',
    ok: js >= 0.5 * java,
  })
  return rows
}
