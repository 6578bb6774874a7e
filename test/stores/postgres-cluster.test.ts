import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PostgresStore } from '../../src/stores/postgres/postgres-store.ts'
import { type ClusterChange, FencedError, type PipelineRecord } from '../../src/stores/store.ts'
import { freshDatabase } from '../helpers/postgres.ts'

const record: PipelineRecord = {
  id: 'p1',
  name: 'one',
  spec: { name: 'one', source_topic: 't' },
  status: 'running',
  createdAt: 1,
  updatedAt: 1,
  version: 1,
}

const result = (count: number) => ({
  windowStart: 0,
  windowEnd: 60_000,
  key: null,
  keyId: '[]',
  results: { count },
  closed: true,
})

async function open(t: import('node:test').TestContext): Promise<PostgresStore[] | undefined> {
  const url = await freshDatabase(t)
  if (url === undefined) return undefined
  // two instances: two stores on one database
  const stores = [await PostgresStore.open(url), await PostgresStore.open(url)]
  t.after(async () => {
    for (const s of stores) await s.close()
  })
  return stores
}

test('postgres cluster: a lease is taken once, expires, moves on with a new epoch; a commit under the old epoch writes nothing', async (t) => {
  const stores = await open(t)
  if (!stores) return
  const [a, b] = stores
  await a.insertPipeline(record)
  assert.equal(
    await a.cluster.acquire('missing', 'node-a', 60_000),
    undefined,
    'no lease for a pipeline that does not exist',
  )
  const first = await a.cluster.acquire('p1', 'node-a', 400)
  assert.ok(first)
  assert.equal(first.lease.epoch, 1)
  assert.equal(first.previous, undefined)
  assert.equal(
    await b.cluster.acquire('p1', 'node-b', 60_000),
    undefined,
    'held: another instance gets nothing',
  )
  const fenceA = { instanceId: 'node-a', epoch: 1 }
  await a.commit('p1', { results: [result(1)], deadLetters: [], fence: fenceA })
  assert.deepEqual(
    (await b.queryResults('p1', { limit: 10 })).map((r) => r.results),
    [{ count: 1 }],
  )

  // node-a stops renewing: once the lease has run out node-b takes it, epoch 2
  await new Promise((r) => setTimeout(r, 500))
  const second = await b.cluster.acquire('p1', 'node-b', 60_000)
  assert.ok(second)
  assert.equal(second.lease.epoch, 2)
  assert.equal(second.previous?.instanceId, 'node-a')
  assert.equal(second.previous?.released, false, 'it ran out: node-a did not let go')
  // the old owner's commit fails whole: neither its result nor its checkpoint lands
  await assert.rejects(
    a.commit('p1', {
      results: [result(99)],
      deadLetters: [],
      checkpoint: {
        state: null,
        stats: { events_in: 99, events_out: 0, filtered: 0, late: 0, errors: 0, results: 0 },
        partitions: [],
      },
      fence: fenceA,
    }),
    FencedError,
  )
  assert.deepEqual(
    (await b.queryResults('p1', { limit: 10 })).map((r) => r.results),
    [{ count: 1 }],
  )
  assert.equal(await b.loadCheckpoint('p1'), undefined)
  // node-a's heartbeat no longer renews it; node-b's does
  assert.deepEqual(await a.cluster.heartbeat({ id: 'node-a', url: 'http://a', startedAt: 1 }, 60_000), [])
  const renewed = await b.cluster.heartbeat({ id: 'node-b', url: 'http://b', startedAt: 2 }, 60_000)
  assert.deepEqual(
    renewed.map((l) => [l.pipelineId, l.instanceId, l.epoch]),
    [['p1', 'node-b', 2]],
  )
  assert.deepEqual(
    (await a.cluster.instances(60_000)).map((i) => [i.id, i.url]),
    [
      ['node-a', 'http://a'],
      ['node-b', 'http://b'],
    ],
  )
  // an instance that leaves is not alive any more; its next heartbeat makes it alive again
  await a.cluster.leave('node-a')
  assert.deepEqual(
    (await b.cluster.instances(60_000)).map((i) => i.id),
    ['node-b'],
  )
  await a.cluster.heartbeat({ id: 'node-a', url: 'http://a', startedAt: 1 }, 60_000)
  assert.equal((await b.cluster.instances(60_000)).length, 2)
  await b.commit('p1', { results: [result(2)], deadLetters: [], fence: { instanceId: 'node-b', epoch: 2 } })

  // a clean release: expired at once, still naming its last owner; a restarted owner takes its own back at once
  await b.cluster.release('p1', { instanceId: 'node-b', epoch: 2 })
  assert.deepEqual(await b.cluster.heartbeat({ id: 'node-b', url: 'http://b', startedAt: 2 }, 60_000), [])
  const third = await a.cluster.acquire('p1', 'node-a', 60_000)
  assert.equal(third?.lease.epoch, 3)
  assert.equal(third?.previous?.instanceId, 'node-b')
  assert.equal(third?.previous?.released, true)
  const again = await a.cluster.acquire('p1', 'node-a', 60_000)
  assert.equal(again?.lease.epoch, 4, 'its own lease: taken again at once, a new epoch')
  await a.cluster.recordHandover(
    'p1',
    { instanceId: 'node-a', epoch: 4 },
    { from: 'node-b', to: 'node-a', at: 5, pausedMs: 12 },
  )
  assert.deepEqual(
    (await b.cluster.leases()).map((l) => l.handover),
    [{ from: 'node-b', to: 'node-a', at: 5, pausedMs: 12 }],
  )
  // deleting the pipeline takes its lease too: a commit for it is fenced
  await b.deletePipeline('p1')
  assert.deepEqual(await a.cluster.leases(), [])
  await assert.rejects(
    a.commit('p1', { results: [], deadLetters: [], fence: { instanceId: 'node-a', epoch: 4 } }),
    FencedError,
  )
})

test('postgres cluster: an announcement reaches every listening instance', async (t) => {
  const stores = await open(t)
  if (!stores) return
  const [a, b] = stores
  const heard: ClusterChange[][] = [[], []]
  const stops = await Promise.all(stores.map((s, i) => s.cluster.listen((c) => heard[i].push(c))))
  t.after(async () => {
    for (const stop of stops) await stop()
  })
  await a.cluster.announce({ kind: 'pipeline', id: 'p1', from: 'node-a' })
  await b.cluster.announce({ kind: 'keys', id: '', from: 'node-b' })
  for (let i = 0; i < 100 && heard.some((h) => h.length < 2); i++) await new Promise((r) => setTimeout(r, 20))
  for (const h of heard)
    assert.deepEqual(h, [
      { kind: 'pipeline', id: 'p1', from: 'node-a' },
      { kind: 'keys', id: '', from: 'node-b' },
    ])
})
