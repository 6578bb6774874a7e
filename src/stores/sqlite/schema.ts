/** The embedded store's tables. Versioned with PRAGMA user_version. */
export const SCHEMA_VERSION = 8

/** API keys made at run time: their SHA-256, never the key (v3) */
const API_KEYS = `CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER
);
`

/** a row per (pipeline, source partition): position and that partition's window state (v4) */
const PARTITION_CHECKPOINTS = `CREATE TABLE IF NOT EXISTS partition_checkpoints (
  pipeline_id TEXT NOT NULL,
  partition INTEGER NOT NULL,
  position INTEGER,
  state TEXT NOT NULL,
  stats TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (pipeline_id, partition)
) WITHOUT ROWID;
`

/** window state of a partition in parts, a row each (a pane), written when they change (v6) */
const CHECKPOINT_PARTS = `CREATE TABLE IF NOT EXISTS checkpoint_parts (
  pipeline_id TEXT NOT NULL,
  partition INTEGER NOT NULL,
  part INTEGER NOT NULL,
  state TEXT NOT NULL,
  PRIMARY KEY (pipeline_id, partition, part)
) WITHOUT ROWID;
`

/** every accepted version of a pipeline's spec (v5) */
const PIPELINE_VERSIONS = `CREATE TABLE IF NOT EXISTS pipeline_versions (
  pipeline_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  spec TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  reset INTEGER NOT NULL,
  PRIMARY KEY (pipeline_id, version)
) WITHOUT ROWID;
`

/** v7's outbox: a row per message (v8 keeps a row per commit). */
const OUTBOX_ROWS = `CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  pipeline_id TEXT NOT NULL,
  topic TEXT NOT NULL,
  key TEXT,
  value TEXT NOT NULL,
  headers TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_pipeline ON outbox (pipeline_id, seq);
`

const OUTBOX_COVERED = `CREATE TABLE IF NOT EXISTS outbox_covered (
  pipeline_id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL
);
`

/**
 * Messages waiting for the Kafka relay (exactly-once output), a row per commit (`rows.ts`,
 * `outboxColumns`), and per pipeline the last seq a checkpoint covers: the relay reads up to it.
 * AUTOINCREMENT: a seq is never used twice.
 */
const OUTBOX = `CREATE TABLE IF NOT EXISTS outbox_batches (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  pipeline_id TEXT NOT NULL,
  count INTEGER NOT NULL,
  meta TEXT NOT NULL,
  body TEXT
);
CREATE INDEX IF NOT EXISTS outbox_batches_by_pipeline ON outbox_batches (pipeline_id, seq);
`

/**
 * v7 → v8: each message row becomes a batch of one under the same seq, and the seqs go on from
 * v7's (a relay's position in Kafka is a seq).
 */
const OUTBOX_TO_BATCHES = `${OUTBOX}
INSERT INTO outbox_batches (seq, pipeline_id, count, meta, body)
  SELECT seq, pipeline_id, 1, json_array(json_array(topic, key, json(headers), value)), NULL FROM outbox ORDER BY seq;
INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox_batches', 0
  WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'outbox_batches');
UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0))
  WHERE name = 'outbox_batches';
DROP TABLE outbox;
`

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS pipelines (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  spec TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS checkpoints (
  pipeline_id TEXT PRIMARY KEY,
  log_offset INTEGER NOT NULL,
  positions TEXT,
  state TEXT NOT NULL,
  stats TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
  pipeline_id TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  key_id TEXT NOT NULL,
  window_end INTEGER NOT NULL,
  key TEXT,
  results TEXT NOT NULL,
  version INTEGER,
  PRIMARY KEY (pipeline_id, window_start, key_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
  pipeline_id TEXT NOT NULL,
  id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  reason TEXT NOT NULL,
  detail TEXT NOT NULL,
  event TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (pipeline_id, id)
);
CREATE INDEX IF NOT EXISTS dead_letters_by_seq ON dead_letters (pipeline_id, seq);
CREATE TABLE IF NOT EXISTS lookup_tables (
  name TEXT PRIMARY KEY,
  key_field TEXT NOT NULL,
  row_count INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lookup_rows (
  table_name TEXT NOT NULL,
  key TEXT NOT NULL,
  row TEXT NOT NULL,
  PRIMARY KEY (table_name, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  tags TEXT NOT NULL,
  last_value REAL NOT NULL,
  last_ts INTEGER NOT NULL,
  UNIQUE (name, tags)
);
${API_KEYS}${PARTITION_CHECKPOINTS}${PIPELINE_VERSIONS}${CHECKPOINT_PARTS}${OUTBOX}${OUTBOX_COVERED}`

/** Upgrades an older store in place; each step runs once (PRAGMA user_version). */
export const MIGRATIONS: Record<number, string> = {
  // v2: per-partition positions (Kafka) beside the single embedded offset
  2: 'ALTER TABLE checkpoints ADD COLUMN positions TEXT',
  // v3: API keys made at run time (their SHA-256, never the key)
  3: API_KEYS,
  // v4: a checkpoint row per source partition beside the pipeline's own
  4: PARTITION_CHECKPOINTS,
  // v5: versions of a pipeline's spec, and which made each result
  5: `ALTER TABLE pipelines ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE results ADD COLUMN version INTEGER;
${PIPELINE_VERSIONS}
INSERT INTO pipeline_versions SELECT id, 1, spec, created_at, 0 FROM pipelines;`,
  // v6: window state in parts
  6: CHECKPOINT_PARTS,
  // v7: the outbox of exactly-once output to Kafka
  7: OUTBOX_ROWS + OUTBOX_COVERED,
  // v8: the outbox a row per commit
  8: OUTBOX_TO_BATCHES,
}
