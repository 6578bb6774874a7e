import { buildApp } from './app.ts'
import { ConfigError, checkExposure, loadConfig } from './config.ts'
import { createLogger } from './logger.ts'

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>
  try {
    config = loadConfig(process.argv.slice(2), process.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`datapulse: invalid configuration: ${err.message}\n`)
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
}

main().catch((err: unknown) => {
  process.stderr.write(`datapulse: failed to start: ${(err as Error).message}\n`)
  process.exit(1)
})
