import type { Issue } from '../engine/types.ts'

/**
 * Parses CSV (RFC 4180: quoted fields, doubled quotes, CRLF or LF) with a header line into rows of
 * strings keyed by the header names.
 */
export function parseCsv(
  text: string,
): { ok: true; rows: Array<Record<string, string>> } | { ok: false; issues: Issue[] } {
  const records: string[][] = []
  let field = ''
  let record: string[] = []
  let quoted = false
  let i = 0
  const n = text.length
  let line = 1
  while (i < n) {
    const c = text[i]
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"'
          i += 2
          continue
        }
        quoted = false
      } else {
        if (c === '\n') line++
        field += c
      }
      i++
      continue
    }
    if (c === '"' && field.length === 0) quoted = true
    else if (c === ',') {
      record.push(field)
      field = ''
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++
      record.push(field)
      field = ''
      if (!(record.length === 1 && record[0] === '')) records.push(record)
      record = []
      line++
    } else field += c
    i++
  }
  if (quoted)
    return { ok: false, issues: [{ path: '/', message: `unterminated quoted field (line ${line})` }] }
  if (field.length > 0 || record.length > 0) {
    record.push(field)
    records.push(record)
  }
  if (records.length === 0) return { ok: false, issues: [{ path: '/', message: 'needs a header line' }] }
  const header = records[0]
  if (new Set(header).size !== header.length || header.some((h) => h.length === 0))
    return { ok: false, issues: [{ path: '/', message: 'header names must be non-empty and distinct' }] }
  const rows: Array<Record<string, string>> = []
  for (let r = 1; r < records.length; r++) {
    const values = records[r]
    if (values.length !== header.length)
      return {
        ok: false,
        issues: [
          { path: `/${r}`, message: `row ${r} has ${values.length} fields, the header has ${header.length}` },
        ],
      }
    const row: Record<string, string> = {}
    for (let c = 0; c < header.length; c++) row[header[c]] = values[c]
    rows.push(row)
  }
  return { ok: true, rows }
}
