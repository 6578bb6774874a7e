import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Role } from '../../src/auth/key-types.ts'
import { configuredAdmin } from '../helpers/keys.ts'
import { startServer, type TestServer } from '../helpers/server.ts'

/**
 * Who may call each route of the OpenAPI document. Written out here, not read from the routes:
 * the test checks the server against this table, and that the table covers the whole document.
 */
const ROUTE_ROLES: Record<string, Role | 'public'> = {
  'GET /': 'public',
  'GET /metrics': 'read',
  'GET /api/stats': 'read',
  'GET /api/cluster': 'read',
  'GET /api/stream': 'read',
  'POST /api/pipelines': 'admin',
  'POST /api/pipelines/preview': 'admin',
  'PUT /api/pipelines/{id}': 'admin',
  'GET /api/pipelines/{id}/versions': 'read',
  'POST /api/pipelines/{id}/replay': 'admin',
  'GET /api/pipelines': 'read',
  'GET /api/pipelines/{id}': 'read',
  'DELETE /api/pipelines/{id}': 'admin',
  'POST /api/pipelines/{id}/start': 'admin',
  'POST /api/pipelines/{id}/stop': 'admin',
  'GET /api/pipelines/{id}/window': 'read',
  'GET /api/pipelines/{id}/dead-letters': 'read',
  'POST /api/events/ingest': 'write',
  'POST /api/metrics': 'write',
  'GET /api/metrics': 'read',
  'PUT /api/lookups/{table}': 'admin',
  'GET /api/lookups/{table}': 'read',
  'DELETE /api/lookups/{table}': 'admin',
  'GET /api/lookups': 'read',
  'GET /api/lookups/{table}/{key}': 'read',
  'POST /api/keys': 'admin',
  'GET /api/keys': 'admin',
  'DELETE /api/keys/{id}': 'admin',
}

async function callRoute(server: TestServer, method: string, path: string, key: string | undefined) {
  const url = server.url + path.replace('{id}', 'no-such').replace('{table}', 'none').replace('{key}', 'k')
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (key) headers.authorization = `Bearer ${key}`
  const abort = new AbortController()
  const res = await fetch(url, {
    method,
    headers,
    body: method === 'GET' || method === 'DELETE' ? undefined : '{}',
    signal: abort.signal,
  })
  // the stream never ends: its status and headers are the answer
  const body: { error?: { code: string } } | null = res.headers
    .get('content-type')
    ?.startsWith('text/event-stream')
    ? null
    : ((await res.json().catch(() => null)) as { error?: { code: string } } | null)
  abort.abort()
  return { status: res.status, auth: res.headers.get('www-authenticate'), body }
}

test('every route in the OpenAPI document needs the role the table gives it, and no other', async (t) => {
  const admin = configuredAdmin()
  const server = await startServer(t, { env: admin.env })
  const keys: Record<Role, string> = { admin: admin.key, read: '', write: '' }
  for (const role of ['read', 'write'] as const) {
    const made = await server.call(
      'POST',
      '/api/keys',
      { name: role, role },
      { authorization: `Bearer ${admin.key}` },
    )
    assert.equal(made.status, 201, JSON.stringify(made.body))
    keys[role] = made.body.key
  }
  const doc = await server.call('GET', '/docs/json', undefined, { authorization: `Bearer ${keys.read}` })
  assert.equal(doc.status, 200)
  const documented = Object.entries(doc.body.paths as Record<string, object>).flatMap(([path, ops]) =>
    Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
  )
  assert.deepEqual(
    documented.toSorted(),
    Object.keys(ROUTE_ROLES).toSorted(),
    'the table covers the document',
  )

  for (const [route, needed] of Object.entries(ROUTE_ROLES)) {
    const [method, path] = route.split(' ')
    const anonymous = await callRoute(server, method, path, undefined)
    if (needed === 'public') assert.equal(anonymous.status, 200, route)
    else {
      assert.equal(anonymous.status, 401, `${route} without a key`)
      assert.equal(anonymous.body?.error?.code, 'unauthorized', route)
      assert.equal(anonymous.auth, 'Bearer realm="datapulse"', route)
    }
    const forged = await callRoute(server, method, path, `${keys.admin.slice(0, -2)}xx`)
    if (needed !== 'public') {
      assert.equal(forged.status, 401, `${route} with a forged key`)
      assert.match(forged.auth ?? '', /error="invalid_token"/)
    }
    for (const role of ['read', 'write', 'admin'] as const) {
      const r = await callRoute(server, method, path, keys[role])
      const allowed = needed === 'public' || role === 'admin' || role === needed
      if (allowed)
        assert.ok(
          r.status !== 401 && r.status !== 403,
          `${route} with ${role}: ${r.status} ${JSON.stringify(r.body)}`,
        )
      else {
        assert.equal(r.status, 403, `${route} with ${role}`)
        assert.equal(r.body?.error?.code, 'forbidden')
        assert.equal(r.auth, `Bearer realm="datapulse", error="insufficient_scope", scope="${needed}"`)
      }
    }
  }
  // the dashboard's files are public (the page asks for a key); the API document is not
  assert.equal((await fetch(`${server.url}/ui`)).status, 200)
  assert.equal((await fetch(`${server.url}/docs/json`)).status, 401)
})
