import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { type TestContext, test } from 'node:test'
import { eventJson } from '../../src/engine/result-shape.ts'
import type { Event, WindowResult } from '../../src/engine/types.ts'
import type { EventLog, LogReader, ReaderBatch } from '../../src/log/log.ts'

/**
 * The log contract every implementation passes (the embedded log, Kafka): what a pipeline relies
 * on, and nothing of one implementation (offsets, batch boundaries, where dead letters go).
 * `newLog` gives a fresh log for the test, or undefined when it cannot run here (a skip).
 */
export function logContract(name: string, newLog: (t: TestContext) => Promise<EventLog | undefined>): void {
  const topic = (what: string) => `${what}-${randomBytes(4).toString('hex')}`
  const events = (from: number, n: number): Event[] =>
    Array.from({ length: n }, (_, i) => ({
      id: `e${from + i}`,
      event_type: 't',
      source: 's',
      timestamp: Date.parse('2026-12-01T00:00:00Z') + (from + i) * 1_000,
      data: { i: from + i, nested: { ok: true }, list: [1, 'two', null] },
    }))

  /** Reads until `n` events came or 20 s passed; the batches as they came. */
  async function readN(reader: LogReader, n: number): Promise<ReaderBatch[]> {
    const batches: ReaderBatch[] = []
    let count = 0
    const deadline = Date.now() + 20_000
    while (count < n && Date.now() < deadline) {
      for (const b of await reader.read(n - count, 200)) {
        batches.push(b)
        count += b.events.length + b.invalid.length
      }
    }
    return batches
  }

  const opened = (t: TestContext, reader: LogReader) => {
    t.after(() => reader.close())
    return reader
  }

  test(`${name}: appended events read back in order, whole, in contiguous batches of one partition`, async (t) => {
    const log = await newLog(t)
    if (!log) return
    const src = topic('order')
    await log.prepareTopics([src])
    const reader = opened(t, await log.openReader({ topic: src, group: topic('g'), startFrom: 'earliest' }))
    assert.deepEqual(reader.partitions(), [0])
    const appended = await Promise.all([log.append(src, events(0, 5)), log.append(src, events(5, 300))])
    assert.deepEqual(
      appended.map((a) => a.count),
      [5, 300],
    )
    const batches = await readN(reader, 305)
    const got = batches.flatMap((b) => b.events)
    // the two appends race: each comes whole and in its own order
    const ids = got.map((e) => e.id)
    const first = ids.indexOf('e0') < ids.indexOf('e5') ? [0, 5] : [5, 0]
    const want = first[0] === 0 ? [...events(0, 5), ...events(5, 300)] : [...events(5, 300), ...events(0, 5)]
    assert.deepEqual(got.map(eventJson), want.map(eventJson))
    for (const [i, b] of batches.entries()) {
      assert.equal(b.partition, 0)
      assert.equal(b.next, b.offset + b.events.length + b.invalid.length)
      if (i > 0) assert.equal(b.offset, batches[i - 1].next, 'batches are contiguous')
      assert.ok(Number.isFinite(b.appendedAt) && b.appendedAt > 0)
    }
    // every batch's arrival time is at or before what the log calls stable afterwards
    const stable = log.stableTime(src)
    assert.ok(batches.every((b) => b.appendedAt <= stable + 1_000))
  })

  test(`${name}: a reader from saved positions reads only what follows; latest skips what is there`, async (t) => {
    const log = await newLog(t)
    if (!log) return
    const src = topic('positions')
    await log.prepareTopics([src])
    await log.append(src, events(0, 10))
    const group = topic('g')
    const first = await log.openReader({ topic: src, group, startFrom: 'earliest' })
    const batches = await readN(first, 10)
    const mid = batches.find((b) => b.events.some((e) => e.id === 'e0'))
    assert.ok(mid)
    const lastNext = batches[batches.length - 1].next
    await first.commit({ '0': lastNext })
    await first.close()
    await log.append(src, events(10, 4))
    const resumed = opened(
      t,
      await log.openReader({ topic: src, group, positions: { '0': lastNext }, startFrom: 'earliest' }),
    )
    assert.deepEqual(resumed.initial, { '0': lastNext })
    const rest = (await readN(resumed, 4)).flatMap((b) => b.events.map((e) => e.id))
    assert.deepEqual(rest, ['e10', 'e11', 'e12', 'e13'])

    const latest = opened(t, await log.openReader({ topic: src, group: topic('g'), startFrom: 'latest' }))
    // nothing from before it opened
    assert.deepEqual(
      (await latest.read(100, 500)).flatMap((b) => b.events),
      [],
    )
    await log.append(src, events(14, 2))
    assert.deepEqual(
      (await readN(latest, 2)).flatMap((b) => b.events.map((e) => e.id)),
      ['e14', 'e15'],
    )
  })

  test(`${name}: caught up and lag follow what is unread`, async (t) => {
    const log = await newLog(t)
    if (!log) return
    const src = topic('lag')
    await log.prepareTopics([src])
    await log.append(src, events(0, 7))
    const reader = opened(t, await log.openReader({ topic: src, group: topic('g'), startFrom: 'earliest' }))
    const batches = await readN(reader, 7)
    const positions = { '0': batches[batches.length - 1].next }
    // a reader learns the end of the topic on its own schedule: give it a few seconds
    for (let i = 0; i < 100 && !reader.caughtUp(); i++) {
      await reader.read(10, 100)
    }
    assert.equal(reader.caughtUp(), true)
    assert.equal(reader.lag(positions), 0)
    assert.equal(reader.degraded, undefined)
  })

  test(`${name}: tail gives the newest events in order, reads nothing for a missing topic`, async (t) => {
    const log = await newLog(t)
    if (!log) return
    const src = topic('tail')
    await log.prepareTopics([src])
    assert.deepEqual(await log.tail(src, 10), [])
    await log.append(src, events(0, 30))
    await log.append(src, events(30, 5))
    const newest = await log.tail(src, 8)
    assert.deepEqual(
      newest.flatMap((b) => b.events.map((e) => e.id)),
      ['e27', 'e28', 'e29', 'e30', 'e31', 'e32', 'e33', 'e34'],
    )
    assert.ok(newest.every((b) => b.partition === 0 && b.appendedAt > 0))
    assert.equal((await log.tail(src, 1_000)).flatMap((b) => b.events).length, 35)
    assert.deepEqual(await log.tail(topic('missing'), 10), [])
  })

  test(`${name}: positions at the earliest, at a time and at the end; peek reads from positions, outside any group`, async (t) => {
    const log = await newLog(t)
    if (!log) return
    const src = topic('seek')
    assert.deepEqual(await log.positionsAt(topic('missing'), 'earliest'), { from: {}, end: {} })
    await log.prepareTopics([src])
    await log.append(src, events(0, 10))
    await new Promise((r) => setTimeout(r, 30))
    const between = Date.now()
    await new Promise((r) => setTimeout(r, 30))
    await log.append(src, events(10, 5))
    assert.deepEqual(await log.positionsAt(src, 'earliest'), { from: { 0: 0 }, end: { 0: 15 } })
    assert.deepEqual(await log.positionsAt(src, between), { from: { 0: 10 }, end: { 0: 15 } })
    assert.deepEqual((await log.positionsAt(src, Date.now() + 60_000)).from, { 0: 15 })
    const peeked = await log.peek(src, { 0: 8 }, 4)
    assert.deepEqual(
      peeked.flatMap((b) => b.events.map((e) => e.id)),
      ['e8', 'e9', 'e10', 'e11'],
    )
    assert.ok(peeked.every((b) => b.partition === 0 && b.appendedAt > 0))
    assert.deepEqual(await log.peek(src, { 0: 15 }, 4), [])
  })

  test(`${name}: window results reach the sink as window_result events another pipeline reads`, async (t) => {
    const log = await newLog(t)
    if (!log) return
    const sink = topic('sink')
    await log.prepareTopics([sink, `${sink}.dlq`])
    const reader = opened(t, await log.openReader({ topic: sink, group: topic('g'), startFrom: 'earliest' }))
    const result = (keyId: string, key: Record<string, string> | null, count: number): WindowResult => ({
      windowStart: Date.parse('2026-12-01T00:00:00Z'),
      windowEnd: Date.parse('2026-12-01T00:01:00Z'),
      keyId,
      key,
      results: { count },
      closed: true,
    })
    await log.writeSink(sink, {
      pipelineId: 'p1',
      pipelineName: 'counts',
      records: [],
      results: [result('["a"]', { user: 'a' }, 3), result('[]', null, 5)],
    })
    await log.writeSink(sink, {
      pipelineId: 'p1',
      pipelineName: 'counts',
      records: events(0, 2),
      results: [],
    })
    await log.writeDeadLetters(`${sink}.dlq`, [
      { pipelineId: 'p1', reason: 'late', detail: 'behind the watermark', payload: { id: 'x' } },
    ])
    const got = (await readN(reader, 4)).flatMap((b) => {
      assert.deepEqual(b.invalid, [], 'every sink message reads as an event')
      return b.events
    })
    const asEvent = (key: Record<string, string> | null, count: number) => [
      'window_result',
      'pipeline:counts',
      Date.parse('2026-12-01T00:00:00Z'),
      {
        pipeline_id: 'p1',
        window_start: '2026-12-01T00:00:00.000Z',
        window_end: '2026-12-01T00:01:00.000Z',
        key,
        results: { count },
        closed: true,
      },
    ]
    assert.deepEqual(
      got.slice(0, 2).map((e) => [e.event_type, e.source, e.timestamp, e.data]),
      [asEvent({ user: 'a' }, 3), asEvent(null, 5)],
    )
    // transformed events travel as themselves
    assert.deepEqual(got.slice(2).map(eventJson), events(0, 2).map(eventJson))
  })
}
