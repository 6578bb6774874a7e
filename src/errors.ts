import type { Issue } from './engine/types.ts'

/** The closed list of error codes the API answers with, and their HTTP status. */
export const ErrorCodes = {
  validation_error: { status: 400, retryable: false },
  unauthorized: { status: 401, retryable: false },
  forbidden: { status: 403, retryable: false },
  not_found: { status: 404, retryable: false },
  method_not_allowed: { status: 405, retryable: false },
  request_timeout: { status: 408, retryable: true },
  conflict: { status: 409, retryable: false },
  payload_too_large: { status: 413, retryable: false },
  uri_too_long: { status: 414, retryable: false },
  unsupported_media_type: { status: 415, retryable: false },
  headers_too_large: { status: 431, retryable: false },
  overloaded: { status: 429, retryable: true },
  unavailable: { status: 503, retryable: true },
  internal_error: { status: 500, retryable: true },
} as const
export type ErrorCode = keyof typeof ErrorCodes

/** An error as a value: the runtime returns these, the API maps them to a status and a body. */
export class AppError extends Error {
  readonly code: ErrorCode
  readonly details: Issue[]
  readonly retryAfterSeconds: number | undefined

  constructor(code: ErrorCode, message: string, details: Issue[] = [], retryAfterSeconds?: number) {
    super(message)
    this.code = code
    this.details = details
    this.retryAfterSeconds = retryAfterSeconds
  }

  get status(): number {
    return ErrorCodes[this.code].status
  }
}

export function validationError(issues: Issue[]): AppError {
  const first = issues[0]
  const message = first ? `${first.path} ${first.message}` : 'invalid request'
  return new AppError(
    'validation_error',
    issues.length > 1 ? `${message} (and ${issues.length - 1} more)` : message,
    issues,
  )
}

export function notFound(what: string, id: string): AppError {
  return new AppError('not_found', `${what} '${id}' not found`)
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: AppError }
