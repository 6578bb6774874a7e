import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseRfc3339, parseTimestamp } from '../../src/engine/events.ts'
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
    assert.equal(parseTimestamp(s), parseRfc3339(s), s)
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
