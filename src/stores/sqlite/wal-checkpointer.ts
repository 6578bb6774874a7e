/**
 * Runs in a worker thread with its own connection: folds the write-ahead log back into the
 * database file (page copies and the fsync) every `intervalMs`, so the main thread's commits
 * never stop to do it. PASSIVE: it waits for no one and no writer waits for it.
 */
import { DatabaseSync } from 'node:sqlite'
import { parentPort, workerData } from 'node:worker_threads'

const { path, intervalMs } = workerData as { path: string; intervalMs: number }
const db = new DatabaseSync(path)
db.exec('PRAGMA busy_timeout = 5000')

function checkpoint(): void {
  try {
    db.exec('PRAGMA wal_checkpoint(PASSIVE)')
  } catch (err) {
    parentPort?.postMessage({ error: (err as Error).message })
  }
}

const timer = setInterval(checkpoint, intervalMs)
parentPort?.on('message', (message) => {
  if (message !== 'close') return
  clearInterval(timer)
  checkpoint()
  db.close()
  parentPort?.close()
})
