import assert from 'node:assert/strict'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { test } from 'node:test'
import { Pipeline } from '../../src/engine/pipeline.ts'
import { parsePipeline } from '../../src/engine/pipeline-spec.ts'
import { DEFAULT_AGGREGATE_LIMITS } from '../../src/engine/stages/aggregate-spec.ts'
import { SCHEMA, SCHEMA_VERSION } from '../../src/stores/sqlite/schema.ts'
import { SqliteStore } from '../../src/stores/sqlite/sqlite-store.ts'
import { partitionStates } from '../../src/stores/store.ts'
import { tempDir } from '../helpers/tmp.ts'
import { assertOutboxMoved, storeContract, v7OutboxRow } from './store-contract.ts'

storeContract('sqlite', async (t) => {
  const store = new SqliteStore(join(tempDir(t), 'store.db'))
  t.after(() => store.close())
  return store
})

test('sqlite: metric points acknowledged but not yet in their chunks survive a crash', async (t) => {
  const path = join(tempDir(t), 'store.db')
  const crashed = new SqliteStore(path)
  const points = Array.from({ length: 500 }, (_, i) => ({
    name: 'm',
    tags: { k: `${i % 3}` },
    value: i,
    timestamp: 1_000 * i,
  }))
  await crashed.writeMetrics(points)
  // no close (it would flush): a second process opens the same file, as after kill -9
  const store = new SqliteStore(path)
  t.after(() => store.close())
  const got = await store.queryMetrics({
    name: 'm',
    tags: {},
    from: 0,
    to: 500_000,
    stepMs: 1,
    agg: 'sum',
    maxPoints: 1e6,
  })
  assert.ok(Array.isArray(got))
  assert.deepEqual(
    got.flatMap((s) => s.points.map((p) => p.value)).sort((a, b) => a - b),
    points.map((p) => p.value),
  )
  assert.equal(
    (await store.listSeries(10, 0)).series.reduce((n, s) => n + s.points, 0),
    500,
  )
})

test('sqlite: a store from before chunks (a row per point, minute rollups) is upgraded in place', async (t) => {
  const path = join(tempDir(t), 'store.db')
  const old = new DatabaseSync(path)
  old.exec(`${SCHEMA}
    CREATE TABLE points (series_id INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL, PRIMARY KEY (series_id, ts)) WITHOUT ROWID;
    CREATE TABLE rollup_1m (series_id INTEGER NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL, sum REAL NOT NULL,
      min REAL NOT NULL, max REAL NOT NULL, last_ts INTEGER NOT NULL, last_value REAL NOT NULL, PRIMARY KEY (series_id, bucket)) WITHOUT ROWID;
    INSERT INTO series (id, name, tags, last_value, last_ts) VALUES (1, 'm', '{}', 4, 61000);
    -- minute 0: raw points gone, its rollup kept; minute 60 000: raw points and rollup
    INSERT INTO rollup_1m VALUES (1, 0, 3, 30, 5, 15, 50000, 15), (1, 60000, 2, 7, 3, 4, 61000, 4);
    INSERT INTO points VALUES (1, 60000, 3), (1, 61000, 4);
    PRAGMA user_version = ${SCHEMA_VERSION};`)
  old.close()
  const store = new SqliteStore(path)
  t.after(() => store.close())
  const ask = async (stepMs: number, agg: 'sum' | 'count' | 'last') => {
    const got = await store.queryMetrics({
      name: 'm',
      tags: {},
      from: 0,
      to: 120_000,
      stepMs,
      agg,
      maxPoints: 100,
    })
    assert.ok(Array.isArray(got))
    return got[0].points.map((p) => [p.timestamp, p.value])
  }
  assert.deepEqual(await ask(60_000, 'sum'), [
    [0, 30],
    [60_000, 7],
  ])
  assert.deepEqual(await ask(60_000, 'last'), [
    [0, 15],
    [60_000, 4],
  ])
  // raw reads (a 1 s step) see the points that were rows
  assert.deepEqual(await ask(1_000, 'count'), [
    [60_000, 1],
    [61_000, 1],
  ])
  assert.equal((await store.listSeries(10, 0)).series[0].points, 2)
})

test('sqlite: a checkpoint from before partition rows (whole state, positions as JSON) loads as partitions', async (t) => {
  const path = join(tempDir(t), 'store.db')
  const old = new DatabaseSync(path)
  const whole = {
    v: 2,
    watermark: 5_000,
    firstArrival: 1_000,
    partitions: [0, 1].map((partition) => ({
      partition,
      watermark: 5_000,
      maxTs: 5_000,
      lastArrival: 1_000,
      slots: [],
      sealed: [],
    })),
  }
  const stats = { events_in: 3, events_out: 3, filtered: 0, late: 0, errors: 0, results: 0 }
  const zero = { events_in: 0, filtered: 0, late: 0, errors: 0 }
  // a store of schema v3: before partition rows (v4) and versions (v5)
  old.exec(
    `${SCHEMA} DROP TABLE partition_checkpoints; DROP TABLE pipeline_versions; ALTER TABLE pipelines DROP COLUMN version; ALTER TABLE results DROP COLUMN version; PRAGMA user_version = 3;`,
  )
  old
    .prepare('INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)')
    .run('p', 5, '{"0":5,"1":9}', JSON.stringify(whole), JSON.stringify(stats), 1)
  old
    .prepare('INSERT INTO checkpoints VALUES (?, ?, NULL, ?, ?, ?)')
    .run('q', 4, 'null', JSON.stringify(stats), 1)
  old.close()
  const store = new SqliteStore(path)
  t.after(() => store.close())
  const p = await store.loadCheckpoint('p')
  assert.deepEqual(p, {
    state: whole,
    stats,
    partitions: [
      { partition: 0, position: 5, state: null, stats: zero },
      { partition: 1, position: 9, state: null, stats: zero },
    ],
  })
  // the first store had one offset and no positions
  assert.deepEqual((await store.loadCheckpoint('q'))?.partitions, [
    { partition: 0, position: 4, state: null, stats: zero },
  ])
  // the engine reads the whole state as it was saved
  const spec = parsePipeline(
    {
      name: 'p',
      source_topic: 't',
      transformation: { aggregate: { window_seconds: 1, functions: ['count'] } },
    },
    DEFAULT_AGGREGATE_LIMITS,
  )
  assert.ok(spec.ok)
  const pipeline = new Pipeline(spec.value.stages, { get: () => undefined }, { maxKeysPerWindow: 1_000 })
  pipeline.restore(p!.state, partitionStates(p!))
  assert.equal(pipeline.aggregate?.watermark, 5_000)
  // saved again, it is in rows
  await store.commit('p', { results: [], deadLetters: [], checkpoint: { ...p!, state: { v: 3 } } })
  assert.deepEqual((await store.loadCheckpoint('p'))?.state, { v: 3 })
  assert.equal((await store.loadCheckpoint('p'))?.partitions.length, 2)
})

test('sqlite: a v7 outbox (a row per message) becomes batches of one under the same seqs, and seqs go on after the last', async (t) => {
  const path = join(tempDir(t), 'store.db')
  const old = new DatabaseSync(path)
  old.exec(`${SCHEMA} DROP TABLE outbox_batches;
    CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, pipeline_id TEXT NOT NULL, topic TEXT NOT NULL,
      key TEXT, value TEXT NOT NULL, headers TEXT NOT NULL);
    CREATE INDEX outbox_by_pipeline ON outbox (pipeline_id, seq);
    PRAGMA user_version = 7;`)
  const insert = old.prepare(
    'INSERT INTO outbox (pipeline_id, topic, key, value, headers) VALUES (?, ?, ?, ?, ?)',
  )
  for (let n = 1; n <= 8; n++) {
    const m = v7OutboxRow(n)
    insert.run('p', m.topic, m.key, m.value, m.headers)
  }
  // 1-4 relayed and trimmed, 8 dropped at a restart: the next seq is 9 all the same
  old.exec("DELETE FROM outbox WHERE seq <= 4 OR seq = 8; INSERT INTO outbox_covered VALUES ('p', 7)")
  old.close()
  const store = new SqliteStore(path)
  t.after(() => store.close())
  await assertOutboxMoved(store)
})

test('sqlite: points for a minute that has a chunk join it, also after a restart and when later minutes have chunks', async (t) => {
  const path = join(tempDir(t), 'store.db')
  const point = (minute: number, value: number) => ({
    name: 'm',
    tags: { k: 'a' },
    value,
    timestamp: minute * 60_000 + value,
  })
  const first = new SqliteStore(path)
  await first.writeMetrics([point(10, 1), point(5, 2)])
  await first.close()
  const store = new SqliteStore(path)
  t.after(() => store.close())
  // the newest chunk is minute 10: points for 10 and 5 find theirs, 11 opens one
  await store.writeMetrics([point(10, 3), point(5, 4), point(11, 5)])
  await store.writeMetrics([point(11, 6), point(10, 7)])
  const got = await store.queryMetrics({
    name: 'm',
    tags: {},
    from: 0,
    to: 12 * 60_000,
    stepMs: 60_000,
    agg: 'count',
    maxPoints: 100,
  })
  assert.ok(Array.isArray(got))
  assert.deepEqual(
    got[0].points.map((p) => [p.timestamp / 60_000, p.value]),
    [
      [5, 2],
      [10, 3],
      [11, 2],
    ],
  )
})
