import type { Event, Parsed } from './types.ts'

const TOP_LEVEL = new Set(['event_type', 'source', 'timestamp', 'id', 'data'])
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype'])
const MAX_PATH_LENGTH = 256
const MAX_DEPTH = 16

/** A compiled reference to a field of an event. */
export interface FieldRef {
  /** the path as the user wrote it */
  readonly raw: string
  /** top-level field, or 'data' for paths inside data */
  readonly root: 'event_type' | 'source' | 'timestamp' | 'id' | 'data'
  /** segments below data (empty for top-level fields and for `data` itself) */
  readonly segments: readonly string[]
  readonly get: (event: Event) => unknown
}

/** Reads `segments` below `obj`, own properties only, so no path reaches a prototype. */
export function readPath(obj: unknown, segments: readonly string[]): unknown {
  let current = obj
  for (let i = 0; i < segments.length; i++) {
    if (typeof current !== 'object' || current === null || Array.isArray(current)) return undefined
    const segment = segments[i]
    if (!Object.hasOwn(current, segment)) return undefined
    current = (current as Record<string, unknown>)[segment]
  }
  return current
}

export function isForbiddenKey(key: string): boolean {
  return FORBIDDEN.has(key)
}

export function checkKey(key: string): string | undefined {
  if (key.length === 0) return 'must not have empty segments'
  if (FORBIDDEN.has(key)) return `must not contain '${key}'`
  return undefined
}

/**
 * Parses a dotted field path: `event_type`, `source`, `timestamp`, `id`, `data.page`;
 * a bare name that is not a top-level field means `data.<name>`.
 */
export function parseFieldPath(raw: unknown): Parsed<FieldRef> {
  if (typeof raw !== 'string') return fail('must be a string (a dotted field path)')
  if (raw.length === 0) return fail('must not be empty')
  if (raw.length > MAX_PATH_LENGTH) return fail(`must be at most ${MAX_PATH_LENGTH} characters`)
  const parts = raw.split('.')
  if (parts.length > MAX_DEPTH) return fail(`must have at most ${MAX_DEPTH} segments`)
  for (const part of parts) {
    const problem = checkKey(part)
    if (problem) return fail(problem)
  }
  const first = parts[0]
  if (TOP_LEVEL.has(first) && first !== 'data') {
    if (parts.length > 1) return fail(`'${first}' has no nested fields`)
    return { ok: true, value: topLevel(raw, first as FieldRef['root']) }
  }
  const segments = first === 'data' ? parts.slice(1) : parts
  return { ok: true, value: dataPath(raw, segments) }
}

function topLevel(raw: string, root: FieldRef['root']): FieldRef {
  const get =
    root === 'event_type'
      ? (e: Event) => e.event_type
      : root === 'source'
        ? (e: Event) => e.source
        : root === 'timestamp'
          ? (e: Event) => e.timestamp
          : (e: Event) => e.id
  return { raw, root, segments: [], get }
}

function dataPath(raw: string, segments: string[]): FieldRef {
  let get: (e: Event) => unknown
  if (segments.length === 0) get = (e) => e.data
  else if (segments.length === 1) {
    const s0 = segments[0]
    get = (e) => (Object.hasOwn(e.data, s0) ? e.data[s0] : undefined)
  } else get = (e) => readPath(e.data, segments)
  return { raw, root: 'data', segments, get }
}

function fail(message: string): Parsed<FieldRef> {
  return { ok: false, issues: [{ path: '', message }] }
}
