import { hostname, networkInterfaces } from 'node:os'
import bearerAuth from '@fastify/bearer-auth'
import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { KeyRing } from '../auth/key-ring.ts'
import type { ApiKeyRecord, Role, RouteRole } from '../auth/key-types.ts'
import type { Config } from '../config.ts'
import { AppError } from '../errors.ts'
import { sendError } from './reply.ts'
import type { Server } from './server-type.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** the key the request authenticated with; undefined when none was needed */
    apiKey: ApiKeyRecord | undefined
    authFailure: 'invalid' | 'expired' | undefined
  }
}

const REALM = 'Bearer realm="datapulse"'
/** Content types a page on another site may POST without asking first (the CORS "simple" ones). */
const SIMPLE_CONTENT_TYPES = ['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', ''])

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.')
}

/** A key with `role` may call a route needing `needed`: admin may call anything. */
export function roleAllows(role: Role, needed: Role): boolean {
  return role === 'admin' || role === needed
}

/** The host names this server answers to: the Host header of any other is a DNS-rebinding attempt. */
export function hostNames(config: Config): ((host: string) => boolean) | undefined {
  if (config.allowedHosts.includes('*')) return undefined
  const names = new Set(['localhost', '127.0.0.1', '::1', ...config.allowedHosts])
  names.add(config.host.toLowerCase().replace(/^\[|\]$/g, ''))
  if (WILDCARD_HOSTS.has(config.host)) {
    names.add(hostname().toLowerCase())
    for (const list of Object.values(networkInterfaces()))
      for (const a of list ?? []) names.add(a.address.toLowerCase())
  }
  return (host) => names.has(host)
}

/** `Host: name[:port]` (or `[v6]:port`) → name, lower case. */
export function hostOf(header: string): string {
  const h = header.toLowerCase()
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined)
  const colon = h.indexOf(':')
  return colon < 0 ? h : h.slice(0, colon)
}

function unauthorized(reply: FastifyReply, message: string, invalid: boolean): FastifyReply {
  reply.header('www-authenticate', invalid ? `${REALM}, error="invalid_token"` : REALM)
  return sendError(reply, new AppError('unauthorized', message))
}

/**
 * Who may call what (DESIGN §8 "Security"), in the order a request meets it:
 * the Host check (DNS rebinding), API key and role, cross-site protection for requests without a
 * key, rate limits, and the security headers (CSP on everything, the dashboard included).
 */
export async function guardAccess(
  app: Server,
  config: Config,
  keys: KeyRing,
  now: () => number,
): Promise<void> {
  app.decorateRequest('apiKey', undefined)
  app.decorateRequest('authFailure', undefined)
  const knownHost = hostNames(config)

  app.addHook('onRequest', async (request, reply) => {
    const header = request.headers.host
    if (knownHost && header !== undefined && !knownHost(hostOf(header)))
      return sendError(
        reply,
        new AppError(
          'forbidden',
          `Host '${hostOf(header).slice(0, 100)}' is not a name of this server (DNS-rebinding protection): add it to --allowed-hosts`,
        ),
      )
  })

  if (config.corsOrigins.length > 0)
    await app.register(cors, {
      origin: config.corsOrigins,
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type'],
      maxAge: 600,
    })

  await app.register(bearerAuth, {
    keys: [],
    addHook: false,
    verifyErrorLogLevel: 'debug',
    auth: (presented: string, request: FastifyRequest) => {
      const outcome = keys.authenticate(presented, now())
      if (outcome.ok) request.apiKey = outcome.key
      else request.authFailure = outcome.reason
      return outcome.ok
    },
  })
  const verify = app.verifyBearerAuth
  if (!verify) throw new Error('@fastify/bearer-auth did not decorate verifyBearerAuth')

  app.addHook('onRequest', (request, reply, done) => {
    if (reply.sent) return done()
    const needed: RouteRole | undefined = request.routeOptions.config.role
    if (needed === 'public' || !keys.required) return done()
    if (
      needed === 'read' &&
      config.metricsOpenOnLoopback &&
      request.routeOptions.url === '/metrics' &&
      isLoopback(request.socket.remoteAddress)
    )
      return done()
    verify(request, reply, (err) => {
      if (err || !request.apiKey) {
        const given = request.headers.authorization !== undefined
        unauthorized(
          reply,
          !given
            ? 'this server needs an API key: send Authorization: Bearer <key>'
            : request.authFailure === 'expired'
              ? 'the API key has expired'
              : 'the API key is not valid (send Authorization: Bearer <key>)',
          given,
        )
        return done()
      }
      // an unknown path needs some key (so it tells nothing to a caller without one), no particular role
      if (needed !== undefined && !roleAllows(request.apiKey.role, needed)) {
        reply.header('www-authenticate', `${REALM}, error="insufficient_scope", scope="${needed}"`)
        sendError(
          reply,
          new AppError(
            'forbidden',
            `this needs a key with role ${needed}; key '${request.apiKey.id}' has role ${request.apiKey.role}`,
          ),
        )
      }
      done()
    })
  })

  // a page on another site can POST a "simple" request without asking: without a key, refuse those
  app.addHook('onRequest', async (request, reply) => {
    if (reply.sent || request.method === 'GET' || request.method === 'HEAD' || request.method === 'OPTIONS')
      return
    const origin = request.headers.origin
    if (origin !== undefined && origin !== 'null' && !config.corsOrigins.includes(origin)) {
      let sameHost = false
      try {
        sameHost = new URL(origin).host === request.headers.host
      } catch {}
      if (!sameHost)
        return sendError(
          reply,
          new AppError(
            'forbidden',
            `requests from pages on ${origin.slice(0, 200)} are refused: add it to --cors-origin`,
          ),
        )
    }
    if (origin === 'null')
      return sendError(reply, new AppError('forbidden', 'requests from opaque origins are refused'))
    if (request.apiKey || request.method !== 'POST') return
    const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
    if (type === '' || SIMPLE_CONTENT_TYPES.includes(type))
      return sendError(
        reply,
        new AppError(
          'unsupported_media_type',
          'send Content-Type: application/json (a POST without an API key must, even with no body: cross-site request protection)',
        ),
      )
  })

  const limitFor = (request: FastifyRequest): number => {
    const role = request.routeOptions.config.role
    if (role === 'public' || !request.url.startsWith('/api/')) return 0
    return request.routeOptions.url === '/api/events/ingest' ? config.rateLimitIngest : config.rateLimitApi
  }
  await app.register(rateLimit, {
    global: true,
    hook: 'preParsing',
    timeWindow: 60_000,
    max: (request) => limitFor(request),
    allowList: (request) =>
      limitFor(request) === 0 || (!config.rateLimitLoopback && isLoopback(request.socket.remoteAddress)),
    keyGenerator: (request) =>
      `${request.routeOptions.url === '/api/events/ingest' ? 'ingest' : 'api'}:${request.apiKey ? `key:${request.apiKey.id}` : `ip:${request.ip}`}`,
    addHeadersOnExceeding: {
      'x-ratelimit-limit': true,
      'x-ratelimit-remaining': true,
      'x-ratelimit-reset': true,
    },
    errorResponseBuilder: (_request, context) =>
      new AppError(
        'overloaded',
        `rate limit: at most ${context.max} requests a minute; retry in ${context.after}`,
        [],
        Math.max(1, Math.ceil(context.ttl / 1000)),
      ),
  })

  await app.register(helmet, {
    global: true,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    frameguard: { action: 'deny' },
    strictTransportSecurity: config.tls ? { maxAge: 15_552_000 } : false,
    crossOriginEmbedderPolicy: false,
  })
}
