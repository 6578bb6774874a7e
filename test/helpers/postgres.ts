import { randomBytes } from 'node:crypto'
import type { TestContext } from 'node:test'
import pg from 'pg'

const ADMIN_URL = process.env.DATAPULSE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test'

/**
 * A fresh database on the machine's PostgreSQL (dropped after the test), or a skip with the
 * reason when there is none (a failure under CI=true). `before` runs before the drop.
 */
export async function freshDatabase(
  t: TestContext,
  before?: () => Promise<void>,
): Promise<string | undefined> {
  const admin = new pg.Client({ connectionString: ADMIN_URL })
  try {
    await admin.connect()
  } catch (err) {
    const why = `PostgreSQL is not reachable at ${ADMIN_URL}: ${(err as Error).message}`
    if (process.env.CI === 'true') throw new Error(why)
    t.skip(`${why} (start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)`)
    return undefined
  }
  const name = `datapulse_test_${randomBytes(6).toString('hex')}`
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  t.after(async () => {
    // what still uses the database goes first (servers started after this was created)
    await before?.()
    const c = new pg.Client({ connectionString: ADMIN_URL })
    await c.connect()
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await c.end()
  })
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  return url.toString()
}
