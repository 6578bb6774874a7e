import { EmbeddedLog } from '../../src/log/embedded-log.ts'
import { silentLogger } from '../../src/logger.ts'
import { tempDir } from '../helpers/tmp.ts'
import { logContract } from './log-contract.ts'

logContract('embedded log', async (t) => {
  const log = new EmbeddedLog({
    dir: tempDir(t),
    fsync: 'batch',
    cacheEvents: 1_000,
    segmentBytes: 64 * 1024 * 1024,
    logger: silentLogger(),
  })
  t.after(() => log.close())
  return log
})
