import type { SwaggerOptions } from '@fastify/swagger'
import { VERSION } from '../version.ts'

type Operation = {
  operationId?: string
  parameters?: Array<Record<string, unknown>>
  responses?: Record<string, { description?: string; content?: Record<string, unknown> }>
}
type Document = { paths?: Record<string, Record<string, Operation>> }

/** What a route schema cannot say by itself: the query parameters with a name pattern, non-JSON bodies. */
function complete(doc: Document): Document {
  const op = (path: string, method: string) => doc.paths?.[path]?.[method]
  const patterned = (name: string, description: string) => ({
    name,
    in: 'query',
    required: false,
    style: 'form',
    explode: true,
    description,
    schema: { type: 'object', additionalProperties: { type: 'string' } },
  })
  op('/api/pipelines/{id}/window', 'get')?.parameters?.push(
    patterned(
      'key',
      'group-key filters, sent as key.<group-by path>=<value> (typed: a string, a JSON number, true/false, null)',
    ),
  )
  op('/api/metrics', 'get')?.parameters?.push(patterned('tag', 'tag filters, sent as tag.<key>=<value>'))
  const text = (type: string, description: string) => ({
    200: { description, content: { [type]: { schema: { type: 'string' } } } },
  })
  const prometheus = op('/metrics', 'get')
  if (prometheus) prometheus.responses = text('text/plain', 'Prometheus text exposition')
  const stream = op('/api/stream', 'get')
  if (stream)
    stream.responses = {
      ...text('text/event-stream', 'events: stats every second; windows and dead_letters when they change'),
      503: { description: 'too many streams are open' },
    }
  // what the access layer may answer on any route (api/access.ts)
  const error = (description: string) => ({
    description,
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  })
  for (const [path, methods] of Object.entries(doc.paths ?? {}))
    for (const operation of Object.values(methods)) {
      operation.responses ??= {}
      const responses = operation.responses
      responses['403'] ??= error(
        'a Host this server does not answer to, a foreign origin, or a key without the role',
      )
      if (path === '/') continue
      responses['401'] ??= error('no API key, or one that is not valid (once keys exist)')
      if (path.startsWith('/api/')) responses['429'] ??= error('rate limit or overload (Retry-After)')
    }
  return doc
}

/** The OpenAPI document's frame: version, servers, security, named schemas. */
export const openapiOptions: SwaggerOptions = {
  openapi: {
    openapi: '3.1.0',
    info: {
      title: 'DataPulse',
      license: { name: 'MIT', identifier: 'MIT' },
      version: VERSION,
      description:
        'Streaming analytics: ingest events, run pipelines of filter/map/enrich/windowed aggregates, read results.',
    },
    servers: [{ url: '/', description: 'this server' }],
    tags: [
      { name: 'health', description: 'health, statistics, Prometheus metrics, the live stream' },
      { name: 'pipelines', description: 'pipelines, their windows and dead letters' },
      { name: 'events', description: 'ingestion' },
      { name: 'metrics', description: 'the time-series store' },
      { name: 'lookups', description: 'lookup tables for enrich' },
      { name: 'keys', description: 'API keys (admin)' },
    ],
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'an API key: dp_…' } },
    },
    security: [{ apiKey: [] }],
  },
  // shared schemas keep their own name (Error), not def-0
  refResolver: {
    buildLocalReference: (json, _baseUri, _fragment, i) =>
      typeof json.$id === 'string' ? json.$id : `def-${i}`,
  },
  transformObject: (documentObject) =>
    complete(('openapiObject' in documentObject ? documentObject.openapiObject : {}) as Document) as never,
}
