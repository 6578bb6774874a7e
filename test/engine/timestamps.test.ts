import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MAX_TIME, parseRfc3339, parseTimestamp } from '../../src/engine/events.ts'
import { rng } from '../helpers/random.ts'

test('timestamps: the fast path agrees with RFC 3339 + Date.parse on generated strings, valid and not', () => {
  const r = rng(9)
  const pad = (v: number, w: number) => String(v).padStart(w, '0')
  for (let i = 0; i < 20_000; i++) {
    const year = r.pick([r.int(1970, 2100), r.int(0, 9999)])
    const month = r.chance(0.9) ? r.int(1, 12) : r.int(0, 19)
    const day = r.chance(0.9) ? r.int(1, 28) : r.int(0, 39)
    const hour = r.chance(0.9) ? r.int(0, 23) : r.int(0, 29)
    const minute = r.chance(0.95) ? r.int(0, 59) : r.int(0, 99)
    const second = r.chance(0.95) ? r.int(0, 59) : r.int(0, 99)
    const fraction = r.pick(['', '.123', `.${pad(r.int(0, 999), 3)}`, '.5', '.123456', 'x', '.12a'])
    const zone = r.pick(['Z', 'Z', 'Z', 'z', '+02:00', '-05:30', '', ' '])
    const sep = r.pick(['T', 'T', 'T', 't', ' ', '_'])
    let s = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}${sep}${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}${fraction}${zone}`
    if (r.chance(0.05)) s = s.replace(/\d/, r.pick(['a', '-', ' ']))
    const ref = parseRfc3339(s)
    assert.equal(parseTimestamp(s), ref !== undefined && ref >= 0 && ref <= MAX_TIME ? ref : undefined, s)
  }
  // leap days, month ends and epoch milliseconds
  for (const s of [
    '2024-02-29T12:00:00Z',
    '2023-02-29T12:00:00Z',
    '2100-02-29T00:00:00Z',
    '2000-02-29T00:00:00.999Z',
  ])
    assert.equal(parseTimestamp(s), parseRfc3339(s), s)
  assert.equal(parseTimestamp(1_700_000_000_123.9), 1_700_000_000_123)
  assert.equal(parseTimestamp(Number.NaN), undefined)
})

test('timestamps: impossible calendar dates and times outside 1970–9999 are refused, not rolled over', () => {
  for (const s of [
    '2026-02-30T00:00:00Z',
    '2026-02-30T00:00:00+01:00',
    '2026-04-31T10:00:00.000Z',
    '2026-01-01T24:00:00Z',
    '2026-01-01T24:00:00-02:00',
    '2026-01-01T23:60:00Z',
    '2026-01-01T23:59:60Z',
    '2026-01-01T10:00:00+24:00',
    '1969-12-31T23:59:59Z',
    '1970-01-01T00:30:00+01:00',
  ])
    assert.equal(parseTimestamp(s), undefined, s)
  for (const n of [8_640_000_000_000_000, -8_640_000_000_000_000, -1, MAX_TIME + 1, Number.POSITIVE_INFINITY])
    assert.equal(parseTimestamp(n), undefined, String(n))
  assert.equal(parseTimestamp('9999-12-31T23:59:59.999Z'), MAX_TIME)
  assert.equal(parseTimestamp('1970-01-01T00:00:00Z'), 0)
  assert.equal(parseTimestamp('2026-03-01T00:30:00+01:00'), Date.UTC(2026, 1, 28, 23, 30))
  assert.equal(parseTimestamp(0), 0)
})
