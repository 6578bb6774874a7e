import { MAX_TIME, MIN_TIME, parseRfc3339 } from '../engine/events.ts'
import { isPlainObject } from '../engine/types.ts'
import { type Outcome, validationError } from '../errors.ts'

/** Where a replay is asked to begin, and how it was asked (shown back in stats.replay). */
export type ReplayFrom = { given: string | number } & (
  | { kind: 'earliest' }
  | { kind: 'time'; at: number }
  | { kind: 'offset'; offset: number }
)

/** Reads a replay request: `{"from": "earliest" | RFC 3339 time | offset}`. */
export function replayFrom(body: unknown): Outcome<ReplayFrom> {
  const refuse = (path: string, message: string) => ({
    ok: false as const,
    error: validationError([{ path, message }]),
  })
  if (!isPlainObject(body))
    return refuse('', 'must be an object: {"from": "earliest" | an RFC 3339 time | an offset}')
  for (const key of Object.keys(body))
    if (key !== 'from') return refuse(`/${key}`, 'is not a replay field (only "from")')
  const from = body.from
  if (from === undefined) return refuse('/from', 'is required: "earliest", an RFC 3339 time or an offset')
  if (from === 'earliest') return { ok: true, value: { given: from, kind: 'earliest' } }
  if (typeof from === 'number') {
    if (!Number.isSafeInteger(from) || from < 0)
      return refuse('/from', 'as an offset must be a whole number ≥ 0')
    return { ok: true, value: { given: from, kind: 'offset', offset: from } }
  }
  if (typeof from === 'string') {
    const at = parseRfc3339(from)
    if (at === undefined || at < MIN_TIME || at > MAX_TIME)
      return refuse('/from', `must be "earliest", an offset, or an RFC 3339 time from 1970 to 9999`)
    return { ok: true, value: { given: from, kind: 'time', at } }
  }
  return refuse('/from', 'must be "earliest", an RFC 3339 time or an offset')
}
