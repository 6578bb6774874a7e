import Type from 'typebox'
import { isTopicName, TOPIC_PATTERN, TOPIC_RULE } from '../../engine/pipeline-spec.ts'
import { isPlainObject } from '../../engine/types.ts'
import { validationError } from '../../errors.ts'
import type { Runtime } from '../../runtime/runtime.ts'
import { rawBodyOf } from '../raw-body.ts'
import { respond, sendError } from '../reply.ts'
import { documentOnly, errors } from '../schemas/common.ts'
import type { Server } from '../server-type.ts'

export const IngestBody = Type.Object(
  {
    events: Type.Array(
      Type.Object(
        {
          event_type: Type.String({ minLength: 1, maxLength: 256 }),
          source: Type.String({ minLength: 1, maxLength: 256 }),
          data: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
          timestamp: Type.Optional(
            Type.Union([Type.String({ format: 'date-time' }), Type.Number(), Type.Null()], {
              description: 'RFC 3339 or epoch ms; absent or null: the time of arrival',
            }),
          ),
          id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
        },
        { additionalProperties: false },
      ),
    ),
    topic: Type.Optional(Type.String({ pattern: TOPIC_PATTERN.source })),
  },
  { additionalProperties: false },
)

export function eventRoutes(app: Server, runtime: Runtime): void {
  app.addHook('onResponse', async (request, reply) => {
    if (request.routeOptions.url === '/api/events/ingest')
      runtime.telemetry.ingestRequests.inc({ status: String(reply.statusCode) })
  })

  app.post(
    '/api/events/ingest',
    {
      schema: {
        operationId: 'ingestEvents',
        summary: 'Ingest events: to `topic`, or to every running pipeline; acknowledged once durable',
        tags: ['events'],
        body: IngestBody,
        response: {
          200: Type.Object({ accepted: Type.Integer(), topics: Type.Array(Type.String()) }),
          ...errors(400, 413, 415, 429, 503),
        },
      },
      // checked by normalizeEvents in one pass (exact paths, no second walk on the hot path)
      validatorCompiler: documentOnly,
      config: { role: 'write' },
    },
    async (request, reply) => {
      const body = request.body
      if (!isPlainObject(body))
        return sendError(reply, validationError([{ path: '/', message: 'must be an object {"events":[…]}' }]))
      for (const key of Object.keys(body))
        if (key !== 'events' && key !== 'topic')
          return sendError(
            reply,
            validationError([{ path: `/${key}`, message: 'unknown field (expected events, topic)' }]),
          )
      if (!Array.isArray(body.events))
        return sendError(
          reply,
          validationError([{ path: '/events', message: 'is required: an array of events' }]),
        )
      const topic = body.topic
      if (topic !== undefined && !isTopicName(topic))
        return sendError(reply, validationError([{ path: '/topic', message: TOPIC_RULE }]))
      const outcome = await runtime.ingest(body.events, topic as string | undefined, rawBodyOf(body))
      if (outcome.ok) runtime.telemetry.ingestBytes.inc(Number(request.headers['content-length'] ?? 0))
      return respond(reply, outcome, (v) => v)
    },
  )
}
