import { setFlagsFromString } from 'node:v8'

/**
 * V8 grows the heap past each collection by a factor it picks from the GC's speed; under a
 * sustained load that let the server hold garbage of twice its live data, and the RSS it reached
 * stays (V8 keeps the pages). A fixed factor of 1.8 keeps the overload bench near 700 MB instead
 * of 1.0-1.3 GB at the same latency, for some 5% of ingest throughput (README, Overload).
 * Imported first by the server's entry, before anything allocates much.
 */
setFlagsFromString('--heap-growing-percent=80')

/** Share of one core the process may use and still count as quiet. */
const QUIET_CPU_SHARE = 0.05
/** Share of one core that ends a quiet spell. */
const BUSY_CPU_SHARE = 0.2
const QUIET_SECONDS = 5

/**
 * After a load, V8 gives the pages of a heap that shrank back to its pool, not to the system: the
 * RSS stayed at its peak for good (733 MB two minutes after the overload bench, with 130 MB of
 * heap in use). Its memory reducer, which releases them, does not run in a process that never
 * says it is in the background, unless V8 is in memory-saver mode; that mode costs ~20% of the
 * Kafka pipeline's throughput, so it is on only while the process is quiet: after
 * QUIET_SECONDS under QUIET_CPU_SHARE of a core, until a second over BUSY_CPU_SHARE. The RSS
 * then falls back within some ten seconds (the reducer's own delay). Returns the stop function.
 */
export function releaseMemoryWhenQuiet(intervalMs = 1_000): () => void {
  let last = process.cpuUsage()
  let quietFor = 0
  let saving = false
  const timer = setInterval(() => {
    const now = process.cpuUsage()
    const share = (now.user - last.user + now.system - last.system) / (intervalMs * 1_000)
    last = now
    quietFor = share < QUIET_CPU_SHARE ? quietFor + 1 : 0
    if (!saving && quietFor >= QUIET_SECONDS) {
      setFlagsFromString('--memory-saver-mode')
      saving = true
    } else if (saving && share > BUSY_CPU_SHARE) {
      setFlagsFromString('--no-memory-saver-mode')
      saving = false
    }
  }, intervalMs)
  timer.unref()
  return () => clearInterval(timer)
}
