import type { FastifyReply, FastifyRequest } from 'fastify'
import { AppError } from '../errors.ts'
import type { Runtime } from '../runtime/runtime.ts'
import { rawBodyOf } from './raw-body.ts'
import { sendError } from './reply.ts'
import type { Server } from './server-type.ts'

/** Set on a forwarded request: the instance it reaches answers it itself, whatever it thinks of the owner. */
const FORWARDED_HEADER = 'x-datapulse-forwarded-by'
/** Set on every answer that another instance gave. */
const ANSWERED_BY_HEADER = 'x-datapulse-instance'
const FORWARD_TIMEOUT_MS = 30_000
/** Headers of the owner's answer passed on as they are. */
const PASSED_BACK = ['content-type', 'retry-after', 'allow', 'www-authenticate', 'location']

/**
 * In a cluster, a request about one pipeline (`/api/pipelines/{id}…`) is answered by the instance
 * that runs it: that one holds its open windows, live counters and runner. Any instance can be
 * asked; this one passes the request on (with the caller's key, checked there too) and the answer back.
 */
export function forwardToOwner(app: Server, runtime: Runtime): void {
  app.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
    const route = request.routeOptions.url
    if (route === undefined || !route.startsWith('/api/pipelines/:id')) return
    if (request.headers[FORWARDED_HEADER] !== undefined) return
    const id = (request.params as { id?: string }).id
    const owner = id === undefined ? undefined : runtime.ownerElsewhere(id)
    if (!owner) return
    const headers: Record<string, string> = { [FORWARDED_HEADER]: runtime.config.instanceId }
    for (const name of ['authorization', 'content-type', 'accept']) {
      const v = request.headers[name]
      if (typeof v === 'string') headers[name] = v
    }
    const body =
      request.body === undefined
        ? undefined
        : (rawBodyOf(request.body) ?? Buffer.from(JSON.stringify(request.body)))
    let answer: Response
    try {
      answer = await fetch(new URL(request.url, owner.url), {
        method: request.method,
        headers,
        body: body === undefined ? undefined : new Uint8Array(body),
        signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
      })
    } catch (err) {
      request.log.warn({ owner: owner.id, err: (err as Error).message }, 'forwarding to the owner failed')
      return sendError(
        reply,
        new AppError(
          'unavailable',
          `pipeline ${id} runs on instance ${owner.id} (${owner.url}), which did not answer; retry (another instance takes it over once its lease runs out)`,
          [],
          Math.ceil(runtime.config.clusterLeaseMs / 1000),
        ),
      )
    }
    reply.code(answer.status)
    for (const name of PASSED_BACK) {
      const v = answer.headers.get(name)
      if (v !== null) reply.header(name, v)
    }
    reply.header(ANSWERED_BY_HEADER, owner.id)
    return reply.send(Buffer.from(await answer.arrayBuffer()))
  })
}
