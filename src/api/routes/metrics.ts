import Type from 'typebox'
import { TIME_RULE } from '../../engine/events.ts'
import type { Issue } from '../../engine/types.ts'
import { isPlainObject } from '../../engine/types.ts'
import { AppError, validationError } from '../../errors.ts'
import { parsePoint, parseStep } from '../../metrics/points.ts'
import type { Runtime } from '../../runtime/runtime.ts'
import { MAX_QUERY_SERIES } from '../../stores/metrics-plan.ts'
import { METRIC_AGGS, type MetricAgg, type MetricPoint } from '../../stores/store.ts'
import { queryTime, sendError } from '../reply.ts'
import { documentOnly, errors } from '../schemas/common.ts'
import type { Server } from '../server-type.ts'

const Point = Type.Object(
  {
    name: Type.String({ maxLength: 256 }),
    value: Type.Number(),
    tags: Type.Optional(Type.Record(Type.String({ maxLength: 128 }), Type.String({ maxLength: 1024 }))),
    timestamp: Type.Optional(
      Type.Union([Type.String({ format: 'date-time' }), Type.Number(), Type.Null()], {
        description: 'RFC 3339 or epoch ms; absent or null: now',
      }),
    ),
  },
  { additionalProperties: false },
)

/** Most points one query may scan, and buckets it may return. */
const MAX_SCAN = 5_000_000
const MAX_BUCKETS = 100_000

export function metricRoutes(app: Server, runtime: Runtime): void {
  app.post(
    '/api/metrics',
    {
      schema: {
        operationId: 'writeMetrics',
        summary: 'Record one point, or {"metrics":[…]}',
        tags: ['metrics'],
        body: Type.Union([
          Point,
          Type.Object({ metrics: Type.Array(Point) }, { additionalProperties: false }),
        ]),
        response: { 200: Type.Object({ accepted: Type.Integer() }), ...errors(400, 413, 415) },
      },
      validatorCompiler: documentOnly,
      config: { role: 'write' },
    },
    async (request, reply) => {
      const body = request.body
      const now = runtime.clock()
      const issues: Issue[] = []
      const points: MetricPoint[] = []
      if (isPlainObject(body) && 'metrics' in body) {
        const list = body.metrics
        if (Object.keys(body).length !== 1)
          issues.push({ path: '/', message: 'a batch has only the field metrics' })
        if (!Array.isArray(list) || list.length === 0 || list.length > runtime.config.maxBatch)
          issues.push({
            path: '/metrics',
            message: `must be an array of 1 to ${runtime.config.maxBatch} points`,
          })
        else
          for (let i = 0; i < list.length && issues.length < 20; i++) {
            const p = parsePoint(list[i], i, now, issues)
            if (p) points.push(p)
          }
      } else {
        const p = parsePoint(body, -1, now, issues)
        if (p) points.push(p)
      }
      if (issues.length > 0) return sendError(reply, validationError(issues))
      await runtime.store.writeMetrics(points)
      return { accepted: points.length }
    },
  )

  app.get(
    '/api/metrics',
    {
      schema: {
        operationId: 'queryMetrics',
        summary: 'Without name: the series. With name (and tag.<k>=<v>, from, to, step, agg): the points',
        tags: ['metrics'],
        querystring: Type.Object(
          {
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
            from: Type.Optional(Type.String()),
            to: Type.Optional(Type.String()),
            step: Type.Optional(Type.String()),
            agg: Type.Optional(Type.Union(METRIC_AGGS.map((a) => Type.Literal(a)))),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
            offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000 })),
          },
          { additionalProperties: true, description: 'plus tag.<key>=<value> filters' },
        ),
        response: {
          200: Type.Union([
            Type.Object(
              {
                total: Type.Integer(),
                series: Type.Array(
                  Type.Object({
                    name: Type.String(),
                    tags: Type.Record(Type.String(), Type.String()),
                    last_value: Type.Number(),
                    last_timestamp: Type.String(),
                    points: Type.Integer(),
                  }),
                ),
              },
              { description: 'without name: the series' },
            ),
            Type.Object(
              {
                series: Type.Array(
                  Type.Object({
                    name: Type.String(),
                    tags: Type.Record(Type.String(), Type.String()),
                    points: Type.Array(
                      Type.Object({
                        timestamp: Type.String(),
                        value: Type.Union([Type.Number(), Type.Null()]),
                      }),
                    ),
                  }),
                ),
              },
              { description: 'with name: the points' },
            ),
          ]),
          ...errors(400),
        },
      },
      config: { role: 'read' },
    },
    async (request, reply) => {
      const q = request.query as Record<string, string | number | undefined>
      if (q.name === undefined) {
        const { series, total } = await runtime.store.listSeries(
          (q.limit as number) ?? 1_000,
          (q.offset as number) ?? 0,
        )
        return {
          total,
          series: series.map((s) => ({
            name: s.name,
            tags: s.tags,
            last_value: s.lastValue,
            last_timestamp: new Date(s.lastTimestamp).toISOString(),
            points: s.points,
          })),
        }
      }
      const now = runtime.clock()
      const from = queryTime(q.from as string | undefined)
      const to = queryTime(q.to as string | undefined)
      const issues: Issue[] = []
      if (from === null) issues.push({ path: '/querystring/from', message: TIME_RULE })
      if (to === null) issues.push({ path: '/querystring/to', message: TIME_RULE })
      const end = to ?? now + 1
      const start = from ?? end - 3_600_000
      if (issues.length === 0 && start >= end)
        issues.push({ path: '/querystring/from', message: 'must be before to' })
      const stepMs = q.step === undefined ? 60_000 : parseStep(String(q.step))
      if (stepMs === undefined)
        issues.push({ path: '/querystring/step', message: 'must be a duration: 60, 60s, 5m, 1h, 1d' })
      else if ((end - start) / stepMs > MAX_BUCKETS)
        issues.push({
          path: '/querystring/step',
          message: `gives more than ${MAX_BUCKETS} buckets over this range; use a larger step`,
        })
      if (issues.length > 0) return sendError(reply, validationError(issues))
      const tags: Record<string, string> = {}
      for (const [k, v] of Object.entries(q))
        if (k.startsWith('tag.') && typeof v === 'string') tags[k.slice(4)] = v
      const result = await runtime.store.queryMetrics({
        name: q.name as string,
        tags,
        from: start,
        to: end,
        stepMs: stepMs as number,
        agg: (q.agg as MetricAgg | undefined) ?? 'avg',
        maxPoints: MAX_SCAN,
      })
      if (!Array.isArray(result))
        return sendError(
          reply,
          new AppError(
            'validation_error',
            result.what === 'series'
              ? `the query matches ${result.tooMany} series (at most ${MAX_QUERY_SERIES}); add tag filters`
              : `the query would scan ${result.tooMany} points (at most ${MAX_SCAN}); narrow the range or the tags`,
            [{ path: '/querystring', message: `too many ${result.what}` }],
          ),
        )
      return {
        series: result.map((s) => ({
          name: s.name,
          tags: s.tags,
          points: s.points.map((p) => ({ timestamp: new Date(p.timestamp).toISOString(), value: p.value })),
        })),
      }
    },
  )
}
