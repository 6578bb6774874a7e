import { buildApp } from './app.ts'
import { type Config, ConfigError, checkExposure, describeOptions, loadConfig } from './config.ts'
import { createLogger } from './logger.ts'
import { VERSION } from './version.ts'

/** `datapulse serve --help`: every flag with its environment variable and default, from the one option table. */
export function serveHelp(): string {
  const rows = describeOptions()
  const width = Math.max(...rows.map((r) => r.flag.length))
  return [
    'usage: datapulse serve [flags]   (npm start -- [flags])',
    '',
    'Every flag is also an environment variable; flags win. A bad value stops start-up with one line.',
    '',
    ...rows.map(
      (r) =>
        `  ${r.flag.padEnd(width)}  ${r.env}${r.default === '' ? '' : ` (default ${r.default})`}\n  ${' '.repeat(width)}  ${r.help}`,
    ),
    '',
    `  ${'--help'.padEnd(width)}  this text`,
    `  ${'--version'.padEnd(width)}  the version`,
  ].join('\n')
}

/** What the server says at start, for a person: mode, data, where the API, dashboard and docs are. */
export function startBanner(config: Config, url: string, keys: number): string[] {
  const store = config.databaseUrl ? `PostgreSQL store at ${redactUrl(config.databaseUrl)}` : 'SQLite store'
  const log = config.kafka ? `Kafka at ${config.kafka.brokers.join(',')}` : 'embedded log'
  const cluster =
    config.kafka && config.databaseUrl
      ? [
          `  instance ${config.instanceId} of the cluster on this database and these brokers (GET /api/cluster)`,
        ]
      : []
  return [
    `datapulse ${VERSION}: ${log}, ${store}, data in ${config.dataDir}`,
    ...cluster,
    `  API ${url}/api   dashboard ${url}/ui   docs ${url}/docs`,
    keys > 0
      ? `  authentication on (${keys} API key${keys === 1 ? '' : 's'}): requests need Authorization: Bearer <key>`
      : '  no API keys: open to whoever reaches this address (see README "Security")',
  ]
}

/** Runs the server until SIGTERM/SIGINT; exit 2 on bad configuration. */
export async function serve(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${serveHelp()}\n`)
    return
  }
  if (argv.includes('--version')) {
    process.stdout.write(`${VERSION}\n`)
    return
  }
  let config: Config
  try {
    config = loadConfig(argv, process.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(
        `datapulse: invalid configuration: ${err.message} (datapulse serve --help lists the flags)\n`,
      )
      process.exit(2)
    }
    throw err
  }
  const logger = createLogger(config.logLevel)
  const { app, runtime } = await buildApp({ config, logger })
  const exposure = checkExposure(config, runtime.keys.required)
  if (exposure.refuse) {
    process.stderr.write(`datapulse: ${exposure.refuse}\n`)
    await app.ready()
    await app.close()
    process.exit(2)
  }
  if (exposure.warn) logger.warn(exposure.warn)
  let closing = false
  const shutdown = (signal: string) => {
    if (closing) return
    closing = true
    logger.info({ signal }, 'shutting down: finishing in-flight requests, checkpointing pipelines')
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
  await app.listen({ port: config.port, host: config.host })
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : config.port
  runtime.advertise(port)
  const host = config.host.includes(':') ? `[${config.host}]` : config.host
  const url = `${config.tls ? 'https' : 'http'}://${host}:${port}`
  process.stderr.write(`${startBanner(runtime.config, url, runtime.keys.list().length).join('\n')}\n`)
}

/** A connection URL without its password, for printing. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return 'the configured database'
  }
}
