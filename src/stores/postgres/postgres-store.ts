import pg from 'pg'
import type { ApiKeyRecord } from '../../auth/key-types.ts'
import { parseKeyFilters } from '../../engine/key-filter.ts'
import type { WindowResult } from '../../engine/types.ts'
import { mod } from '../../engine/windows.ts'
import {
  foldPoint,
  HOUR,
  MAX_QUERY_SERIES,
  MINUTE,
  type PointSummary,
  planMetricQuery,
  seriesKey,
} from '../metrics-plan.ts'
import {
  apiKeyOf,
  checkpointOf,
  deadLetterOf,
  lookupTableOf,
  outboxBatchOf,
  outboxColumns,
  pipelineOf,
  progressOf,
  READ_OUTBOX_SQL,
  type Row,
  resultOf,
  seriesOf,
  versionOf,
} from '../rows.ts'
import type {
  Checkpoint,
  CheckpointProgress,
  DeadLetterRecord,
  InsertOutcome,
  LookupTableInfo,
  MetricPoint,
  MetricQuery,
  MetricRetention,
  OutboxBatch,
  PartitionCheckpoint,
  PipelineCommit,
  PipelineRecord,
  PipelineStatus,
  PipelineVersion,
  ResultQuery,
  SeriesInfo,
  SeriesPoints,
  Store,
} from '../store.ts'
import { FencedError } from '../store.ts'
import { PostgresCluster } from './cluster.ts'
import { PG_SCHEMA } from './schema.ts'

type Db = pg.Pool | pg.PoolClient

/** bigint columns as numbers (every one here is an epoch ms or a count, well inside 2^53) */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
}

/** How each aggregate combines rollup rows, and raw points. */
const ROLLUP_SQL = {
  avg: 'sum(sum) / sum(n)',
  sum: 'sum(sum)',
  min: 'min(min)',
  max: 'max(max)',
  count: 'sum(n)',
  last: '(array_agg(last_value ORDER BY last_ts DESC))[1]',
} as const
const RAW_SQL = {
  avg: 'avg(value)',
  sum: 'sum(value)',
  min: 'min(value)',
  max: 'max(value)',
  count: 'count(*)',
  last: '(array_agg(value ORDER BY ts DESC))[1]',
} as const

function rollupsOf(
  points: Array<[id: number, ts: number, value: number]>,
  width: number,
): Map<string, PointSummary> {
  const out = new Map<string, PointSummary>()
  for (const [id, ts, value] of points) {
    const k = `${id}:${ts - mod(ts, width)}`
    const r = out.get(k)
    if (r === undefined)
      out.set(k, { n: 1, sum: value, min: value, max: value, lastTs: ts, lastValue: value })
    else foldPoint(r, ts, value)
  }
  return out
}

/**
 * The store on PostgreSQL (`DATABASE_URL`): the same data as the SQLite store, for several
 * instances to share. Every commit is one transaction; metric points go in as rows beside
 * minute and hour rollups kept up to date by the same statement batch.
 */
export class PostgresStore implements Store {
  readonly cluster: PostgresCluster
  readonly #pool: pg.Pool
  /** heartbeats and leases on connections of their own: a busy commit pool must not let a lease lapse */
  readonly #clusterPool: pg.Pool
  readonly #seriesIds = new Map<string, number>()
  /** raw points before this may have been deleted by retention: queries there read rollups */
  #rawSince = Number.NEGATIVE_INFINITY

  private constructor(pool: pg.Pool, clusterPool: pg.Pool, connectionString: string) {
    this.#pool = pool
    this.#clusterPool = clusterPool
    this.cluster = new PostgresCluster(clusterPool, connectionString)
  }

  static async open(
    connectionString: string,
    { poolSize = 8, statementTimeoutMs = 30_000 }: { poolSize?: number; statementTimeoutMs?: number } = {},
  ): Promise<PostgresStore> {
    // statement_timeout on every connection: a statement stuck on a lock fails (and is retried) instead of hanging a commit
    const pool = new pg.Pool({
      connectionString,
      types,
      max: poolSize,
      statement_timeout: statementTimeoutMs,
      // an instance frozen mid-commit (SIGSTOP, a VM paused) holds its lease row locked: the
      // database ends such a transaction, so another instance can take the pipeline over
      idle_in_transaction_session_timeout: 5_000,
    })
    // an instance that cannot reach the database must not take the process down later on
    pool.on('error', () => undefined)
    const client = await pool.connect()
    try {
      // instances starting together create the tables once
      await client.query("SELECT pg_advisory_lock(hashtext('datapulse-schema'))")
      await client.query(PG_SCHEMA)
      await client.query("SELECT pg_advisory_unlock(hashtext('datapulse-schema'))")
    } finally {
      client.release()
    }
    const clusterPool = new pg.Pool({ connectionString, types, max: 2, statement_timeout: 5_000 })
    clusterPool.on('error', () => undefined)
    return new PostgresStore(pool, clusterPool, connectionString)
  }

  async #tx<T>(work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.#pool.connect()
    // a checked-out client emits the end of its connection (the server ended a transaction a frozen
    // process left open): kept here, it fails this transaction instead of the process
    let broken: Error | undefined
    const onError = (err: Error) => {
      broken = err
    }
    c.on('error', onError)
    try {
      await c.query('BEGIN')
      const out = await work(c)
      await c.query('COMMIT')
      return out
    } catch (err) {
      await c.query('ROLLBACK').catch((rollback: Error) => {
        broken ??= rollback
      })
      throw err
    } finally {
      c.off('error', onError)
      // a connection that failed is closed, not handed to the next transaction
      c.release(broken)
    }
  }

  async #rows(db: Db, sql: string, params: unknown[] = []): Promise<Row[]> {
    return (await db.query(sql, params)).rows as Row[]
  }

  // ---- pipelines ----

  async listPipelines(): Promise<PipelineRecord[]> {
    return (await this.#rows(this.#pool, 'SELECT * FROM pipelines ORDER BY created_at, seq')).map(pipelineOf)
  }

  async getPipeline(id: string): Promise<PipelineRecord | undefined> {
    const [row] = await this.#rows(this.#pool, 'SELECT * FROM pipelines WHERE id = $1', [id])
    return row && pipelineOf(row)
  }

  async insertPipeline(r: PipelineRecord): Promise<InsertOutcome> {
    return this.#tx(async (c) => {
      const res = await c.query(
        `INSERT INTO pipelines (id, name, spec, status, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (name) DO NOTHING`,
        [r.id, r.name, JSON.stringify(r.spec), r.status, r.createdAt, r.updatedAt, r.version],
      )
      if (res.rowCount === 0) return { ok: false, conflict: 'name' } as const
      await c.query(
        'INSERT INTO pipeline_versions (pipeline_id, version, spec, created_at, reset) VALUES ($1, $2, $3, $4, false)',
        [r.id, r.version, JSON.stringify(r.spec), r.createdAt],
      )
      return { ok: true } as const
    })
  }

  async updatePipeline(r: PipelineRecord, reset: boolean): Promise<InsertOutcome> {
    return this.#tx(async (c) => {
      // a name another pipeline has: nothing changes
      const res = await c.query(
        `UPDATE pipelines SET name = $1, spec = $2, version = $3, updated_at = $4
         WHERE id = $5 AND NOT EXISTS (SELECT 1 FROM pipelines WHERE name = $1 AND id <> $5)`,
        [r.name, JSON.stringify(r.spec), r.version, r.updatedAt, r.id],
      )
      if (res.rowCount === 0) return { ok: false, conflict: 'name' } as const
      await c.query(
        `INSERT INTO pipeline_versions (pipeline_id, version, spec, created_at, reset) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (pipeline_id, version) DO UPDATE SET spec = excluded.spec, created_at = excluded.created_at, reset = excluded.reset`,
        [r.id, r.version, JSON.stringify(r.spec), r.updatedAt, reset],
      )
      return { ok: true } as const
    })
  }

  async listVersions(pipelineId: string): Promise<PipelineVersion[]> {
    return (
      await this.#rows(
        this.#pool,
        'SELECT * FROM pipeline_versions WHERE pipeline_id = $1 ORDER BY version',
        [pipelineId],
      )
    ).map(versionOf)
  }

  async setPipelineStatus(id: string, status: PipelineStatus, at: number): Promise<void> {
    await this.#pool.query('UPDATE pipelines SET status = $1, updated_at = $2 WHERE id = $3', [
      status,
      at,
      id,
    ])
  }

  async deletePipeline(id: string): Promise<void> {
    await this.#tx(async (c) => {
      for (const table of [
        'results',
        'dead_letters',
        'checkpoints',
        'partition_checkpoints',
        'checkpoint_parts',
        'pipeline_versions',
        'pipeline_owners',
        'outbox_batches',
        'outbox_covered',
      ])
        await c.query(`DELETE FROM ${table} WHERE pipeline_id = $1`, [id])
      await c.query('DELETE FROM pipelines WHERE id = $1', [id])
    })
  }

  // ---- results, dead letters, checkpoints: one transaction per commit ----

  async commit(pipelineId: string, commit: PipelineCommit): Promise<void> {
    await this.#tx(async (c) => {
      // the lease row stays locked (shared) until this commits: a take-over waits for it, then moves the epoch
      const fence = commit.fence
      if (fence) {
        const held = await c.query(
          'SELECT 1 FROM pipeline_owners WHERE pipeline_id = $1 AND instance_id = $2 AND epoch = $3 FOR SHARE',
          [pipelineId, fence.instanceId, fence.epoch],
        )
        if (held.rowCount === 0) throw new FencedError(pipelineId, fence)
      }
      if (commit.discardUncovered)
        await c.query(
          `DELETE FROM outbox_batches WHERE pipeline_id = $1 AND seq >
           coalesce((SELECT seq FROM outbox_covered WHERE pipeline_id = $1), 0)`,
          [pipelineId],
        )
      if (commit.dropResultsFrom !== undefined)
        await c.query('DELETE FROM results WHERE pipeline_id = $1 AND window_start >= $2', [
          pipelineId,
          commit.dropResultsFrom,
        ])
      if (commit.results.length > 0) {
        const r = commit.results
        await c.query(
          `INSERT INTO results (pipeline_id, window_start, key_id, window_end, key, results, version)
           SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::int[])
           ON CONFLICT (pipeline_id, window_start, key_id) DO UPDATE
             SET window_end = excluded.window_end, key = excluded.key, results = excluded.results,
               version = excluded.version`,
          [
            pipelineId,
            r.map((x) => x.windowStart),
            r.map((x) => x.keyId),
            r.map((x) => x.windowEnd),
            r.map((x) => (x.key === null ? null : JSON.stringify(x.key))),
            r.map((x) => JSON.stringify(x.results)),
            r.map((x) => x.version ?? null),
          ],
        )
      }
      // one statement for all of them; ORDER BY ordinality keeps their order in seq
      const d = commit.deadLetters
      if (d.length > 0)
        await c.query(
          `INSERT INTO dead_letters (pipeline_id, id, reason, detail, event, at)
           SELECT $1, id, reason, detail, event, at
           FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
             WITH ORDINALITY AS l(id, reason, detail, event, at, i)
           ORDER BY i
           ON CONFLICT DO NOTHING`,
          [
            pipelineId,
            d.map((x) => x.id),
            d.map((x) => x.reason),
            d.map((x) => x.detail),
            d.map((x) => JSON.stringify(x.event)),
            d.map((x) => x.at),
          ],
        )
      if (commit.metrics && commit.metrics.length > 0) await this.#writeMetrics(c, commit.metrics)
      const o = commit.outbox ?? []
      if (o.length > 0) {
        const { meta, body } = outboxColumns(o)
        await c.query('INSERT INTO outbox_batches (pipeline_id, count, meta, body) VALUES ($1, $2, $3, $4)', [
          pipelineId,
          o.length,
          meta,
          body,
        ])
      }
      const cp = commit.checkpoint
      if (cp) {
        // everything in the outbox now came from input before these positions: the relay may send it
        await c.query(
          `INSERT INTO outbox_covered (pipeline_id, seq)
           SELECT $1, max(seq) FROM outbox_batches WHERE pipeline_id = $1 HAVING max(seq) IS NOT NULL
           ON CONFLICT (pipeline_id) DO UPDATE SET seq = greatest(outbox_covered.seq, excluded.seq)`,
          [pipelineId],
        )
        const now = Date.now()
        await c.query(
          `INSERT INTO checkpoints (pipeline_id, positions, state, stats, updated_at) VALUES ($1, NULL, $2, $3, $4)
           ON CONFLICT (pipeline_id) DO UPDATE SET positions = NULL, state = excluded.state,
             stats = excluded.stats, updated_at = excluded.updated_at`,
          [pipelineId, JSON.stringify(cp.state), JSON.stringify(cp.stats), now],
        )
        const parts = cp.partitions
        if (parts.length > 0)
          await c.query(
            `INSERT INTO partition_checkpoints (pipeline_id, partition, position, state, stats, updated_at)
             SELECT $1, *, $6 FROM unnest($2::int[], $3::bigint[], $4::text[], $5::text[])
             ON CONFLICT (pipeline_id, partition) DO UPDATE SET position = excluded.position,
               state = excluded.state, stats = excluded.stats, updated_at = excluded.updated_at`,
            [
              pipelineId,
              parts.map((p) => p.partition),
              parts.map((p) => p.position),
              parts.map((p) => JSON.stringify(p.state)),
              parts.map((p) => JSON.stringify(p.stats)),
              now,
            ],
          )
        await this.#writeParts(c, pipelineId, cp.partitions)
      }
    })
  }

  /** Each partition's parts: all replaced, or the dropped deleted and the changed written; none without parts. */
  async #writeParts(c: pg.PoolClient, pipelineId: string, partitions: PartitionCheckpoint[]): Promise<void> {
    const clear = partitions.filter((p) => !p.parts || p.parts.all).map((p) => p.partition)
    if (clear.length > 0)
      await c.query('DELETE FROM checkpoint_parts WHERE pipeline_id = $1 AND partition = ANY($2::int[])', [
        pipelineId,
        clear,
      ])
    const dropped = partitions.flatMap((p) =>
      p.parts && !p.parts.all ? p.parts.dropped.map((part) => [p.partition, part] as const) : [],
    )
    if (dropped.length > 0)
      await c.query(
        `DELETE FROM checkpoint_parts WHERE pipeline_id = $1 AND (partition, part) IN
           (SELECT * FROM unnest($2::int[], $3::bigint[]))`,
        [pipelineId, dropped.map((d) => d[0]), dropped.map((d) => d[1])],
      )
    const changed = partitions.flatMap((p) =>
      (p.parts?.changed ?? []).map(([part, value]) => [p.partition, part, JSON.stringify(value)] as const),
    )
    if (changed.length > 0)
      await c.query(
        `INSERT INTO checkpoint_parts (pipeline_id, partition, part, state)
         SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::text[])
         ON CONFLICT (pipeline_id, partition, part) DO UPDATE SET state = excluded.state`,
        [pipelineId, changed.map((x) => x[0]), changed.map((x) => x[1]), changed.map((x) => x[2])],
      )
  }

  async loadProgress(pipelineIds: readonly string[]): Promise<Map<string, CheckpointProgress>> {
    if (pipelineIds.length === 0) return new Map()
    const ids = [...pipelineIds]
    const rows = await this.#rows(
      this.#pool,
      'SELECT pipeline_id, stats FROM checkpoints WHERE pipeline_id = ANY($1)',
      [ids],
    )
    const parts = await this.#rows(
      this.#pool,
      `SELECT pipeline_id, partition, position, stats FROM partition_checkpoints
       WHERE pipeline_id = ANY($1) ORDER BY pipeline_id, partition`,
      [ids],
    )
    return progressOf(rows, parts)
  }

  async loadCheckpoint(pipelineId: string): Promise<Checkpoint | undefined> {
    const [row] = await this.#rows(this.#pool, 'SELECT * FROM checkpoints WHERE pipeline_id = $1', [
      pipelineId,
    ])
    if (!row) return undefined
    const parts = await this.#rows(
      this.#pool,
      'SELECT * FROM partition_checkpoints WHERE pipeline_id = $1 ORDER BY partition',
      [pipelineId],
    )
    const held = await this.#rows(
      this.#pool,
      'SELECT * FROM checkpoint_parts WHERE pipeline_id = $1 ORDER BY partition, part',
      [pipelineId],
    )
    return checkpointOf(row, parts, held)
  }

  async queryResults(pipelineId: string, q: ResultQuery): Promise<WindowResult[]> {
    const params: unknown[] = [pipelineId]
    const p = (v: unknown) => {
      params.push(v)
      return `$${params.length}`
    }
    const where = ['pipeline_id = $1']
    if (q.from !== undefined) where.push(`window_end > ${p(q.from)}`)
    if (q.to !== undefined) where.push(`window_start < ${p(q.to)}`)
    // the rule of engine/key-filter.ts, by JSON type
    for (const [path, filter] of parseKeyFilters(q.key ?? {})) {
      const at = `(key::jsonb -> ${p(path)})`
      const alternatives = [`${at} = to_jsonb(${p(filter.string)}::text)`]
      if (filter.number !== undefined)
        alternatives.push(
          `(jsonb_typeof(${at}) = 'number' AND (${at})::text::float8 = ${p(filter.number)}::float8)`,
        )
      if (filter.boolean !== undefined) alternatives.push(`${at} = ${p(String(filter.boolean))}::jsonb`)
      if (filter.null) alternatives.push(`coalesce(jsonb_typeof(${at}), 'null') = 'null'`)
      if (filter.structured !== undefined)
        alternatives.push(
          `(jsonb_typeof(${at}) IN ('object', 'array') AND ${at} = ${p(filter.structured)}::jsonb)`,
        )
      where.push(`(${alternatives.join(' OR ')})`)
    }
    const rows = await this.#rows(
      this.#pool,
      `SELECT * FROM results WHERE ${where.join(' AND ')} ORDER BY window_start DESC, key_id COLLATE "C" LIMIT ${p(q.limit)}`,
      params,
    )
    return rows.map(resultOf)
  }

  async listDeadLetters(pipelineId: string, limit: number): Promise<DeadLetterRecord[]> {
    const rows = await this.#rows(
      this.#pool,
      'SELECT * FROM dead_letters WHERE pipeline_id = $1 ORDER BY seq DESC LIMIT $2',
      [pipelineId, limit],
    )
    return rows.map(deadLetterOf)
  }

  async trimDeadLetters(pipelineId: string, keep: number): Promise<void> {
    await this.#pool.query(
      `DELETE FROM dead_letters WHERE pipeline_id = $1 AND seq <
         (SELECT seq FROM dead_letters WHERE pipeline_id = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)`,
      [pipelineId, keep - 1],
    )
  }

  async readOutbox(pipelineId: string, from: number, limit: number): Promise<OutboxBatch[]> {
    const rows = await this.#rows(this.#pool, READ_OUTBOX_SQL, [pipelineId, from, limit])
    return rows.map(outboxBatchOf)
  }

  async trimOutbox(pipelineId: string, before: number): Promise<void> {
    await this.#pool.query('DELETE FROM outbox_batches WHERE pipeline_id = $1 AND seq < $2', [
      pipelineId,
      before,
    ])
  }

  // ---- lookup tables ----

  async putLookupTable(
    name: string,
    keyField: string,
    rows: Array<[key: string, row: Record<string, unknown>]>,
    at: number,
  ): Promise<void> {
    // a key given twice: the last row wins, as in the SQLite store
    const byKey = new Map(rows)
    await this.#tx(async (c) => {
      await c.query('DELETE FROM lookup_rows WHERE table_name = $1', [name])
      await c.query(
        'INSERT INTO lookup_rows (table_name, key, row) SELECT $1, * FROM unnest($2::text[], $3::text[])',
        [name, [...byKey.keys()], [...byKey.values()].map((r) => JSON.stringify(r))],
      )
      await c.query(
        `INSERT INTO lookup_tables (name, key_field, row_count, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET key_field = excluded.key_field, row_count = excluded.row_count,
           updated_at = excluded.updated_at`,
        [name, keyField, byKey.size, at],
      )
    })
  }

  async listLookupTables(): Promise<LookupTableInfo[]> {
    return (await this.#rows(this.#pool, 'SELECT * FROM lookup_tables ORDER BY name COLLATE "C"')).map(
      lookupTableOf,
    )
  }

  async loadLookupTable(name: string): Promise<Map<string, Record<string, unknown>> | undefined> {
    const exists = await this.#rows(this.#pool, 'SELECT 1 FROM lookup_tables WHERE name = $1', [name])
    if (exists.length === 0) return undefined
    const rows = await this.#rows(this.#pool, 'SELECT key, row FROM lookup_rows WHERE table_name = $1', [
      name,
    ])
    return new Map(rows.map((r) => [r.key as string, JSON.parse(r.row as string)]))
  }

  async deleteLookupTable(name: string): Promise<boolean> {
    return this.#tx(async (c) => {
      await c.query('DELETE FROM lookup_rows WHERE table_name = $1', [name])
      return ((await c.query('DELETE FROM lookup_tables WHERE name = $1', [name])).rowCount ?? 0) > 0
    })
  }

  // ---- metrics ----

  async writeMetrics(points: MetricPoint[]): Promise<void> {
    await this.#tx((c) => this.#writeMetrics(c, points))
  }

  async #seriesIdsFor(c: Db, points: MetricPoint[]): Promise<number[]> {
    const keys = points.map((p) => [p.name, seriesKey(p.tags)] as const)
    const missing = new Map<string, readonly [string, string]>()
    for (const k of keys)
      if (!this.#seriesIds.has(`${k[0]}\u0000${k[1]}`)) missing.set(`${k[0]}\u0000${k[1]}`, k)
    if (missing.size > 0) {
      const list = [...missing.values()]
      const names = list.map((k) => k[0])
      const tags = list.map((k) => k[1])
      await c.query(
        'INSERT INTO series (name, tags) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (name, tags) DO NOTHING',
        [names, tags],
      )
      for (const row of await this.#rows(
        c,
        'SELECT s.id, s.name, s.tags FROM series s JOIN unnest($1::text[], $2::text[]) AS k(name, tags) ON s.name = k.name AND s.tags = k.tags',
        [names, tags],
      ))
        this.#seriesIds.set(`${row.name}\u0000${row.tags}`, row.id as number)
    }
    return keys.map((k) => this.#seriesIds.get(`${k[0]}\u0000${k[1]}`) as number)
  }

  async #writeMetrics(c: Db, points: MetricPoint[]): Promise<void> {
    const ids = await this.#seriesIdsFor(c, points)
    const rows = points.map((p, i): [number, number, number] => [ids[i], p.timestamp, p.value])
    await c.query(
      'INSERT INTO points (series_id, ts, value) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::float8[])',
      [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])],
    )
    for (const [table, width] of [
      ['minutes', MINUTE],
      ['hours', HOUR],
    ] as const) {
      const rollups = [...rollupsOf(rows, width)]
      const col = (f: (r: PointSummary) => number) => rollups.map(([, r]) => f(r))
      await c.query(
        `INSERT INTO ${table} AS t (series_id, bucket, n, sum, min, max, last_ts, last_value${table === 'minutes' ? ', raw' : ''})
         SELECT *${table === 'minutes' ? ', true' : ''} FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::float8[],
           $5::float8[], $6::float8[], $7::bigint[], $8::float8[])
         ON CONFLICT (series_id, bucket) DO UPDATE SET n = t.n + excluded.n, sum = t.sum + excluded.sum,
           min = least(t.min, excluded.min), max = greatest(t.max, excluded.max),
           last_value = CASE WHEN excluded.last_ts >= t.last_ts THEN excluded.last_value ELSE t.last_value END,
           last_ts = greatest(t.last_ts, excluded.last_ts)`,
        [
          rollups.map(([k]) => Number(k.split(':')[0])),
          rollups.map(([k]) => Number(k.split(':')[1])),
          col((r) => r.n),
          col((r) => r.sum),
          col((r) => r.min),
          col((r) => r.max),
          col((r) => r.lastTs),
          col((r) => r.lastValue),
        ],
      )
    }
  }

  async listSeries(limit: number, offset: number): Promise<{ series: SeriesInfo[]; total: number }> {
    const rows = await this.#rows(
      this.#pool,
      `SELECT s.name, s.tags,
         coalesce((SELECT m.last_value FROM minutes m WHERE m.series_id = s.id ORDER BY m.bucket DESC LIMIT 1),
           (SELECT h.last_value FROM hours h WHERE h.series_id = s.id ORDER BY h.bucket DESC LIMIT 1)) AS last_value,
         coalesce((SELECT m.last_ts FROM minutes m WHERE m.series_id = s.id ORDER BY m.bucket DESC LIMIT 1),
           (SELECT h.last_ts FROM hours h WHERE h.series_id = s.id ORDER BY h.bucket DESC LIMIT 1)) AS last_ts,
         (SELECT count(*) FROM points p WHERE p.series_id = s.id) AS n
       FROM series s ORDER BY s.name COLLATE "C", s.tags COLLATE "C" LIMIT $1 OFFSET $2`,
      [limit, offset],
    )
    return {
      total: await this.countSeries(),
      series: rows.map(seriesOf),
    }
  }

  async countSeries(): Promise<number> {
    const [row] = await this.#rows(this.#pool, 'SELECT count(*) AS n FROM series')
    return row.n as number
  }

  async queryMetrics(
    q: MetricQuery,
  ): Promise<SeriesPoints[] | { tooMany: number; what: 'points' | 'series' }> {
    const matching = (await this.#rows(this.#pool, 'SELECT id, tags FROM series WHERE name = $1', [q.name]))
      .map((r) => ({ id: r.id as number, tags: JSON.parse(r.tags as string) as Record<string, string> }))
      .filter((s) => Object.entries(q.tags).every(([k, v]) => s.tags[k] === v))
    if (matching.length > MAX_QUERY_SERIES) return { tooMany: matching.length, what: 'series' }
    const plan = planMetricQuery(q, this.#rawSince)
    const [table, time, agg] =
      plan.table === 'raw'
        ? ['points', 'ts', RAW_SQL[q.agg]]
        : plan.table === 'hours'
          ? ['hours', 'bucket', ROLLUP_SQL[q.agg]]
          : ['minutes', 'bucket', ROLLUP_SQL[q.agg]]
    const ids = matching.map((s) => s.id)
    const [count] = await this.#rows(
      this.#pool,
      `SELECT count(*) AS n FROM ${table} WHERE series_id = ANY($1::bigint[]) AND ${time} >= $2 AND ${time} < $3`,
      [ids, plan.from, plan.to],
    )
    if ((count.n as number) > q.maxPoints) return { tooMany: count.n as number, what: 'points' }
    const rows = await this.#rows(
      this.#pool,
      `SELECT series_id, (${time} - ((${time} % $4) + $4) % $4) AS b, (${agg})::float8 AS v FROM ${table}
       WHERE series_id = ANY($1::bigint[]) AND ${time} >= $2 AND ${time} < $3 GROUP BY series_id, b ORDER BY series_id, b`,
      [ids, plan.from, plan.to, q.stepMs],
    )
    const bySeries = new Map<number, Array<{ timestamp: number; value: number }>>()
    for (const r of rows) {
      const list = bySeries.get(r.series_id as number) ?? []
      list.push({ timestamp: r.b as number, value: r.v as number })
      bySeries.set(r.series_id as number, list)
    }
    return matching.map((s) => ({ name: q.name, tags: s.tags, points: bySeries.get(s.id) ?? [] }))
  }

  async enforceMetricsRetention(r: MetricRetention): Promise<number> {
    this.#rawSince = r.rawBefore
    return this.#tx(async (c) => {
      // a minute's raw points go once the whole minute is past the cut-off
      let n = await this.#dropRawBefore(c, r.rawBefore - MINUTE + 1)
      await c.query('DELETE FROM minutes WHERE bucket < $1 AND NOT raw', [r.minuteBefore])
      await c.query('DELETE FROM hours WHERE bucket < $1', [r.hourBefore])
      // past the size bound, the oldest minutes lose their raw points first
      for (;;) {
        const [{ total }] = await this.#rows(c, 'SELECT count(*) AS total FROM points')
        if ((total as number) <= r.maxRawPoints) break
        const [oldest] = await this.#rows(c, 'SELECT min(bucket) AS minute FROM minutes WHERE raw')
        if (oldest?.minute === null || oldest === undefined) break
        n += await this.#dropRawBefore(c, (oldest.minute as number) + 1)
      }
      await c.query(
        `DELETE FROM series s WHERE NOT EXISTS (SELECT 1 FROM minutes WHERE series_id = s.id)
           AND NOT EXISTS (SELECT 1 FROM hours WHERE series_id = s.id)`,
      )
      this.#seriesIds.clear()
      return n
    })
  }

  /** Drops the raw points of every minute before `minute` (their rollups stay); returns how many. */
  async #dropRawBefore(c: Db, minute: number): Promise<number> {
    const boundary = minute - mod(minute, MINUTE) + (mod(minute, MINUTE) === 0 ? 0 : MINUTE)
    const deleted = await c.query('DELETE FROM points WHERE ts < $1', [boundary])
    await c.query('UPDATE minutes SET raw = false WHERE raw AND bucket < $1', [boundary])
    return deleted.rowCount ?? 0
  }

  // ---- API keys ----

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return (await this.#rows(this.#pool, 'SELECT * FROM api_keys ORDER BY created_at, id')).map(apiKeyOf)
  }

  async insertApiKey(k: ApiKeyRecord): Promise<void> {
    await this.#pool.query(
      'INSERT INTO api_keys (id, name, role, sha256, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)',
      [k.id, k.name, k.role, k.sha256, k.createdAt, k.expiresAt],
    )
  }

  async deleteApiKey(id: string): Promise<boolean> {
    return ((await this.#pool.query('DELETE FROM api_keys WHERE id = $1', [id])).rowCount ?? 0) > 0
  }

  async close(): Promise<void> {
    await this.#pool.end()
    await this.#clusterPool.end()
  }
}
