import type { Event, WindowResult } from './types.ts'

/** A window as /window and the sink show it: RFC 3339 bounds, flat key, named results. */
export interface WindowJson {
  window_start: string
  window_end: string
  key: Record<string, unknown> | null
  results: Record<string, number | null>
  closed: boolean
  /** the version of the pipeline's spec that made it (absent in a preview and in results from before versions) */
  version?: number
}

export function windowJson(r: WindowResult): WindowJson {
  const w: WindowJson = {
    window_start: new Date(r.windowStart).toISOString(),
    window_end: new Date(r.windowEnd).toISOString(),
    key: r.key,
    results: r.results,
    closed: r.closed,
  }
  if (r.version !== undefined) w.version = r.version
  return w
}

/** An event as the API shows it and as it travels on Kafka topics (RFC 3339 timestamp). */
export function eventJson(e: Event): {
  id: string
  event_type: string
  source: string
  timestamp: string
  data: Event['data']
} {
  return {
    id: e.id,
    event_type: e.event_type,
    source: e.source,
    timestamp: new Date(e.timestamp).toISOString(),
    data: e.data,
  }
}

/**
 * A result as an event on the embedded sink topic, so another pipeline can read it: `data` is the
 * window exactly as /window shows it plus `pipeline_id`; the event time is the window start; the id
 * is deterministic (pipeline, window, key), so a replay writes the same result again, not a new one.
 */
export function resultEvent(pipelineId: string, pipelineName: string, r: WindowResult): Event {
  return {
    id: `${pipelineId}:${r.windowStart}:${r.windowEnd}:${r.keyId}${r.closed ? '' : ':update'}`,
    event_type: 'window_result',
    source: `pipeline:${pipelineName}`,
    timestamp: r.windowStart,
    data: { pipeline_id: pipelineId, ...windowJson(r) },
  }
}

/**
 * A pipeline's results as they travel on a Kafka sink, built once per result: the text of
 * `JSON.stringify(eventJson(resultEvent(…)))` (the same bytes, in the same field order) without the
 * three objects and one serialisation of the whole per result; the window bounds, shared by every
 * result of a window, are formatted once. The key's JSON is kept for the message key.
 */
export class ResultWire {
  readonly #idPrefix: string
  readonly #head: string
  readonly #pipelineIdJson: string
  #isoMs = Number.NaN
  #iso = ''
  #isoMs2 = Number.NaN
  #iso2 = ''

  constructor(pipelineId: string, pipelineName: string) {
    this.#idPrefix = `${pipelineId}:`
    this.#head = `,"event_type":"window_result","source":${JSON.stringify(`pipeline:${pipelineName}`)}`
    this.#pipelineIdJson = JSON.stringify(pipelineId)
  }

  /** RFC 3339 of `ms`, remembering the last two (a window's start and end). */
  iso(ms: number): string {
    if (ms === this.#isoMs) return this.#iso
    if (ms === this.#isoMs2) return this.#iso2
    this.#isoMs2 = this.#isoMs
    this.#iso2 = this.#iso
    this.#isoMs = ms
    this.#iso = new Date(ms).toISOString()
    return this.#iso
  }

  /** The message value of `r`, and its key's JSON (`null` for a window without group_by). */
  value(r: WindowResult, keyJson: string): string {
    const id = `${this.#idPrefix}${r.windowStart}:${r.windowEnd}:${r.keyId}${r.closed ? '' : ':update'}`
    const start = this.iso(r.windowStart)
    const end = this.iso(r.windowEnd)
    const version = r.version === undefined ? '' : `,"version":${r.version}`
    return `{"id":${JSON.stringify(id)}${this.#head},"timestamp":"${start}","data":{"pipeline_id":${this.#pipelineIdJson},"window_start":"${start}","window_end":"${end}","key":${keyJson},"results":${JSON.stringify(r.results)},"closed":${r.closed}${version}}}`
  }
}
