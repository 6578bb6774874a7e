/** The bytes a JSON body was parsed from, by the parsed object: the log can store them as they came. */
const raw = new WeakMap<object, Buffer>()

export function rememberRawBody(parsed: unknown, bytes: Buffer): void {
  if (typeof parsed === 'object' && parsed !== null) raw.set(parsed, bytes)
}

export function rawBodyOf(parsed: unknown): Buffer | undefined {
  return typeof parsed === 'object' && parsed !== null ? raw.get(parsed) : undefined
}
