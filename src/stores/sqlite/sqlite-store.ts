import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import { Worker } from 'node:worker_threads'
import type { ApiKeyRecord } from '../../auth/key-types.ts'
import { parseKeyFilters } from '../../engine/key-filter.ts'
import type { WindowResult } from '../../engine/types.ts'
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
  PipelineCommit,
  PipelineRecord,
  PipelineStatus,
  PipelineVersion,
  ResultQuery,
  SeriesInfo,
  SeriesPoints,
  Store,
} from '../store.ts'
import { MIGRATIONS, SCHEMA, SCHEMA_VERSION } from './schema.ts'
import { SqliteMetrics } from './sqlite-metrics.ts'

/** How often the WAL is folded back into the database file (by a worker thread). */
const WAL_CHECKPOINT_MS = 1_000
/** Chunks written per transaction when staged metric points are folded in (each slice a few ms). */
const METRIC_FLUSH_SLICE = 100
/** Hour rollups recomputed per transaction while points are folded in. */
const ROLLUP_REFRESH_SLICE = 1_000

/** The embedded store: one SQLite database (WAL) under the data dir. */
export class SqliteStore implements Store {
  readonly #db: DatabaseSync
  readonly #metrics: SqliteMetrics
  readonly #stmt: Record<string, StatementSync>
  #deadLetterSeq = 0
  /** raw points before this may have been deleted by retention: queries there read rollups */
  #rawSince = Number.NEGATIVE_INFINITY
  #settling = false
  #checkpointer: Worker | undefined

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
    const db = new DatabaseSync(path)
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;')
    const version = (db.prepare('PRAGMA user_version').get() as Row).user_version as number
    if (version > SCHEMA_VERSION)
      throw new Error(`store schema version ${version} is newer than this DataPulse (${SCHEMA_VERSION})`)
    // all steps or none: a step that failed (or a crash) leaves the store as it was
    db.exec('BEGIN IMMEDIATE')
    try {
      if (version === 0) db.exec(SCHEMA)
      else for (let v = version + 1; v <= SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v])
      db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`)
      db.exec('COMMIT')
    } catch (err) {
      db.exec('ROLLBACK')
      db.close()
      throw err
    }
    this.#db = db
    this.#metrics = new SqliteMetrics(db)
    this.#stmt = {
      listPipelines: db.prepare('SELECT * FROM pipelines ORDER BY created_at, rowid'),
      getPipeline: db.prepare('SELECT * FROM pipelines WHERE id = ?'),
      insertPipeline: db.prepare(
        'INSERT INTO pipelines (id, name, spec, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING',
      ),
      setStatus: db.prepare('UPDATE pipelines SET status = ?, updated_at = ? WHERE id = ?'),
      updatePipeline: db.prepare(
        'UPDATE OR IGNORE pipelines SET name = ?, spec = ?, version = ?, updated_at = ? WHERE id = ?',
      ),
      insertVersion: db.prepare(
        'INSERT OR REPLACE INTO pipeline_versions (pipeline_id, version, spec, created_at, reset) VALUES (?, ?, ?, ?, ?)',
      ),
      listVersions: db.prepare('SELECT * FROM pipeline_versions WHERE pipeline_id = ? ORDER BY version'),
      dropResultsFrom: db.prepare('DELETE FROM results WHERE pipeline_id = ? AND window_start >= ?'),
      upsertResult: db.prepare(
        `INSERT INTO results (pipeline_id, window_start, key_id, window_end, key, results, version) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (pipeline_id, window_start, key_id) DO UPDATE SET window_end = excluded.window_end, key = excluded.key,
           results = excluded.results, version = excluded.version`,
      ),
      insertDeadLetter: db.prepare(
        'INSERT INTO dead_letters (pipeline_id, id, seq, reason, detail, event, at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      saveCheckpoint: db.prepare(
        `INSERT INTO checkpoints (pipeline_id, log_offset, positions, state, stats, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (pipeline_id) DO UPDATE SET log_offset = excluded.log_offset, positions = excluded.positions,
           state = excluded.state, stats = excluded.stats, updated_at = excluded.updated_at`,
      ),
      savePartitionCheckpoint: db.prepare(
        `INSERT INTO partition_checkpoints (pipeline_id, partition, position, state, stats, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (pipeline_id, partition) DO UPDATE SET position = excluded.position, state = excluded.state,
           stats = excluded.stats, updated_at = excluded.updated_at`,
      ),
      loadCheckpoint: db.prepare('SELECT * FROM checkpoints WHERE pipeline_id = ?'),
      loadStats: db.prepare(
        'SELECT pipeline_id, stats FROM checkpoints WHERE pipeline_id IN (SELECT value FROM json_each(?))',
      ),
      loadPartitionProgress: db.prepare(
        `SELECT pipeline_id, partition, position, stats FROM partition_checkpoints
         WHERE pipeline_id IN (SELECT value FROM json_each(?)) ORDER BY pipeline_id, partition`,
      ),
      loadParts: db.prepare('SELECT * FROM checkpoint_parts WHERE pipeline_id = ? ORDER BY partition, part'),
      deleteParts: db.prepare('DELETE FROM checkpoint_parts WHERE pipeline_id = ? AND partition = ?'),
      deletePart: db.prepare(
        'DELETE FROM checkpoint_parts WHERE pipeline_id = ? AND partition = ? AND part = ?',
      ),
      savePart: db.prepare(
        'INSERT OR REPLACE INTO checkpoint_parts (pipeline_id, partition, part, state) VALUES (?, ?, ?, ?)',
      ),
      loadPartitionCheckpoints: db.prepare(
        'SELECT * FROM partition_checkpoints WHERE pipeline_id = ? ORDER BY partition',
      ),
      listDeadLetters: db.prepare(
        'SELECT * FROM dead_letters WHERE pipeline_id = ? ORDER BY seq DESC LIMIT ?',
      ),
      maxSeq: db.prepare('SELECT max(seq) AS seq FROM dead_letters'),
      trimDeadLetters: db.prepare(
        `DELETE FROM dead_letters WHERE pipeline_id = ? AND seq <
         (SELECT seq FROM dead_letters WHERE pipeline_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)`,
      ),
      insertOutbox: db.prepare(
        'INSERT INTO outbox_batches (pipeline_id, count, meta, body) VALUES (?, ?, ?, ?)',
      ),
      coverOutbox: db.prepare(
        `INSERT INTO outbox_covered (pipeline_id, seq) SELECT ?, max(seq) FROM outbox_batches WHERE pipeline_id = ? HAVING max(seq) IS NOT NULL
         ON CONFLICT (pipeline_id) DO UPDATE SET seq = max(seq, excluded.seq)`,
      ),
      discardUncovered: db.prepare(
        `DELETE FROM outbox_batches WHERE pipeline_id = ? AND seq >
         coalesce((SELECT seq FROM outbox_covered WHERE pipeline_id = ?), 0)`,
      ),
      // SQLite's numbered parameters are ?1, ?2…
      readOutbox: db.prepare(READ_OUTBOX_SQL.replaceAll('$', '?')),
      trimOutbox: db.prepare('DELETE FROM outbox_batches WHERE pipeline_id = ? AND seq < ?'),
      listLookups: db.prepare('SELECT * FROM lookup_tables ORDER BY name'),
      lookupRows: db.prepare('SELECT key, row FROM lookup_rows WHERE table_name = ?'),
      lookupExists: db.prepare('SELECT 1 AS one FROM lookup_tables WHERE name = ?'),
    }
    this.#deadLetterSeq = ((this.#stmt.maxSeq.get() as Row).seq as number | null) ?? 0
    if (path !== ':memory:') this.#checkpointer = this.#startCheckpointer(path)
  }

  /** The WAL goes back into the database file from a worker thread, not inside our commits. */
  #startCheckpointer(path: string): Worker {
    const db = this.#db
    db.exec('PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864')
    const worker = new Worker(new URL('./wal-checkpointer.ts', import.meta.url), {
      workerData: { path, intervalMs: WAL_CHECKPOINT_MS },
    })
    // a checkpointer that fails hands the job back to our own commits
    const fallBack = () => {
      if (db.isOpen) db.exec('PRAGMA wal_autocheckpoint = 1000')
    }
    worker.on('message', (m: { error?: string }) => {
      if (m.error) fallBack()
    })
    worker.on('error', fallBack)
    // after the listeners: adding a message listener holds the process open again
    worker.unref()
    return worker
  }

  #transaction<T>(work: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE')
    try {
      const result = work()
      this.#db.exec('COMMIT')
      this.#metrics.committed()
      return result
    } catch (err) {
      this.#db.exec('ROLLBACK')
      this.#metrics.rolledBack()
      throw err
    }
  }

  async listPipelines(): Promise<PipelineRecord[]> {
    return (this.#stmt.listPipelines.all() as Row[]).map(pipelineOf)
  }

  async getPipeline(id: string): Promise<PipelineRecord | undefined> {
    const row = this.#stmt.getPipeline.get(id) as Row | undefined
    return row && pipelineOf(row)
  }

  async insertPipeline(r: PipelineRecord): Promise<InsertOutcome> {
    return this.#transaction(() => {
      const info = this.#stmt.insertPipeline.run(
        r.id,
        r.name,
        JSON.stringify(r.spec),
        r.status,
        r.createdAt,
        r.updatedAt,
      )
      if (info.changes === 0) return { ok: false, conflict: 'name' } as const
      this.#stmt.insertVersion.run(r.id, r.version, JSON.stringify(r.spec), r.createdAt, 0)
      return { ok: true } as const
    })
  }

  async updatePipeline(r: PipelineRecord, reset: boolean): Promise<InsertOutcome> {
    return this.#transaction(() => {
      // OR IGNORE: a name another pipeline has leaves the row as it is
      const info = this.#stmt.updatePipeline.run(r.name, JSON.stringify(r.spec), r.version, r.updatedAt, r.id)
      if (info.changes === 0) return { ok: false, conflict: 'name' } as const
      this.#stmt.insertVersion.run(r.id, r.version, JSON.stringify(r.spec), r.updatedAt, reset ? 1 : 0)
      return { ok: true } as const
    })
  }

  async listVersions(pipelineId: string): Promise<PipelineVersion[]> {
    return (this.#stmt.listVersions.all(pipelineId) as Row[]).map(versionOf)
  }

  async setPipelineStatus(id: string, status: PipelineStatus, at: number): Promise<void> {
    this.#stmt.setStatus.run(status, at, id)
  }

  async deletePipeline(id: string): Promise<void> {
    this.#transaction(() => {
      for (const table of [
        'results',
        'dead_letters',
        'checkpoints',
        'partition_checkpoints',
        'checkpoint_parts',
        'pipeline_versions',
        'outbox_batches',
        'outbox_covered',
      ])
        this.#db.prepare(`DELETE FROM ${table} WHERE pipeline_id = ?`).run(id)
      this.#db.prepare('DELETE FROM pipelines WHERE id = ?').run(id)
    })
  }

  async commit(pipelineId: string, commit: PipelineCommit): Promise<void> {
    this.#transaction(() => {
      if (commit.discardUncovered) this.#stmt.discardUncovered.run(pipelineId, pipelineId)
      if (commit.dropResultsFrom !== undefined)
        this.#stmt.dropResultsFrom.run(pipelineId, commit.dropResultsFrom)
      for (const r of commit.results) {
        this.#stmt.upsertResult.run(
          pipelineId,
          r.windowStart,
          r.keyId,
          r.windowEnd,
          r.key === null ? null : JSON.stringify(r.key),
          JSON.stringify(r.results),
          r.version ?? null,
        )
      }
      for (const d of commit.deadLetters) {
        this.#stmt.insertDeadLetter.run(
          pipelineId,
          d.id,
          ++this.#deadLetterSeq,
          d.reason,
          d.detail,
          JSON.stringify(d.event),
          d.at,
        )
      }
      if (commit.metrics && commit.metrics.length > 0) this.#metrics.write(commit.metrics)
      const outbox = commit.outbox ?? []
      if (outbox.length > 0) {
        const { meta, body } = outboxColumns(outbox)
        this.#stmt.insertOutbox.run(pipelineId, outbox.length, meta, body)
      }
      const c = commit.checkpoint
      if (c) {
        // everything in the outbox now came from input before these positions: the relay may send it
        this.#stmt.coverOutbox.run(pipelineId, pipelineId)
        const now = Date.now()
        // positions live in the partition rows now (the column stays for stores from before)
        this.#stmt.saveCheckpoint.run(
          pipelineId,
          -1,
          null,
          JSON.stringify(c.state),
          JSON.stringify(c.stats),
          now,
        )
        for (const p of c.partitions) {
          this.#stmt.savePartitionCheckpoint.run(
            pipelineId,
            p.partition,
            p.position,
            JSON.stringify(p.state),
            JSON.stringify(p.stats),
            now,
          )
          const parts = p.parts
          if (!parts || parts.all) this.#stmt.deleteParts.run(pipelineId, p.partition)
          else for (const part of parts.dropped) this.#stmt.deletePart.run(pipelineId, p.partition, part)
          for (const [part, value] of parts?.changed ?? [])
            this.#stmt.savePart.run(pipelineId, p.partition, part, JSON.stringify(value))
        }
      }
    })
    void this.#settleMetrics()
  }

  async loadCheckpoint(pipelineId: string): Promise<Checkpoint | undefined> {
    const row = this.#stmt.loadCheckpoint.get(pipelineId) as Row | undefined
    if (!row) return undefined
    return checkpointOf(
      row,
      this.#stmt.loadPartitionCheckpoints.all(pipelineId) as Row[],
      this.#stmt.loadParts.all(pipelineId) as Row[],
    )
  }

  async loadProgress(pipelineIds: readonly string[]): Promise<Map<string, CheckpointProgress>> {
    const ids = JSON.stringify(pipelineIds)
    return progressOf(
      this.#stmt.loadStats.all(ids) as Row[],
      this.#stmt.loadPartitionProgress.all(ids) as Row[],
    )
  }

  async queryResults(pipelineId: string, q: ResultQuery): Promise<WindowResult[]> {
    const where = ['pipeline_id = ?']
    const params: Array<string | number> = [pipelineId]
    if (q.from !== undefined) {
      where.push('window_end > ?')
      params.push(q.from)
    }
    if (q.to !== undefined) {
      where.push('window_start < ?')
      params.push(q.to)
    }
    // the rule of engine/key-filter.ts, by JSON type (json_extract alone reads true as 1)
    for (const [path, filter] of parseKeyFilters(q.key ?? {})) {
      const at = `$."${path.replaceAll('"', '\\"')}"`
      const alternatives = ["(json_type(key, ?) = 'text' AND json_extract(key, ?) = ?)"]
      params.push(at, at, filter.string)
      if (filter.number !== undefined) {
        alternatives.push("(json_type(key, ?) IN ('integer', 'real') AND json_extract(key, ?) = ?)")
        params.push(at, at, filter.number)
      }
      if (filter.boolean !== undefined) {
        alternatives.push('json_type(key, ?) = ?')
        params.push(at, String(filter.boolean))
      }
      if (filter.null) {
        alternatives.push("coalesce(json_type(key, ?), 'null') = 'null'")
        params.push(at)
      }
      if (filter.structured !== undefined) {
        alternatives.push("(json_type(key, ?) IN ('object', 'array') AND json_extract(key, ?) = json(?))")
        params.push(at, at, filter.structured)
      }
      where.push(`(${alternatives.join(' OR ')})`)
    }
    params.push(q.limit)
    const rows = this.#db
      .prepare(
        `SELECT * FROM results WHERE ${where.join(' AND ')} ORDER BY window_start DESC, key_id LIMIT ?`,
      )
      .all(...params) as Row[]
    return rows.map(resultOf)
  }

  async listDeadLetters(pipelineId: string, limit: number): Promise<DeadLetterRecord[]> {
    return (this.#stmt.listDeadLetters.all(pipelineId, limit) as Row[]).map(deadLetterOf)
  }

  async readOutbox(pipelineId: string, from: number, limit: number): Promise<OutboxBatch[]> {
    const rows = this.#stmt.readOutbox.all(pipelineId, from, limit) as Row[]
    return rows.map(outboxBatchOf)
  }

  async trimOutbox(pipelineId: string, before: number): Promise<void> {
    this.#stmt.trimOutbox.run(pipelineId, before)
  }

  async trimDeadLetters(pipelineId: string, keep: number): Promise<void> {
    this.#stmt.trimDeadLetters.run(pipelineId, pipelineId, keep - 1)
  }

  async putLookupTable(
    name: string,
    keyField: string,
    rows: Array<[string, Record<string, unknown>]>,
    at: number,
  ): Promise<void> {
    this.#transaction(() => {
      this.#db.prepare('DELETE FROM lookup_rows WHERE table_name = ?').run(name)
      const insert = this.#db.prepare(
        'INSERT OR REPLACE INTO lookup_rows (table_name, key, row) VALUES (?, ?, ?)',
      )
      for (const [key, row] of rows) insert.run(name, key, JSON.stringify(row))
      this.#db
        .prepare(
          `INSERT INTO lookup_tables (name, key_field, row_count, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET key_field = excluded.key_field, row_count = excluded.row_count, updated_at = excluded.updated_at`,
        )
        .run(name, keyField, new Set(rows.map(([k]) => k)).size, at)
    })
  }

  async listLookupTables(): Promise<LookupTableInfo[]> {
    return (this.#stmt.listLookups.all() as Row[]).map(lookupTableOf)
  }

  async loadLookupTable(name: string): Promise<Map<string, Record<string, unknown>> | undefined> {
    if (!this.#stmt.lookupExists.get(name)) return undefined
    const rows = this.#stmt.lookupRows.all(name) as Row[]
    return new Map(rows.map((r) => [r.key as string, JSON.parse(r.row as string)]))
  }

  async deleteLookupTable(name: string): Promise<boolean> {
    return this.#transaction(() => {
      this.#db.prepare('DELETE FROM lookup_rows WHERE table_name = ?').run(name)
      return this.#db.prepare('DELETE FROM lookup_tables WHERE name = ?').run(name).changes > 0
    })
  }

  async writeMetrics(points: MetricPoint[]): Promise<void> {
    this.#transaction(() => this.#metrics.write(points))
    void this.#settleMetrics()
  }

  /**
   * Folds staged metric points into their chunks once enough have waited (see SqliteMetrics.write),
   * a slice per transaction with requests let in between: a window close that writes a point to
   * each of 20 000 series does not hold the thread for the whole of it.
   */
  async #settleMetrics(): Promise<void> {
    if (this.#settling || !this.#metrics.shouldFlush) return
    this.#settling = true
    try {
      while (this.#metrics.shouldFlush && this.#db.isOpen) {
        this.#transaction(() => {
          this.#metrics.flushSlice(METRIC_FLUSH_SLICE)
          // a slice of them at a time: a refresh of every dirty hour at once held the event loop
          if (this.#metrics.dirtyBuckets > 50_000) this.#metrics.refreshRollups(ROLLUP_REFRESH_SLICE)
        })
        await new Promise((resolve) => setImmediate(resolve))
      }
    } catch {
      // (a full disk, say) the points stay staged and waiting in memory: the next write tries again
    } finally {
      this.#settling = false
    }
  }

  /**
   * Folds every staged point a slice per transaction, letting requests in between, so a read that
   * must see them all (which folds what is left inside its own transaction) never holds the
   * thread for millions of points at once.
   */
  async #foldStaged(): Promise<void> {
    // writes keep arriving under load: fold for a bounded time, the read's own fold takes the rest
    const until = performance.now() + 2_000
    while (this.#metrics.hasStaged && this.#db.isOpen && performance.now() < until) {
      this.#transaction(() => this.#metrics.flushSlice(METRIC_FLUSH_SLICE))
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  async listSeries(limit: number, offset: number): Promise<{ series: SeriesInfo[]; total: number }> {
    await this.#foldStaged()
    return this.#transaction(() => this.#metrics.list(limit, offset))
  }

  async countSeries(): Promise<number> {
    return this.#metrics.countSeries()
  }

  async queryMetrics(
    query: MetricQuery,
  ): Promise<SeriesPoints[] | { tooMany: number; what: 'points' | 'series' }> {
    await this.#foldStaged()
    return this.#transaction(() => this.#metrics.query(query, this.#rawSince))
  }

  async enforceMetricsRetention(retention: MetricRetention): Promise<number> {
    this.#rawSince = retention.rawBefore
    await this.#foldStaged()
    const steps = this.#metrics.retention(retention)
    for (;;) {
      if (!this.#db.isOpen) return 0
      const step = this.#transaction(() => steps.next())
      if (step.done) return step.value
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    const rows = this.#db.prepare('SELECT * FROM api_keys ORDER BY created_at, id').all() as Row[]
    return rows.map(apiKeyOf)
  }

  async insertApiKey(k: ApiKeyRecord): Promise<void> {
    this.#db
      .prepare(
        'INSERT INTO api_keys (id, name, role, sha256, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(k.id, k.name, k.role, k.sha256, k.createdAt, k.expiresAt)
  }

  async deleteApiKey(id: string): Promise<boolean> {
    return this.#db.prepare('DELETE FROM api_keys WHERE id = ?').run(id).changes > 0
  }

  async close(): Promise<void> {
    if (!this.#db.isOpen) return
    this.#transaction(() => this.#metrics.flush())
    const checkpointer = this.#checkpointer
    if (checkpointer) {
      // held open until the worker is done (or 2 s), so a process with nothing else to do waits for it
      checkpointer.ref()
      const exited = new Promise((resolve) => checkpointer.once('exit', resolve))
      checkpointer.postMessage('close')
      let timer: NodeJS.Timeout | undefined
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 2_000)))])
      clearTimeout(timer)
    }
    // the last connection to close folds what is left of the WAL in
    this.#db.close()
  }
}
