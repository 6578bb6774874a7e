import Type from 'typebox'
import type { Runtime } from '../../runtime/runtime.ts'
import { VERSION } from '../../version.ts'
import type { Server } from '../server-type.ts'
import { pipelineJson } from './pipelines.ts'

export function healthRoutes(app: Server, runtime: Runtime): void {
  app.get(
    '/',
    {
      schema: {
        operationId: 'health',
        summary: 'Health check',
        tags: ['health'],
        response: {
          200: Type.Object({ status: Type.String(), service: Type.String(), version: Type.String() }),
        },
      },
      config: { role: 'public' },
    },
    async (request, reply) => {
      // a browser asking for a page gets the dashboard; everything else the JSON health check
      const accept = request.headers.accept ?? ''
      if (accept.includes('text/html') && !accept.includes('application/json')) return reply.redirect('/ui')
      return { status: 'ok', service: 'datapulse', version: VERSION }
    },
  )

  app.get(
    '/metrics',
    {
      schema: {
        operationId: 'prometheusMetrics',
        summary: "Prometheus exposition of the engine's own metrics",
        tags: ['health'],
      },
      config: { role: 'read' },
    },
    async (_request, reply) => {
      const body = await runtime.telemetry.registry.metrics()
      return reply.type(runtime.telemetry.registry.contentType).send(body)
    },
  )

  app.get(
    '/api/stats',
    {
      schema: {
        operationId: 'getStats',
        summary: 'Engine statistics',
        tags: ['health'],
        response: {
          200: Type.Object(
            {
              service: Type.String(),
              version: Type.String(),
              instance: Type.Object({
                id: Type.String({ description: 'this instance (its name in a cluster)' }),
                clustered: Type.Boolean(),
              }),
              uptime_seconds: Type.Integer(),
              events: Type.Object({ ingested_total: Type.Integer(), per_second: Type.Number() }),
              pipelines: Type.Object({
                total: Type.Integer(),
                running: Type.Integer(),
                items: Type.Array(
                  Type.Object(
                    {
                      id: Type.String(),
                      name: Type.String(),
                      status: Type.String(),
                      stats: Type.Record(Type.String(), Type.Unknown()),
                    },
                    { additionalProperties: true },
                  ),
                ),
              }),
              queues: Type.Record(Type.String(), Type.Integer(), {
                description: 'lag of each pipeline, by name',
              }),
              late_events: Type.Integer(),
              error_events: Type.Integer(),
              filtered_events: Type.Integer(),
              metrics: Type.Object({ series: Type.Integer() }),
              memory: Type.Object({
                rss_bytes: Type.Integer(),
                heap_used_bytes: Type.Integer(),
                heap_total_bytes: Type.Integer({
                  description: 'the JavaScript heap as reserved (used + free)',
                }),
                external_bytes: Type.Integer({ description: 'buffers and other memory outside the heap' }),
              }),
            },
            { additionalProperties: true },
          ),
        },
      },
      config: { role: 'read' },
    },
    async () => {
      const pipelines = runtime.listPipelines()
      const memory = process.memoryUsage()
      let late = 0
      let errors = 0
      let filtered = 0
      for (const p of pipelines) {
        late += p.stats.late
        errors += p.stats.errors
        filtered += p.stats.filtered
      }
      const series = await runtime.store.countSeries()
      return {
        service: 'datapulse',
        version: VERSION,
        instance: { id: runtime.config.instanceId, clustered: runtime.cluster !== undefined },
        uptime_seconds: Math.round((runtime.clock() - runtime.startedAt) / 1000),
        events: { ingested_total: runtime.ingested, per_second: runtime.ingestRate.perSecond() },
        pipelines: {
          total: pipelines.length,
          running: pipelines.filter((p) => p.record.status === 'running').length,
          items: pipelines.map((p) => {
            const j = pipelineJson(p)
            return { id: j.id, name: j.name, status: j.status, stats: j.stats }
          }),
        },
        queues: Object.fromEntries(pipelines.map((p) => [p.record.name, p.lag])),
        late_events: late,
        error_events: errors,
        filtered_events: filtered,
        metrics: { series },
        memory: {
          rss_bytes: memory.rss,
          heap_used_bytes: memory.heapUsed,
          heap_total_bytes: memory.heapTotal,
          external_bytes: memory.external,
        },
      }
    },
  )
}
