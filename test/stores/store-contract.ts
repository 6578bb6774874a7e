import assert from 'node:assert/strict'
import { test } from 'node:test'
import { keyValueMatches, parseKeyValue } from '../../src/engine/key-filter.ts'
import type { WindowResult } from '../../src/engine/types.ts'
import {
  checkpointPositions,
  emptyStats,
  type MetricPoint,
  type PartitionCheckpoint,
  type PipelineRecord,
  partitionStates,
  type Store,
} from '../../src/stores/store.ts'

/** Message `n` of the outbox of a row per message (v7) both stores' upgrade tests start from. */
export function v7OutboxRow(n: number): {
  topic: string
  key: string | null
  value: string
  headers: string
} {
  return {
    topic: n % 2 ? 'sink' : 'sink.dlq',
    key: n % 3 ? `k${n}` : null,
    value: `{"n":${n},"t":"ä \u{1f600}"}`,
    headers: `{"n":"${n}"}`,
  }
}

/**
 * A store upgraded from a v7 outbox of messages 1-8 for pipeline `p` (1-4 relayed and trimmed,
 * 8 dropped at a restart, 7 covered): 5-7 are batches of one under their seqs, and the next
 * seq is 9 all the same (a relay's position in Kafka is a seq).
 */
export async function assertOutboxMoved(store: Store): Promise<void> {
  assert.deepEqual(
    await store.readOutbox('p', 6, 100),
    [6, 7].map((n) => {
      const { headers, ...m } = v7OutboxRow(n)
      return { seq: n, messages: [{ ...m, headers: JSON.parse(headers) }] }
    }),
  )
  await store.commit('p', {
    results: [],
    deadLetters: [],
    outbox: [{ topic: 'sink', key: null, value: '{}', headers: {} }],
    checkpoint: { state: null, stats: emptyStats(), partitions: [] },
  })
  assert.deepEqual(
    (await store.readOutbox('p', 0, 100)).map((b) => b.seq),
    [5, 6, 7, 9],
  )
}

/** The contract every store passes: SQLite and PostgreSQL. */
/** a partition's counters, told apart by `n` */
const part = (n: number) => ({ events_in: n, filtered: n % 2, late: n % 3, errors: 0 })

export function storeContract(
  name: string,
  /** undefined: the store's service is not here (the test has been skipped with the reason) */
  newStore: (t: import('node:test').TestContext) => Promise<Store | undefined>,
): void {
  const record = (id: string, name: string): PipelineRecord => ({
    id,
    name,
    spec: { name, source_topic: 't' },
    status: 'created',
    createdAt: 1,
    updatedAt: 1,
    version: 1,
  })
  const result = (start: number, user: string, count: number): WindowResult => ({
    windowStart: start,
    windowEnd: start + 60_000,
    key: { 'data.user': user },
    keyId: `s${user}`,
    results: { count },
    closed: true,
  })

  test(`${name}: a pipeline's versions: one at insert, one per update, a taken name refused, results say theirs`, async (t) => {
    const store = await newStore(t)
    if (!store) return
    await store.insertPipeline({ ...record('a', 'one'), createdAt: 10 })
    await store.insertPipeline(record('b', 'two'))
    const changed = {
      ...record('a', 'uno'),
      spec: { name: 'uno', source_topic: 'u' },
      version: 2,
      updatedAt: 20,
    }
    assert.deepEqual(await store.updatePipeline(changed, true), { ok: true })
    assert.deepEqual(await store.updatePipeline({ ...changed, name: 'two', version: 3 }, false), {
      ok: false,
      conflict: 'name',
    })
    const got = await store.getPipeline('a')
    assert.deepEqual([got?.name, got?.version, got?.spec, got?.updatedAt], ['uno', 2, changed.spec, 20])
    assert.deepEqual(await store.listVersions('a'), [
      { version: 1, spec: { name: 'one', source_topic: 't' }, createdAt: 10, reset: false },
      { version: 2, spec: changed.spec, createdAt: 20, reset: true },
    ])
    await store.commit('a', {
      results: [{ ...result(0, 'u1', 3), version: 2 }, result(0, 'u2', 1)],
      deadLetters: [],
    })
    const rows = await store.queryResults('a', { limit: 10 })
    assert.deepEqual(rows.map((r) => [r.keyId, r.version]).sort(), [
      ['su1', 2],
      ['su2', undefined],
    ])
    await store.deletePipeline('a')
    assert.deepEqual(await store.listVersions('a'), [])
  })

  test(`${name}: pipelines insert, conflict on name, status, delete with their state`, async (t) => {
    const store = await newStore(t)
    if (!store) return
    assert.deepEqual(await store.insertPipeline(record('a', 'one')), { ok: true })
    assert.deepEqual(await store.insertPipeline(record('b', 'one')), { ok: false, conflict: 'name' })
    await store.setPipelineStatus('a', 'running', 5)
    const got = await store.getPipeline('a')
    assert.equal(got?.status, 'running')
    assert.equal(got?.updatedAt, 5)
    assert.deepEqual(got?.spec, { name: 'one', source_topic: 't' })
    await store.commit('a', {
      results: [result(0, 'u1', 3)],
      deadLetters: [
        {
          id: '0:0',
          reason: 'late',
          detail: 'x',
          event: { id: 'e', event_type: 't', source: 's', timestamp: 1, data: {} },
          at: 1,
        },
      ],
      checkpoint: {
        state: { v: 1 },
        partitions: [{ partition: 0, position: 10, state: null, stats: part(1) }],
        stats: { events_in: 1, events_out: 1, filtered: 0, late: 1, errors: 0, results: 1 },
      },
    })
    await store.deletePipeline('a')
    assert.equal(await store.getPipeline('a'), undefined)
    assert.equal(await store.loadCheckpoint('a'), undefined)
    assert.deepEqual(await store.queryResults('a', { limit: 10 }), [])
    assert.deepEqual(await store.listDeadLetters('a', 10), [])
  })

  test(`${name}: results upsert by window and key (replays do not duplicate), filter and order`, async (t) => {
    const store = await newStore(t)
    if (!store) return
    await store.commit('p', {
      results: [result(0, 'u1', 1), result(60_000, 'u1', 2), result(60_000, 'u2', 5)],
      deadLetters: [],
    })
    await store.commit('p', { results: [result(60_000, 'u1', 2)], deadLetters: [] })
    const all = await store.queryResults('p', { limit: 10 })
    assert.deepEqual(
      all.map((r) => [r.windowStart, r.key?.['data.user'], r.results.count]),
      [
        [60_000, 'u1', 2],
        [60_000, 'u2', 5],
        [0, 'u1', 1],
      ],
    )
    assert.equal((await store.queryResults('p', { limit: 10, key: { 'data.user': 'u2' } })).length, 1)
    assert.equal((await store.queryResults('p', { limit: 10, from: 60_000 })).length, 2)
    assert.equal((await store.queryResults('p', { limit: 10, to: 60_000 })).length, 1)
    assert.equal((await store.queryResults('p', { limit: 1 })).length, 1)
  })

  test(`${name}: checkpoints and dead letters (idempotent ids, newest first, trimmed)`, async (t) => {
    const store = await newStore(t)
    if (!store) return
    const ev = (i: number) => ({ id: `e${i}`, event_type: 't', source: 's', timestamp: i, data: {} })
    for (let i = 0; i < 5; i++)
      await store.commit('p', {
        results: [],
        deadLetters: [{ id: `${i}:0`, reason: 'late', detail: `d${i}`, event: ev(i), at: i }],
      })
    await store.commit('p', {
      results: [],
      deadLetters: [{ id: '4:0', reason: 'late', detail: 'again', event: ev(4), at: 4 }],
    })
    let letters = await store.listDeadLetters('p', 10)
    assert.deepEqual(
      letters.map((d) => d.detail),
      ['d4', 'd3', 'd2', 'd1', 'd0'],
    )
    await store.trimDeadLetters('p', 2)
    letters = await store.listDeadLetters('p', 10)
    assert.deepEqual(
      letters.map((d) => d.event.id),
      ['e4', 'e3'],
    )
    const stats = { events_in: 9, events_out: 8, filtered: 1, late: 0, errors: 0, results: 2 }
    await store.commit('p', {
      results: [],
      deadLetters: [],
      checkpoint: {
        state: { w: [1, 2] },
        stats,
        partitions: [
          { partition: 3, position: 7, state: { slots: [3] }, stats: part(3) },
          { partition: 0, position: 42, state: { slots: [0] }, stats: part(4) },
          { partition: 5, position: null, state: null, stats: part(0) },
        ],
      },
    })
    const loaded = await store.loadCheckpoint('p')
    assert.deepEqual(loaded, {
      state: { w: [1, 2] },
      stats,
      partitions: [
        { partition: 0, position: 42, state: { slots: [0] }, stats: part(4) },
        { partition: 3, position: 7, state: { slots: [3] }, stats: part(3) },
        { partition: 5, position: null, state: null, stats: part(0) },
      ],
    })
    assert.deepEqual(checkpointPositions(loaded!), { '0': 42, '3': 7 })
    // a checkpoint names the partitions that changed: the others keep their rows
    const later = { ...stats, events_in: 12 }
    await store.commit('p', {
      results: [],
      deadLetters: [],
      checkpoint: {
        state: { w: [3] },
        stats: later,
        partitions: [{ partition: 3, position: 9, state: { slots: [] }, stats: part(5) }],
      },
    })
    assert.deepEqual(await store.loadCheckpoint('p'), {
      state: { w: [3] },
      stats: later,
      partitions: [
        { partition: 0, position: 42, state: { slots: [0] }, stats: part(4) },
        { partition: 3, position: 9, state: { slots: [] }, stats: part(5) },
        { partition: 5, position: null, state: null, stats: part(0) },
      ],
    })
    // progress alone: what another instance shows of a pipeline it does not run
    await store.commit('q', {
      results: [],
      deadLetters: [],
      checkpoint: {
        state: null,
        stats: emptyStats(),
        partitions: [{ partition: 1, position: 7, state: null, stats: part(1) }],
      },
    })
    assert.deepEqual(
      await store.loadProgress(['p', 'q', 'never']),
      new Map([
        [
          'p',
          {
            stats: later,
            partitions: [
              { partition: 0, position: 42, stats: part(4) },
              { partition: 3, position: 9, stats: part(5) },
              { partition: 5, position: null, stats: part(0) },
            ],
          },
        ],
        ['q', { stats: emptyStats(), partitions: [{ partition: 1, position: 7, stats: part(1) }] }],
      ]),
      'one read for many pipelines; one without a checkpoint is left out',
    )
    await store.deletePipeline('p')
    assert.equal(await store.loadCheckpoint('p'), undefined)
    assert.deepEqual([...(await store.loadProgress(['p', 'q'])).keys()], ['q'])
  })

  test(`${name}: window state in parts: all replaces every part, a change only its own, none drops them`, async (t) => {
    const store = await newStore(t)
    if (!store) return
    const stats = { events_in: 1, events_out: 1, filtered: 0, late: 0, errors: 0, results: 0 }
    const commit = (partitions: PartitionCheckpoint[]) =>
      store.commit('p', { results: [], deadLetters: [], checkpoint: { state: null, stats, partitions } })
    const at = (partition: number, parts?: PartitionCheckpoint['parts']): PartitionCheckpoint => ({
      partition,
      position: 1,
      state: { slots: [] },
      stats: part(1),
      ...(parts ? { parts } : {}),
    })
    const partsOf = async () =>
      (await store.loadCheckpoint('p'))?.partitions.map((p) => [p.partition, p.parts?.changed ?? null])
    await commit([
      at(0, {
        all: true,
        changed: [
          [2000, ['b']],
          [1000, ['a']],
        ],
        dropped: [],
      }),
      at(1),
    ])
    assert.deepEqual(await partsOf(), [
      [
        0,
        [
          [1000, ['a']],
          [2000, ['b']],
        ],
      ],
      [1, null],
    ])
    // changed and dropped apply to what is held; a dropped part that comes back is written again
    await commit([
      at(0, {
        all: false,
        changed: [
          [2000, ['b', 'c']],
          [3000, ['d']],
        ],
        dropped: [1000, 3000],
      }),
    ])
    assert.deepEqual(await partsOf(), [
      [
        0,
        [
          [2000, ['b', 'c']],
          [3000, ['d']],
        ],
      ],
      [1, null],
    ])
    assert.deepEqual(partitionStates((await store.loadCheckpoint('p'))!).get(0), {
      slots: [],
      parts: [
        [2000, ['b', 'c']],
        [3000, ['d']],
      ],
    })
    await commit([at(0, { all: true, changed: [[5000, ['e']]], dropped: [] })])
    assert.deepEqual(await partsOf(), [
      [0, [[5000, ['e']]]],
      [1, null],
    ])
    // a whole state without parts: the parts go
    await commit([at(0)])
    assert.deepEqual(await partsOf(), [
      [0, null],
      [1, null],
    ])
    await commit([at(1, { all: true, changed: [[1, ['x']]], dropped: [] })])
    await store.deletePipeline('p')
    await commit([at(1)])
    assert.deepEqual(await partsOf(), [[1, null]])
  })

  test(`${name}: the outbox: relayed only once a checkpoint covers it; a restart drops the rest; trimmed; deleted with its pipeline`, async (t) => {
    const store = await newStore(t)
    if (!store) return
    await store.insertPipeline(record('ob', 'ob'))
    await store.insertPipeline(record('other', 'other'))
    const msg = (n: number, topic = 'sink') => ({
      topic,
      key: n % 2 === 0 ? null : `k${n}`,
      value: `{"n":${n},"text":"ä\\u0000 \u{1f600}"}`,
      headers: { pipeline_id: 'ob', n: String(n) },
    })
    const checkpoint = { state: null, stats: emptyStats(), partitions: [] }
    const values = async (id: string, from = 0) =>
      (await store.readOutbox(id, from, 100)).flatMap((b) => b.messages.map((m) => m.value))
    await store.commit('ob', { results: [], deadLetters: [], outbox: [msg(1), msg(2, 'sink.dlq')] })
    assert.deepEqual(await values('ob'), [], 'nothing is relayed before a checkpoint covers it')
    await store.commit('ob', { results: [], deadLetters: [], outbox: [msg(3)], checkpoint })
    await store.commit('other', { results: [], deadLetters: [], outbox: [msg(100)], checkpoint })
    await store.commit('ob', { results: [], deadLetters: [], outbox: [msg(4)] })
    const batches = await store.readOutbox('ob', 0, 100)
    assert.deepEqual(
      batches.map((b) => b.messages),
      [[msg(1), msg(2, 'sink.dlq')], [msg(3)]],
      'covered messages come back whole, a batch per commit, in commit order',
    )
    assert.ok(batches[0].seq < batches[1].seq)
    assert.deepEqual(await values('ob', batches[1].seq), [msg(3).value])
    // whole batches up to the limit of messages, and the first one whatever its size
    assert.deepEqual(
      (await store.readOutbox('ob', 0, 2)).map((b) => b.seq),
      [batches[0].seq],
    )
    assert.deepEqual(
      (await store.readOutbox('ob', 0, 1)).map((b) => b.seq),
      [batches[0].seq],
    )
    assert.deepEqual(
      (await store.readOutbox('ob', 0, 3)).map((b) => b.seq),
      [batches[0].seq, batches[1].seq],
    )
    // a restart: the uncovered msg(4) is regenerated by the replay, so the first commit drops it
    await store.commit('ob', { results: [], deadLetters: [], discardUncovered: true, outbox: [msg(5)] })
    await store.commit('ob', { results: [], deadLetters: [], checkpoint })
    assert.deepEqual(
      await values('ob'),
      [msg(1), msg(2, 'sink.dlq'), msg(3), msg(5)].map((m) => m.value),
    )
    await store.trimOutbox('ob', batches[1].seq)
    assert.deepEqual(await values('ob'), [msg(3).value, msg(5).value])
    // all relayed and trimmed: the covered mark stays, a new message is not covered by an older checkpoint
    await store.trimOutbox('ob', Number.MAX_SAFE_INTEGER)
    await store.commit('ob', { results: [], deadLetters: [], checkpoint })
    await store.commit('ob', { results: [], deadLetters: [], outbox: [msg(6)] })
    assert.deepEqual(await values('ob'), [])
    await store.commit('ob', { results: [], deadLetters: [], discardUncovered: true })
    await store.commit('ob', { results: [], deadLetters: [], checkpoint })
    assert.deepEqual(await values('ob'), [], 'the uncovered message was dropped at the restart')
    await store.commit('ob', { results: [], deadLetters: [], outbox: [msg(7)], checkpoint })
    assert.deepEqual(await values('ob'), [msg(7).value])
    assert.ok((await store.readOutbox('ob', 0, 1))[0].seq > batches[1].seq, 'a seq is never used again')
    await store.deletePipeline('ob')
    assert.deepEqual(await values('ob'), [])
    assert.deepEqual(await values('other'), [msg(100).value], "another pipeline's outbox stays")
  })

  test(`${name}: lookup tables are replaced whole and listed`, async (t) => {
    const store = await newStore(t)
    if (!store) return
    await store.putLookupTable(
      'users',
      'id',
      [
        ['1', { id: '1', n: 'a' }],
        ['2', { id: '2', n: 'b' }],
      ],
      10,
    )
    await store.putLookupTable('users', 'id', [['3', { id: '3', n: 'c' }]], 20)
    assert.deepEqual([...((await store.loadLookupTable('users')) ?? new Map()).keys()], ['3'])
    assert.deepEqual(await store.listLookupTables(), [
      { name: 'users', keyField: 'id', rows: 1, updatedAt: 20 },
    ])
    assert.equal(await store.deleteLookupTable('users'), true)
    assert.equal(await store.deleteLookupTable('users'), false)
    assert.equal(await store.loadLookupTable('users'), undefined)
  })

  test(`${name}: group-key filters follow the one typed rule (strings, numbers, booleans, null, JSON)`, async (t) => {
    const store = await newStore(t)
    if (!store) return
    const values: Record<string, unknown> = {
      s10: '10',
      n10: 10,
      big: 1e21,
      t: true,
      st: 'true',
      f: false,
      nil: null,
      x: 'x',
      obj: { a: 1 },
    }
    const keyed = (id: string, v: unknown): WindowResult => ({
      windowStart: 0,
      windowEnd: 60_000,
      key: v === undefined ? {} : { 'data.v': v },
      keyId: id,
      results: { count: 1 },
      closed: true,
    })
    await store.commit('p', {
      results: [...Object.entries(values).map(([id, v]) => keyed(id, v)), keyed('missing', undefined)],
      deadLetters: [],
    })
    const ids = async (text: string) =>
      (await store.queryResults('p', { limit: 100, key: { 'data.v': text } })).map((r) => r.keyId).sort()
    const explicit: Record<string, string[]> = {
      '10': ['n10', 's10'],
      '"10"': ['s10'],
      '10.0': ['n10'],
      '1e21': ['big'],
      '1E+21': ['big'],
      '1000000000000000000000': ['big'],
      true: ['st', 't'],
      '"true"': ['st'],
      false: ['f'],
      null: ['missing', 'nil'],
      x: ['x'],
      '{"a":1}': ['obj'],
      '{"a":2}': [],
      '1e400': [],
      '': [],
    }
    for (const [text, want] of Object.entries(explicit)) {
      assert.deepEqual(await ids(text), want, `filter ${JSON.stringify(text)}`)
      // and the same as the rule open windows use
      const all = [...Object.entries(values), ['missing', undefined] as const]
      const byRule = all.filter(([, v]) => keyValueMatches(parseKeyValue(text), v)).map(([id]) => id)
      assert.deepEqual(byRule.sort(), want, `rule for ${JSON.stringify(text)}`)
    }
  })

  test(`${name}: API keys are kept as hashes, listed oldest first, deleted once`, async (t) => {
    const store = await newStore(t)
    if (!store) return
    const key = (id: string, createdAt: number, expiresAt: number | null) => ({
      id,
      name: `k ${id}`,
      role: 'read' as const,
      sha256: 'ab'.repeat(32),
      createdAt,
      expiresAt,
      source: 'api' as const,
    })
    await store.insertApiKey(key('00000000000000b2', 20, null))
    await store.insertApiKey(key('00000000000000a1', 10, 1_800_000_000_000))
    assert.deepEqual(await store.listApiKeys(), [
      key('00000000000000a1', 10, 1_800_000_000_000),
      key('00000000000000b2', 20, null),
    ])
    assert.equal(await store.deleteApiKey('00000000000000a1'), true)
    assert.equal(await store.deleteApiKey('00000000000000a1'), false)
    assert.deepEqual(
      (await store.listApiKeys()).map((k) => k.id),
      ['00000000000000b2'],
    )
  })

  test(`${name}: metrics: series identity is name + sorted tags; buckets aligned to step; each agg`, async (t) => {
    const store = await newStore(t)
    if (!store) return
    await store.writeMetrics([
      { name: 'cpu', tags: { host: 'a', dc: 'x' }, value: 1, timestamp: 0 },
      { name: 'cpu', tags: { dc: 'x', host: 'a' }, value: 3, timestamp: 59_999 },
      { name: 'cpu', tags: { host: 'a', dc: 'x' }, value: 10, timestamp: 60_000 },
      { name: 'cpu', tags: { host: 'b' }, value: 7, timestamp: 30_000 },
      { name: 'cpu', tags: { host: 'a', dc: 'x' }, value: 4, timestamp: 180_000 },
    ])
    const { series, total } = await store.listSeries(10, 0)
    assert.equal(total, 2)
    assert.deepEqual(
      series.map((s) => [s.tags, s.lastValue, s.lastTimestamp, s.points]),
      [
        [{ dc: 'x', host: 'a' }, 4, 180_000, 4],
        [{ host: 'b' }, 7, 30_000, 1],
      ],
    )
    const q = async (agg: 'avg' | 'sum' | 'min' | 'max' | 'count' | 'last', tags = { host: 'a' }) => {
      const r = await store.queryMetrics({
        name: 'cpu',
        tags,
        from: 0,
        to: 240_000,
        stepMs: 60_000,
        agg,
        maxPoints: 100,
      })
      assert.ok(Array.isArray(r))
      return r.map((s) => s.points.map((p) => [p.timestamp, p.value]))
    }
    // the empty bucket at 120 000 is left out; the point at 59 999 is in the first bucket, 60 000 in the second
    assert.deepEqual(await q('avg'), [
      [
        [0, 2],
        [60_000, 10],
        [180_000, 4],
      ],
    ])
    assert.deepEqual(await q('sum'), [
      [
        [0, 4],
        [60_000, 10],
        [180_000, 4],
      ],
    ])
    assert.deepEqual(await q('min'), [
      [
        [0, 1],
        [60_000, 10],
        [180_000, 4],
      ],
    ])
    assert.deepEqual(await q('max'), [
      [
        [0, 3],
        [60_000, 10],
        [180_000, 4],
      ],
    ])
    assert.deepEqual(await q('count'), [
      [
        [0, 2],
        [60_000, 1],
        [180_000, 1],
      ],
    ])
    assert.deepEqual(await q('last'), [
      [
        [0, 3],
        [60_000, 10],
        [180_000, 4],
      ],
    ])
    assert.equal((await q('sum', {} as { host: string })).length, 2)
    const refused = await store.queryMetrics({
      name: 'cpu',
      tags: {},
      from: 0,
      to: 240_000,
      stepMs: 60_000,
      agg: 'avg',
      maxPoints: 3,
    })
    // an aligned, minute-multiple query reads the minute rollups: 4 rows for these 5 points
    assert.deepEqual(refused, { tooMany: 4, what: 'points' })
    assert.equal(
      await store.enforceMetricsRetention({
        rawBefore: 60_000,
        minuteBefore: 0,
        hourBefore: 0,
        maxRawPoints: 1e9,
      }),
      3,
    )
    assert.equal((await store.listSeries(10, 0)).total, 2, 'series with rollups stay')
    assert.equal(
      await store.enforceMetricsRetention({
        rawBefore: 60_000,
        minuteBefore: 1e12,
        hourBefore: 1e12,
        maxRawPoints: 1e9,
      }),
      0,
    )
    assert.equal((await store.listSeries(10, 0)).total, 1, 'series with nothing left go')
  })

  test(`${name}: retention by size drops the oldest raw points, a minute at a time`, async (t) => {
    const store = await newStore(t)
    if (!store) return
    await store.writeMetrics([
      { name: 'm', tags: { s: 'a' }, value: 1, timestamp: 0 },
      { name: 'm', tags: { s: 'a' }, value: 2, timestamp: 59_999 },
      { name: 'm', tags: { s: 'b' }, value: 3, timestamp: 30_000 },
      { name: 'm', tags: { s: 'a' }, value: 4, timestamp: 60_000 },
      { name: 'm', tags: { s: 'b' }, value: 5, timestamp: 180_000 },
    ])
    const keep = { rawBefore: -1, minuteBefore: -1, hourBefore: -1 }
    assert.equal(await store.enforceMetricsRetention({ ...keep, maxRawPoints: 5 }), 0)
    assert.equal(await store.enforceMetricsRetention({ ...keep, maxRawPoints: 3 }), 3)
    const left = await store.queryMetrics({
      name: 'm',
      tags: {},
      from: 0,
      to: 240_000,
      stepMs: 1,
      agg: 'sum',
      maxPoints: 100,
    })
    assert.ok(Array.isArray(left))
    assert.deepEqual(left.flatMap((s) => s.points.map((p) => p.value)).sort(), [4, 5])
  })

  test(`${name}: rollups answer long ranges exactly, also after raw points are gone, and take late points`, async (t) => {
    const store = await newStore(t)
    if (!store) return
    const H = 3_600_000
    const points: MetricPoint[] = []
    for (let i = 0; i < 6 * 60; i++)
      points.push({
        name: 'lat',
        tags: { svc: 'api' },
        value: (i % 17) - 3,
        timestamp: i * 60_000 + (i % 60) * 900,
      })
    await store.writeMetrics(points)
    const ask = async (
      stepMs: number,
      agg: 'avg' | 'sum' | 'min' | 'max' | 'count' | 'last',
      from = 0,
      to = 6 * H,
    ) => {
      const r = await store.queryMetrics({ name: 'lat', tags: {}, from, to, stepMs, agg, maxPoints: 1e6 })
      assert.ok(Array.isArray(r))
      return r[0].points
    }
    const expected = (stepMs: number, agg: string) => {
      const buckets = new Map<number, number[]>()
      for (const p of points) {
        const b = p.timestamp - (p.timestamp % stepMs)
        buckets.set(b, [...(buckets.get(b) ?? []), p.value])
      }
      return [...buckets].map(([timestamp, vs]) => ({
        timestamp,
        value:
          agg === 'sum'
            ? vs.reduce((a, b) => a + b, 0)
            : agg === 'count'
              ? vs.length
              : agg === 'min'
                ? Math.min(...vs)
                : agg === 'max'
                  ? Math.max(...vs)
                  : agg === 'last'
                    ? vs[vs.length - 1]
                    : vs.reduce((a, b) => a + b, 0) / vs.length,
      }))
    }
    const before: Record<string, unknown> = {}
    for (const agg of ['avg', 'sum', 'min', 'max', 'count', 'last'] as const) {
      for (const step of [H, 15 * 60_000]) {
        const got = await ask(step, agg)
        const want = expected(step, agg)
        assert.equal(got.length, want.length)
        got.forEach((p, i) => {
          assert.equal(p.timestamp, want[i].timestamp)
          assert.ok(
            Math.abs(p.value - want[i].value) < 1e-9,
            `${agg} ${step}: ${p.value} vs ${want[i].value}`,
          )
        })
        before[`${agg}${step}`] = got
      }
    }
    // raw points past retention go; the same queries now come from the rollups, unchanged
    await store.enforceMetricsRetention({
      rawBefore: 10 * H,
      minuteBefore: 0,
      hourBefore: 0,
      maxRawPoints: 1e9,
    })
    for (const agg of ['avg', 'sum', 'min', 'max', 'count', 'last'] as const)
      for (const step of [H, 15 * 60_000])
        assert.deepEqual(await ask(step, agg), before[`${agg}${step}`], `${agg} ${step} from rollups`)
    assert.equal(
      (await ask(60_000, 'count', 30 * 60_000 + 1, 5 * H + 17)).length,
      5 * 60 - 30 + 1,
      'long unaligned ranges round out to whole minutes',
    )
    // a late point lands in its rollup bucket too
    await store.writeMetrics([{ name: 'lat', tags: { svc: 'api' }, value: 1000, timestamp: 7 * H + 5 }])
    assert.deepEqual((await ask(H, 'max', 0, 8 * H)).at(-1), { timestamp: 7 * H, value: 1000 })
  })
}
