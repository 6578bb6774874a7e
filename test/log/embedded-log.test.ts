import assert from 'node:assert/strict'
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { IdSequence, normalizeEvents } from '../../src/engine/events.ts'
import type { Event } from '../../src/engine/types.ts'
import { EmbeddedLog } from '../../src/log/embedded-log.ts'
import { silentLogger } from '../../src/logger.ts'
import { tempDir } from '../helpers/tmp.ts'

const events = (from: number, n: number): Event[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `e${from + i}`,
    event_type: 't',
    source: 's',
    timestamp: from + i,
    data: { i: from + i },
  }))

const open = (dir: string, cacheEvents = 1_000, segmentBytes = 64 * 1024 * 1024) =>
  new EmbeddedLog({ dir, fsync: 'batch', cacheEvents, segmentBytes, logger: silentLogger() })

test('concurrent appends get consecutive offsets, read back in order, also from disk after reopen', async (t) => {
  const dir = tempDir(t)
  const log = open(dir, 10)
  const results = await Promise.all([
    log.append('a', events(0, 5)),
    log.append('a', events(5, 3)),
    log.append('b', events(0, 2)),
  ])
  assert.deepEqual(
    results.map((r) => [r.topic, r.offset, r.count]),
    [
      ['a', 0, 5],
      ['a', 5, 3],
      ['b', 0, 2],
    ],
  )
  assert.equal(log.endOffset('a'), 8)
  const mid = await log.read('a', 3, 100)
  assert.deepEqual(
    mid.flatMap((b) => b.events.map((e) => e.id)),
    ['e3', 'e4', 'e5', 'e6', 'e7'],
  )
  assert.equal(mid[0].offset, 3)
  await log.close()
  const again = open(dir)
  assert.equal(again.endOffset('a'), 8)
  assert.deepEqual(
    (await again.read('a', 0, 100)).flatMap((b) => b.events.map((e) => e.data.i)),
    [0, 1, 2, 3, 4, 5, 6, 7],
  )
  const appended = await again.append('a', events(8, 1))
  assert.equal(appended.offset, 8)
  await again.close()
})

test('a reader waits for appends, wakes on them, and keeps its own position', async (t) => {
  const log = open(tempDir(t))
  await log.append('x', events(0, 2))
  const reader = await log.openReader({ topic: 'x', group: 'g', startFrom: 'latest' })
  assert.deepEqual(reader.initial, { '0': 2 })
  const started = Date.now()
  const waiting = reader.read(100, 5_000)
  await log.append('x', events(2, 3))
  const got = await waiting
  assert.ok(Date.now() - started < 1_000, 'woken by the append, not the timeout')
  assert.deepEqual(
    got.map((b) => [b.partition, b.offset, b.next, b.events.length]),
    [[0, 2, 5, 3]],
  )
  assert.equal(reader.lag({ '0': 2 }), 3)
  assert.deepEqual(await reader.read(100, 0), [])
  await reader.close()
  const again = await log.openReader({ topic: 'x', group: 'g', positions: { '0': 4 }, startFrom: 'earliest' })
  assert.deepEqual(
    (await again.read(100, 0)).flatMap((b) => b.events.map((e) => e.id)),
    ['e4'],
  )
  await again.close()
  await log.close()
})

test('a torn or corrupt tail is cut back to the last whole record on open', async (t) => {
  const dir = tempDir(t)
  const log = open(dir)
  await log.append('t', events(0, 3))
  await log.append('t', events(3, 4))
  await log.close()
  const segment = join(dir, 't', '00000000000000000000.log')
  const whole = statSync(segment).size

  // 1: half a record at the end (a crash mid-write)
  appendFileSync(segment, Buffer.from([0, 0, 1, 0, 9, 9]))
  let reopened = open(dir)
  assert.equal(reopened.endOffset('t'), 7)
  assert.equal(statSync(segment).size, whole)
  await reopened.close()

  // 2: flipped bytes inside the last record (checksum mismatch): that record is dropped
  const bytes = readFileSync(segment)
  bytes[bytes.length - 3] ^= 0xff
  writeFileSync(segment, bytes)
  reopened = open(dir)
  assert.equal(reopened.endOffset('t'), 3)
  assert.deepEqual(
    (await reopened.read('t', 0, 10)).flatMap((b) => b.events.map((e) => e.id)),
    ['e0', 'e1', 'e2'],
  )
  // the next append continues from the last good offset
  assert.equal((await reopened.append('t', events(3, 1))).offset, 3)
  await reopened.close()
})

test('segments roll at the configured size; reads span them; retention keeps what readers need', async (t) => {
  const dir = tempDir(t)
  const log = open(dir, 0, 2_000)
  for (let i = 0; i < 40; i++) await log.append('s', events(i * 10, 10))
  const described = log.describe('s')
  assert.ok(described && described.segments > 5, JSON.stringify(described))
  assert.deepEqual(
    (await log.read('s', 95, 30)).flatMap((b) => b.events.map((e) => e.data.i)).slice(0, 3),
    [95, 96, 97],
  )
  // nothing goes while a reader still needs it, however big the topic is
  assert.equal(log.retain('s', { '0': 0 }, { maxAgeMs: 1e12, maxBytes: 1 }), 0)
  // past offset 200 the oldest segments may go (over the size budget); the active one stays
  const removed = log.retain('s', { '0': 200 }, { maxAgeMs: 1e12, maxBytes: 1 })
  assert.ok(removed > 0)
  const start = log.startOffset('s')
  assert.ok(start > 0 && start <= 200, `start ${start}`)
  assert.equal((await log.read('s', 200, 1))[0].offset, 200)
  // young and small enough: nothing more goes
  assert.equal(log.retain('s', { '0': 400 }, { maxAgeMs: 1e12, maxBytes: 1e12 }), 0)
  await log.close()
  const again = open(dir, 0, 2_000)
  assert.equal(again.startOffset('s'), start)
  assert.equal(again.endOffset('s'), 400)
  assert.deepEqual(
    (await again.read('s', 399, 10)).flatMap((b) => b.events.map((e) => e.id)),
    ['e399'],
  )
  await again.close()
})

test('a corrupt record followed by valid ones is reported, not skipped', async (t) => {
  const dir = tempDir(t)
  const log = open(dir)
  for (let i = 0; i < 3; i++) await log.append('c', events(i * 2, 2))
  await log.close()
  const segment = join(dir, 'c', '00000000000000000000.log')
  const bytes = readFileSync(segment)
  bytes[40] ^= 0xff // inside the first record
  writeFileSync(segment, bytes)
  assert.throws(() => open(dir), /corrupt record at byte 0 .*followed by valid records/)
})

test('a request stored as it arrived reads back as exactly the events it was normalised into', async (t) => {
  const dir = tempDir(t)
  const log = open(dir, 0)
  const body = Buffer.from(
    JSON.stringify({
      topic: 'r',
      events: [
        { event_type: 'a', source: 's' },
        { event_type: 'b', source: 's', id: 'mine', timestamp: 5 },
        { event_type: 'c', source: 's', data: { x: [1] } },
      ],
    }),
  )
  const ids = new IdSequence('p', 41)
  const normalized = normalizeEvents(
    (JSON.parse(body.toString()) as { events: unknown[] }).events,
    1234,
    ids.next,
  )
  assert.ok(normalized.ok)
  await log.append('r', normalized.events, { body, idPrefix: 'p', idStart: 41, now: 1234 })
  await log.close()
  const again = open(dir, 0)
  const read = (await again.read('r', 0, 10)).flatMap((b) => b.events)
  assert.deepEqual(read, normalized.events)
  assert.deepEqual(
    read.map((e) => [e.id, e.timestamp]),
    [
      ['p-15', 1234],
      ['mine', 5],
      ['p-16', 1234],
    ],
  )
  await again.close()
})

test('parsed events are kept only until every open reader has read them (none without readers)', async (t) => {
  const log = open(tempDir(t))
  const readAll = async (reader: Awaited<ReturnType<EmbeddedLog['openReader']>>) =>
    (await reader.read(1_000, 0)).flatMap((b) => b.events ?? [])

  // nobody reads the topic yet: nothing is kept, a later reader gets the events from disk
  const unread = events(0, 3)
  await log.append('c', unread)
  const late = await log.openReader({ topic: 'c', group: 'g1', startFrom: 'earliest' })
  const fromDisk = await readAll(late)
  assert.deepEqual(fromDisk, unread)
  assert.notEqual(fromDisk[0], unread[0], 'read back from disk, not the appended objects')

  // two readers: the appended objects stay until the slower one has them too
  const slow = await log.openReader({ topic: 'c', group: 'g2', startFrom: 'latest' })
  const kept = events(3, 2)
  await log.append('c', kept)
  const first = await readAll(late)
  assert.equal(first[0], kept[0], 'a caught-up reader takes the appended objects')
  const second = await readAll(slow)
  assert.equal(second[0], kept[0], 'kept for the reader that had not read them')

  // both have passed them: a new reader from the start reads them from disk
  const again = await log.openReader({ topic: 'c', group: 'g3', startFrom: 'earliest' })
  const replayed = await readAll(again)
  assert.deepEqual(replayed, [...unread, ...kept])
  assert.notEqual(replayed[3], kept[0], 'dropped once every reader had passed them')
  for (const r of [late, slow, again]) await r.close()
  await log.close()
})
