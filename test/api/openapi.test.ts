import assert from 'node:assert/strict'
import { test } from 'node:test'
import SwaggerParser from '@apidevtools/swagger-parser'
import { createConfig, lintFromString } from '@redocly/openapi-core'
import { startServer } from '../helpers/server.ts'

test('/docs/json is a valid OpenAPI 3.1 document: swagger-parser and redocly (recommended) find nothing', async (t) => {
  const server = await startServer(t)
  const res = await server.call('GET', '/docs/json')
  assert.equal(res.status, 200)
  const doc = res.body
  assert.equal(doc.openapi, '3.1.0')
  await SwaggerParser.validate(structuredClone(doc))
  const problems = await lintFromString({
    source: JSON.stringify(doc),
    absoluteRef: '/openapi.json',
    config: await createConfig({ extends: ['recommended'] }),
  })
  assert.deepEqual(
    problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location?.[0]?.pointer}`),
    [],
  )
  const ids = new Set<string>()
  for (const [path, methods] of Object.entries(
    doc.paths as Record<string, Record<string, Record<string, unknown>>>,
  ))
    for (const [method, op] of Object.entries(methods)) {
      assert.equal(typeof op.operationId, 'string', `${method} ${path}: operationId`)
      assert.ok(!ids.has(op.operationId as string), `${op.operationId} is unique`)
      ids.add(op.operationId as string)
      const ok =
        (op.responses as Record<string, { content?: Record<string, { schema?: unknown }> }>)['200'] ??
        (op.responses as Record<string, unknown>)['201'] ??
        (op.responses as Record<string, unknown>)['204']
      assert.ok(ok, `${method} ${path}: a success response`)
    }
  assert.ok(doc.components.schemas.Error, 'the error shape is a named schema')
  const windowParams = doc.paths['/api/pipelines/{id}/window'].get.parameters.map(
    (p: { name: string }) => p.name,
  )
  assert.ok(windowParams.includes('key'), 'key.<path> filters are declared')
  assert.ok(doc.paths['/api/metrics'].get.parameters.some((p: { name: string }) => p.name === 'tag'))
})
