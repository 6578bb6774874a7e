import assert from 'node:assert/strict'
import { test } from 'node:test'
import { eventually, startServer } from '../helpers/server.ts'

test('a group-key filter gives the same windows while they are open and once they are closed', async (t) => {
  const server = await startServer(t)
  const created = await server.call('POST', '/api/pipelines', {
    name: 'typed',
    source_topic: 'typed',
    start: true,
    transformation: { aggregate: { window_seconds: 60, group_by: ['data.v'], function: { count: null } } },
  })
  assert.equal(created.status, 201)
  const id = created.body.id
  const values = ['10', 10, 1e21, true, 'true', false, null, 'x', '1e21']
  const at = (v: unknown, ts: string) => ({ event_type: 'e', source: 's', timestamp: ts, data: { v } })
  const events = [
    ...values.map((v) => at(v, '2026-11-26T10:00:10Z')),
    { event_type: 'e', source: 's', timestamp: '2026-11-26T10:00:11Z', data: {} },
  ]
  assert.equal((await server.call('POST', '/api/events/ingest', { topic: 'typed', events })).status, 200)
  const filters = ['10', '"10"', '10.0', '1e21', '1E+21', 'true', '"true"', 'false', 'null', 'x', 'nothing']
  const keys = async (state: string, text: string) => {
    const r = await server.call(
      'GET',
      `/api/pipelines/${id}/window?state=${state}&key.data.v=${encodeURIComponent(text)}`,
    )
    assert.equal(r.status, 200)
    return r.body.windows
      .map((w: { key: Record<string, unknown> }) => JSON.stringify(w.key['data.v'] ?? null))
      .sort()
  }
  await eventually(async () => ((await keys('open', 'x')).length === 1 ? true : undefined))
  const open: Record<string, string[]> = {}
  for (const f of filters) open[f] = await keys('open', f)
  assert.deepEqual(open['10'], ['"10"', '10'])
  assert.deepEqual(open['"10"'], ['"10"'])
  assert.deepEqual(open['1e21'], ['"1e21"', '1e+21'])
  assert.deepEqual(open.true, ['"true"', 'true'])
  assert.deepEqual(open.null, ['null'], 'a null and a missing field are one key')
  assert.deepEqual(open.nothing, [])

  // an event past the window end closes it: the closed windows come from the store
  await server.call('POST', '/api/events/ingest', {
    topic: 'typed',
    events: [at('later', '2026-11-26T10:01:10Z')],
  })
  await eventually(async () => ((await keys('closed', 'x')).length === 1 ? true : undefined))
  for (const f of filters) {
    assert.deepEqual(await keys('closed', f), open[f], `closed windows for ${f}`)
    assert.deepEqual(await keys('open', f), [], `no open window for ${f}`)
  }
})
