import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { INSTANCE_ID } from '../config.ts'

const FILE = 'instance-id'

/**
 * This instance's id: the configured one, else the one kept in the data dir (made once, as
 * `<host>-<random>`). It stays the same across restarts, so a restarted instance takes back its
 * place in each consumer group at once (Kafka static membership) instead of waiting out the
 * session of the process it replaces.
 */
export function instanceId(configured: string, dataDir: string): string {
  if (configured !== '') return configured
  const path = join(dataDir, FILE)
  try {
    const kept = readFileSync(path, 'utf8').trim()
    if (INSTANCE_ID.test(kept)) return kept
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const host =
    hostname()
      .replace(/[^A-Za-z0-9.-]/g, '')
      .slice(0, 60) || 'datapulse'
  const made = `${host}-${randomBytes(4).toString('hex')}`
  mkdirSync(dataDir, { recursive: true })
  writeFileSync(path, `${made}\n`)
  return made
}
