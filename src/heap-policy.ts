import { setFlagsFromString } from 'node:v8'

/**
 * V8 grows the heap past each collection by a factor it picks from the GC's speed; under a
 * sustained load that let the server hold garbage of twice its live data, and the RSS it reached
 * stays (V8 keeps the pages). A fixed factor of 1.8 keeps the overload bench near 700 MB instead
 * of 1.0-1.3 GB at the same latency, for some 5% of ingest throughput (README, Overload).
 * Imported first by the server's entry, before anything allocates much.
 */
setFlagsFromString('--heap-growing-percent=80')
