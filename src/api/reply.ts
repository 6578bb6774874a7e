import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { parseTimestamp } from '../engine/events.ts'
import type { Issue } from '../engine/types.ts'
import { AppError, type Outcome } from '../errors.ts'

export function sendError(reply: FastifyReply, error: AppError): FastifyReply {
  if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds))
  const body: { code: string; message: string; details?: Issue[] } = {
    code: error.code,
    message: error.message,
  }
  if (error.details.length > 0) body.details = error.details
  return reply.code(error.status).send({ error: body })
}

/** Sends `shape(value)` with `status`, or the outcome's error. */
export function respond<T>(
  reply: FastifyReply,
  outcome: Outcome<T>,
  shape: (value: T) => unknown,
  status = 200,
): FastifyReply {
  if (!outcome.ok) return sendError(reply, outcome.error)
  return reply.code(status).send(shape(outcome.value))
}

/** Maps what fastify itself raises (bad JSON, content type, size, schema) into the error shape. */
export function toAppError(err: FastifyError): AppError {
  if (err instanceof AppError) return err
  if (err.validation) {
    const context = err.validationContext ?? 'body'
    const details = err.validation.map((v) => {
      const params = v.params as Record<string, unknown> | undefined
      const extra =
        params && typeof params.additionalProperty === 'string' ? `/${params.additionalProperty}` : ''
      return { path: `/${context}${v.instancePath ?? ''}${extra}`, message: v.message ?? 'is invalid' }
    })
    return new AppError('validation_error', `${details[0].path} ${details[0].message}`, details)
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('payload_too_large', 'request body is larger than the configured limit')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('unsupported_media_type', 'send the body as application/json')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('validation_error', 'the JSON body is empty', [{ path: '/', message: 'is empty' }])
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('validation_error', 'content-length does not match the body')
  }
  if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY')
    return new AppError('validation_error', `body is not valid JSON: ${err.message}`, [
      { path: '/', message: 'is not valid JSON' },
    ])
  if (err.statusCode === 400 && /prototype|constructor/i.test(err.message))
    return new AppError('validation_error', err.message, [
      { path: '/', message: "must not contain '__proto__' or 'constructor' keys" },
    ])
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500)
    return new AppError('validation_error', err.message)
  return new AppError('internal_error', 'internal error')
}

export function errorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const error = toAppError(err)
  if (error.status >= 500) request.log.error({ err }, 'request failed')
  return sendError(reply, error)
}

/** Parses a query time (RFC 3339 or epoch ms, in the range events may have); null when it is not one. */
export function queryTime(raw: string | undefined): number | undefined | null {
  if (raw === undefined) return undefined
  return parseTimestamp(/^\d{1,16}$/.test(raw) ? Number(raw) : raw) ?? null
}
