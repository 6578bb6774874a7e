import type { WindowJson } from '../../src/engine/result-shape.ts'
import type { PipelineStats as StoredStats } from '../../src/stores/store.ts'

export interface Issue {
  path: string
  message: string
}

export interface ApiError {
  status: number
  code: string
  message: string
  details: Issue[]
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: ApiError }

const KEY_ITEM = 'datapulse.api-key'
let onUnauthorized: (message: string) => void = () => undefined

/** The API key this tab sends (kept for the tab's life only, never in a URL). */
export function apiKey(): string | null {
  return sessionStorage.getItem(KEY_ITEM)
}

export function setApiKey(key: string | null): void {
  if (key === null) sessionStorage.removeItem(KEY_ITEM)
  else sessionStorage.setItem(KEY_ITEM, key)
}

/** What to do when the server answers 401 (the dashboard asks for a key). */
export function whenUnauthorized(handler: (message: string) => void): void {
  onUnauthorized = handler
}

export function unauthorized(message: string): void {
  onUnauthorized(message)
}

/** Headers every call sends: the key, if there is one. */
export function authHeaders(): Record<string, string> {
  const key = apiKey()
  return key ? { authorization: `Bearer ${key}` } : {}
}

/** Calls the API; an error answer becomes a value with the API's code, message and details. */
export async function api<T>(
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<Result<T>> {
  const headers: Record<string, string> = authHeaders()
  const init: RequestInit = { method, headers }
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body)
  // a POST always says what it is, even without a body (the server refuses "simple" cross-site POSTs)
  if (body !== undefined || method === 'POST') headers['content-type'] = contentType
  let res: Response
  try {
    res = await fetch(path, init)
  } catch (err) {
    return { ok: false, error: { status: 0, code: 'network', message: String(err), details: [] } }
  }
  const text = await res.text()
  const parsed = text ? (JSON.parse(text) as unknown) : null
  if (res.ok) return { ok: true, value: parsed as T }
  const e = (parsed as { error?: Partial<ApiError> } | null)?.error ?? {}
  if (res.status === 401) unauthorized(e.message ?? 'this server needs an API key')
  return {
    ok: false,
    error: {
      status: res.status,
      code: e.code ?? 'error',
      message: e.message ?? res.statusText,
      details: e.details ?? [],
    },
  }
}

/** The counters as the API shows them (the store's, plus lag, watermark and condition). */
export interface PipelineStats extends Omit<StoredStats, 'replay'> {
  /** the last replay (POST /api/pipelines/{id}/replay) */
  replay?: {
    from: string | number
    state: 'replaying' | 'done'
    recomputes_from: string | null
    started_at: string
    finished_at: string | null
    start: number
    position: number
    target: number
    skipped: number
    events_per_second: number | null
  }
  lag: number
  watermark: string | null
  /** each source partition; a partition behind the others holds the watermark back */
  partitions: Array<{
    partition: number
    position: number | null
    lag: number
    watermark: string | null
    events_in: number
    late: number
  }>
  condition: 'ok' | 'degraded'
  condition_reason?: string
}

/** POST /api/pipelines/preview */
export interface PreviewResult {
  complete: boolean
  events: number
  watermark: string | null
  stages: Array<{ stage: string; in: number; out: number; dropped?: number; late?: number; errors?: number }>
  windows: Array<{
    window_start: string
    window_end: string
    key: Record<string, unknown> | null
    results: Record<string, number | null>
    closed: boolean
  }>
  windows_omitted: number
  records: Array<Record<string, unknown>>
  dead_letters: Array<{ reason: string; detail: string }>
  dead_letters_omitted: number
}

export interface Pipeline {
  id: string
  name: string
  status: string
  source_topic: string
  sink_topic?: string
  created_at: string
  stats: PipelineStats
  status_reason?: string
  [key: string]: unknown
}

export type WindowRow = WindowJson

export interface StatsEvent {
  at: string
  ingested_total: number
  per_second: number
  pipelines: Pipeline[]
}

export interface DeadLetter {
  reason: string
  detail: string
  at: string
  event: { id: string; event_type: string; source: string; data: unknown }
}
