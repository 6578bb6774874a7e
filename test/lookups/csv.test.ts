import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseCsv } from '../../src/lookups/csv.ts'

test('CSV lookups: BOM, quotes, doubled quotes, embedded newlines, CRLF', () => {
  const parsed = parseCsv('\uFEFFid,name,note\r\n1,"Ada, L.","said ""hi"""\r\n2,Bob,"two\nlines"\n')
  assert.deepEqual(parsed, {
    ok: true,
    rows: [
      { id: '1', name: 'Ada, L.', note: 'said "hi"' },
      { id: '2', name: 'Bob', note: 'two\nlines' },
    ],
  })
  // the BOM is not part of the first header name
  assert.ok(parsed.ok && Object.keys(parsed.rows[0])[0] === 'id')
})

test('CSV lookups: malformed files are refused with the line at fault', () => {
  const refused: Array<[string, RegExp]> = [
    ['id,name\n"a"b,c\n', /^line 2: /],
    ['id,name\n1,2\n3\n', /^line 3: /],
    ['id,name\n1,"open\n', /^line \d: /],
    ['id,,name\n1,2,3\n', /^line 1: a header name is empty/],
    ['id,name,id\n1,2,3\n', /^line 1: the header name 'id' appears twice/],
    ['id,constructor\n1,2\n', /^line 1: the header name 'constructor' is not allowed/],
    ['id,__proto__\n1,2\n', /^line 1: the header name '__proto__' is not allowed/],
    ['', /^line 1: needs a header line/],
  ]
  for (const [text, message] of refused) {
    const r = parseCsv(text)
    assert.equal(r.ok, false, JSON.stringify(text))
    if (!r.ok) assert.match(r.issues[0].message, message, JSON.stringify(text))
  }
})
