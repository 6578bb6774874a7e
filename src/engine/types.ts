/** An event as the engine sees it: the timestamp is epoch milliseconds. */
export interface Event {
  id: string
  event_type: string
  source: string
  timestamp: number
  data: Record<string, unknown>
}

/** A problem with user input, located by a JSON-pointer-like path. */
export interface Issue {
  path: string
  message: string
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; issues: Issue[] }

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

/** Why a stage could not take an event; shown in dead letters. */
export const DeadLetterReason = {
  late: 'late',
  missingField: 'missing_field',
  typeMismatch: 'type_mismatch',
  missingLookup: 'missing_lookup',
  tooManyKeys: 'too_many_keys',
  /** a source message that is not a valid event (Kafka) */
  invalidEvent: 'invalid_event',
} as const
export type DeadLetterReason = (typeof DeadLetterReason)[keyof typeof DeadLetterReason]

export interface DeadLetter {
  event: Event
  reason: DeadLetterReason
  detail: string
}

/** One window result, as /window shows it (times in epoch ms here; the API formats them). */
export interface WindowResult {
  windowStart: number
  windowEnd: number
  /** group key values by group_by path, or null without group_by */
  key: Record<string, unknown> | null
  /** the canonical key string (stable identity of the group) */
  keyId: string
  results: Record<string, number | null>
  closed: boolean
  /** the version of the pipeline's spec that made it (set by the runtime; the engine leaves it out) */
  version?: number
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
