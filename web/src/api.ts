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

/** Calls the API; an error answer becomes a value with the API's code, message and details. */
export async function api<T>(
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<Result<T>> {
  const init: RequestInit = { method, headers: {} }
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body)
    ;(init.headers as Record<string, string>)['content-type'] = contentType
  }
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
export interface PipelineStats extends StoredStats {
  lag: number
  watermark: string | null
  condition: 'ok' | 'degraded'
  condition_reason?: string
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
