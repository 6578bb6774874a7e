import type { DatabaseSync, StatementSync } from 'node:sqlite'
import type { MetricPoint, MetricQuery, SeriesInfo, SeriesPoints } from '../store.ts'

type Row = Record<string, unknown>

/** Series identity: the name and the tags sorted by key. */
export function seriesKey(tags: Record<string, string>): string {
  const sorted: Record<string, string> = {}
  for (const k of Object.keys(tags).sort()) sorted[k] = tags[k]
  return JSON.stringify(sorted)
}

const AGG_SQL = {
  avg: 'avg(value)',
  sum: 'sum(value)',
  min: 'min(value)',
  max: 'max(value)',
  count: 'count(*)',
  // SQLite: a bare column next to max() comes from the row holding the max
  last: 'value, max(ts)',
} as const

/** Time series on SQLite: a series table and a (series, ts) clustered points table. */
export class SqliteMetrics {
  readonly #db: DatabaseSync
  readonly #ids = new Map<string, number>()
  readonly #stmt: Record<string, StatementSync>

  constructor(db: DatabaseSync) {
    this.#db = db
    this.#stmt = {
      findSeries: db.prepare('SELECT id FROM series WHERE name = ? AND tags = ?'),
      insertSeries: db.prepare(
        'INSERT INTO series (name, tags, last_value, last_ts) VALUES (?, ?, ?, ?) RETURNING id',
      ),
      touchSeries: db.prepare('UPDATE series SET last_value = ?, last_ts = ? WHERE id = ? AND last_ts <= ?'),
      insertPoint: db.prepare('INSERT OR REPLACE INTO points (series_id, ts, value) VALUES (?, ?, ?)'),
      seriesByName: db.prepare('SELECT id, tags FROM series WHERE name = ?'),
      countRange: db.prepare('SELECT count(*) AS n FROM points WHERE series_id = ? AND ts >= ? AND ts < ?'),
      list: db.prepare(
        `SELECT s.name, s.tags, s.last_value, s.last_ts, (SELECT count(*) FROM points p WHERE p.series_id = s.id) AS n
         FROM series s ORDER BY s.name, s.tags LIMIT ? OFFSET ?`,
      ),
      total: db.prepare('SELECT count(*) AS n FROM series'),
      deleteBefore: db.prepare('DELETE FROM points WHERE ts < ?'),
      deleteEmptySeries: db.prepare(
        'DELETE FROM series WHERE NOT EXISTS (SELECT 1 FROM points WHERE series_id = series.id)',
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
    for (const p of points) {
      const id = this.#seriesId(p.name, seriesKey(p.tags), p.value, p.timestamp)
      this.#stmt.insertPoint.run(id, p.timestamp, p.value)
      const prev = last.get(id)
      if (!prev || p.timestamp >= prev.timestamp) last.set(id, p)
    }
    for (const [id, p] of last) this.#stmt.touchSeries.run(p.value, p.timestamp, id, p.timestamp)
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

  query(q: MetricQuery): SeriesPoints[] | { tooMany: number } {
    const matching = (this.#stmt.seriesByName.all(q.name) as Row[])
      .map((r) => ({ id: r.id as number, tags: JSON.parse(r.tags as string) as Record<string, string> }))
      .filter((s) => Object.entries(q.tags).every(([k, v]) => s.tags[k] === v))
    let scanned = 0
    for (const s of matching) scanned += (this.#stmt.countRange.get(s.id, q.from, q.to) as Row).n as number
    if (scanned > q.maxPoints) return { tooMany: scanned }
    const sql = `SELECT (ts - ((ts % ?) + ?) % ?) AS bucket, ${AGG_SQL[q.agg]} AS v${q.agg === 'last' ? ', value AS lv' : ''}
      FROM points WHERE series_id = ? AND ts >= ? AND ts < ? GROUP BY bucket ORDER BY bucket`
    const stmt = this.#db.prepare(sql)
    return matching.map((s) => ({
      name: q.name,
      tags: s.tags,
      points: (stmt.all(q.stepMs, q.stepMs, q.stepMs, s.id, q.from, q.to) as Row[]).map((r) => ({
        timestamp: r.bucket as number,
        value: (q.agg === 'last' ? r.lv : r.v) as number,
      })),
    }))
  }

  deleteBefore(timestamp: number): number {
    const n = Number(this.#stmt.deleteBefore.run(timestamp).changes)
    if (n > 0) {
      this.#stmt.deleteEmptySeries.run()
      this.#ids.clear()
    }
    return n
  }
}
