import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { WindowResult } from '../src/engine/types.ts'
import { PostgresStore } from '../src/stores/postgres/postgres-store.ts'
import { SqliteStore } from '../src/stores/sqlite/sqlite-store.ts'
import type { PipelineCommit, Store } from '../src/stores/store.ts'
import type { BenchRow } from './engine.ts'
import { benchDatabase } from './postgres.ts'

const RESULTS = 500
const PARTITIONS = 4

/** What a pipeline commits after a busy stretch: 500 closed windows and a checkpoint of 4 partitions (~20 KB each). */
function commitOf(i: number): PipelineCommit {
  const results: WindowResult[] = Array.from({ length: RESULTS }, (_, k) => ({
    windowStart: i * 60_000,
    windowEnd: (i + 1) * 60_000,
    keyId: `["user-${k}"]`,
    key: { user: `user-${k}` },
    results: { count: k, sum: k * 3.5, p95: k / 7 },
    closed: true,
  }))
  const slots = Array.from({ length: 400 }, (_, k) => [k, i, `["user-${k}"]`, [k, k * 2]])
  return {
    results,
    deadLetters: [],
    checkpoint: {
      state: { v: 3, watermark: i * 60_000, firstArrival: 0 },
      stats: {
        events_in: i * 10_000,
        events_out: i * 10_000,
        filtered: 0,
        late: 0,
        errors: 0,
        results: i * RESULTS,
      },
      partitions: Array.from({ length: PARTITIONS }, (_, p) => ({
        partition: p,
        position: i * 2_500,
        state: { watermark: i * 60_000, slots },
        stats: { events_in: i * 2_500, filtered: 0, late: 0, errors: 0 },
      })),
    },
  }
}

/** Commits per second into `store`, one after another (as a pipeline commits), for `seconds`. */
async function commitsPerSecond(store: Store, seconds: number): Promise<number> {
  await store.insertPipeline({
    id: 'bench',
    name: 'bench',
    spec: {},
    status: 'running',
    createdAt: 0,
    updatedAt: 0,
    version: 1,
  })
  for (let i = 0; i < 5; i++) await store.commit('bench', commitOf(i)) // warm up
  const started = performance.now()
  let n = 0
  while (performance.now() - started < seconds * 1_000) await store.commit('bench', commitOf(5 + n++))
  return n / ((performance.now() - started) / 1_000)
}

/**
 * The store's commit path on SQLite and on PostgreSQL (the same commits, one after another, as a
 * pipeline makes them: results upserted, a checkpoint row and a row per partition): PostgreSQL is
 * shown beside SQLite from the same run.
 */
export async function storeBenches(quick: boolean): Promise<BenchRow[]> {
  const seconds = quick ? 3 : 8
  const dir = mkdtempSync(join(tmpdir(), 'datapulse-bench-store-'))
  const sqlite = new SqliteStore(join(dir, 'store.db'))
  let local: number
  try {
    local = await commitsPerSecond(sqlite, seconds)
  } finally {
    await sqlite.close()
    rmSync(dir, { recursive: true, force: true })
  }
  const rows: BenchRow[] = [
    {
      bench: `store commit, SQLite: ${RESULTS} results + checkpoint of ${PARTITIONS} partitions`,
      value: local,
      unit: 'commits/s',
    },
  ]
  const db = await benchDatabase()
  if (!db) return rows
  try {
    const store = await PostgresStore.open(db.url, { poolSize: 8, statementTimeoutMs: 30_000 })
    try {
      const remote = await commitsPerSecond(store, seconds)
      rows.push({
        bench: `store commit, PostgreSQL: ${RESULTS} results + checkpoint of ${PARTITIONS} partitions`,
        value: remote,
        unit: 'commits/s',
        ceiling: local,
        ceilingName: 'SQLite, same commits',
      })
    } finally {
      await store.close()
    }
  } finally {
    await db.drop()
  }
  return rows
}
