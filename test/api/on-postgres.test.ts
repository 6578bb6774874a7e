import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { freshDatabase } from '../helpers/postgres.ts'

const THIS = 'on-postgres.test.ts'

test('the API and security tests pass on the PostgreSQL store too', { timeout: 900_000 }, async (t) => {
  if (process.env.DATAPULSE_TEST_STORE === 'postgres') {
    t.skip('this run is the PostgreSQL run')
    return
  }
  // PostgreSQL is there (or the reason it is skipped, a failure under CI=true)
  if ((await freshDatabase(t)) === undefined) return
  const files = ['test/api', 'test/security'].flatMap((dir) =>
    readdirSync(dir)
      .filter((f) => f.endsWith('.test.ts') && f !== THIS)
      .map((f) => join(dir, f)),
  )
  // a runner of its own: without the parent runner's NODE_TEST_CONTEXT, which would make it report to a parent
  const env: NodeJS.ProcessEnv = { ...process.env, DATAPULSE_TEST_STORE: 'postgres' }
  delete env.NODE_TEST_CONTEXT
  const child = spawn(
    process.execPath,
    ['--test', '--test-concurrency=1', '--test-force-exit', '--test-timeout=600000', ...files],
    {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let output = ''
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString()
  })
  child.stderr.on('data', (d: Buffer) => {
    output += d.toString()
  })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  const failed = output.split('\n').filter((l) => l.startsWith('✖'))
  const summary = output.split('\n').filter((l) => /^ℹ (tests|pass|fail)/.test(l))
  t.diagnostic(`on PostgreSQL: ${summary.join(', ')}`)
  assert.equal(code, 0, `failing on PostgreSQL:\n${failed.join('\n')}\n${output.slice(-3000)}`)
  assert.ok(
    summary.some((l) => /^ℹ pass [1-9]/.test(l)),
    summary.join('\n'),
  )
})
