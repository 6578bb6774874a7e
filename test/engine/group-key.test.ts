import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseFieldPath } from '../../src/engine/fields.ts'
import { groupKeys } from '../../src/engine/group-key.ts'
import type { Event } from '../../src/engine/types.ts'
import { rng } from '../helpers/random.ts'

test('group keys: ids are equal exactly when keys are, and decode back to the key object', () => {
  const r = rng(5)
  const values: unknown[] = [
    'a',
    'b\u001fc',
    '\u0001s',
    '\u0001',
    '',
    '1',
    1,
    -2.5,
    1e21,
    true,
    false,
    null,
    undefined,
    { x: [1, 'y'] },
    [1],
  ]
  for (const paths of [['data.a'], ['data.a', 'data.b'], ['data.a', 'data.b', 'source']]) {
    const refs = paths.map((p) => {
      const parsed = parseFieldPath(p)
      assert.ok(parsed.ok)
      return parsed.value
    })
    const keys = groupKeys(refs)
    const seen = new Map<string, string>()
    const idOf = new Map<string, string>()
    for (let i = 0; i < 2_000; i++) {
      const picked = paths.map(() => r.pick(values))
      const event = { id: 'e', event_type: 't', timestamp: 0, data: {} } as unknown as Event
      const data = event.data as Record<string, unknown>
      paths.forEach((p, k) => {
        if (p === 'source') (event as unknown as Record<string, unknown>).source = picked[k]
        else if (picked[k] !== undefined) data[p.slice(5)] = picked[k]
      })
      const id = keys.id(event)
      // a missing value and null are the same group
      const expected = Object.fromEntries(
        paths.map((p, k) => [p, picked[k] === undefined ? null : picked[k]]),
      )
      assert.deepEqual(keys.decode(id), expected, JSON.stringify(picked))
      const canonical = JSON.stringify(expected)
      assert.equal(seen.get(id) ?? canonical, canonical, `one id for two keys: ${JSON.stringify(id)}`)
      seen.set(id, canonical)
      assert.equal(idOf.get(canonical) ?? id, id, `two ids for one key: ${canonical}`)
      idOf.set(canonical, id)
      // /window?key.<path>=<text>: the filter of this key finds its id without a walk over every key
      const filter = Object.fromEntries(
        paths.map((p, k) => [
          p,
          typeof picked[k] === 'string' ? (picked[k] as string) : JSON.stringify(picked[k] ?? null),
        ]),
      )
      assert.ok(keys.idsMatching(filter)?.includes(id), JSON.stringify(filter))
      if (paths.length > 1) assert.equal(keys.idsMatching({ [paths[0]]: filter[paths[0]] }), undefined)
    }
  }
})
