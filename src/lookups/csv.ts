import { CsvError, parse } from 'csv-parse/sync'
import { isForbiddenKey } from '../engine/fields.ts'
import type { Issue } from '../engine/types.ts'

type CsvRows = { ok: true; rows: Array<Record<string, string>> } | { ok: false; issues: Issue[] }

function refuse(line: number, message: string): CsvRows {
  return { ok: false, issues: [{ path: '/', message: `line ${line}: ${message}` }] }
}

/**
 * Parses CSV (RFC 4180, through csv-parse: quoted fields, doubled quotes, embedded newlines, CRLF
 * or LF, a leading BOM) with a header line into rows of strings keyed by the header names. Stray
 * quotes, rows of another width, and empty, repeated or prototype-reaching header names are
 * refused with their line.
 */
export function parseCsv(text: string): CsvRows {
  let records: string[][]
  try {
    records = parse(text, {
      bom: true,
      skip_empty_lines: true,
      relax_column_count: false,
      record_delimiter: ['\r\n', '\n', '\r'],
    })
  } catch (err) {
    if (err instanceof CsvError) return refuse(typeof err.lines === 'number' ? err.lines : 1, err.message)
    throw err
  }
  if (records.length === 0) return refuse(1, 'needs a header line')
  const header = records[0]
  const seen = new Set<string>()
  for (const name of header) {
    if (name.length === 0) return refuse(1, 'a header name is empty')
    if (isForbiddenKey(name)) return refuse(1, `the header name '${name}' is not allowed`)
    if (seen.has(name)) return refuse(1, `the header name '${name}' appears twice`)
    seen.add(name)
  }
  const rows: Array<Record<string, string>> = []
  for (let r = 1; r < records.length; r++) {
    const values = records[r]
    const row: Record<string, string> = {}
    for (let c = 0; c < header.length; c++) row[header[c]] = values[c]
    rows.push(row)
  }
  return { ok: true, rows }
}
