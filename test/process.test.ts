import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { test } from 'node:test'
import { ConfigError, loadConfig } from '../src/config.ts'
import { tempDir } from './helpers/tmp.ts'

const MAIN = new URL('../src/main.ts', import.meta.url).pathname

async function freePort(): Promise<number> {
  const srv = createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = (srv.address() as { port: number }).port
  srv.close()
  return port
}

async function waitUp(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`)
    try {
      if ((await fetch(url)).ok) return
    } catch {}
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error('server did not come up')
}

test('configuration: defaults, env, flags over env, and one-line refusals', () => {
  const d = loadConfig([], {})
  assert.equal(d.port, 8003)
  assert.equal(d.host, '127.0.0.1')
  assert.equal(d.dataDir, './data')
  assert.equal(d.bodyLimit, 10 * 1024 * 1024)
  assert.equal(d.maxBatch, 10_000)
  assert.equal(loadConfig([], { DATAPULSE_PORT: '9000' }).port, 9000)
  assert.equal(loadConfig(['--port', '9001'], { DATAPULSE_PORT: '9000' }).port, 9001)
  assert.equal(loadConfig(['--fsync', 'always'], {}).fsync, 'always')
  assert.throws(
    () => loadConfig(['--port', 'x'], {}),
    (e: Error) => e instanceof ConfigError && /--port must be an integer/.test(e.message),
  )
  assert.throws(
    () => loadConfig([], { DATAPULSE_PORT: '70000' }),
    /DATAPULSE_PORT must be an integer from 0 to 65535/,
  )
  assert.throws(() => loadConfig(['--bogus', '1'], {}), ConfigError)
  assert.throws(() => loadConfig([], { DATAPULSE_FSYNC: 'sometimes' }), /must be one of batch, always, off/)

  const run = spawnSync(process.execPath, [MAIN, '--port', 'abc'], { encoding: 'utf8' })
  assert.equal(run.status, 2)
  assert.equal(run.stderr.trim().split('\n').length, 1)
  assert.match(run.stderr, /^datapulse: invalid configuration: --port must be an integer/)
})

test('npm start equivalent: serves, /docs is there, SIGTERM drains and exits 0, state survives', async (t) => {
  const dataDir = tempDir(t)
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const start = () =>
    spawn(process.execPath, [MAIN, '--port', String(port), '--data-dir', dataDir, '--log-level', 'warn'], {
      stdio: 'pipe',
    })
  let child = start()
  t.after(() => child.kill('SIGKILL'))
  await waitUp(url, child)
  assert.equal((await fetch(`${url}/docs`)).status, 200)
  const doc = (await (await fetch(`${url}/docs/json`)).json()) as { paths: Record<string, unknown> }
  assert.ok(doc.paths['/api/pipelines'] && doc.paths['/api/events/ingest'] && doc.paths['/api/metrics'])
  const created = await fetch(`${url}/api/pipelines`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'p',
      source_topic: 't',
      start: true,
      transformation: { aggregate: { window_seconds: 3600, function: 'count' } },
    }),
  })
  const { id } = (await created.json()) as { id: string }
  const ingest = await fetch(`${url}/api/events/ingest`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ events: Array.from({ length: 50 }, () => ({ event_type: 'e', source: 's' })) }),
  })
  assert.equal(ingest.status, 200)
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  assert.equal(code, 0)

  child = start()
  await waitUp(url, child)
  const w = (await (await fetch(`${url}/api/pipelines/${id}/window`)).json()) as {
    windows: Array<{ results: unknown }>
  }
  assert.deepEqual(
    w.windows.map((x) => x.results),
    [{ count: 50 }],
  )
  child.kill('SIGTERM')
  assert.equal((await once(child, 'exit'))[0], 0)
})
