import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildClient } from '../../scripts/build-client.ts'
import { ApiError, createClient, OPERATIONS, type PipelineSpec } from '../../src/client/client.ts'
import { eventually, startServer } from '../helpers/server.ts'

test('the client names exactly the operations of the OpenAPI document, with their methods and paths', async (t) => {
  const server = await startServer(t)
  const doc = (await server.call('GET', '/docs/json')).body as {
    paths: Record<string, Record<string, { operationId: string }>>
  }
  const documented: Record<string, [string, string]> = {}
  for (const [path, methods] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(methods))
      documented[op.operationId] = [method.toUpperCase(), path]
  assert.deepEqual(
    Object.fromEntries(Object.entries(OPERATIONS).map(([id, [m, p]]) => [id, [m, p]])),
    documented,
  )
})

test('the seed flow through the typed client, as a package user imports it (datapulse/client)', async (t) => {
  await buildClient()
  // the package's own export, as another package would import it (built JS, types from src)
  const fromPackage = (await import('datapulse/client')) as typeof import('../../src/client/client.ts')
  assert.equal(typeof fromPackage.createClient, 'function')
  const server = await startServer(t)
  const client = fromPackage.createClient({ url: server.url })
  assert.equal((await client.health()).status, 'ok')
  const spec: PipelineSpec = {
    name: 'user-analytics',
    source_topic: 'user-events',
    sink_topic: 'processed-events',
    transformation: { aggregate: { window_seconds: 60, function: { count: null } } },
  }
  const created = await client.createPipeline(spec)
  assert.equal(created.status, 'created')
  const started = await client.startPipeline(created.id)
  assert.equal(started.status, 'running')
  const accepted = await client.ingest(
    [
      {
        event_type: 'page_view',
        source: 'web',
        data: { user_id: 'u123', page: '/home' },
        timestamp: '2026-11-26T10:00:00Z',
      },
    ],
    'user-events',
  )
  assert.deepEqual(accepted, { accepted: 1, topics: ['user-events'] })
  const windows = await eventually(async () => {
    const w = await client.windows(created.id, { state: 'open' })
    return w.windows.length === 1 ? w.windows : undefined
  })
  assert.deepEqual(windows[0].results, { count: 1 })
  const stats = await client.stats()
  assert.equal(stats.events.ingested_total, 1)
  // an error answer is a typed error with the API's code and details
  await assert.rejects(
    createClient({ url: server.url }).createPipeline({ ...spec, name: 'x y' }),
    (err: unknown) => err instanceof ApiError && err.status === 400 && err.details[0].path === '/name',
  )
  await assert.rejects(
    client.getPipeline('nope'),
    (err: unknown) => err instanceof fromPackage.ApiError && err.code === 'not_found',
  )
  await client.deletePipeline(created.id)
  assert.deepEqual((await client.listPipelines()).pipelines, [])
})
