/**
 * Makes an API key for a keys file (or DATAPULSE_API_KEYS):
 *   npm run new-key -- --role admin --name ops [--expires 2027-06-30T00:00:00Z]
 * The key goes to stderr, shown this once; the entry to add to the file (its hash) to stdout.
 */
import { parseArgs } from 'node:util'
import { checkKeyInput, newKey } from '../src/auth/api-keys.ts'
import type { Issue } from '../src/engine/types.ts'

let values: { role?: string; name?: string; expires?: string }
try {
  values = parseArgs({
    options: { role: { type: 'string' }, name: { type: 'string' }, expires: { type: 'string' } },
    strict: true,
  }).values
} catch (err) {
  process.stderr.write(`new-key: ${(err as Error).message}\n`)
  process.exit(2)
}
const issues: Issue[] = []
const input = checkKeyInput(
  {
    name: values.name ?? `${values.role ?? 'key'}-${new Date().toISOString().slice(0, 10)}`,
    role: values.role,
    expires_at: values.expires,
  },
  '',
  Date.now(),
  issues,
)
if (!input) {
  process.stderr.write(
    `new-key: ${issues.map((i) => `--${i.path.slice(1).replace('expires_at', 'expires')} ${i.message}`).join('; ')}\n`,
  )
  process.exit(2)
}
const made = newKey()
process.stderr.write(`key (shown once; the server keeps only its hash): ${made.key}\n`)
process.stdout.write(
  `${JSON.stringify({
    id: made.id,
    name: input.name,
    role: input.role,
    sha256: made.sha256,
    ...(input.expiresAt === null ? {} : { expires_at: new Date(input.expiresAt).toISOString() }),
  })}\n`,
)
