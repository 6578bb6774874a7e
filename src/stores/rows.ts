import type { ApiKeyRecord, Role } from '../auth/key-types.ts'
import type { JsonValue, WindowResult } from '../engine/types.ts'
import {
  type Checkpoint,
  type CheckpointProgress,
  type DeadLetterRecord,
  emptyPartitionStats,
  type LookupTableInfo,
  type OutboxBatch,
  type OutboxMessage,
  type PipelineRecord,
  type PipelineStatus,
  type PipelineVersion,
  type SeriesInfo,
} from './store.ts'

/**
 * A row as both stores read it back: SQLite and PostgreSQL have the same column names, JSON
 * columns as text and times as epoch ms, so one mapping serves both.
 */
export type Row = Record<string, unknown>

export function pipelineOf(row: Row): PipelineRecord {
  return {
    id: row.id as string,
    name: row.name as string,
    spec: JSON.parse(row.spec as string),
    status: row.status as PipelineStatus,
    createdAt: row.created_at as number,
    updatedAt: row.updated_at as number,
    version: Number(row.version ?? 1),
  }
}

export function versionOf(row: Row): PipelineVersion {
  return {
    version: Number(row.version),
    spec: JSON.parse(row.spec as string),
    createdAt: Number(row.created_at),
    reset: row.reset === true || row.reset === 1,
  }
}

export function resultOf(row: Row): WindowResult {
  return {
    windowStart: row.window_start as number,
    windowEnd: row.window_end as number,
    keyId: row.key_id as string,
    key: row.key === null ? null : JSON.parse(row.key as string),
    results: JSON.parse(row.results as string),
    closed: true,
    ...(row.version === null || row.version === undefined ? {} : { version: Number(row.version) }),
  }
}

export function deadLetterOf(row: Row): DeadLetterRecord {
  return {
    id: row.id as string,
    reason: row.reason as DeadLetterRecord['reason'],
    detail: row.detail as string,
    event: JSON.parse(row.event as string),
    at: row.at as number,
  }
}

/**
 * A checkpoint from its pipeline row, its partition rows and their parts (in partition and part order). A row from before partitions had rows
 * of their own holds the whole state and the positions (JSON; SQLite's first stores only an offset;
 * a row of today has neither, SQLite's with offset -1):
 * its partitions come back without state, and the engine reads the whole state as it was saved.
 */
export function checkpointOf(row: Row, partitionRows: Row[], partRows: Row[] = []): Checkpoint {
  const parts = new Map<number, Array<[number, JsonValue]>>()
  for (const r of partRows) {
    const partition = Number(r.partition)
    const list = parts.get(partition) ?? []
    parts.set(partition, list)
    list.push([Number(r.part), JSON.parse(r.state as string) as JsonValue])
  }
  const checkpoint: Checkpoint = {
    state: JSON.parse(row.state as string) as JsonValue,
    stats: JSON.parse(row.stats as string),
    partitions: partitionRows.map((p) => {
      const held = parts.get(Number(p.partition))
      return {
        partition: Number(p.partition),
        position: p.position === null ? null : Number(p.position),
        state: JSON.parse(p.state as string) as JsonValue,
        stats: JSON.parse(p.stats as string),
        ...(held ? { parts: { all: true, changed: held, dropped: [] } } : {}),
      }
    }),
  }
  if (partitionRows.length > 0) return checkpoint
  const legacy: Record<string, number> | null =
    typeof row.positions === 'string'
      ? JSON.parse(row.positions)
      : typeof row.log_offset === 'number' && row.log_offset >= 0
        ? { '0': row.log_offset }
        : null
  if (legacy)
    checkpoint.partitions = Object.entries(legacy).map(([p, o]) => ({
      partition: Number(p),
      position: o,
      state: null,
      stats: emptyPartitionStats(),
    }))
  return checkpoint
}

export function lookupTableOf(row: Row): LookupTableInfo {
  return {
    name: row.name as string,
    keyField: row.key_field as string,
    rows: row.row_count as number,
    updatedAt: row.updated_at as number,
  }
}

/** A key added through the API (keys from the file or the environment are never stored). */
export function apiKeyOf(row: Row): ApiKeyRecord {
  return {
    id: row.id as string,
    name: row.name as string,
    role: row.role as Role,
    sha256: row.sha256 as string,
    createdAt: row.created_at as number,
    expiresAt: (row.expires_at as number | null) ?? null,
    source: 'api',
  }
}

/** A series as the metrics listing selects it (name, tags, last_value, last_ts, n). */
export function seriesOf(row: Row): SeriesInfo {
  return {
    name: row.name as string,
    tags: JSON.parse(row.tags as string),
    lastValue: row.last_value as number,
    lastTimestamp: row.last_ts as number,
    points: row.n as number,
  }
}

/**
 * Checkpoints' counters and positions from their rows (`pipeline_id, stats` and `pipeline_id,
 * partition, position, stats`, the partitions in order; the state columns are not read).
 */
export function progressOf(rows: Row[], partitionRows: Row[]): Map<string, CheckpointProgress> {
  const out = new Map<string, CheckpointProgress>()
  for (const r of rows)
    out.set(r.pipeline_id as string, { stats: JSON.parse(r.stats as string), partitions: [] })
  for (const p of partitionRows)
    out.get(p.pipeline_id as string)?.partitions.push({
      partition: Number(p.partition),
      position: p.position === null ? null : Number(p.position),
      stats: JSON.parse(p.stats as string),
    })
  return out
}

/**
 * An outbox batch as both stores keep it: `meta` is the JSON of `[topic, key, headers, value
 * length]` per message and `body` the values one after the other, so the values (the bulk, JSON
 * text themselves) are neither escaped nor parsed on the way. A batch moved from a row per message
 * (schema v7) has no body and its values in `meta`.
 */
export function outboxColumns(messages: readonly OutboxMessage[]): { meta: string; body: string } {
  const meta: Array<[string, string | null, Record<string, string>, number]> = new Array(messages.length)
  let body = ''
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]
    meta[i] = [m.topic, m.key, m.headers, m.value.length]
    body += m.value
  }
  return { meta: JSON.stringify(meta), body }
}

/**
 * Both stores' read of the outbox (`$1` pipeline, `$2` first seq, `$3` most messages): whole
 * covered batches up to the limit of messages, the first one whatever its size. The sizes are
 * summed first, so only the batches returned are loaded (a batch is a few hundred kB).
 */
export const READ_OUTBOX_SQL = `SELECT seq, meta, body FROM outbox_batches WHERE pipeline_id = $1 AND seq >= $2 AND seq <= (
  SELECT max(seq) FROM (
    SELECT seq, count, sum(count) OVER (ORDER BY seq) AS total FROM (
      SELECT seq, count FROM outbox_batches WHERE pipeline_id = $1 AND seq >= $2
      AND seq <= coalesce((SELECT seq FROM outbox_covered WHERE pipeline_id = $1), 0) ORDER BY seq LIMIT $3) b
  ) w WHERE total <= $3 OR total = count)
ORDER BY seq`

/** An outbox batch read back (PostgreSQL's BIGINT seq comes as text). */
export function outboxBatchOf(r: Row): OutboxBatch {
  const meta = JSON.parse(r.meta as string) as Array<
    [topic: string, key: string | null, headers: Record<string, string>, value: number | string]
  >
  const body = (r.body as string | null) ?? ''
  let at = 0
  const messages = meta.map(([topic, key, headers, value]): OutboxMessage => {
    if (typeof value === 'string') return { topic, key, headers, value }
    const end = at + value
    const m = { topic, key, headers, value: body.slice(at, end) }
    at = end
    return m
  })
  return { seq: Number(r.seq), messages }
}
