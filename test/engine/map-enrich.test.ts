import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Issues } from '../../src/engine/check.ts'
import { compileEnrich, parseEnrich } from '../../src/engine/stages/enrich.ts'
import { compileMap, parseMap } from '../../src/engine/stages/map.ts'
import type { Event } from '../../src/engine/types.ts'

const base = (): Event => ({
  id: 'e',
  event_type: 'view',
  source: 'web',
  timestamp: 0,
  data: { user_id: '7', page: '/a', meta: { ip: '1.2.3.4', ua: 'x' } },
})

test('map renames, sets and removes without touching its input', () => {
  const issues = new Issues()
  const spec = parseMap(
    {
      mappings: { 'data.user_id': 'data.user', page: 'path', event_type: 'data.kind' },
      set: { 'data.v': 2, 'data.o.k': 'x' },
      remove: ['data.meta.ip'],
    },
    '/map',
    issues,
  )
  assert.ok(spec, JSON.stringify(issues.list))
  const input = base()
  const snapshot = structuredClone(input)
  const out = compileMap(spec)(input)
  assert.deepEqual(out.data, { user: '7', path: '/a', kind: 'view', v: 2, o: { k: 'x' }, meta: { ua: 'x' } })
  assert.deepEqual(input, snapshot, 'input unchanged')
})

test('map rejects top-level targets and prototype paths', () => {
  const issues = new Issues()
  parseMap(
    { mappings: { 'data.a': 'event_type' }, set: { 'data.__proto__.x': 1 }, remove: ['source'] },
    '/map',
    issues,
  )
  assert.deepEqual(
    issues.list.map((i) => i.path),
    ['/map/mappings/data.a', '/map/set/data.__proto__.x', '/map/remove/0'],
  )
})

test('enrich joins rows and honours on_missing', () => {
  const rows = new Map([['7', { name: 'Ada', tier: 'gold' }]])
  const lookups = { get: (table: string, key: string) => (table === 'users' ? rows.get(key) : undefined) }
  const make = (on_missing: string) => {
    const issues = new Issues()
    const spec = parseEnrich(
      { table: 'users', key_field: 'data.user_id', target_field: 'data.user', on_missing },
      '/e',
      issues,
    )
    assert.ok(spec, JSON.stringify(issues.list))
    return compileEnrich(spec, lookups)
  }
  assert.deepEqual(make('keep')(base())?.data.user, { name: 'Ada', tier: 'gold' })
  const missing = { ...base(), data: { user_id: '8' } }
  assert.equal(make('keep')(missing), missing)
  assert.equal(make('drop')(missing), undefined)
  assert.equal(make('null')(missing)?.data.user, null)
  // a table updated in place is seen on the next event
  rows.set('8', { name: 'Bob', tier: 'free' })
  assert.deepEqual(make('drop')(missing)?.data.user, { name: 'Bob', tier: 'free' })
})

test('map: renames read the original event (a swap works), remove runs last', () => {
  const issues = new Issues()
  const spec = parseMap(
    { mappings: { 'data.a': 'data.b', 'data.b': 'data.a', 'data.c': 'data.d' }, remove: ['data.d'] },
    '/map',
    issues,
  )
  assert.ok(spec)
  const out = compileMap(spec)({ ...base(), data: { a: 1, b: 2, c: 3, keep: true } })
  assert.deepEqual(out.data, { keep: true, b: 1, a: 2 })
})
