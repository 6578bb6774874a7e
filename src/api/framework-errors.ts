import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { AppError, type ErrorCode } from '../errors.ts'
import { sendError, toAppError } from './reply.ts'
import type { Server } from './server-type.ts'

/**
 * What fastify and Node's HTTP parser answer by themselves (a parameter over the router's length,
 * a URL that does not decode, a malformed request line or Content-Length, headers too large, a
 * method the path does not take), in the one error shape every other answer has.
 */

/** Fastify's `frameworkErrors`: errors raised before a route is chosen. */
export function frameworkErrors(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH')
    sendError(reply, new AppError('uri_too_long', 'a path segment is longer than this server takes'))
  else if (err.code === 'FST_ERR_BAD_URL')
    sendError(
      reply,
      new AppError('validation_error', 'the URL is not valid (a bad percent-encoding)', [
        { path: '/url', message: 'does not decode' },
      ]),
    )
  else sendError(reply, toAppError(err))
}

/** Node's `clientError`: the request could not be parsed, so there is no reply object, only the socket. */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) {
    socket.destroy()
    return
  }
  const [code, message]: [ErrorCode, string] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? ['request_timeout', 'the request took too long to arrive']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? ['headers_too_large', 'the request headers are larger than this server takes']
        : ['validation_error', `the request is not valid HTTP (${err.code ?? 'parse error'})`]
  const error = new AppError(code, message)
  const body = JSON.stringify({ error: { code, message } })
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  )
}

/**
 * Answers a request no route took: 405 with `Allow` when the path exists for other methods, 404
 * otherwise. Routes are learned as they are added.
 */
export function routeNotFound(app: Server): (request: FastifyRequest, reply: FastifyReply) => FastifyReply {
  const routes: Array<{ pattern: RegExp; methods: string[] }> = []
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    const source = route.url
      .split('/')
      // `:name` is one segment, `*` anything; the rest literally
      .map((part) =>
        part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replaceAll('\\*', '.*'),
      )
      .join('/')
    routes.push({ pattern: new RegExp(`^${source}/?$`), methods })
  })
  return (request, reply) => {
    const path = request.url.split('?')[0]
    const allowed = new Set<string>()
    for (const r of routes) if (r.pattern.test(path)) for (const m of r.methods) allowed.add(m)
    if (allowed.size > 0 && !allowed.has(request.method)) {
      reply.header('allow', [...allowed].sort().join(', '))
      return sendError(
        reply,
        new AppError('method_not_allowed', `${request.method} is not allowed on ${path}`),
      )
    }
    return sendError(reply, new AppError('not_found', `no route ${request.method} ${path}`))
  }
}
