import { releaseMemoryWhenQuiet } from './heap-policy.ts'
import { serve } from './serve.ts'

releaseMemoryWhenQuiet()
serve(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`datapulse: failed to start: ${(err as Error).message}\n`)
  process.exit(1)
})
