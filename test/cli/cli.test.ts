import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { freePort } from '../helpers/child-server.ts'
import { configuredAdmin } from '../helpers/keys.ts'
import { eventually, startServer } from '../helpers/server.ts'
import { tempDir } from '../helpers/tmp.ts'

const BIN = new URL('../../bin/datapulse.js', import.meta.url).pathname

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** The command as a user runs it (not on a terminal: progress comes as plain lines). */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

const SPEC = {
  name: 'pages',
  source_topic: 'clicks',
  start: true,
  transformation: { aggregate: { window_seconds: 3600, group_by: ['data.page'], function: { count: null } } },
}

test('cli: apply is idempotent, lists and windows print tables or JSON, exit codes say what happened', async (t) => {
  const server = await startServer(t)
  const dir = tempDir(t)
  const spec = join(dir, 'spec.json')
  writeFileSync(spec, JSON.stringify(SPEC))
  const url = ['--url', server.url]
  const first = await cli(['pipelines', 'apply', '-f', spec, '--json', ...url])
  assert.equal(first.code, 0, first.stderr)
  assert.equal(JSON.parse(first.stdout).action, 'created')
  const second = await cli(['pipelines', 'apply', '-f', spec, '--json', ...url])
  assert.equal(JSON.parse(second.stdout).action, 'unchanged')
  assert.equal((await server.call('GET', '/api/pipelines')).body.pipelines.length, 1)
  // another spec changes it in place; one that would lose the windows needs --reset
  writeFileSync(spec, JSON.stringify({ ...SPEC, sink_topic: 'elsewhere' }))
  const changed = await cli(['pipelines', 'apply', '-f', spec, ...url])
  assert.equal(changed.code, 0, changed.stderr)
  assert.match(changed.stdout, /pages \(.+\): updated \(sink_topic; version 2\)/)
  const resized = {
    ...SPEC,
    sink_topic: 'elsewhere',
    transformation: { aggregate: { ...SPEC.transformation.aggregate, window_seconds: 60 } },
  }
  writeFileSync(spec, JSON.stringify(resized))
  const refused = await cli(['pipelines', 'apply', '-f', spec, ...url])
  assert.equal(refused.code, 1)
  assert.match(
    refused.stderr,
    /409 conflict: .*window changes from tumbling 3600 s to tumbling 60 s.*"reset": true/,
  )
  const reset = await cli(['pipelines', 'apply', '-f', spec, '--reset', '--json', ...url])
  assert.equal(reset.code, 0, reset.stderr)
  assert.equal(JSON.parse(reset.stdout).pipeline.version, 3)
  const versions = await cli(['pipelines', 'versions', 'pages', '--json', ...url])
  assert.deepEqual(
    JSON.parse(versions.stdout).map((v: { version: number; reset: boolean }) => [v.version, v.reset]),
    [
      [1, false],
      [2, false],
      [3, true],
    ],
  )

  const events = ['/a', '/a', '/b'].map((page) => ({ event_type: 'click', source: 'web', data: { page } }))
  await server.call('POST', '/api/events/ingest', { events })
  await eventually(async () =>
    (await server.call('GET', `/api/pipelines/${JSON.parse(first.stdout).pipeline.id}`)).body.stats
      .events_in === 3
      ? true
      : undefined,
  )
  const listed = await cli(['pipelines', 'list', ...url])
  assert.match(listed.stdout, /^ID +NAME +STATUS +SOURCE_TOPIC +IN +RESULTS +LAG\n/)
  assert.match(listed.stdout, /pages +running +clicks +3/)
  const windows = await cli(['windows', 'pages', '--json', '--key', 'data.page=/a', ...url])
  assert.deepEqual(
    JSON.parse(windows.stdout).map((w: { key: unknown; results: unknown }) => [w.key, w.results]),
    [[{ 'data.page': '/a' }, { count: 2 }]],
  )
  const replayed = await cli(['pipelines', 'replay', 'pages', '--from', 'earliest', ...url])
  assert.equal(replayed.code, 0, replayed.stderr)
  assert.match(replayed.stdout, /pages: replaying from earliest, every window \(offsets 0 → 3\)/)
  const stopped = await cli(['pipelines', 'stop', 'pages', '--json', ...url])
  assert.equal(JSON.parse(stopped.stdout).status, 'stopped')

  // usage: 2; a refused request: 1, with the API's reason; nothing listening: 1, saying so
  assert.equal((await cli(['frobnicate', ...url])).code, 2)
  assert.equal((await cli(['pipelines', 'list', '--bogus', ...url])).code, 2)
  assert.equal((await cli(['windows', 'nope', ...url])).code, 2)
  writeFileSync(
    spec,
    JSON.stringify({
      name: 'bad',
      source_topic: 't',
      transformation: { aggregate: { window_seconds: -1, function: 'count' } },
    }),
  )
  const invalid = await cli(['pipelines', 'apply', '-f', spec, ...url])
  assert.equal(invalid.code, 1)
  assert.match(invalid.stderr, /400 validation_error: .*window_seconds must be > 0/)
  const closed = await freePort()
  const away = await cli(['pipelines', 'list', '--url', `http://127.0.0.1:${closed}`])
  assert.equal(away.code, 1)
  assert.match(away.stderr, new RegExp(`nothing answers at http://127\\.0\\.0\\.1:${closed}`))
  assert.equal(
    (await cli(['--version'])).stdout.trim(),
    JSON.parse((await import('node:fs')).readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
      .version,
  )
})

test('cli: keys from --api-key or DATAPULSE_API_KEY; a missing one is a clear 401', async (t) => {
  const admin = configuredAdmin()
  const server = await startServer(t, { env: admin.env })
  const refused = await cli(['pipelines', 'list', '--url', server.url])
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /401 unauthorized: .*--api-key or DATAPULSE_API_KEY/)
  assert.equal((await cli(['pipelines', 'list', '--url', server.url, '--api-key', admin.key])).code, 0)
  assert.equal(
    (await cli(['pipelines', 'list'], { DATAPULSE_URL: server.url, DATAPULSE_API_KEY: admin.key })).code,
    0,
  )
})

test('cli: ingest streams a 1M-line NDJSON file with progress; tail follows the windows', async (t) => {
  const server = await startServer(t)
  const dir = tempDir(t)
  const file = join(dir, 'events.ndjson')
  const out = createWriteStream(file)
  const lines = 1_000_000
  for (let i = 0; i < lines; i += 10_000) {
    let chunk = ''
    for (let j = i; j < i + 10_000; j++)
      chunk += `{"event_type":"click","source":"web","timestamp":"2026-11-26T10:00:00Z","data":{"page":"/p${j % 4}","n":${j}}}\n`
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()))
  }
  await new Promise<void>((r) => out.end(() => r()))
  const url = ['--url', server.url]
  const p = await server.call('POST', '/api/pipelines', { ...SPEC, source_topic: 'bulk' })
  assert.equal(p.status, 201)

  // tail first: it prints each window as it changes
  const tail = spawn(process.execPath, [BIN, 'tail', 'pages', '--json', ...url], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.after(() => tail.kill())
  const tailed: Array<{ key: { 'data.page': string }; results: { count: number } }> = []
  let partial = ''
  tail.stdout.on('data', (d) => {
    partial += d
    const done = partial.split('\n')
    partial = done.pop() ?? ''
    for (const l of done) if (l) tailed.push(JSON.parse(l))
  })

  const run = await cli(['ingest', file, '--topic', 'bulk', ...url])
  assert.equal(run.code, 0, run.stderr)
  const summary = /ingested (\d+) events \(([\d.]+) MB\) in ([\d.]+) s: (\d+) events\/s/.exec(run.stdout)
  assert.ok(summary, run.stdout)
  assert.equal(Number(summary[1]), lines)
  assert.match(
    run.stderr,
    /^ingested \d+ events \(\d+ events\/s, [\d.]+ MB\)$/m,
    'progress lines off a terminal',
  )
  t.diagnostic(`cli ingest: ${summary[4]} events/s (${summary[3]} s for 1M events)`)
  assert.equal((await server.call('GET', '/api/stats')).body.events.ingested_total, lines)

  // the tail reaches the final counts: 250,000 per page
  await eventually(
    async () => {
      const last = new Map(tailed.map((w) => [w.key['data.page'], w.results.count]))
      return [0, 1, 2, 3].every((i) => last.get(`/p${i}`) === lines / 4) ? true : undefined
    },
    60_000,
    () => `tail to show 250000 per page: ${JSON.stringify(tailed.slice(-4))}`,
  )

  // a refused batch stops the run and says where to resume
  writeFileSync(file, `${'{"event_type":"a","source":"s"}\n'.repeat(3)}{"source":"no type"}\n`)
  const stopped = await cli(['ingest', file, '--topic', 'bulk', '--batch', '2', ...url])
  assert.equal(stopped.code, 1)
  assert.match(stopped.stdout, /stopped at line 3: .*event_type/)
  assert.match(stopped.stdout, /--skip 2/)
})

test('cli test: a fixture passes, a wrong one fails with a readable diff, a broken one names the field', async (t) => {
  const dir = tempDir(t)
  const spec = new URL('../../examples/testing/clicks.spec.json', import.meta.url).pathname
  const fixturePath = new URL('../../examples/testing/clicks.fixture.json', import.meta.url).pathname
  const passed = await cli(['test', spec, fixturePath])
  assert.equal(passed.code, 0, passed.stderr)
  assert.match(
    passed.stdout,
    /^ok: .*6 events, 3 closed and 0 open windows, 1 dead letters.*all as expected/m,
  )

  const fixture = JSON.parse(readFileSync(fixturePath, 'utf8'))
  fixture.expect.windows[0].results.count = 3
  fixture.expect.windows.pop()
  fixture.expect.dead_letters = [{ reason: 'late', event_id: 'c4' }]
  const wrong = join(dir, 'wrong.json')
  writeFileSync(wrong, JSON.stringify(fixture))
  const failed = await cli(['test', spec, wrong])
  assert.equal(failed.code, 1)
  const lines = failed.stdout.trim().split('\n')
  assert.deepEqual(lines.slice(0, 4).sort(), [
    '+ dead letter {"reason":"late","event_id":"c5"}',
    '+ window 2026-12-01T10:01:00.000Z – 2026-12-01T10:02:00.000Z {"data.user":"ann"} {"count":1,"amount":7}',
    '- dead letter {"reason":"late","event_id":"c4"}',
    '~ window 2026-12-01T10:00:00.000Z – 2026-12-01T10:01:00.000Z {"data.user":"ann"}: count got 2, want 3',
  ])
  assert.match(lines[4], /^FAILED: .*4 differences/)
  const asJson = JSON.parse((await cli(['test', spec, wrong, '--json'])).stdout)
  assert.equal(asJson.ok, false)
  assert.equal(asJson.diff.length, 4)

  // processing time as a step: idle time closes a window; what is still open can be expected too
  const idle = join(dir, 'idle.json')
  const idleSpec = join(dir, 'idle-spec.json')
  writeFileSync(
    idleSpec,
    JSON.stringify({
      name: 'idle',
      source_topic: 't',
      transformations: [
        { enrich: { table: 'users', key_field: 'data.user', target_field: 'data.profile' } },
        {
          aggregate: {
            window_seconds: 10,
            function: 'count',
            group_by: 'data.profile.team',
            idle_timeout_seconds: 5,
          },
        },
      ],
    }),
  )
  const ev = (id: string, s: number, user: string) => ({
    id,
    event_type: 'e',
    source: 's',
    timestamp: new Date(Date.parse('2026-12-01T10:00:00Z') + s * 1000).toISOString(),
    data: { user },
  })
  writeFileSync(
    idle,
    JSON.stringify({
      lookups: {
        users: {
          key: 'id',
          rows: [
            { id: 'ann', team: 'red' },
            { id: 'bob', team: 'blue' },
          ],
        },
      },
      steps: [
        { events: [ev('a', 1, 'ann'), ev('b', 2, 'bob'), ev('c', 3, 'ann')] },
        { advance_to: '2026-12-01T10:00:20Z' },
        { events: [ev('d', 21, 'bob')] },
      ],
      expect: {
        windows: [
          {
            window_start: '2026-12-01T10:00:00Z',
            window_end: '2026-12-01T10:00:10Z',
            key: { 'data.profile.team': 'red' },
            results: { count: 2 },
          },
          {
            window_start: '2026-12-01T10:00:00Z',
            window_end: '2026-12-01T10:00:10Z',
            key: { 'data.profile.team': 'blue' },
            results: { count: 1 },
          },
        ],
        open_windows: [
          {
            window_start: '2026-12-01T10:00:20Z',
            window_end: '2026-12-01T10:00:30Z',
            key: { 'data.profile.team': 'blue' },
            results: { count: 1 },
          },
        ],
      },
    }),
  )
  const idleRun = await cli(['test', idleSpec, idle])
  assert.equal(idleRun.code, 0, idleRun.stdout + idleRun.stderr)

  const broken = join(dir, 'broken.json')
  writeFileSync(
    broken,
    JSON.stringify({
      steps: [{ events: [{ event_type: 'e', source: 's', timestamp: 'noon' }] }, { wait: 1 }],
      expect: { rows: [] },
    }),
  )
  const refused = await cli(['test', spec, broken])
  assert.equal(refused.code, 2)
  assert.match(refused.stderr, /\/steps\/0\/events\/0\/timestamp/)
  assert.match(refused.stderr, /\/steps\/1 is \{ "events"/)
  assert.match(refused.stderr, /\/expect\/rows is not an expectation/)
  const badSpec = await cli(['test', broken, fixturePath])
  assert.equal(badSpec.code, 2)
  assert.match(badSpec.stderr, /spec: /)
  assert.equal((await cli(['test', spec])).code, 2)
})
