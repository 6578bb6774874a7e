import type { DatabaseSync, StatementSync } from 'node:sqlite'
import type { MetricPoint, MetricQuery, MetricRetention, SeriesInfo, SeriesPoints } from '../store.ts'

type Row = Record<string, unknown>

/** Series identity: the name and the tags sorted by key (as JSON: `{"a":"1","b":"2"}`). */
export function seriesKey(tags: Record<string, string>): string {
  const keys = Object.keys(tags)
  if (keys.length === 0) return '{}'
  if (keys.length > 1) keys.sort()
  let out = '{'
  for (let i = 0; i < keys.length; i++)
    out += `${i > 0 ? ',' : ''}${JSON.stringify(keys[i])}:${JSON.stringify(tags[keys[i]])}`
  return `${out}}`
}

export const MINUTE = 60_000
export const HOUR = 3_600_000
/** Ranges at least this long may be rounded out to whole rollup buckets. */
const LONG_RANGE = 6 * HOUR
/** Most series one query may return. */
export const MAX_QUERY_SERIES = 1_000

/** How each aggregate reads raw points, and how it combines rollup rows. */
const RAW_SQL = {
  avg: 'avg(value) AS v',
  sum: 'sum(value) AS v',
  min: 'min(value) AS v',
  max: 'max(value) AS v',
  count: 'count(*) AS v',
  // SQLite: a bare column next to max() comes from the row holding the max
  last: 'value AS v, max(ts) AS t',
} as const
const ROLLUP_SQL = {
  avg: 'sum(sum) / sum(n) AS v',
  sum: 'sum(sum) AS v',
  min: 'min(min) AS v',
  max: 'max(max) AS v',
  count: 'sum(n) AS v',
  last: 'last_value AS v, max(last_ts) AS t',
} as const

/**
 * Time series on SQLite: a series table; raw points clustered by (series, ts); 1-minute and
 * 1-hour rollups (count, sum, min, max, last) kept longer than raw points. A rollup bucket is
 * recomputed from its source whenever it got new points, so late and overwritten points stay exact.
 * Queries read the coarsest table their step and range allow.
 */
export class SqliteMetrics {
  readonly #db: DatabaseSync
  readonly #ids = new Map<string, number>()
  readonly #stmt: Record<string, StatementSync>
  /** `${series}:${minute bucket}` touched since the last refresh */
  readonly #dirtyMinutes = new Set<string>()
  /** raw points stored, as far as writes and deletes tell (replaced points count twice: an upper bound) */
  #rawEstimate: number | undefined

  constructor(db: DatabaseSync) {
    this.#db = db
    db.exec(`
      CREATE TABLE IF NOT EXISTS rollup_1m (series_id INTEGER NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL, sum REAL NOT NULL,
        min REAL NOT NULL, max REAL NOT NULL, last_ts INTEGER NOT NULL, last_value REAL NOT NULL, PRIMARY KEY (series_id, bucket)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS rollup_1h (series_id INTEGER NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL, sum REAL NOT NULL,
        min REAL NOT NULL, max REAL NOT NULL, last_ts INTEGER NOT NULL, last_value REAL NOT NULL, PRIMARY KEY (series_id, bucket)) WITHOUT ROWID;
    `)
    this.#stmt = {
      findSeries: db.prepare('SELECT id FROM series WHERE name = ? AND tags = ?'),
      insertSeries: db.prepare(
        'INSERT INTO series (name, tags, last_value, last_ts) VALUES (?, ?, ?, ?) RETURNING id',
      ),
      touchSeries: db.prepare('UPDATE series SET last_value = ?, last_ts = ? WHERE id = ? AND last_ts <= ?'),
      insertPoint: db.prepare('INSERT OR REPLACE INTO points (series_id, ts, value) VALUES (?, ?, ?)'),
      seriesByName: db.prepare('SELECT id, tags FROM series WHERE name = ?'),
      list: db.prepare(
        `SELECT s.name, s.tags, s.last_value, s.last_ts, (SELECT count(*) FROM points p WHERE p.series_id = s.id) AS n
         FROM series s ORDER BY s.name, s.tags LIMIT ? OFFSET ?`,
      ),
      total: db.prepare('SELECT count(*) AS n FROM series'),
      minuteFromRaw: db.prepare(
        `INSERT OR REPLACE INTO rollup_1m (series_id, bucket, n, sum, min, max, last_ts, last_value)
         SELECT series_id, ?, count(*), sum(value), min(value), max(value), max(ts), value
         FROM points WHERE series_id = ? AND ts >= ? AND ts < ? GROUP BY series_id`,
      ),
      hourFromMinutes: db.prepare(
        `INSERT OR REPLACE INTO rollup_1h (series_id, bucket, n, sum, min, max, last_ts, last_value)
         SELECT series_id, ?, sum(n), sum(sum), min(min), max(max), max(last_ts), last_value
         FROM rollup_1m WHERE series_id = ? AND bucket >= ? AND bucket < ? GROUP BY series_id`,
      ),
      // per series, so each delete is a range of the primary key, not a scan of the whole table
      allSeries: db.prepare('SELECT id FROM series'),
      countRaw: db.prepare('SELECT count(*) AS n FROM points'),
      oldestOf: db.prepare('SELECT ts FROM points WHERE series_id = ? ORDER BY ts LIMIT 1'),
      deleteRaw: db.prepare('DELETE FROM points WHERE series_id = ? AND ts < ?'),
      deleteMinutes: db.prepare('DELETE FROM rollup_1m WHERE series_id = ? AND bucket < ?'),
      deleteHours: db.prepare('DELETE FROM rollup_1h WHERE series_id = ? AND bucket < ?'),
      deleteEmptySeries: db.prepare(
        `DELETE FROM series WHERE NOT EXISTS (SELECT 1 FROM points WHERE series_id = series.id)
         AND NOT EXISTS (SELECT 1 FROM rollup_1m WHERE series_id = series.id)
         AND NOT EXISTS (SELECT 1 FROM rollup_1h WHERE series_id = series.id)`,
      ),
    }
  }

  #seriesId(name: string, tags: string, value: number, ts: number): number {
    const key = `${name}\u0000${tags}`
    let id = this.#ids.get(key)
    if (id === undefined) {
      const row = this.#stmt.findSeries.get(name, tags) as Row | undefined
      id = (row ? row.id : (this.#stmt.insertSeries.get(name, tags, value, ts) as Row).id) as number
      this.#ids.set(key, id)
    }
    return id
  }

  /** Call inside a transaction. */
  write(points: MetricPoint[]): void {
    const last = new Map<number, MetricPoint>()
    let lastMinute = ''
    for (const p of points) {
      const id = this.#seriesId(p.name, seriesKey(p.tags), p.value, p.timestamp)
      this.#stmt.insertPoint.run(id, p.timestamp, p.value)
      const minute = `${id}:${p.timestamp - mod(p.timestamp, MINUTE)}`
      if (minute !== lastMinute) this.#dirtyMinutes.add(minute)
      lastMinute = minute
      const prev = last.get(id)
      if (!prev || p.timestamp >= prev.timestamp) last.set(id, p)
    }
    for (const [id, p] of last) this.#stmt.touchSeries.run(p.value, p.timestamp, id, p.timestamp)
    if (this.#rawEstimate !== undefined) this.#rawEstimate += points.length
  }

  /** Recomputes the rollup buckets that got points since the last refresh. Call inside a transaction. */
  refreshRollups(): void {
    if (this.#dirtyMinutes.size === 0) return
    const hours = new Set<string>()
    for (const entry of this.#dirtyMinutes) {
      const [series, bucket] = entry.split(':').map(Number)
      this.#stmt.minuteFromRaw.run(bucket, series, bucket, bucket + MINUTE)
      hours.add(`${series}:${bucket - mod(bucket, HOUR)}`)
    }
    this.#dirtyMinutes.clear()
    for (const entry of hours) {
      const [series, bucket] = entry.split(':').map(Number)
      this.#stmt.hourFromMinutes.run(bucket, series, bucket, bucket + HOUR)
    }
  }

  get dirtyBuckets(): number {
    return this.#dirtyMinutes.size
  }

  list(limit: number, offset: number): { series: SeriesInfo[]; total: number } {
    const rows = this.#stmt.list.all(limit, offset) as Row[]
    return {
      total: (this.#stmt.total.get() as Row).n as number,
      series: rows.map((r) => ({
        name: r.name as string,
        tags: JSON.parse(r.tags as string),
        lastValue: r.last_value as number,
        lastTimestamp: r.last_ts as number,
        points: r.n as number,
      })),
    }
  }

  /** The table a query reads: the coarsest whose bucket divides the step and fits the range. */
  static plan(
    q: MetricQuery,
    rawSince: number,
  ): { table: 'points' | 'rollup_1m' | 'rollup_1h'; from: number; to: number } {
    for (const [table, width] of [
      ['rollup_1h', HOUR],
      ['rollup_1m', MINUTE],
    ] as const) {
      if (q.stepMs % width !== 0) continue
      if (q.from % width === 0 && q.to % width === 0) return { table, from: q.from, to: q.to }
      if (q.to - q.from >= LONG_RANGE || q.from < rawSince)
        return {
          table,
          from: q.from - mod(q.from, width),
          to: q.to - mod(q.to, width) + (mod(q.to, width) === 0 ? 0 : width),
        }
    }
    return { table: 'points', from: q.from, to: q.to }
  }

  query(q: MetricQuery, rawSince: number): SeriesPoints[] | { tooMany: number; what: 'points' | 'series' } {
    this.refreshRollups()
    const matching = (this.#stmt.seriesByName.all(q.name) as Row[])
      .map((r) => ({ id: r.id as number, tags: JSON.parse(r.tags as string) as Record<string, string> }))
      .filter((s) => Object.entries(q.tags).every(([k, v]) => s.tags[k] === v))
    if (matching.length > MAX_QUERY_SERIES) return { tooMany: matching.length, what: 'series' }
    const plan = SqliteMetrics.plan(q, rawSince)
    const time = plan.table === 'points' ? 'ts' : 'bucket'
    const count = this.#db.prepare(
      `SELECT count(*) AS n FROM ${plan.table} WHERE series_id = ? AND ${time} >= ? AND ${time} < ?`,
    )
    let scanned = 0
    for (const s of matching) scanned += (count.get(s.id, plan.from, plan.to) as Row).n as number
    if (scanned > q.maxPoints) return { tooMany: scanned, what: 'points' }
    const agg = plan.table === 'points' ? RAW_SQL[q.agg] : ROLLUP_SQL[q.agg]
    const stmt = this.#db.prepare(
      `SELECT (${time} - ((${time} % ?) + ?) % ?) AS b, ${agg} FROM ${plan.table}
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
  enforceRetention(r: MetricRetention): number {
    this.refreshRollups()
    const series = (this.#stmt.allSeries.all() as Row[]).map((row) => row.id as number)
    // counting is a scan: do it once, then follow writes and deletes, and recount only when over
    this.#rawEstimate ??= (this.#stmt.countRaw.get() as Row).n as number
    let n = 0
    for (const id of series) {
      n += Number(this.#stmt.deleteRaw.run(id, r.rawBefore).changes)
      this.#stmt.deleteMinutes.run(id, r.minuteBefore)
      this.#stmt.deleteHours.run(id, r.hourBefore)
    }
    this.#rawEstimate -= n
    if (this.#rawEstimate > r.maxRawPoints) n += this.#dropOldest(series, r.maxRawPoints)
    this.#stmt.deleteEmptySeries.run()
    this.#ids.clear()
    return n
  }

  /** Deletes the oldest raw points, a minute at a time, until at most `max` are left. */
  #dropOldest(series: number[], max: number): number {
    let n = 0
    let total = (this.#stmt.countRaw.get() as Row).n as number
    while (total > max) {
      let oldest = Number.POSITIVE_INFINITY
      for (const id of series) {
        const row = this.#stmt.oldestOf.get(id) as Row | undefined
        if (row && (row.ts as number) < oldest) oldest = row.ts as number
      }
      if (!Number.isFinite(oldest)) break
      const cutoff = oldest - mod(oldest, MINUTE) + MINUTE
      for (const id of series) {
        const deleted = Number(this.#stmt.deleteRaw.run(id, cutoff).changes)
        n += deleted
        total -= deleted
      }
    }
    this.#rawEstimate = total
    return n
  }
}

function mod(a: number, b: number): number {
  return ((a % b) + b) % b
}
