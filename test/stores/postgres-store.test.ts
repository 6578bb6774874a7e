import assert from 'node:assert/strict'
import { test } from 'node:test'
import pg from 'pg'
import { PostgresStore } from '../../src/stores/postgres/postgres-store.ts'
import { freshDatabase } from '../helpers/postgres.ts'
import { assertOutboxMoved, storeContract, v7OutboxRow } from './store-contract.ts'

storeContract('postgres', async (t) => {
  const url = await freshDatabase(t)
  if (url === undefined) return undefined
  const store = await PostgresStore.open(url)
  t.after(() => store.close())
  return store
})

test('postgres: an outbox of a row per message becomes batches of one under the same seqs, and seqs go on after the last', async (t) => {
  const url = await freshDatabase(t)
  if (url === undefined) return
  const old = new pg.Client({ connectionString: url })
  await old.connect()
  await old.query(`CREATE TABLE outbox (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, pipeline_id TEXT NOT NULL,
    topic TEXT NOT NULL, key TEXT, value TEXT NOT NULL, headers TEXT NOT NULL);
    CREATE TABLE outbox_covered (pipeline_id TEXT PRIMARY KEY, seq BIGINT NOT NULL);`)
  for (let n = 1; n <= 8; n++) {
    const m = v7OutboxRow(n)
    await old.query(
      'INSERT INTO outbox (pipeline_id, topic, key, value, headers) VALUES ($1, $2, $3, $4, $5)',
      ['p', m.topic, m.key, m.value, m.headers],
    )
  }
  // 1-4 relayed and trimmed, 8 dropped at a restart: the next seq is 9 all the same
  await old.query("DELETE FROM outbox WHERE seq <= 4 OR seq = 8; INSERT INTO outbox_covered VALUES ('p', 7)")
  await old.end()
  const store = await PostgresStore.open(url)
  await assertOutboxMoved(store)
  // opened again (every open runs the schema): nothing moves twice
  await store.close()
  const again = await PostgresStore.open(url)
  t.after(() => again.close())
  assert.deepEqual(
    (await again.readOutbox('p', 0, 100)).map((b) => b.seq),
    [5, 6, 7, 9],
  )
})
