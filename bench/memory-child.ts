/**
 * Run in its own process: fills one tumbling window with `keys` live group keys (count and sum per
 * key) and prints the RSS. Events are made in chunks and dropped, so the RSS is the window state.
 */
import { clearOutput, newPipelineOutput, Pipeline } from '../src/engine/pipeline.ts'
import { parsePipeline } from '../src/engine/pipeline-spec.ts'
import { DEFAULT_AGGREGATE_LIMITS } from '../src/engine/stages/aggregate-spec.ts'
import type { Event } from '../src/engine/types.ts'

const keys = Number(process.argv[2] ?? 1_000_000)
const parsed = parsePipeline(
  {
    name: 'memory',
    source_topic: 't',
    transformation: {
      aggregate: {
        window_seconds: 3600,
        functions: ['count', { sum: 'data.amount' }],
        group_by: ['data.user_id'],
      },
    },
  },
  DEFAULT_AGGREGATE_LIMITS,
)
if (!parsed.ok) throw new Error('bad spec')
const pipeline = new Pipeline(parsed.value.stages, { get: () => undefined }, { maxKeysPerWindow: keys + 1 })
const out = newPipelineOutput()
const base = Date.parse('2026-11-26T10:00:00Z')
const rssBefore = process.memoryUsage().rss
for (let i = 0; i < keys; i += 10_000) {
  const chunk: Event[] = []
  for (let j = i; j < Math.min(keys, i + 10_000); j++)
    chunk.push({
      id: `e${j}`,
      event_type: 'view',
      source: 'web',
      timestamp: base + (j % 1000),
      data: { user_id: `user-${j}`, amount: j % 97 },
    })
  pipeline.process(chunk, base + 1000, out)
  clearOutput(out)
}
globalThis.gc?.()
// freed pages go back to the system from a background thread: let the RSS settle before reading it
await new Promise((resolve) => setTimeout(resolve, 1_000))
globalThis.gc?.()
const live = pipeline.aggregate?.size ?? 0
process.stdout.write(
  `${JSON.stringify({ keys: live, rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed, rssBefore })}\n`,
)
