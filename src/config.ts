import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { parseConfiguredKeys } from './auth/api-keys.ts'
import type { ApiKeyRecord } from './auth/key-types.ts'
import { isTopicName, TOPIC_RULE } from './engine/pipeline-spec.ts'
import type { KafkaSettings } from './log/kafka-log.ts'

/** Every setting: an environment variable, a matching flag, a default and its bounds. One source. */
const OPTIONS = {
  port: { env: 'DATAPULSE_PORT', kind: 'int', default: 8003, min: 0, max: 65535, help: 'HTTP port' },
  host: { env: 'DATAPULSE_HOST', kind: 'string', default: '127.0.0.1', help: 'address to listen on' },
  'data-dir': {
    env: 'DATAPULSE_DATA_DIR',
    kind: 'string',
    default: './data',
    help: 'embedded log and store',
  },
  'instance-id': {
    env: 'DATAPULSE_INSTANCE_ID',
    kind: 'string',
    default: '',
    help: "this instance's name in a cluster and its static Kafka group membership (default: made once and kept in the data dir)",
  },
  'advertise-url': {
    env: 'DATAPULSE_ADVERTISE_URL',
    kind: 'string',
    default: '',
    help: "where the other instances of a cluster reach this one's API (default: http(s)://<host>:<port>, the machine's name for a wildcard host)",
  },
  'cluster-lease-ms': {
    env: 'DATAPULSE_CLUSTER_LEASE_MS',
    kind: 'int',
    default: 10_000,
    min: 1_000,
    max: 600_000,
    help: 'in a cluster (KAFKA_BROKERS and DATABASE_URL): how long an instance that stopped answering keeps its pipelines before another takes them over',
  },
  'log-level': {
    env: 'DATAPULSE_LOG_LEVEL',
    kind: 'enum',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
    help: 'pino log level',
  },
  'body-limit': {
    env: 'DATAPULSE_BODY_LIMIT',
    kind: 'int',
    default: 10 * 1024 * 1024,
    min: 1024,
    max: 1024 * 1024 * 1024,
    help: 'largest request body in bytes (413 beyond)',
  },
  'max-batch': {
    env: 'DATAPULSE_MAX_BATCH',
    kind: 'int',
    default: 10_000,
    min: 1,
    max: 1_000_000,
    help: 'most events (or metric points) per request',
  },
  fsync: {
    env: 'DATAPULSE_FSYNC',
    kind: 'enum',
    values: ['batch', 'always', 'off'],
    default: 'batch',
    help: 'log durability: batch = group commit (one synced write per group), always = one synced write per request, off = none',
  },
  'log-segment-bytes': {
    env: 'DATAPULSE_LOG_SEGMENT_BYTES',
    kind: 'int',
    default: 64 * 1024 * 1024,
    min: 1024,
    max: 2 ** 31,
    help: 'size at which a topic starts a new log segment',
  },
  'log-retention-hours': {
    env: 'DATAPULSE_LOG_RETENTION_HOURS',
    kind: 'int',
    default: 168,
    min: 1,
    max: 87_600,
    help: 'log segments older than this go, once every pipeline has checkpointed past them',
  },
  'log-retention-bytes': {
    env: 'DATAPULSE_LOG_RETENTION_BYTES',
    kind: 'int',
    default: 10 * 1024 ** 3,
    min: 1024,
    max: 2 ** 50,
    help: 'per topic: past this size the oldest segments go, once every pipeline has checkpointed past them',
  },
  'log-cache-events': {
    env: 'DATAPULSE_LOG_CACHE_EVENTS',
    kind: 'int',
    default: 200_000,
    min: 0,
    max: 100_000_000,
    help: 'most events per topic kept parsed in memory for the pipelines that have yet to read them',
  },
  'default-topic': {
    env: 'DATAPULSE_DEFAULT_TOPIC',
    kind: 'string',
    default: 'events',
    help: 'where an ingest without "topic" goes while no pipeline is running (so no acknowledged event is stored nowhere)',
  },
  'max-connections': {
    env: 'DATAPULSE_MAX_CONNECTIONS',
    kind: 'int',
    default: 1_024,
    min: 1,
    max: 1_000_000,
    help: 'open HTTP connections at most; a request on a connection past it gets 503',
  },
  'max-streams': {
    env: 'DATAPULSE_MAX_STREAMS',
    kind: 'int',
    default: 100,
    min: 1,
    max: 100_000,
    help: 'open /api/stream (Server-Sent Events) clients at most; more get 503',
  },
  'max-keys-per-window': {
    env: 'DATAPULSE_MAX_KEYS_PER_WINDOW',
    kind: 'int',
    default: 100_000,
    min: 1,
    max: 100_000_000,
    help: 'distinct group keys one window holds (open sessions in all); beyond, events are dead-lettered',
  },
  'max-windows-per-event': {
    env: 'DATAPULSE_MAX_WINDOWS_PER_EVENT',
    kind: 'int',
    default: 1_000,
    min: 1,
    max: 100_000,
    help: 'hopping windows one event may fall into (window / slide)',
  },
  'max-lag': {
    env: 'DATAPULSE_MAX_LAG',
    kind: 'int',
    default: 2_000_000,
    min: 1_000,
    max: 1_000_000_000,
    help: 'events a running pipeline may be behind before ingestion answers 429',
  },
  'ingest-memory-limit-mb': {
    env: 'DATAPULSE_INGEST_MEMORY_LIMIT_MB',
    kind: 'int',
    default: 384,
    min: 64,
    max: 1_048_576,
    help: 'MB of JavaScript heap (as reserved) and buffers above which ingestion answers 429 until they fall (window state and queues stay bounded; the RSS runs some 300-600 MB above)',
  },
  'max-pending-results': {
    env: 'DATAPULSE_MAX_PENDING_RESULTS',
    kind: 'int',
    default: 100_000,
    min: 100,
    max: 100_000_000,
    help: 'window results (and sink records) a running pipeline may hold unwritten before it waits and ingestion answers 429',
  },
  'dead-letter-limit': {
    env: 'DATAPULSE_DEAD_LETTER_LIMIT',
    kind: 'int',
    default: 1_000,
    min: 1,
    max: 1_000_000,
    help: 'dead letters kept per pipeline (newest)',
  },
  'checkpoint-interval-ms': {
    env: 'DATAPULSE_CHECKPOINT_INTERVAL_MS',
    kind: 'int',
    default: 1_000,
    min: 10,
    max: 3_600_000,
    help: 'how often running pipelines save window state and offset (at least 20× what one checkpoint takes)',
  },
  'metrics-retention-days': {
    env: 'DATAPULSE_METRICS_RETENTION_DAYS',
    kind: 'int',
    default: 7,
    min: 1,
    max: 3650,
    help: 'raw metric points older than this are deleted',
  },
  'metrics-max-points': {
    env: 'DATAPULSE_METRICS_MAX_POINTS',
    kind: 'int',
    default: 100_000_000,
    min: 1_000,
    max: 10_000_000_000,
    help: 'raw metric points kept at most; past it the oldest go (rollups stay)',
  },
  'metrics-rollup-days': {
    env: 'DATAPULSE_METRICS_ROLLUP_DAYS',
    kind: 'int',
    default: 90,
    min: 1,
    max: 36_500,
    help: '1-minute rollups are kept this long (1-hour rollups ten times as long)',
  },
  'kafka-brokers': {
    env: 'KAFKA_BROKERS',
    kind: 'string',
    default: '',
    help: 'Kafka bootstrap servers (host:port,…); set, topics are Kafka topics',
  },
  'kafka-client-id': {
    env: 'KAFKA_CLIENT_ID',
    kind: 'string',
    default: 'datapulse',
    help: 'Kafka client id prefix',
  },
  'kafka-partitions': {
    env: 'KAFKA_PARTITIONS',
    kind: 'int',
    default: 1,
    min: 1,
    max: 10_000,
    help: 'partitions of the topics DataPulse creates',
  },
  'kafka-replication': {
    env: 'KAFKA_REPLICATION',
    kind: 'int',
    default: 1,
    min: 1,
    max: 100,
    help: 'replication factor of the topics DataPulse creates',
  },
  'kafka-sasl-mechanism': {
    env: 'KAFKA_SASL_MECHANISM',
    kind: 'enum',
    values: ['', 'PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'],
    default: '',
    help: 'SASL mechanism for the brokers (unset: none)',
  },
  'kafka-sasl-username': { env: 'KAFKA_SASL_USERNAME', kind: 'string', default: '', help: 'SASL user name' },
  'kafka-sasl-password': { env: 'KAFKA_SASL_PASSWORD', kind: 'string', default: '', help: 'SASL password' },
  'kafka-compression': {
    env: 'KAFKA_COMPRESSION',
    kind: 'enum',
    values: ['lz4', 'zstd', 'gzip', 'snappy', 'none'],
    default: 'lz4',
    help: 'compression of what DataPulse produces (ingested events, results, dead letters)',
  },
  'kafka-delivery': {
    env: 'KAFKA_DELIVERY',
    kind: 'enum',
    values: ['exactly-once', 'at-least-once'],
    default: 'exactly-once',
    help: 'sink and .dlq topics: each message once for read_committed readers (outbox + transactions, sent at each checkpoint), or produced at once (a crash may repeat some)',
  },
  'kafka-tls': {
    env: 'KAFKA_TLS',
    kind: 'enum',
    values: ['false', 'true'],
    default: 'false',
    help: 'connect to the brokers over TLS',
  },
  'database-url': {
    env: 'DATABASE_URL',
    kind: 'string',
    default: '',
    help: 'PostgreSQL store (postgres://user@host:5432/db): pipelines, results, checkpoints, lookups, metrics, keys; unset: SQLite in the data dir',
  },
  'database-pool-size': {
    env: 'DATABASE_POOL_SIZE',
    kind: 'int',
    default: 8,
    min: 1,
    max: 1_000,
    help: 'PostgreSQL connections this instance keeps at most',
  },
  'database-statement-timeout-ms': {
    env: 'DATABASE_STATEMENT_TIMEOUT_MS',
    kind: 'int',
    default: 30_000,
    min: 100,
    max: 3_600_000,
    help: 'PostgreSQL statement_timeout: a statement running longer is cancelled (and retried as a failed commit)',
  },
  'keys-file': {
    env: 'DATAPULSE_KEYS_FILE',
    kind: 'string',
    default: '',
    help: 'JSON file of API keys as hashes (npm run new-key prints an entry); any key turns authentication on',
  },
  'api-keys': {
    env: 'DATAPULSE_API_KEYS',
    kind: 'string',
    default: '',
    help: 'API keys as hashes, the same JSON as the keys file, for containers',
  },
  insecure: {
    env: 'DATAPULSE_INSECURE',
    kind: 'flag',
    default: false,
    help: 'allow a non-loopback --host with no API keys (anyone who reaches the port can do anything)',
  },
  'allowed-hosts': {
    env: 'DATAPULSE_ALLOWED_HOSTS',
    kind: 'string',
    default: '',
    help: "Host header names accepted besides the listen address and localhost (comma-separated; '*' = any)",
  },
  'cors-origin': {
    env: 'DATAPULSE_CORS_ORIGIN',
    kind: 'string',
    default: '',
    help: 'origins (scheme://host[:port], comma-separated) whose pages may call the API; unset: none',
  },
  'tls-cert': {
    env: 'DATAPULSE_TLS_CERT',
    kind: 'string',
    default: '',
    help: 'PEM certificate: serve HTTPS',
  },
  'tls-key': { env: 'DATAPULSE_TLS_KEY', kind: 'string', default: '', help: 'PEM private key of --tls-cert' },
  'rate-limit-ingest': {
    env: 'DATAPULSE_RATE_LIMIT_INGEST',
    kind: 'int',
    default: 6_000,
    min: 0,
    max: 100_000_000,
    help: 'ingest requests per minute per key (or per address without one); 0 = no limit',
  },
  'rate-limit-api': {
    env: 'DATAPULSE_RATE_LIMIT_API',
    kind: 'int',
    default: 1_200,
    min: 0,
    max: 100_000_000,
    help: 'other API requests per minute per key (or per address without one); 0 = no limit',
  },
  'rate-limit-loopback': {
    env: 'DATAPULSE_RATE_LIMIT_LOOPBACK',
    kind: 'flag',
    default: false,
    help: 'apply the rate limits to loopback callers too',
  },
  'metrics-open-on-loopback': {
    env: 'DATAPULSE_METRICS_OPEN_ON_LOOPBACK',
    kind: 'flag',
    default: false,
    help: 'serve /metrics to loopback callers without a key (a local Prometheus)',
  },
} as const

type Options = typeof OPTIONS
export type OptionName = keyof Options

export interface Config {
  port: number
  host: string
  dataDir: string
  /** '' until the wiring reads (or makes) the one kept in the data dir */
  instanceId: string
  /** '' for the default (see advertisedUrl) */
  advertiseUrl: string
  clusterLeaseMs: number
  logLevel: string
  bodyLimit: number
  maxBatch: number
  fsync: 'batch' | 'always' | 'off'
  logSegmentBytes: number
  logRetentionHours: number
  logRetentionBytes: number
  logCacheEvents: number
  defaultTopic: string
  maxKeysPerWindow: number
  maxWindowsPerEvent: number
  maxLag: number
  maxPendingResults: number
  ingestMemoryLimitMb: number
  maxConnections: number
  maxStreams: number
  deadLetterLimit: number
  checkpointIntervalMs: number
  metricsRetentionDays: number
  metricsRollupDays: number
  metricsMaxPoints: number
  /** set when KAFKA_BROKERS is: topics are Kafka topics */
  kafka: KafkaSettings | null
  /** set when DATABASE_URL is: the store is PostgreSQL */
  databaseUrl: string | null
  databasePoolSize: number
  databaseStatementTimeoutMs: number
  /** configured API keys (hashes), from --keys-file and --api-keys */
  apiKeys: ApiKeyRecord[]
  insecure: boolean
  allowedHosts: string[]
  corsOrigins: string[]
  tls: { cert: Buffer; key: Buffer } | null
  rateLimitIngest: number
  rateLimitApi: number
  rateLimitLoopback: boolean
  metricsOpenOnLoopback: boolean
}

export class ConfigError extends Error {}

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
}

/** Reads flags, then environment variables, then defaults; a bad value stops start-up with one line. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  let flags: Record<string, string | boolean | undefined>
  try {
    flags = parseArgs({
      args: argv,
      options: Object.fromEntries(
        Object.entries(OPTIONS).map(([name, o]) => [
          name,
          { type: o.kind === 'flag' ? 'boolean' : 'string' },
        ]),
      ) as Record<string, { type: 'boolean' | 'string' }>,
      strict: true,
      allowPositionals: false,
    }).values
  } catch (err) {
    throw new ConfigError((err as Error).message)
  }
  const out: Record<string, string | number | boolean> = {}
  for (const [name, option] of Object.entries(OPTIONS) as Array<[OptionName, Options[OptionName]]>) {
    const flag = flags[name]
    const raw = typeof flag === 'boolean' ? String(flag) : (flag ?? env[option.env])
    const source = flags[name] !== undefined ? `--${name}` : option.env
    let value: string | number | boolean = option.default
    if (raw !== undefined && raw !== '') {
      if (option.kind === 'flag') {
        if (!['true', 'false', '1', '0'].includes(raw))
          throw new ConfigError(`${source} must be true or false, got '${raw}'`)
        value = raw === 'true' || raw === '1'
      } else if (option.kind === 'int') {
        const n = Number(raw)
        if (!Number.isInteger(n) || n < option.min || n > option.max)
          throw new ConfigError(
            `${source} must be an integer from ${option.min} to ${option.max}, got '${raw}'`,
          )
        value = n
      } else if (option.kind === 'enum') {
        if (!(option.values as readonly string[]).includes(raw))
          throw new ConfigError(`${source} must be one of ${option.values.join(', ')}, got '${raw}'`)
        value = raw
      } else value = raw
    }
    out[camel(name)] = value
  }
  if (out.instanceId !== '' && !INSTANCE_ID.test(String(out.instanceId)))
    throw new ConfigError(
      `--instance-id is 1 to 100 letters, digits, '.', '_' or '-', got '${out.instanceId}'`,
    )
  if (out.advertiseUrl !== '' && !/^https?:\/\/[^/\s]+$/.test(String(out.advertiseUrl)))
    throw new ConfigError(`--advertise-url must be scheme://host[:port], got '${out.advertiseUrl}'`)
  if (!isTopicName(out.defaultTopic))
    throw new ConfigError(`--default-topic ${TOPIC_RULE}, got '${out.defaultTopic}'`)
  const databaseUrl = out.databaseUrl === '' ? null : String(out.databaseUrl)
  if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl))
    throw new ConfigError('DATABASE_URL must be a postgres:// (or postgresql://) URL')
  const kafka =
    out.kafkaBrokers === ''
      ? null
      : {
          brokers: String(out.kafkaBrokers)
            .split(',')
            .map((b) => b.trim())
            .filter((b) => b.length > 0),
          clientId: String(out.kafkaClientId),
          partitions: out.kafkaPartitions as number,
          replication: out.kafkaReplication as number,
          sasl:
            out.kafkaSaslMechanism === ''
              ? undefined
              : {
                  mechanism: out.kafkaSaslMechanism as 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512',
                  username: String(out.kafkaSaslUsername),
                  password: String(out.kafkaSaslPassword),
                },
          tls: out.kafkaTls === 'true',
          compression: out.kafkaCompression as KafkaSettings['compression'],
          delivery: out.kafkaDelivery as KafkaSettings['delivery'],
        }
  if (kafka && !kafka.brokers.every((b) => /^[^\s:]+:\d{1,5}$/.test(b)))
    throw new ConfigError(`KAFKA_BROKERS must be host:port[,host:port…], got '${out.kafkaBrokers}'`)
  const security = securitySettings(out)
  for (const k of Object.keys(out))
    if (k.startsWith('kafka') || k === 'databaseUrl' || k === 'keysFile' || k.startsWith('tls')) delete out[k]
  return {
    ...(out as unknown as Omit<Config, 'kafka' | 'databaseUrl' | keyof typeof security>),
    kafka,
    databaseUrl,
    ...security,
  }
}

/** An instance id: also a Kafka group.instance.id, so no spaces. */
export const INSTANCE_ID = /^[A-Za-z0-9._-]{1,100}$/

function list(value: string | number | boolean): string[] {
  return String(value)
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v.length > 0)
}

function readFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path)
  } catch (err) {
    throw new ConfigError(`${what} '${path}' cannot be read: ${(err as NodeJS.ErrnoException).code ?? err}`)
  }
}

/** Keys, hosts, origins and TLS: the settings DESIGN §8 "Security" names. */
function securitySettings(out: Record<string, string | number | boolean>) {
  const apiKeys: ApiKeyRecord[] = []
  try {
    if (out.keysFile !== '')
      apiKeys.push(
        ...parseConfiguredKeys(
          readFile(String(out.keysFile), '--keys-file').toString('utf8'),
          'file',
          '--keys-file',
        ),
      )
    if (out.apiKeys !== '')
      apiKeys.push(...parseConfiguredKeys(String(out.apiKeys), 'env', 'DATAPULSE_API_KEYS'))
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError((err as Error).message)
  }
  const ids = new Set<string>()
  for (const k of apiKeys) {
    if (ids.has(k.id)) throw new ConfigError(`API key id '${k.id}' is configured twice`)
    ids.add(k.id)
  }
  const corsOrigins = list(out.corsOrigin)
  for (const origin of corsOrigins)
    if (!/^https?:\/\/[^/\s]+$/.test(origin))
      throw new ConfigError(`--cors-origin entries must be scheme://host[:port], got '${origin}'`)
  if ((out.tlsCert === '') !== (out.tlsKey === ''))
    throw new ConfigError('--tls-cert and --tls-key go together: give both or neither')
  const tls =
    out.tlsCert === ''
      ? null
      : { cert: readFile(String(out.tlsCert), '--tls-cert'), key: readFile(String(out.tlsKey), '--tls-key') }
  const allowedHosts = list(out.allowedHosts).map((h) => h.toLowerCase())
  delete out.apiKeys
  delete out.corsOrigin
  delete out.allowedHosts
  return { apiKeys, corsOrigins, allowedHosts, tls }
}

/** Rows for the README's configuration table. */
export function describeOptions(): Array<{ flag: string; env: string; default: string; help: string }> {
  return Object.entries(OPTIONS).map(([name, o]) => ({
    flag: `--${name}`,
    env: o.env,
    default: String(o.default),
    help: o.help,
  }))
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost'])

/** Without API keys the server stays on loopback; a wider --host needs --insecure, and says so at every start. */
export function checkExposure(config: Config, keysRequired: boolean): { refuse?: string; warn?: string } {
  const loopback = LOOPBACK_HOSTS.has(config.host) || config.host.startsWith('127.')
  if (keysRequired || loopback) return {}
  if (!config.insecure)
    return {
      refuse: `refusing --host ${config.host} with no API keys (anyone who reaches the port could do anything): configure keys (--keys-file, npm run new-key) or pass --insecure`,
    }
  return {
    warn: `INSECURE: listening on ${config.host} with no API keys: anyone who reaches port ${config.port} can read, change and delete everything`,
  }
}
