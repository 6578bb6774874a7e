import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { newKey, parseConfiguredKeys } from '../../src/auth/api-keys.ts'
import { checkExposure, loadConfig } from '../../src/config.ts'
import { createLogger } from '../../src/logger.ts'
import { bearer, configuredAdmin } from '../helpers/keys.ts'
import { eventually, manualClock, startServer } from '../helpers/server.ts'
import { tempDir } from '../helpers/tmp.ts'

const MAIN = new URL('../../src/main.ts', import.meta.url).pathname

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path) : [path]
  })
}

test('keys: made by an admin, shown once, kept as a hash, listed without it, expire, deleted', async (t) => {
  const clock = manualClock()
  const dataDir = tempDir(t)
  const server = await startServer(t, { dataDir, clock: clock.now })
  // with no key the server is open (on loopback); the first key must be an admin's
  const first = await server.call('POST', '/api/keys', { name: 'reader', role: 'read' })
  assert.equal(first.status, 409)
  assert.match(first.body.error.message, /first key must have role admin/)
  const admin = await server.call('POST', '/api/keys', { name: 'ops', role: 'admin' })
  assert.equal(admin.status, 201)
  assert.match(admin.body.key, /^dp_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/)
  // from now on every request needs a key
  assert.equal((await server.call('GET', '/api/pipelines')).status, 401)
  clock.advance(1)
  const expiring = await server.call(
    'POST',
    '/api/keys',
    { name: 'ci reader', role: 'read', expires_at: new Date(clock.now() + 60_000).toISOString() },
    bearer(admin.body.key),
  )
  assert.equal(expiring.status, 201)
  const listed = await server.call('GET', '/api/keys', undefined, bearer(admin.body.key))
  assert.deepEqual(
    listed.body.keys.map((k: Record<string, unknown>) => [k.name, k.role, k.source, k.expires_at]),
    [
      ['ops', 'admin', 'api', null],
      ['ci reader', 'read', 'api', new Date(clock.now() + 60_000).toISOString()],
    ],
  )
  assert.ok(!JSON.stringify(listed.body).includes(admin.body.key.slice(20)), 'the list never shows a key')
  assert.equal((await server.call('GET', '/api/pipelines', undefined, bearer(expiring.body.key))).status, 200)
  clock.advance(60_001)
  const expired = await server.call('GET', '/api/pipelines', undefined, bearer(expiring.body.key))
  assert.equal(expired.status, 401)
  assert.equal(expired.body.error.message, 'the API key has expired')

  // bad input changes nothing
  for (const body of [
    { name: '', role: 'read' },
    { name: 'x', role: 'root' },
    { name: 'x', role: 'read', expires_at: '2020-01-01T00:00:00Z' },
    { name: 'x', role: 'read', extra: 1 },
  ]) {
    const r = await server.call('POST', '/api/keys', body, bearer(admin.body.key))
    assert.equal(r.status, 400, JSON.stringify(body))
  }
  assert.equal((await server.call('GET', '/api/keys', undefined, bearer(admin.body.key))).body.keys.length, 2)

  // the last admin key stays while other keys depend on it
  assert.equal(
    (await server.call('DELETE', `/api/keys/${admin.body.id}`, undefined, bearer(admin.body.key))).status,
    409,
  )
  assert.equal(
    (await server.call('DELETE', `/api/keys/${expiring.body.id}`, undefined, bearer(admin.body.key))).status,
    204,
  )
  assert.equal(
    (await server.call('DELETE', `/api/keys/${expiring.body.id}`, undefined, bearer(admin.body.key))).status,
    404,
  )
  assert.equal(
    (await server.call('DELETE', '/api/keys/not-hex', undefined, bearer(admin.body.key))).status,
    400,
  )

  // on disk: the hash, never the key
  await server.close()
  for (const file of filesUnder(dataDir)) {
    const bytes = readFileSync(file)
    assert.equal(bytes.indexOf(admin.body.key.slice(3)), -1, `${file} holds a key`)
  }
  const again = await startServer(t, { dataDir, clock: clock.now })
  assert.equal((await again.call('GET', '/api/stats', undefined, bearer(admin.body.key))).status, 200)
  assert.equal((await again.call('GET', '/api/stats')).status, 401)
})

test('configured keys: from a file or the environment, as hashes only; a plain key or a bad entry stops start-up', async (t) => {
  const made = newKey()
  const entry = { id: made.id, name: 'ops', role: 'admin', sha256: made.sha256 }
  const dir = tempDir(t)
  const file = join(dir, 'keys.json')
  await import('node:fs/promises').then((fs) => fs.writeFile(file, JSON.stringify({ keys: [entry] })))
  const config = loadConfig(['--keys-file', file, '--data-dir', dir], {})
  assert.deepEqual(
    config.apiKeys.map((k) => [k.id, k.role, k.source]),
    [[made.id, 'admin', 'file']],
  )
  const refused = [
    [JSON.stringify([{ ...entry, key: made.key }]), /holds a plain key/],
    [JSON.stringify([{ ...entry, role: 'root' }]), /\/0\/role must be one of read, write, admin/],
    [JSON.stringify([{ ...entry, sha256: 'x' }]), /sha256 must be 64/],
    [JSON.stringify([entry, entry]), /appears twice/],
    ['{', /is not JSON/],
    ['{"a":1}', /must be a JSON array of keys/],
  ] as const
  for (const [value, message] of refused)
    assert.throws(() => loadConfig([], { DATAPULSE_API_KEYS: value }), message)
  assert.throws(() => loadConfig(['--keys-file', join(dir, 'missing.json')], {}), /cannot be read: ENOENT/)

  // npm run new-key: the key once on stderr, the entry (its hash) on stdout
  const script = new URL('../../scripts/new-key.ts', import.meta.url).pathname
  const run = spawnSync(process.execPath, [script, '--role', 'write', '--name', 'producer'], {
    encoding: 'utf8',
  })
  assert.equal(run.status, 0, run.stderr)
  const printed = JSON.parse(run.stdout)
  const plain = /dp_\S+/.exec(run.stderr)?.[0] ?? ''
  assert.equal(run.stdout.includes(plain.slice(3)), false, 'stdout has the hash only')
  const { KeyRing } = await import('../../src/auth/key-ring.ts')
  // a keys file of one entry per line, as `>> keys.ndjson` makes it
  const fromScript = parseConfiguredKeys(`${JSON.stringify(entry)}\n${run.stdout}\n`, 'file', 'test')
  assert.deepEqual(
    fromScript.map((k) => k.id),
    [entry.id, printed.id],
  )
  const { SqliteStore } = await import('../../src/stores/sqlite/sqlite-store.ts')
  const store = new SqliteStore(join(dir, 'ring.db'))
  t.after(() => store.close())
  const ring = await KeyRing.open(fromScript, store)
  const outcome = ring.authenticate(plain, Date.now())
  assert.equal(outcome.ok && outcome.key.role, 'write')
  assert.equal(spawnSync(process.execPath, [script, '--role', 'root'], { encoding: 'utf8' }).status, 2)

  const server = await startServer(t, { args: ['--keys-file', file] })
  assert.equal(
    (await server.call('GET', '/api/keys', undefined, bearer(made.key))).body.keys[0].source,
    'file',
  )
  const del = await server.call('DELETE', `/api/keys/${made.id}`, undefined, bearer(made.key))
  assert.equal(del.status, 409)
  assert.match(del.body.error.message, /keys file: remove it there/)
})

test('without keys only loopback: a wider --host is refused in one line unless --insecure, which warns', async (t) => {
  const open = loadConfig(['--host', '0.0.0.0'], {})
  assert.match(checkExposure(open, false).refuse ?? '', /refusing --host 0\.0\.0\.0 with no API keys/)
  assert.deepEqual(checkExposure(open, true), {})
  assert.deepEqual(checkExposure(loadConfig([], {}), false), {})
  assert.match(
    checkExposure(loadConfig(['--host', '0.0.0.0', '--insecure'], {}), false).warn ?? '',
    /INSECURE: listening on 0\.0\.0\.0 with no API keys/,
  )
  const run = spawnSync(
    process.execPath,
    [MAIN, '--host', '0.0.0.0', '--port', '0', '--data-dir', tempDir(t)],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  )
  assert.equal(run.status, 2)
  assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr)
  assert.match(run.stderr, /^datapulse: refusing --host 0\.0\.0\.0 with no API keys/)
})

test('DNS rebinding, cross-site POSTs and foreign origins are refused; CORS only for named origins', async (t) => {
  const server = await startServer(t, {
    args: ['--allowed-hosts', 'datapulse.internal', '--cors-origin', 'http://app.example'],
  })
  const port = new URL(server.url).port
  const asHost = (host: string) => server.call('GET', '/api/pipelines', undefined, { host })
  // fetch does not let a test set Host: a raw request does
  const raw = async (host: string) => {
    const { request } = await import('node:http')
    return new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/api/pipelines', headers: { host } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      req.end()
    })
  }
  void asHost
  assert.equal(await raw('attacker.example'), 403)
  assert.equal(await raw(`attacker.example:${port}`), 403)
  assert.equal(await raw(`localhost:${port}`), 200)
  assert.equal(await raw(`127.0.0.1:${port}`), 200)
  assert.equal(await raw('datapulse.internal'), 200)

  const created = await server.call('POST', '/api/pipelines', { name: 'p', source_topic: 't', start: true })
  assert.equal(created.status, 201)
  const id = created.body.id
  // what a no-cors fetch or a form on another site can send: no type, text/plain, a form
  for (const type of [
    undefined,
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
  ]) {
    const res = await fetch(`${server.url}/api/pipelines/${id}/stop`, {
      method: 'POST',
      headers: type ? { 'content-type': type } : {},
      body: type ? 'x' : undefined,
    })
    assert.equal(res.status, 415, `content type ${type}`)
  }
  const foreign = await server.call('POST', `/api/pipelines/${id}/stop`, undefined, {
    origin: 'https://attacker.example',
  })
  assert.equal(foreign.status, 403)
  assert.match(foreign.body.error.message, /add it to --cors-origin/)
  assert.equal((await server.call('GET', `/api/pipelines/${id}`)).body.status, 'running', 'nothing changed')

  // a named origin gets CORS answers and may change things
  const preflight = await fetch(`${server.url}/api/pipelines/${id}/stop`, {
    method: 'OPTIONS',
    headers: {
      origin: 'http://app.example',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type',
    },
  })
  assert.equal(preflight.headers.get('access-control-allow-origin'), 'http://app.example')
  const other = await fetch(`${server.url}/api/pipelines`, {
    headers: { origin: 'https://attacker.example' },
  })
  assert.equal(other.headers.get('access-control-allow-origin'), null)
  const stopped = await server.call('POST', `/api/pipelines/${id}/stop`, undefined, {
    origin: 'http://app.example',
  })
  assert.equal(stopped.status, 200)
  assert.equal(stopped.body.status, 'stopped')
})

test('rate limits: 429 with Retry-After per key and per address, ingest and management counted apart', async (t) => {
  const admin = configuredAdmin()
  const server = await startServer(t, {
    env: admin.env,
    args: ['--rate-limit-api', '3', '--rate-limit-ingest', '2', '--rate-limit-loopback'],
  })
  const statuses = async (n: number, go: () => Promise<{ status: number; headers: Headers }>) => {
    const out: number[] = []
    let retry: string | null = null
    for (let i = 0; i < n; i++) {
      const r = await go()
      out.push(r.status)
      if (r.status === 429) retry = r.headers.get('retry-after')
    }
    return { out, retry }
  }
  const api = await statuses(4, () => server.call('GET', '/api/pipelines', undefined, bearer(admin.key)))
  assert.deepEqual(api.out, [200, 200, 200, 429])
  assert.ok(Number(api.retry) >= 1 && Number(api.retry) <= 60, `retry-after ${api.retry}`)
  // ingest has its own budget
  const events = { topic: 't', events: [{ event_type: 'x', source: 's', data: {} }] }
  const ingest = await statuses(3, () => server.call('POST', '/api/events/ingest', events, bearer(admin.key)))
  assert.deepEqual(ingest.out, [200, 200, 429])
  const limited = await server.call('GET', '/api/pipelines', undefined, bearer(admin.key))
  assert.equal(limited.body.error.code, 'overloaded')
  // health and the dashboard are never limited
  assert.equal((await server.call('GET', '/')).status, 200)

  // without keys, each address has its own count
  const open = await startServer(t, { args: ['--rate-limit-api', '2', '--rate-limit-loopback'] })
  assert.deepEqual((await statuses(3, () => open.call('GET', '/api/pipelines'))).out, [200, 200, 429])

  // loopback callers are not limited unless asked
  const local = await startServer(t, { args: ['--rate-limit-api', '1'] })
  const free = await statuses(5, () => local.call('GET', '/api/pipelines'))
  assert.deepEqual(free.out, [200, 200, 200, 200, 200])
})

test('the dashboard and the API send a strict CSP, no framing and nosniff; /metrics for read keys or loopback by a flag', async (t) => {
  const admin = configuredAdmin()
  const server = await startServer(t, { env: admin.env })
  for (const path of ['/ui', '/ui/assets/app.js', '/api/pipelines', '/']) {
    const res = await fetch(server.url + path, { headers: bearer(admin.key) })
    const csp = res.headers.get('content-security-policy') ?? ''
    assert.match(csp, /default-src 'self'/, path)
    assert.match(csp, /script-src 'self'(;|$)/, path)
    assert.match(csp, /style-src 'self'(;|$)/, path)
    assert.match(csp, /frame-ancestors 'none'/, path)
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path)
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path)
    assert.equal(res.headers.get('x-frame-options'), 'DENY', path)
  }
  assert.equal((await fetch(`${server.url}/metrics`)).status, 401)
  const made = await server.call('POST', '/api/keys', { name: 'prom', role: 'read' }, bearer(admin.key))
  const scraped = await fetch(`${server.url}/metrics`, { headers: bearer(made.body.key) })
  assert.equal(scraped.status, 200)
  assert.match(await scraped.text(), /datapulse_/)
  const open = await startServer(t, { env: admin.env, args: ['--metrics-open-on-loopback'] })
  assert.equal((await fetch(`${open.url}/metrics`)).status, 200)
  assert.equal((await fetch(`${open.url}/api/stats`)).status, 401)
})

test('an open stream ends when its key is deleted', async (t) => {
  const admin = configuredAdmin()
  const server = await startServer(t, { env: admin.env })
  const made = await server.call('POST', '/api/keys', { name: 'viewer', role: 'read' }, bearer(admin.key))
  const res = await fetch(`${server.url}/api/stream`, { headers: bearer(made.body.key) })
  assert.equal(res.status, 200)
  const reader = res.body?.getReader()
  assert.ok(reader)
  assert.equal((await reader.read()).done, false)
  await server.call('DELETE', `/api/keys/${made.body.id}`, undefined, bearer(admin.key))
  await eventually(async () => ((await reader.read()).done ? true : undefined), 10_000, 'the stream to end')
})

test('logs never hold a key or the Authorization header, at any level', async (t) => {
  let logged = ''
  const sink = new Writable({
    write(chunk, _enc, done) {
      logged += chunk.toString()
      done()
    },
  })
  const admin = configuredAdmin()
  const server = await startServer(t, { env: admin.env, logger: createLogger('trace', sink) })
  const made = await server.call('POST', '/api/keys', { name: 'w', role: 'write' }, bearer(admin.key))
  await server.call('GET', '/api/pipelines', undefined, bearer(made.body.key))
  await server.call('GET', '/api/pipelines', undefined, bearer(`${made.body.key}x`))
  await server.call('GET', '/api/pipelines', undefined, { authorization: 'Basic c2VjcmV0OnNlY3JldA==' })
  await server.call('POST', '/api/events/ingest', '{bad json', {
    ...bearer(made.body.key),
    'content-type': 'application/json',
  })
  server.runtime.logger.info({ req: { headers: { authorization: `Bearer ${made.body.key}` } } }, 'a request')
  await server.close()
  assert.ok(logged.length > 0, 'something was logged')
  assert.match(logged, /\[redacted\]/)
  for (const secret of [admin.key, made.body.key, 'c2VjcmV0OnNlY3JldA=='])
    assert.equal(logged.indexOf(secret.slice(3)), -1, 'a key is in the log')
})

test('TLS: --tls-cert and --tls-key serve HTTPS', async (t) => {
  const dir = tempDir(t)
  const made = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { encoding: 'utf8' },
  )
  if (made.error || made.status !== 0) {
    if (process.env.CI === 'true') throw new Error(`openssl failed: ${made.error ?? made.stderr}`)
    t.skip(`TLS test skipped: openssl is not available (${made.error?.message ?? made.stderr})`)
    return
  }
  assert.throws(() => loadConfig(['--tls-cert', join(dir, 'cert.pem')], {}), /go together/)
  const server = await startServer(t, {
    args: ['--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')],
  })
  const port = new URL(server.url).port
  const ca = readFileSync(join(dir, 'cert.pem'))
  const answer = await new Promise<{ status: number; body: string; hsts: string | undefined }>(
    (resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/', ca, servername: 'localhost' }, (res) => {
        let body = ''
        res.on('data', (d) => (body += d))
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body,
            hsts: res.headers['strict-transport-security'] as string | undefined,
          }),
        )
      })
      req.on('error', reject)
      req.end()
    },
  )
  assert.equal(answer.status, 200)
  assert.equal(JSON.parse(answer.body).status, 'ok')
  assert.match(answer.hsts ?? '', /max-age=/)
  // plain HTTP on the TLS port gets no answer
  await assert.rejects(fetch(`http://127.0.0.1:${port}/`))
})
