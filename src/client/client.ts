/**
 * A typed client for the DataPulse API (`import { createClient } from 'datapulse/client'`).
 * Every method is one operation of the OpenAPI document (named by its operationId; a test checks
 * the two agree) and returns its JSON body typed from the server's own route schemas; an error
 * answer throws an `ApiError` with the API's code, message, details and Retry-After.
 */
import type { Static } from 'typebox'
import type { ClusterResponse } from '../api/schemas/cluster.ts'
import type {
  PipelineBody,
  PipelineResponse,
  PreviewBody,
  PreviewResponse,
  VersionsResponse,
  WindowResponse,
} from '../api/schemas/pipelines.ts'

export type Pipeline = Static<typeof PipelineResponse>
export type PipelineSpec = Static<typeof PipelineBody>
export type Windows = Static<typeof WindowResponse>
export type Preview = Static<typeof PreviewResponse>
export type PreviewRequest = Static<typeof PreviewBody>
export type Versions = Static<typeof VersionsResponse>
export type Cluster = Static<typeof ClusterResponse>

export interface IngestEvent {
  event_type: string
  source: string
  data?: Record<string, unknown>
  timestamp?: string | number
  id?: string
}

export interface MetricPointInput {
  name: string
  value: number
  tags?: Record<string, string>
  timestamp?: string | number
}

export interface DeadLetter {
  reason: string
  detail: string
  at: string
  event: { id: string; event_type: string; source: string; timestamp: string; data: unknown }
}

export interface WindowQuery {
  state?: 'open' | 'closed' | 'all'
  from?: string
  to?: string
  limit?: number
  /** group-key filters: path → value as text */
  key?: Record<string, string>
}

export interface MetricQuery {
  name: string
  from?: string
  to?: string
  step?: string
  agg?: 'avg' | 'sum' | 'min' | 'max' | 'count' | 'last'
  tags?: Record<string, string>
}

export interface Stats {
  service: string
  version: string
  uptime_seconds: number
  events: { ingested_total: number; per_second: number }
  pipelines: { total: number; running: number; items: Array<{ id: string; name: string; status: string }> }
  [more: string]: unknown
}

export interface ApiKey {
  id: string
  name: string
  role: 'read' | 'write' | 'admin'
  source: 'file' | 'env' | 'api'
  created_at: string | null
  expires_at: string | null
}

export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly details: Array<{ path: string; message: string }>
  readonly retryAfterSeconds: number | undefined

  constructor(
    status: number,
    code: string,
    message: string,
    details: ApiError['details'],
    retryAfter?: number,
  ) {
    super(message)
    this.status = status
    this.code = code
    this.details = details
    this.retryAfterSeconds = retryAfter
  }
}

export interface ClientOptions {
  /** default http://127.0.0.1:8003 */
  url?: string
  apiKey?: string
}

type Query = Record<string, string | number | undefined>

/** The operations, by operationId: method and path (checked against /docs/json by a test). */
export const OPERATIONS = {
  health: ['GET', '/'],
  getStats: ['GET', '/api/stats'],
  getCluster: ['GET', '/api/cluster'],
  listPipelines: ['GET', '/api/pipelines'],
  getPipeline: ['GET', '/api/pipelines/{id}'],
  createPipeline: ['POST', '/api/pipelines'],
  previewPipeline: ['POST', '/api/pipelines/preview'],
  updatePipeline: ['PUT', '/api/pipelines/{id}'],
  listPipelineVersions: ['GET', '/api/pipelines/{id}/versions'],
  replayPipeline: ['POST', '/api/pipelines/{id}/replay'],
  startPipeline: ['POST', '/api/pipelines/{id}/start'],
  stopPipeline: ['POST', '/api/pipelines/{id}/stop'],
  deletePipeline: ['DELETE', '/api/pipelines/{id}'],
  getWindows: ['GET', '/api/pipelines/{id}/window'],
  getDeadLetters: ['GET', '/api/pipelines/{id}/dead-letters'],
  ingestEvents: ['POST', '/api/events/ingest'],
  writeMetrics: ['POST', '/api/metrics'],
  queryMetrics: ['GET', '/api/metrics'],
  putLookupTable: ['PUT', '/api/lookups/{table}'],
  listLookupTables: ['GET', '/api/lookups'],
  getLookupRows: ['GET', '/api/lookups/{table}'],
  getLookupRow: ['GET', '/api/lookups/{table}/{key}'],
  deleteLookupTable: ['DELETE', '/api/lookups/{table}'],
  createKey: ['POST', '/api/keys'],
  listKeys: ['GET', '/api/keys'],
  deleteKey: ['DELETE', '/api/keys/{id}'],
  prometheusMetrics: ['GET', '/metrics'],
  stream: ['GET', '/api/stream'],
} as const
export type OperationId = keyof typeof OPERATIONS

export function createClient(options: ClientOptions = {}) {
  const base = (options.url ?? 'http://127.0.0.1:8003').replace(/\/+$/, '')
  const headers = (extra: Record<string, string> = {}): Record<string, string> =>
    options.apiKey ? { authorization: `Bearer ${options.apiKey}`, ...extra } : extra

  function url(op: OperationId, params: Record<string, string> = {}, query: Query = {}): string {
    const path = OPERATIONS[op][1].replace(/\{(\w+)\}/g, (_, name: string) =>
      encodeURIComponent(params[name]),
    )
    const search = new URLSearchParams()
    for (const [k, v] of Object.entries(query)) if (v !== undefined) search.set(k, String(v))
    const qs = search.toString()
    return `${base}${path}${qs ? `?${qs}` : ''}`
  }

  async function call<T>(
    op: OperationId,
    init: { params?: Record<string, string>; query?: Query; body?: unknown; contentType?: string } = {},
  ): Promise<T> {
    const method = OPERATIONS[op][0]
    const body =
      init.body === undefined
        ? undefined
        : typeof init.body === 'string'
          ? init.body
          : JSON.stringify(init.body)
    // a POST says it is JSON even without a body (the server refuses "simple" cross-site POSTs)
    const type =
      body !== undefined || method === 'POST' ? (init.contentType ?? 'application/json') : undefined
    const res = await fetch(url(op, init.params, init.query), {
      method,
      headers: headers(type ? { 'content-type': type } : {}),
      body,
    })
    const text = await res.text()
    const parsed: unknown =
      text.length > 0 && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text
    if (!res.ok) {
      const e = (parsed as { error?: { code?: string; message?: string; details?: ApiError['details'] } })
        ?.error
      const retry = res.headers.get('retry-after')
      throw new ApiError(
        res.status,
        e?.code ?? 'error',
        e?.message ?? `${res.status} ${res.statusText}`,
        e?.details ?? [],
        retry === null ? undefined : Number(retry),
      )
    }
    return (res.status === 204 ? null : parsed) as T
  }

  const windowQuery = (q: WindowQuery): Query => {
    const out: Query = { state: q.state, from: q.from, to: q.to, limit: q.limit }
    for (const [k, v] of Object.entries(q.key ?? {})) out[`key.${k}`] = v
    return out
  }

  return {
    url: base,
    health: () => call<{ status: string; service: string; version: string }>('health'),
    stats: () => call<Stats>('getStats'),
    /** the instances of the cluster and which pipelines each runs */
    cluster: () => call<Cluster>('getCluster'),
    listPipelines: () => call<{ pipelines: Pipeline[] }>('listPipelines'),
    getPipeline: (id: string) => call<Pipeline>('getPipeline', { params: { id } }),
    createPipeline: (spec: PipelineSpec) => call<Pipeline>('createPipeline', { body: spec }),
    /** what `pipeline` would produce over `events` or a topic's newest events; nothing is saved */
    previewPipeline: (request: PreviewRequest) => call<Preview>('previewPipeline', { body: request }),
    /** a new spec; a change that would lose window state is a 409 unless `reset: true` */
    updatePipeline: (id: string, spec: PipelineSpec & { reset?: boolean }) =>
      call<Pipeline>('updatePipeline', { params: { id }, body: spec }),
    versions: (id: string) => call<Versions>('listPipelineVersions', { params: { id } }),
    /** recomputes from `from` ("earliest", an RFC 3339 time or an offset): its windows are replaced */
    replayPipeline: (id: string, from: 'earliest' | string | number) =>
      call<Pipeline>('replayPipeline', { params: { id }, body: { from } }),
    startPipeline: (id: string) => call<Pipeline>('startPipeline', { params: { id } }),
    stopPipeline: (id: string) => call<Pipeline>('stopPipeline', { params: { id } }),
    deletePipeline: (id: string) => call<null>('deletePipeline', { params: { id } }),
    windows: (id: string, q: WindowQuery = {}) =>
      call<Windows>('getWindows', { params: { id }, query: windowQuery(q) }),
    deadLetters: (id: string, limit?: number) =>
      call<{ pipeline_id: string; dead_letters: DeadLetter[] }>('getDeadLetters', {
        params: { id },
        query: { limit },
      }),
    /** the events as they are, or the NDJSON/JSON text of `{"events": [...]}` already made */
    ingest: (events: IngestEvent[] | string, topic?: string) =>
      call<{ accepted: number; topics: string[] }>('ingestEvents', {
        body: typeof events === 'string' ? events : { events, ...(topic === undefined ? {} : { topic }) },
      }),
    writeMetrics: (metrics: MetricPointInput[]) =>
      call<{ accepted: number }>('writeMetrics', { body: { metrics } }),
    listSeries: (limit?: number, offset?: number) =>
      call<{
        total: number
        series: Array<{
          name: string
          tags: Record<string, string>
          last_value: number
          last_timestamp: string
          points: number
        }>
      }>('queryMetrics', { query: { limit, offset } }),
    queryMetrics: (q: MetricQuery) => {
      const query: Query = { name: q.name, from: q.from, to: q.to, step: q.step, agg: q.agg }
      for (const [k, v] of Object.entries(q.tags ?? {})) query[`tag.${k}`] = v
      return call<{
        series: Array<{
          name: string
          tags: Record<string, string>
          points: Array<{ timestamp: string; value: number | null }>
        }>
      }>('queryMetrics', { query })
    },
    /** rows as JSON objects, or CSV text with a header line */
    putLookup: (table: string, key: string, rows: Array<Record<string, unknown>> | string) =>
      typeof rows === 'string'
        ? call<{ table: string; key: string; rows: number }>('putLookupTable', {
            params: { table },
            query: { key },
            body: rows,
            contentType: 'text/csv',
          })
        : call<{ table: string; key: string; rows: number }>('putLookupTable', {
            params: { table },
            body: { key, rows },
          }),
    listLookups: () =>
      call<{ tables: Array<{ name: string; key: string; rows: number; updated_at: string }> }>(
        'listLookupTables',
      ),
    lookupRow: (table: string, key: string) =>
      call<Record<string, unknown>>('getLookupRow', { params: { table, key } }),
    deleteLookup: (table: string) => call<null>('deleteLookupTable', { params: { table } }),
    createKey: (key: { name: string; role: ApiKey['role']; expires_at?: string | null }) =>
      call<ApiKey & { key: string }>('createKey', { body: key }),
    listKeys: () => call<{ keys: ApiKey[] }>('listKeys'),
    deleteKey: (id: string) => call<null>('deleteKey', { params: { id } }),
    /** Server-Sent Events as they come: `{event, data}` until `signal` aborts or the server ends it. */
    async *stream(pipeline?: string, signal?: AbortSignal): AsyncGenerator<{ event: string; data: unknown }> {
      const res = await fetch(url('stream', {}, { pipeline }), { headers: headers(), signal })
      if (!res.ok || !res.body)
        throw new ApiError(res.status, 'error', `the stream answered ${res.status}`, [])
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ''
      try {
        for (;;) {
          const { value, done } = await reader.read()
          if (done) return
          buffer += value
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end)
            buffer = buffer.slice(end + 2)
            const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message'
            const data = /^data: (.*)$/m.exec(block)?.[1]
            yield { event, data: data === undefined ? null : JSON.parse(data) }
          }
        }
      } finally {
        await reader.cancel().catch(() => undefined)
      }
    },
  }
}

export type Client = ReturnType<typeof createClient>
