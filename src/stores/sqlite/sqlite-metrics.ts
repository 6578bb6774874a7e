import type { DatabaseSync, StatementSync } from 'node:sqlite'
import { mod } from '../../engine/windows.ts'
import { HOUR, MAX_QUERY_SERIES, MINUTE, planMetricQuery, seriesKey } from '../metrics-plan.ts'
import { type Row, seriesOf } from '../rows.ts'
import type { MetricPoint, MetricQuery, MetricRetention, SeriesInfo, SeriesPoints } from '../store.ts'
import {
  type ChunkSummary,
  decodeChunk,
  encodeChunk,
  foldIntoSummary,
  mergeChunk,
  summarize,
} from './metric-chunk.ts'

/** How each aggregate combines rollup rows. */
const ROLLUP_SQL = {
  avg: 'sum(sum) / sum(n) AS v',
  sum: 'sum(sum) AS v',
  min: 'min(min) AS v',
  max: 'max(max) AS v',
  count: 'sum(n) AS v',
  // SQLite: a bare column next to max() comes from the row holding the max
  last: 'last_value AS v, max(last_ts) AS t',
} as const

/**
 * Time series on SQLite: a series table; raw points in per-minute chunks (one row per series
 * and minute, its points in a blob, see metric-chunk.ts) whose row also carries that minute's
 * rollup (count, sum, min, max, last); 1-hour rollups beside. Raw retention drops a chunk's
 * blob and keeps its rollup. Queries read the coarsest table their step and range allow.
 *
 * Writes go through `staged` (one row per request, durable at commit) and an in-memory head;
 * `flushSlice` folds the head into chunks a slice per transaction, every read folds it all first.
 */
export class SqliteMetrics {
  readonly #db: DatabaseSync
  readonly #ids = new Map<string, number>()
  readonly #stmt: Record<string, StatementSync>
  /** points acknowledged but not yet in their chunks (they are in `staged`), by series and minute */
  #head: Head = new Map()
  #headPoints = 0
  #headSince = 0
  /** the highest committed `staged` row */
  #stagedSeq = 0
  /** a head being written into chunks a slice at a time, and the staged rows it covers */
  #round:
    | { groups: Array<[id: number, minute: number, pairs: number[]]>; next: number; upToSeq: number }
    | undefined
  /** written by the open transaction: joins the head when it commits */
  #pending: Float64Array[] = []
  #pendingSeq = 0
  /** what the open transaction flushed: the round up to this group, or everything */
  #flushedTo = -1
  #flushedAll = false
  /** `${series}:${hour bucket}` whose minutes changed since the last refresh */
  readonly #dirtyHours = new Set<string>()
  /** raw points stored (kept exact by writes and deletes once counted) */
  #rawCount: number

  constructor(db: DatabaseSync) {
    this.#db = db
    db.exec(`
      CREATE TABLE IF NOT EXISTS chunks (series_id INTEGER NOT NULL, minute INTEGER NOT NULL, n INTEGER NOT NULL, sum REAL NOT NULL,
        min REAL NOT NULL, max REAL NOT NULL, last_ts INTEGER NOT NULL, last_value REAL NOT NULL, data BLOB,
        PRIMARY KEY (series_id, minute)) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS chunks_with_raw ON chunks (minute) WHERE data IS NOT NULL;
      CREATE TABLE IF NOT EXISTS staged (seq INTEGER PRIMARY KEY, points BLOB NOT NULL);
      CREATE TABLE IF NOT EXISTS rollup_1h (series_id INTEGER NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL, sum REAL NOT NULL,
        min REAL NOT NULL, max REAL NOT NULL, last_ts INTEGER NOT NULL, last_value REAL NOT NULL, PRIMARY KEY (series_id, bucket)) WITHOUT ROWID;
    `)
    this.#stmt = {
      findSeries: db.prepare('SELECT id FROM series WHERE name = ? AND tags = ?'),
      insertSeries: db.prepare(
        'INSERT INTO series (name, tags, last_value, last_ts) VALUES (?, ?, ?, ?) RETURNING id',
      ),
      stage: db.prepare('INSERT INTO staged (points) VALUES (?)'),
      allStaged: db.prepare('SELECT seq, points FROM staged ORDER BY seq'),
      clearStaged: db.prepare('DELETE FROM staged'),
      clearStagedUpTo: db.prepare('DELETE FROM staged WHERE seq <= ?'),
      getChunk: db.prepare(
        'SELECT n, sum, min, max, last_ts, last_value, data FROM chunks WHERE series_id = ? AND minute = ?',
      ),
      putChunk: db.prepare(
        'INSERT OR REPLACE INTO chunks (series_id, minute, n, sum, min, max, last_ts, last_value, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      rawChunks: db.prepare(
        'SELECT minute, data FROM chunks WHERE series_id = ? AND minute >= ? AND minute < ? AND data IS NOT NULL ORDER BY minute',
      ),
      rawInRange: db.prepare(
        'SELECT coalesce(sum(n), 0) AS n FROM chunks WHERE series_id = ? AND minute >= ? AND minute < ? AND data IS NOT NULL',
      ),
      seriesByName: db.prepare('SELECT id, tags FROM series WHERE name = ?'),
      list: db.prepare(
        // a series' last point is in its newest chunk (or hour rollup): writes never touch the series row
        `SELECT s.name, s.tags,
           coalesce((SELECT c.last_value FROM chunks c WHERE c.series_id = s.id ORDER BY c.minute DESC LIMIT 1),
             (SELECT h.last_value FROM rollup_1h h WHERE h.series_id = s.id ORDER BY h.bucket DESC LIMIT 1), s.last_value) AS last_value,
           coalesce((SELECT c.last_ts FROM chunks c WHERE c.series_id = s.id ORDER BY c.minute DESC LIMIT 1),
             (SELECT h.last_ts FROM rollup_1h h WHERE h.series_id = s.id ORDER BY h.bucket DESC LIMIT 1), s.last_ts) AS last_ts,
           (SELECT coalesce(sum(c.n), 0) FROM chunks c WHERE c.series_id = s.id AND c.data IS NOT NULL) AS n
         FROM series s ORDER BY s.name, s.tags LIMIT ? OFFSET ?`,
      ),
      total: db.prepare('SELECT count(*) AS n FROM series'),
      hourFromMinutes: db.prepare(
        `INSERT OR REPLACE INTO rollup_1h (series_id, bucket, n, sum, min, max, last_ts, last_value)
         SELECT series_id, ?, sum(n), sum(sum), min(min), max(max), max(last_ts), last_value
         FROM chunks WHERE series_id = ? AND minute >= ? AND minute < ? GROUP BY series_id`,
      ),
      countRaw: db.prepare('SELECT coalesce(sum(n), 0) AS n FROM chunks WHERE data IS NOT NULL'),
      oldestRaw: db.prepare('SELECT minute FROM chunks WHERE data IS NOT NULL ORDER BY minute LIMIT 1'),
      // through the partial index: only chunks that still hold raw points are visited
      dropRaw: db.prepare(
        `UPDATE chunks SET data = NULL WHERE (series_id, minute) IN
           (SELECT series_id, minute FROM chunks WHERE data IS NOT NULL AND minute < ? LIMIT ?) RETURNING n`,
      ),
      // per series, so each delete is a range of the primary key, not a scan of the whole table
      allSeries: db.prepare('SELECT id FROM series'),
      // a minute's rollup outlives its raw points: it goes only once they have
      deleteMinutes: db.prepare('DELETE FROM chunks WHERE series_id = ? AND minute < ? AND data IS NULL'),
      deleteHours: db.prepare('DELETE FROM rollup_1h WHERE series_id = ? AND bucket < ?'),
      deleteEmptySeries: db.prepare(
        `DELETE FROM series WHERE NOT EXISTS (SELECT 1 FROM chunks WHERE series_id = series.id)
         AND NOT EXISTS (SELECT 1 FROM rollup_1h WHERE series_id = series.id)`,
      ),
    }
    this.#rawCount = 0
    upgradeLegacyTables(db, (id, minute, pairs) => this.#writeChunk(id, minute, pairs))
    this.#rawCount = (this.#stmt.countRaw.get() as Row).n as number
    this.#recoverStaged()
  }

  /** Points acknowledged before a crash wait in `staged`: back into the head, then flushed. */
  #recoverStaged(): void {
    for (const row of this.#stmt.allStaged.all() as Row[]) {
      const blob = row.points as Uint8Array
      this.#pending.push(new Float64Array(blob.slice().buffer))
      this.#pendingSeq = row.seq as number
    }
    this.committed()
  }

  /**
   * The series id of a point. The cache key is the name and tags in the order they came,
   * joined with NUL: unambiguous as long as no part holds a NUL (such points take the slow
   * path), and free of the sort and quoting the canonical key costs.
   */
  #seriesId(p: MetricPoint): number {
    let key = p.name
    let plain = !key.includes('\u0000')
    for (const k in p.tags) {
      const v = p.tags[k]
      if (k.includes('\u0000') || v.includes('\u0000')) plain = false
      key += `\u0000${k}\u0000${v}`
    }
    let id = plain ? this.#ids.get(key) : undefined
    if (id === undefined) {
      const tags = seriesKey(p.tags)
      const row = this.#stmt.findSeries.get(p.name, tags) as Row | undefined
      id = (
        row ? row.id : (this.#stmt.insertSeries.get(p.name, tags, p.value, p.timestamp) as Row).id
      ) as number
      if (plain) {
        if (this.#ids.size >= 100_000) this.#ids.clear()
        this.#ids.set(key, id)
      }
    }
    return id
  }

  /**
   * Call inside a transaction. The points become durable as one `staged` row (the request,
   * appended: a few sequential pages however many series it touches) and wait in memory,
   * grouped by series and minute, until `flush` writes each touched chunk once. Rewriting
   * every touched chunk per request would cost a page per chunk per request.
   */
  write(points: MetricPoint[]): void {
    const staged = new Float64Array(points.length * 3)
    for (let k = 0; k < points.length; k++) {
      const p = points[k]
      const id = this.#seriesId(p)
      staged[3 * k] = id
      staged[3 * k + 1] = p.timestamp
      staged[3 * k + 2] = p.value
    }
    this.#pendingSeq = Number(this.#stmt.stage.run(new Uint8Array(staged.buffer)).lastInsertRowid)
    this.#pending.push(staged)
  }

  /** The enclosing transaction committed: staged points join the in-memory head; flushed ones leave it. */
  committed(): void {
    if (this.#flushedAll) {
      this.#head.clear()
      this.#headPoints = 0
      this.#round = undefined
    } else if (this.#round !== undefined && this.#flushedTo >= 0) {
      this.#round.next = this.#flushedTo
      if (this.#round.next === this.#round.groups.length) this.#round = undefined
    }
    this.#flushedTo = -1
    this.#flushedAll = false
    if (this.#pendingSeq > this.#stagedSeq) this.#stagedSeq = this.#pendingSeq
    for (const staged of this.#pending) {
      if (this.#headPoints === 0) this.#headSince = Date.now()
      this.#headPoints += staged.length / 3
      for (let k = 0; k < staged.length; k += 3)
        addToHead(this.#head, staged[k], staged[k + 1], staged[k + 2])
    }
    this.#pending = []
  }

  /** The enclosing transaction rolled back: what it wrote is not there, in memory either. */
  rolledBack(): void {
    this.#pending = []
    this.#flushedTo = -1
    this.#flushedAll = false
    this.#rawCount = (this.#stmt.countRaw.get() as Row).n as number
  }

  /** Points written and not yet in their chunks (a read folds them first). */
  get hasStaged(): boolean {
    return this.#round !== undefined || this.#headPoints > 0
  }

  /** Series stored (a series row is made when its first point is written, before any folding). */
  countSeries(): number {
    return (this.#stmt.total.get() as Row).n as number
  }

  /** True while a round is under way, or when the head holds more than a second or 200 000 points of writes. */
  get shouldFlush(): boolean {
    return (
      this.#round !== undefined ||
      this.#headPoints > 200_000 ||
      (this.#headPoints > 0 && Date.now() - this.#headSince > 1_000)
    )
  }

  /**
   * Writes up to `maxChunks` chunks of the head: the head as it is becomes a round (later writes
   * start a new head), written a slice per call so no call holds the thread long; the round's
   * last slice deletes the staged rows it covered. Call inside a transaction.
   */
  flushSlice(maxChunks: number): void {
    if (this.#round === undefined) {
      if (this.#headPoints === 0) return
      const groups: Array<[number, number, number[]]> = []
      for (const [id, minutes] of this.#head)
        for (const [minute, pairs] of minutes) groups.push([id, minute, pairs])
      // in key order, so each slice writes neighbouring rows (fewer pages) instead of rows all over the table
      groups.sort((a, b) => a[0] - b[0] || a[1] - b[1])
      // only memory moves: a rollback leaves the round to be written again
      this.#round = { groups, next: 0, upToSeq: this.#stagedSeq }
      this.#head = new Map()
      this.#headPoints = 0
    }
    const round = this.#round
    const end = Math.min(round.groups.length, round.next + maxChunks)
    for (let g = round.next; g < end; g++) this.#writeChunk(...round.groups[g])
    if (end === round.groups.length) this.#stmt.clearStagedUpTo.run(round.upToSeq)
    this.#flushedTo = end
  }

  /** Writes every point waiting (round and head) into its chunk and empties `staged`. Call inside a transaction. */
  flush(): void {
    if (this.#round !== undefined)
      for (let g = this.#round.next; g < this.#round.groups.length; g++)
        this.#writeChunk(...this.#round.groups[g])
    if (this.#round === undefined && this.#headPoints === 0) return
    for (const [id, minutes] of this.#head)
      for (const [minute, pairs] of minutes) this.#writeChunk(id, minute, pairs)
    this.#stmt.clearStaged.run()
    this.#flushedAll = true
  }

  /** Writes (offset, value) pairs into the chunk of one series and minute. */
  #writeChunk(id: number, minute: number, pairs: number[]): void {
    const row = this.#stmt.getChunk.get(id, minute) as Row | undefined
    let summary: ChunkSummary
    let blob: Uint8Array | null = null
    if (row !== undefined && row.data === null) {
      // raw points of this minute are gone: only its rollup takes the late points
      summary = foldIntoSummary(summaryOf(row), pairs, minute)
    } else {
      const before = decodeChunk(row?.data as Uint8Array | undefined)
      const merged = mergeChunk(before, pairs)
      this.#rawCount += merged.n - before.n
      summary = summarize(merged, minute)
      blob = encodeChunk(merged)
    }
    const { n, sum, min, max, lastTs, lastValue } = summary
    this.#stmt.putChunk.run(id, minute, n, sum, min, max, lastTs, lastValue, blob)
    this.#dirtyHours.add(`${id}:${minute - mod(minute, HOUR)}`)
  }

  /**
   * Recomputes the hour rollups whose minutes changed since the last refresh, at most `max` of
   * them (the rest stay dirty for the next call). Call inside a transaction.
   */
  refreshRollups(max = Number.POSITIVE_INFINITY): void {
    let n = 0
    for (const entry of this.#dirtyHours) {
      if (n++ >= max) return
      const [series, bucket] = entry.split(':').map(Number)
      this.#stmt.hourFromMinutes.run(bucket, series, bucket, bucket + HOUR)
      this.#dirtyHours.delete(entry)
    }
  }

  get dirtyBuckets(): number {
    return this.#dirtyHours.size
  }

  /** Call inside a transaction. */
  list(limit: number, offset: number): { series: SeriesInfo[]; total: number } {
    this.flush()
    const rows = this.#stmt.list.all(limit, offset) as Row[]
    return {
      total: (this.#stmt.total.get() as Row).n as number,
      series: rows.map(seriesOf),
    }
  }

  query(q: MetricQuery, rawSince: number): SeriesPoints[] | { tooMany: number; what: 'points' | 'series' } {
    this.flush()
    this.refreshRollups()
    const matching = (this.#stmt.seriesByName.all(q.name) as Row[])
      .map((r) => ({ id: r.id as number, tags: JSON.parse(r.tags as string) as Record<string, string> }))
      .filter((s) => Object.entries(q.tags).every(([k, v]) => s.tags[k] === v))
    if (matching.length > MAX_QUERY_SERIES) return { tooMany: matching.length, what: 'series' }
    const plan = planMetricQuery(q, rawSince)
    if (plan.table === 'raw') {
      // chunks overlapping the range: from the minute holding `from`
      const first = plan.from - mod(plan.from, MINUTE)
      let scanned = 0
      for (const s of matching)
        scanned += (this.#stmt.rawInRange.get(s.id, first, plan.to) as Row).n as number
      if (scanned > q.maxPoints) return { tooMany: scanned, what: 'points' }
      return matching.map((s) => ({
        name: q.name,
        tags: s.tags,
        points: bucketRaw(this.#stmt.rawChunks.all(s.id, first, plan.to) as Row[], plan.from, plan.to, q),
      }))
    }
    const [table, time] = plan.table === 'hours' ? ['rollup_1h', 'bucket'] : ['chunks', 'minute']
    const count = this.#db.prepare(
      `SELECT count(*) AS n FROM ${table} WHERE series_id = ? AND ${time} >= ? AND ${time} < ?`,
    )
    let scanned = 0
    for (const s of matching) scanned += (count.get(s.id, plan.from, plan.to) as Row).n as number
    if (scanned > q.maxPoints) return { tooMany: scanned, what: 'points' }
    const stmt = this.#db.prepare(
      `SELECT (${time} - ((${time} % ?) + ?) % ?) AS b, ${ROLLUP_SQL[q.agg]} FROM ${table}
       WHERE series_id = ? AND ${time} >= ? AND ${time} < ? GROUP BY b ORDER BY b`,
    )
    return matching.map((s) => ({
      name: q.name,
      tags: s.tags,
      points: (stmt.all(q.stepMs, q.stepMs, q.stepMs, s.id, plan.from, plan.to) as Row[]).map((r) => ({
        timestamp: r.b as number,
        value: r.v as number,
      })),
    }))
  }

  /**
   * Deletes raw points and rollups past their retention, then the oldest raw points while there
   * are more than `maxRawPoints` (a minute at a time; rollups keep their history). Call inside a
   * transaction.
   */
  /**
   * Retention as steps: each `yield` is where the caller may commit and let other work in (a
   * pass over 80,000 series in one transaction held the thread for over a second). Returns the
   * raw points dropped. Points written between steps are newer than every cut-off; the last step
   * folds them before it deletes the series left empty, so no staged point loses its series.
   */
  *retention(r: MetricRetention): Generator<void, number> {
    // the hours dirty now (writes go on dirtying the current ones: those are newer than every cut-off)
    for (let left = this.dirtyBuckets; left > 0 && this.dirtyBuckets > 0; left -= RETENTION_SLICE) {
      this.refreshRollups(RETENTION_SLICE)
      yield
    }
    // a chunk's raw points go once the whole minute is past the cut-off
    let n = 0
    for (let dropped = -1; dropped !== 0; yield) {
      dropped = this.#dropRawBefore(r.rawBefore - MINUTE + 1, RETENTION_SLICE)
      n += dropped
    }
    const series = (this.#stmt.allSeries.all() as Row[]).map((row) => row.id as number)
    for (let i = 0; i < series.length; i += RETENTION_SLICE) {
      for (const id of series.slice(i, i + RETENTION_SLICE)) {
        this.#stmt.deleteMinutes.run(id, r.minuteBefore)
        this.#stmt.deleteHours.run(id, r.hourBefore)
      }
      yield
    }
    // past the size bound, the oldest minutes lose their raw points first
    while (this.#rawCount > r.maxRawPoints) {
      const oldest = this.#stmt.oldestRaw.get() as Row | undefined
      if (oldest === undefined) break
      n += this.#dropRawBefore((oldest.minute as number) + 1, RETENTION_SLICE)
      yield
    }
    // what waits is folded a slice a step (the round, then the head as it is now: later writes
    // start a new head), so the flush below has only what came meanwhile; flushing it all in the
    // last step held the thread 1.2 s after the overload bench
    if (this.hasStaged)
      do {
        this.flushSlice(RETENTION_SLICE)
        yield
      } while (this.#round !== undefined)
    this.flush()
    this.#stmt.deleteEmptySeries.run()
    this.#ids.clear()
    return n
  }

  /** Drops the raw points of at most `max` chunks whose minute is before `minute`; returns how many. */
  #dropRawBefore(minute: number, max: number): number {
    let n = 0
    for (const row of this.#stmt.dropRaw.all(minute, max) as Row[]) n += row.n as number
    this.#rawCount -= n
    return n
  }
}

/**
 * Series, chunks or rollup hours one step of retention handles: 2,000 held the thread up to 88 ms
 * under the overload bench (a probe queued behind two such steps missed 100 ms).
 */
const RETENTION_SLICE = 250

/** Points by series and minute, as flat (offset in the minute, value) pairs. */
type Head = Map<number, Map<number, number[]>>

function addToHead(head: Head, id: number, ts: number, value: number): void {
  const offset = mod(ts, MINUTE)
  const minute = ts - offset
  let minutes = head.get(id)
  if (minutes === undefined) {
    minutes = new Map()
    head.set(id, minutes)
  }
  const pairs = minutes.get(minute)
  if (pairs === undefined) minutes.set(minute, [offset, value])
  else pairs.push(offset, value)
}

function summaryOf(row: Row): ChunkSummary {
  return {
    n: row.n as number,
    sum: row.sum as number,
    min: row.min as number,
    max: row.max as number,
    lastTs: row.last_ts as number,
    lastValue: row.last_value as number,
  }
}

/** Raw points of chunks (in minute order) within [from, to), aggregated into epoch-aligned `step` buckets. */
function bucketRaw(
  chunks: Row[],
  from: number,
  to: number,
  q: MetricQuery,
): Array<{ timestamp: number; value: number }> {
  const out: Array<{ timestamp: number; value: number }> = []
  let bucket = Number.NaN
  let n = 0
  let acc = 0
  const flush = () => {
    if (n > 0) out.push({ timestamp: bucket, value: q.agg === 'avg' ? acc / n : q.agg === 'count' ? n : acc })
  }
  for (const row of chunks) {
    const minute = row.minute as number
    const c = decodeChunk(row.data as Uint8Array)
    for (let i = 0; i < c.n; i++) {
      const ts = minute + c.offsets[i]
      if (ts < from || ts >= to) continue
      const v = c.values[i]
      const b = ts - mod(ts, q.stepMs)
      if (b !== bucket) {
        flush()
        bucket = b
        n = 0
        acc = q.agg === 'min' ? Number.POSITIVE_INFINITY : q.agg === 'max' ? Number.NEGATIVE_INFINITY : 0
      }
      n++
      if (q.agg === 'min') acc = Math.min(v, acc)
      else if (q.agg === 'max') acc = Math.max(v, acc)
      else if (q.agg === 'last') acc = v
      else acc += v
    }
  }
  flush()
  return out
}

/**
 * Stores before chunks kept one row per raw point (`points`) and minute rollups (`rollup_1m`):
 * the raw points become chunks, the rollups of minutes without raw points chunks without; then both go.
 */
function upgradeLegacyTables(
  db: DatabaseSync,
  writeChunk: (id: number, minute: number, pairs: number[]) => void,
): void {
  const has = (name: string) =>
    db.prepare("SELECT 1 AS one FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined
  if (!has('points') && !has('rollup_1m')) return
  db.exec('BEGIN IMMEDIATE')
  try {
    if (has('points')) {
      let key = ''
      let pairs: number[] = []
      let at = { id: 0, minute: 0 }
      for (const row of db
        .prepare('SELECT series_id, ts, value FROM points ORDER BY series_id, ts')
        .iterate() as Iterable<Row>) {
        const id = row.series_id as number
        const ts = row.ts as number
        const minute = ts - mod(ts, MINUTE)
        const k = `${id}:${minute}`
        if (k !== key) {
          if (pairs.length > 0) writeChunk(at.id, at.minute, pairs)
          key = k
          at = { id, minute }
          pairs = []
        }
        pairs.push(ts - minute, row.value as number)
      }
      if (pairs.length > 0) writeChunk(at.id, at.minute, pairs)
    }
    // a minute whose raw points were partly deleted keeps its (complete) rollup and no raw points
    if (has('rollup_1m'))
      db.exec(`INSERT INTO chunks (series_id, minute, n, sum, min, max, last_ts, last_value, data)
        SELECT series_id, bucket, n, sum, min, max, last_ts, last_value, NULL FROM rollup_1m WHERE true
        ON CONFLICT (series_id, minute) DO UPDATE SET n = excluded.n, sum = excluded.sum, min = excluded.min,
          max = excluded.max, last_ts = excluded.last_ts, last_value = excluded.last_value, data = NULL
        WHERE excluded.n > chunks.n`)
    db.exec('DROP TABLE IF EXISTS points; DROP TABLE IF EXISTS rollup_1m; COMMIT')
  } catch (err) {
    db.exec('ROLLBACK')
    throw err
  }
}
