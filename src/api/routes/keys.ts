import Type from 'typebox'
import { KEY_ID_PATTERN } from '../../auth/api-keys.ts'
import { type ApiKeyRecord, ROLES } from '../../auth/key-types.ts'
import type { Runtime } from '../../runtime/runtime.ts'
import { respond, sendError } from '../reply.ts'
import { documentOnly, errors } from '../schemas/common.ts'
import type { Server } from '../server-type.ts'

const RoleSchema = Type.Union([Type.Literal('read'), Type.Literal('write'), Type.Literal('admin')], {
  description: `one of ${ROLES.join(', ')}`,
})

const KeyJson = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: RoleSchema,
  source: Type.Union([Type.Literal('file'), Type.Literal('env'), Type.Literal('api')]),
  created_at: Type.Union([Type.String(), Type.Null()]),
  expires_at: Type.Union([Type.String(), Type.Null()]),
})

function keyJson(k: ApiKeyRecord) {
  return {
    id: k.id,
    name: k.name,
    role: k.role,
    source: k.source,
    // configured keys have no creation time the server knows
    created_at: k.source === 'api' ? new Date(k.createdAt).toISOString() : null,
    expires_at: k.expiresAt === null ? null : new Date(k.expiresAt).toISOString(),
  }
}

/** Run-time API keys (admin only): a new key is shown once, in the answer that makes it. */
export function keyRoutes(app: Server, runtime: Runtime): void {
  app.post(
    '/api/keys',
    {
      schema: {
        operationId: 'createKey',
        summary: 'Make an API key (the key is in this answer only; the server keeps its hash)',
        tags: ['keys'],
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 100 }),
            role: RoleSchema,
            expires_at: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()])),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Intersect([KeyJson, Type.Object({ key: Type.String() })]),
          ...errors(400, 409),
        },
      },
      validatorCompiler: documentOnly,
      config: { role: 'admin' },
    },
    async (request, reply) =>
      respond(
        reply,
        await runtime.keys.create(request.body, runtime.clock()),
        ({ record, key }) => ({ ...keyJson(record), key }),
        201,
      ),
  )

  app.get(
    '/api/keys',
    {
      schema: {
        operationId: 'listKeys',
        summary: 'List API keys (never the keys themselves)',
        tags: ['keys'],
        response: { 200: Type.Object({ keys: Type.Array(KeyJson) }) },
      },
      config: { role: 'admin' },
    },
    async () => ({ keys: runtime.keys.list().map(keyJson) }),
  )

  app.delete(
    '/api/keys/:id',
    {
      schema: {
        operationId: 'deleteKey',
        summary: 'Delete an API key made through the API',
        tags: ['keys'],
        params: Type.Object({ id: Type.String({ pattern: KEY_ID_PATTERN }) }),
        response: { 204: Type.Null(), ...errors(404, 409) },
      },
      config: { role: 'admin' },
    },
    async (request, reply) => {
      const outcome = await runtime.keys.remove((request.params as { id: string }).id, runtime.clock())
      if (!outcome.ok) return sendError(reply, outcome.error)
      return reply.code(204).send(null)
    },
  )
}
