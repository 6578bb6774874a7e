/**
 * One rule for group-key filters (`?key.<path>=<text>` on /window), used for open windows and by
 * every store, so a window matches the same filter before and after it closes. Typed:
 * - a string key value matches its exact text (or, when the text is a quoted JSON string such as
 *   `"10"`, that string only);
 * - a number matches a text in JSON number syntax of the same value (`1e21`, `1E+21` and
 *   `1000000000000000000000` all match 1e21; `10.0` matches 10);
 * - a boolean matches `true` or `false`; null (or a missing field) matches `null`;
 * - an object or array matches its JSON text.
 */
export interface KeyValueFilter {
  /** the text as given */
  text: string
  /** the string a string key value must equal */
  string: string
  /** set when the text is a JSON number (and not a quoted string) */
  number: number | undefined
  /** set when the text is `true` or `false` */
  boolean: boolean | undefined
  /** the text is `null` */
  null: boolean
  /** set when the text is a JSON object or array: that JSON, as JSON.stringify writes it */
  structured: string | undefined
}

const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/

export function parseKeyValue(text: string): KeyValueFilter {
  if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) {
    try {
      const quoted: unknown = JSON.parse(text)
      if (typeof quoted === 'string')
        return {
          text,
          string: quoted,
          number: undefined,
          boolean: undefined,
          null: false,
          structured: undefined,
        }
    } catch {
      // not a JSON string: the text as it is
    }
  }
  const n = JSON_NUMBER.test(text) ? Number(text) : Number.NaN
  let structured: string | undefined
  if (text.startsWith('{') || text.startsWith('[')) {
    try {
      structured = JSON.stringify(JSON.parse(text))
    } catch {
      // a string that looks like JSON, and is not
    }
  }
  return {
    structured,
    text,
    string: text,
    number: Number.isFinite(n) ? n : undefined,
    boolean: text === 'true' ? true : text === 'false' ? false : undefined,
    null: text === 'null',
  }
}

export function keyValueMatches(filter: KeyValueFilter, value: unknown): boolean {
  switch (typeof value) {
    case 'string':
      return value === filter.string
    case 'number':
      return filter.number === value
    case 'boolean':
      return filter.boolean === value
    case 'undefined':
      return filter.null
    default:
      return value === null
        ? filter.null
        : filter.structured !== undefined && JSON.stringify(value) === filter.structured
  }
}

/** Every key value a filter matches: an index looks these up. */
export function matchingValues(filter: KeyValueFilter): unknown[] {
  const out: unknown[] = [filter.string]
  if (filter.number !== undefined) out.push(filter.number)
  if (filter.boolean !== undefined) out.push(filter.boolean)
  if (filter.null) out.push(null)
  if (filter.structured !== undefined) out.push(JSON.parse(filter.structured))
  return out
}

/** Parses every path's filter (from `{path: text}`). */
export function parseKeyFilters(
  filters: Record<string, string>,
): Array<[path: string, filter: KeyValueFilter]> {
  return Object.entries(filters).map(([path, text]) => [path, parseKeyValue(text)])
}

/** A window key (`{path: value}`, null without group_by) passes every filter. */
export function keyPasses(
  filters: ReadonlyArray<[path: string, filter: KeyValueFilter]>,
  key: Record<string, unknown> | null,
): boolean {
  for (const [path, filter] of filters) if (!keyValueMatches(filter, key?.[path])) return false
  return true
}
