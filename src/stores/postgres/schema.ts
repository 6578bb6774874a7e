/** The PostgreSQL store's tables (created if missing; the same data as the SQLite store's). */
export const PG_SCHEMA = `
CREATE TABLE IF NOT EXISTS pipelines (
  seq BIGSERIAL,
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  spec TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
  pipeline_id TEXT PRIMARY KEY,
  positions TEXT NOT NULL,
  state TEXT NOT NULL,
  stats TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS partition_checkpoints (
  pipeline_id TEXT NOT NULL,
  partition INTEGER NOT NULL,
  position BIGINT,
  state TEXT NOT NULL,
  stats TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (pipeline_id, partition)
);
ALTER TABLE checkpoints ALTER COLUMN positions DROP NOT NULL;
CREATE TABLE IF NOT EXISTS results (
  pipeline_id TEXT NOT NULL,
  window_start BIGINT NOT NULL,
  key_id TEXT NOT NULL,
  window_end BIGINT NOT NULL,
  key TEXT,
  results TEXT NOT NULL,
  PRIMARY KEY (pipeline_id, window_start, key_id)
);
CREATE TABLE IF NOT EXISTS dead_letters (
  pipeline_id TEXT NOT NULL,
  id TEXT NOT NULL,
  seq BIGSERIAL,
  reason TEXT NOT NULL,
  detail TEXT NOT NULL,
  event TEXT NOT NULL,
  at BIGINT NOT NULL,
  PRIMARY KEY (pipeline_id, id)
);
CREATE INDEX IF NOT EXISTS dead_letters_by_seq ON dead_letters (pipeline_id, seq);
CREATE TABLE IF NOT EXISTS lookup_tables (
  name TEXT PRIMARY KEY,
  key_field TEXT NOT NULL,
  row_count INTEGER NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS lookup_rows (
  table_name TEXT NOT NULL,
  key TEXT NOT NULL,
  row TEXT NOT NULL,
  PRIMARY KEY (table_name, key)
);
CREATE TABLE IF NOT EXISTS series (
  id BIGSERIAL PRIMARY KEY,
  name TEXT NOT NULL,
  tags TEXT NOT NULL,
  UNIQUE (name, tags)
);
CREATE TABLE IF NOT EXISTS points (
  series_id BIGINT NOT NULL,
  ts BIGINT NOT NULL,
  value DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS points_by_series ON points (series_id, ts);
CREATE INDEX IF NOT EXISTS points_by_ts ON points (ts);
CREATE TABLE IF NOT EXISTS minutes (
  series_id BIGINT NOT NULL,
  bucket BIGINT NOT NULL,
  n BIGINT NOT NULL,
  sum DOUBLE PRECISION NOT NULL,
  min DOUBLE PRECISION NOT NULL,
  max DOUBLE PRECISION NOT NULL,
  last_ts BIGINT NOT NULL,
  last_value DOUBLE PRECISION NOT NULL,
  raw BOOLEAN NOT NULL,
  PRIMARY KEY (series_id, bucket)
);
CREATE TABLE IF NOT EXISTS hours (
  series_id BIGINT NOT NULL,
  bucket BIGINT NOT NULL,
  n BIGINT NOT NULL,
  sum DOUBLE PRECISION NOT NULL,
  min DOUBLE PRECISION NOT NULL,
  max DOUBLE PRECISION NOT NULL,
  last_ts BIGINT NOT NULL,
  last_value DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (series_id, bucket)
);
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT
);
-- later additions, in order (each runs once in effect: IF NOT EXISTS, ON CONFLICT)
ALTER TABLE pipelines ADD COLUMN IF NOT EXISTS version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE results ADD COLUMN IF NOT EXISTS version INTEGER;
CREATE TABLE IF NOT EXISTS pipeline_versions (
  pipeline_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  spec TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  reset BOOLEAN NOT NULL,
  PRIMARY KEY (pipeline_id, version)
);
INSERT INTO pipeline_versions SELECT id, 1, spec, created_at, false FROM pipelines ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS checkpoint_parts (
  pipeline_id TEXT NOT NULL,
  partition INTEGER NOT NULL,
  part BIGINT NOT NULL,
  state TEXT NOT NULL,
  PRIMARY KEY (pipeline_id, partition, part)
);
CREATE TABLE IF NOT EXISTS instances (
  id TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  started_at BIGINT NOT NULL,
  last_seen BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS pipeline_owners (
  pipeline_id TEXT PRIMARY KEY,
  instance_id TEXT NOT NULL,
  epoch BIGINT NOT NULL,
  acquired_at BIGINT NOT NULL,
  renewed_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  handover TEXT
);
CREATE TABLE IF NOT EXISTS outbox_batches (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  pipeline_id TEXT NOT NULL,
  count INTEGER NOT NULL,
  meta TEXT NOT NULL,
  body TEXT
);
CREATE INDEX IF NOT EXISTS outbox_batches_by_pipeline ON outbox_batches (pipeline_id, seq);
-- a row per message before: each becomes a batch of one under its seq, and seqs go on from there
-- (a relay's position in Kafka is a seq)
DO $$
DECLARE
  last_seq BIGINT;
BEGIN
  IF to_regclass('outbox') IS NOT NULL THEN
    INSERT INTO outbox_batches (seq, pipeline_id, count, meta, body) OVERRIDING SYSTEM VALUE
      SELECT seq, pipeline_id, 1, json_build_array(json_build_array(topic, key, headers::json, value))::text, NULL
      FROM outbox ORDER BY seq;
    EXECUTE format('SELECT last_value FROM %s', pg_get_serial_sequence('outbox', 'seq')) INTO last_seq;
    PERFORM setval(pg_get_serial_sequence('outbox_batches', 'seq'),
      greatest(last_seq, coalesce((SELECT max(seq) FROM outbox_batches), 1)));
    DROP TABLE outbox;
  END IF;
END $$;
CREATE TABLE IF NOT EXISTS outbox_covered (
  pipeline_id TEXT PRIMARY KEY,
  seq BIGINT NOT NULL
);
`
