import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { eventJson, ResultWire, resultEvent } from '../../src/engine/result-shape.ts'
import type { WindowResult } from '../../src/engine/types.ts'

const text = fc.string({ unit: 'binary', maxLength: 12 })
const result: fc.Arbitrary<WindowResult> = fc
  .record(
    {
      windowStart: fc.integer({ min: 0, max: 253_402_300_799_000 - 3_600_000 }),
      length: fc.integer({ min: 1, max: 3_600_000 }),
      key: fc.option(
        fc.dictionary(text, fc.oneof(text, fc.double(), fc.boolean(), fc.constant(null)), { maxKeys: 3 }),
      ),
      keyId: text,
      results: fc.dictionary(text, fc.option(fc.double({ noNaN: true, noDefaultInfinity: true })), {
        maxKeys: 4,
      }),
      closed: fc.boolean(),
      version: fc.option(fc.nat(), { nil: undefined }),
    },
    { requiredKeys: ['windowStart', 'length', 'key', 'keyId', 'results', 'closed'] },
  )
  .map(({ length, ...r }) => ({ ...r, windowEnd: r.windowStart + length }))

test("a result's sink text built once is the serialised result event, byte for byte", () => {
  fc.assert(
    fc.property(text, text, fc.array(result, { minLength: 1, maxLength: 8 }), (id, name, results) => {
      const wire = new ResultWire(id, name)
      for (const r of results) {
        const expected = JSON.stringify(eventJson(resultEvent(id, name, r)))
        assert.equal(wire.value(r, JSON.stringify(r.key)), expected)
        assert.equal(wire.iso(r.windowEnd), new Date(r.windowEnd).toISOString())
      }
    }),
    { seed: 7, numRuns: 500 },
  )
})
