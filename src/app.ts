import { join } from 'node:path'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyBaseLogger, LogController } from 'fastify'
import { guardAccess } from './api/access.ts'
import { limitConnections } from './api/connection-limit.ts'
import { forwardToOwner } from './api/forward.ts'
import { clientErrorHandler, frameworkErrors, routeNotFound } from './api/framework-errors.ts'
import { openapiOptions } from './api/openapi.ts'
import { rememberRawBody } from './api/raw-body.ts'
import { errorHandler } from './api/reply.ts'
import { clusterRoutes } from './api/routes/cluster.ts'
import { eventRoutes } from './api/routes/events.ts'
import { healthRoutes } from './api/routes/health.ts'
import { keyRoutes } from './api/routes/keys.ts'
import { lookupRoutes } from './api/routes/lookups.ts'
import { metricRoutes } from './api/routes/metrics.ts'
import { pipelineRoutes } from './api/routes/pipelines.ts'
import { streamRoutes } from './api/routes/stream.ts'
import { uiRoutes } from './api/routes/ui.ts'
import { ErrorBody } from './api/schemas/common.ts'
import type { Server } from './api/server-type.ts'
import type { RouteRole } from './auth/key-types.ts'
import type { Config } from './config.ts'
import { EmbeddedLog } from './log/embedded-log.ts'
import { KafkaLog } from './log/kafka-log.ts'
import type { EventLog } from './log/log.ts'
import type { Logger } from './logger.ts'
import { instanceId } from './runtime/instance-id.ts'
import { Runtime } from './runtime/runtime.ts'
import { PostgresStore } from './stores/postgres/postgres-store.ts'
import { SqliteStore } from './stores/sqlite/sqlite-store.ts'
import type { Store } from './stores/store.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** who may call the route once API keys exist (DESIGN §8); enforced by api/access.ts */
    role?: RouteRole
  }
}

const SWAGGER_UI_STYLE = "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"

export interface AppOptions {
  config: Config
  logger: Logger
  clock?: () => number
}

/** PostgreSQL when DATABASE_URL is set, else SQLite in the data dir. */
async function openStore(config: Config): Promise<Store> {
  return config.databaseUrl
    ? await PostgresStore.open(config.databaseUrl, {
        poolSize: config.databasePoolSize,
        statementTimeoutMs: config.databaseStatementTimeoutMs,
      })
    : new SqliteStore(join(config.dataDir, 'datapulse.db'))
}

/** Kafka when KAFKA_BROKERS is set, else the embedded log in the data dir. */
function openLog(config: Config, logger: Logger, clock: (() => number) | undefined): EventLog {
  return config.kafka
    ? new KafkaLog({ ...config.kafka, instanceId: config.instanceId }, logger, clock)
    : new EmbeddedLog({
        dir: join(config.dataDir, 'log'),
        fsync: config.fsync,
        cacheEvents: config.logCacheEvents,
        segmentBytes: config.logSegmentBytes,
        logger,
        clock,
      })
}

/** The whole server as a Fastify instance; the runtime opens with it and closes in onClose. */
export async function buildApp(options: AppOptions): Promise<{ app: Server; runtime: Runtime }> {
  const { logger } = options
  const config = {
    ...options.config,
    instanceId: instanceId(options.config.instanceId, options.config.dataDir),
  }
  const store = await openStore(config)
  const runtime = await Runtime.open({
    config,
    logger,
    clock: options.clock,
    store,
    log: openLog(config, logger, options.clock),
  })
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: config.bodyLimit,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // ids and table names are checked by their schemas (a 400 naming the field), up to this length
    routerOptions: { maxParamLength: 1_024 },
    frameworkErrors,
    clientErrorHandler,
    ...(config.tls ? { https: { cert: config.tls.cert, key: config.tls.key } } : {}),
  }).withTypeProvider<TypeBoxTypeProvider>()
  const notFound = routeNotFound(app)

  app.addHook('onClose', async () => runtime.close())
  // plain JSON.parse: every handler checks keys itself and reports '__proto__' with its path
  app.removeContentTypeParser(['application/json', 'text/plain'])
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
    try {
      // an empty body is no body (POST …/start with Content-Type: application/json and nothing else)
      if ((body as Buffer).length === 0) return done(null, undefined)
      const parsed: unknown = JSON.parse((body as Buffer).toString('utf8'))
      rememberRawBody(parsed, body as Buffer)
      done(null, parsed)
    } catch (err) {
      done(Object.assign(err as Error, { statusCode: 400 }), undefined)
    }
  })

  limitConnections(app, config.maxConnections)
  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler(notFound)
  app.addSchema(ErrorBody)
  await guardAccess(app, config, runtime.keys, runtime.clock)

  await app.register(swagger, openapiOptions)
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    // Swagger UI adds one <style> of its own: allowed by its hash on /docs only
    transformStaticCSP: (csp) => csp.replace("style-src 'self'", `style-src 'self' ${SWAGGER_UI_STYLE}`),
  })

  forwardToOwner(app, runtime)
  healthRoutes(app, runtime)
  clusterRoutes(app, runtime)
  pipelineRoutes(app, runtime)
  eventRoutes(app, runtime)
  metricRoutes(app, runtime)
  lookupRoutes(app, runtime)
  keyRoutes(app, runtime)
  streamRoutes(app, runtime)
  uiRoutes(app)
  return { app, runtime }
}
