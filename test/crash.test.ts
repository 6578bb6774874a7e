import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { ChildServer, freePort } from './helpers/child-server.ts'
import { assertExact, crashRun, crashServer, post } from './helpers/crash-run.ts'
import { freshDatabase } from './helpers/postgres.ts'
import { readLogOnDisk, tempDir } from './helpers/tmp.ts'

const TOPIC = 'crash'

test('kill -9 at random moments: no acknowledged event lost, every window equals a run without crashes', async (t) => {
  const dataDir = tempDir(t)
  const server = await crashServer(t, dataDir)
  const run = await crashRun(server, TOPIC, 6)
  assert.equal(await server.kill('SIGTERM'), 0)
  // the log is the truth: read it as it is on disk
  const batches = await readLogOnDisk(dataDir, TOPIC)
  assertExact(run, TOPIC, batches)
})

test('kill -9 with the PostgreSQL store: the same exactness, results and checkpoints in PostgreSQL', async (t) => {
  const url = await freshDatabase(t)
  if (url === undefined) return
  const dataDir = tempDir(t)
  const server = await crashServer(t, dataDir, ['--database-url', url])
  const run = await crashRun(server, TOPIC, 4)
  assert.equal(await server.kill('SIGTERM'), 0)
  assertExact(run, TOPIC, await readLogOnDisk(dataDir, TOPIC))
  // nothing of the store went to the data dir
  assert.equal((await import('node:fs')).existsSync(join(dataDir, 'datapulse.db')), false)
})

test('a segment with a torn tail: the server restarts, cuts the tail with a warning, keeps every whole record', async (t) => {
  const dataDir = tempDir(t)
  const server = new ChildServer(await freePort(), ['--data-dir', dataDir, '--log-level', 'warn'])
  t.after(() => server.kill('SIGKILL'))
  await server.start()
  const created = await fetch(`${server.url}/api/pipelines`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'p',
      source_topic: 'torn',
      start: true,
      transformation: { aggregate: { window_seconds: 3600, function: 'count' } },
    }),
  })
  const { id } = (await created.json()) as { id: string }
  for (let i = 0; i < 3; i++)
    assert.equal(
      await post(`${server.url}/api/events/ingest`, {
        topic: 'torn',
        events: [{ event_type: 'e', source: 's' }],
      }),
      200,
    )
  assert.equal(await server.kill('SIGKILL'), null)
  const { appendFileSync, statSync } = await import('node:fs')
  const segment = join(dataDir, 'log', 'torn', '00000000000000000000.log')
  const size = statSync(segment).size
  appendFileSync(segment, Buffer.from([0, 0, 0, 200, 1, 2, 3, 4, 5, 6, 7]))
  await server.start()
  assert.match(server.output, /torn tail; truncating/)
  assert.equal(statSync(segment).size, size)
  for (let i = 0; ; i++) {
    const w = (await (await fetch(`${server.url}/api/pipelines/${id}/window`)).json()) as {
      windows: Array<{ results: { count: number } }>
    }
    if (w.windows[0]?.results.count === 3) break
    assert.ok(i < 200, JSON.stringify(w))
    await new Promise((res) => setTimeout(res, 25))
  }
  assert.equal(
    await post(`${server.url}/api/events/ingest`, {
      topic: 'torn',
      events: [{ event_type: 'e', source: 's' }],
    }),
    200,
  )
})
