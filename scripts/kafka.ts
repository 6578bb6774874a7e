/**
 * A real Apache Kafka broker for tests and benches: copies kafka_2.13 4.4.0 (runtime scope) and
 * its log4j2 binding from Maven Central into ~/.cache/datapulse (once), formats a fresh KRaft
 * directory, and runs one broker+controller on 127.0.0.1 with replication factors of 1.
 *
 *   node scripts/kafka.ts          starts one and prints its bootstrap address until Ctrl-C
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'

const VERSION = '4.4.0'
const CACHE = process.env.DATAPULSE_KAFKA_CACHE ?? join(homedir(), '.cache', 'datapulse', `kafka-${VERSION}`)
const POM = new URL('./kafka/pom.xml', import.meta.url).pathname

export class KafkaUnavailable extends Error {}

function which(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'pipe' })
    return true
  } catch {
    return false
  }
}

/** Why a broker cannot run here, or undefined when java and mvn (or the cached jars) are there. */
export function kafkaUnavailableReason(): string | undefined {
  if (!which('java')) return 'java is not installed'
  if (!existsSync(join(CACHE, 'libs')) && !which('mvn'))
    return 'mvn is not installed (needed once to fetch the broker)'
  return undefined
}

function complete(libs: string): boolean {
  return existsSync(libs) && readdirSync(libs).some((f) => f.startsWith('kafka_2.13-'))
}

/** Fetches the broker's jars once; test files starting brokers at the same time each fetch into their own directory, the first to finish wins. */
function ensureLibs(): string {
  const libs = join(CACHE, 'libs')
  if (complete(libs)) return libs
  const reason = kafkaUnavailableReason()
  if (reason) throw new KafkaUnavailable(reason)
  mkdirSync(CACHE, { recursive: true })
  const tmp = `${libs}.tmp-${process.pid}`
  rmSync(tmp, { recursive: true, force: true })
  execFileSync(
    'mvn',
    [
      '-q',
      '-B',
      '-f',
      POM,
      'dependency:copy-dependencies',
      '-DincludeScope=runtime',
      `-DoutputDirectory=${tmp}`,
    ],
    { stdio: 'pipe' },
  )
  if (!complete(libs)) {
    rmSync(libs, { recursive: true, force: true })
    try {
      renameSync(tmp, libs)
    } catch (err) {
      if (!complete(libs)) throw err
    }
  }
  rmSync(tmp, { recursive: true, force: true })
  return libs
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
  })
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

export interface KafkaBroker {
  /** bootstrap address, 127.0.0.1:port */
  brokers: string
  /** stops the broker process, keeping its data (start() brings it back on the same port) */
  stop(): Promise<void>
  start(): Promise<void>
  /** stops it and removes its data */
  destroy(): Promise<void>
}

/** Formats a fresh KRaft directory and starts a broker+controller on free ports. */
export async function startKafka(): Promise<KafkaBroker> {
  const libs = ensureLibs()
  const dir = mkdtempSync(join(tmpdir(), 'datapulse-kafka-'))
  const port = await freePort()
  const controllerPort = await freePort()
  const properties = join(dir, 'server.properties')
  writeFileSync(
    properties,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      'controller.listener.names=CONTROLLER',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      'inter.broker.listener.name=PLAINTEXT',
      `log.dirs=${join(dir, 'data')}`,
      'num.partitions=1',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'share.coordinator.state.topic.replication.factor=1',
      'share.coordinator.state.topic.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      'auto.create.topics.enable=false',
      '',
    ].join('\n'),
  )
  const log4j = join(dir, 'log4j2.properties')
  writeFileSync(
    log4j,
    [
      'appender.file.type=File',
      'appender.file.name=file',
      `appender.file.fileName=${join(dir, 'broker.log')}`,
      'appender.file.layout.type=PatternLayout',
      'appender.file.layout.pattern=[%d] %p %m (%c)%n',
      'rootLogger.level=INFO',
      'rootLogger.appenderRef.file.ref=file',
      '',
    ].join('\n'),
  )
  const classpath = `${libs}/*`
  const java = ['-Xms256m', '-Xmx768m', `-Dlog4j2.configurationFile=${log4j}`, '-cp', classpath]
  execFileSync(
    'java',
    [
      ...java,
      'kafka.tools.StorageTool',
      'format',
      '--standalone',
      `--cluster-id=${clusterId()}`,
      '-c',
      properties,
    ],
    { stdio: 'pipe' },
  )
  let child: ChildProcess | undefined
  const start = async () => {
    const proc = spawn('java', [...java, 'kafka.Kafka', properties], { stdio: 'ignore' })
    child = proc
    for (let i = 0; i < 600; i++) {
      if (proc.exitCode !== null)
        throw new Error(`kafka exited with ${proc.exitCode}; see ${join(dir, 'broker.log')}`)
      if (await portOpen(port)) return
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error('kafka did not open its port within 60 s')
  }
  const stop = async () => {
    const proc = child
    if (!proc || proc.exitCode !== null) return
    const exited = new Promise((r) => proc.once('exit', r))
    proc.kill('SIGTERM')
    const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
  }
  await start()
  return {
    brokers: `127.0.0.1:${port}`,
    start,
    stop,
    destroy: async () => {
      await stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const broker = await startKafka()
  process.stdout.write(`kafka ${VERSION} on ${broker.brokers}\n`)
  const shutdown = () => void broker.destroy().then(() => process.exit(0))
  process.on('SIGINT', shutdown)
  process.on('SIGTERM', shutdown)
}

/** A Kafka cluster id: 16 random bytes, base64url; like Kafka's own, never starting with '-', which its argument parser would read as a flag. */
function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url')
    if (!id.startsWith('-')) return id
  }
}
