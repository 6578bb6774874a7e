import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { EmbeddedLog } from '../../src/log/embedded-log.ts'
import type { LogBatch } from '../../src/log/log.ts'
import { silentLogger } from '../../src/logger.ts'

/** A fresh directory removed after the test. */
export function tempDir(t: TestContext, prefix = 'datapulse-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Every batch of a topic as it is on disk under `dataDir` (the server must be stopped). */
export async function readLogOnDisk(dataDir: string, topic: string): Promise<LogBatch[]> {
  const log = new EmbeddedLog({
    dir: join(dataDir, 'log'),
    fsync: 'off',
    cacheEvents: 0,
    segmentBytes: 1 << 30,
    logger: silentLogger(),
  })
  try {
    return await log.read(topic, 0, Number.MAX_SAFE_INTEGER)
  } finally {
    await log.close()
  }
}
