import { isTopicName, TOPIC_RULE } from '../engine/pipeline-spec.ts'
import type { Issue } from '../engine/types.ts'
import { type Outcome, validationError } from '../errors.ts'

/** Newest events of a topic a preview takes by default, and at most. */
export const PREVIEW_LAST = 1_000
export const PREVIEW_MAX_LAST = 10_000
/** Windows, records and dead letters a preview lists (its counts stay exact). */
export const PREVIEW_ITEMS = 1_000
/** Work units a preview may take (events, windows fired, keys merged): tens of ms, never seconds. */
export const PREVIEW_WORK = 2_000_000

export interface PreviewInput {
  pipeline: unknown
  /** inline events (as for ingest), or else the newest `last` of `topic` (default: the spec's source topic) */
  events?: unknown[]
  topic?: string
  last: number
}

const FIELDS = new Set(['pipeline', 'events', 'topic', 'last'])

/** The preview request's own fields (the spec inside is checked as for create). */
export function previewInput(body: unknown, maxEvents: number): Outcome<PreviewInput> {
  const issues: Issue[] = []
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return { ok: false, error: validationError([{ path: '', message: 'must be an object' }]) }
  const b = body as Record<string, unknown>
  for (const key of Object.keys(b))
    if (!FIELDS.has(key)) issues.push({ path: `/${key}`, message: 'is not a field of a preview' })
  if (!('pipeline' in b)) issues.push({ path: '/pipeline', message: 'is required: the spec, as for create' })
  const { events, topic, last } = b
  if (events !== undefined) {
    if (!Array.isArray(events)) issues.push({ path: '/events', message: 'must be an array of events' })
    else if (events.length > maxEvents)
      issues.push({ path: '/events', message: `at most ${maxEvents} events per preview` })
    if (topic !== undefined || last !== undefined)
      issues.push({ path: '/topic', message: 'give events or a topic (with last), not both' })
  }
  if (topic !== undefined && !isTopicName(topic)) issues.push({ path: '/topic', message: TOPIC_RULE })
  if (
    last !== undefined &&
    (typeof last !== 'number' || !Number.isInteger(last) || last < 1 || last > PREVIEW_MAX_LAST)
  )
    issues.push({ path: '/last', message: `must be an integer from 1 to ${PREVIEW_MAX_LAST}` })
  if (issues.length > 0) return { ok: false, error: validationError(issues) }
  return {
    ok: true,
    value: {
      pipeline: b.pipeline,
      ...(events !== undefined ? { events: events as unknown[] } : {}),
      ...(topic !== undefined ? { topic: topic as string } : {}),
      last: (last as number | undefined) ?? PREVIEW_LAST,
    },
  }
}
