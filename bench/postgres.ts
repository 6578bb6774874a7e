import { randomBytes } from 'node:crypto'
import pg from 'pg'

const ADMIN_URL = process.env.DATAPULSE_BENCH_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test'

/** A fresh database for a bench (its URL and a drop), or undefined with the reason printed when there is no server. */
export async function benchDatabase(): Promise<{ url: string; drop: () => Promise<void> } | undefined> {
  const admin = new pg.Client({ connectionString: ADMIN_URL })
  try {
    await admin.connect()
  } catch (err) {
    process.stderr.write(`PostgreSQL benches skipped: ${ADMIN_URL} unreachable (${(err as Error).message})\n`)
    return undefined
  }
  const name = `datapulse_bench_${randomBytes(6).toString('hex')}`
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: ADMIN_URL })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await c.end()
    },
  }
}
