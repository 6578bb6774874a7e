import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Issue } from '../engine/types.ts'
import { type ApiKeyRecord, ROLES, type Role } from './key-types.ts'

const PREFIX = 'dp_'
const ID_HEX = 16
/** `dp_<16 hex id>_<43 base64url characters: 256 random bits>` */
const KEY_PATTERN = /^dp_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/
export const KEY_ID_PATTERN = '^[0-9a-f]{16}$'
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9 ._:@-]{0,99}$/

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex')
}

/** A fresh key and the id it is known by; the key is shown once and kept only as its hash. */
export function newKey(): { id: string; key: string; sha256: string } {
  const id = randomBytes(ID_HEX / 2).toString('hex')
  const key = `${PREFIX}${id}_${randomBytes(32).toString('base64url')}`
  return { id, key, sha256: hashKey(key) }
}

/** The id part of a presented key, or undefined when it is not shaped like one of ours. */
export function keyIdOf(presented: string): string | undefined {
  return KEY_PATTERN.test(presented) ? presented.slice(PREFIX.length, PREFIX.length + ID_HEX) : undefined
}

const DUMMY = Buffer.alloc(32)

/** Compares the presented key's hash with the stored one in constant time. */
export function keyMatches(presented: string, record: ApiKeyRecord | undefined): boolean {
  const given = createHash('sha256').update(presented, 'utf8').digest()
  const stored = record ? Buffer.from(record.sha256, 'hex') : DUMMY
  const same = stored.length === given.length && timingSafeEqual(given, stored)
  return record !== undefined && same
}

export interface KeyInput {
  name: string
  role: Role
  expiresAt: number | null
}

/** Checks a name, role and expiry; issues are reported with `base` before each path. */
export function checkKeyInput(
  value: { name?: unknown; role?: unknown; expires_at?: unknown },
  base: string,
  now: number,
  issues: Issue[],
): KeyInput | undefined {
  const start = issues.length
  if (typeof value.name !== 'string' || !NAME_PATTERN.test(value.name))
    issues.push({
      path: `${base}/name`,
      message:
        'must be 1-100 characters: letters, digits, space and . _ : @ - (starting with a letter or digit)',
    })
  if (typeof value.role !== 'string' || !(ROLES as readonly string[]).includes(value.role))
    issues.push({ path: `${base}/role`, message: `must be one of ${ROLES.join(', ')}` })
  let expiresAt: number | null = null
  if (value.expires_at !== undefined && value.expires_at !== null) {
    const t = typeof value.expires_at === 'string' ? Date.parse(value.expires_at) : Number.NaN
    if (
      typeof value.expires_at !== 'string' ||
      !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/.test(value.expires_at) ||
      !Number.isFinite(t)
    )
      issues.push({ path: `${base}/expires_at`, message: 'must be an RFC 3339 timestamp or null' })
    else if (t <= now) issues.push({ path: `${base}/expires_at`, message: 'must be in the future' })
    else expiresAt = t
  }
  if (issues.length > start) return undefined
  return { name: value.name as string, role: value.role as Role, expiresAt }
}

/**
 * Parses configured keys: a JSON array (or `{"keys": [...]}`, or one entry per line) of
 * `{"id", "name", "role", "sha256", "expires_at"?}` as `npm run new-key` prints them.
 * Plain keys are refused: they would sit on disk in clear.
 */
export function parseConfiguredKeys(text: string, source: 'file' | 'env', where: string): ApiKeyRecord[] {
  let list: unknown
  try {
    const parsed: unknown = JSON.parse(text)
    list = Array.isArray(parsed) ? parsed : (parsed as { keys?: unknown; id?: unknown } | null)?.keys
    if (list === undefined && typeof parsed === 'object' && parsed !== null && 'id' in parsed) list = [parsed]
  } catch (err) {
    // one entry per line, as `npm run new-key >> keys.ndjson` leaves them
    const lines = text.split('\n').filter((l) => l.trim() !== '')
    try {
      list = lines.map((l) => JSON.parse(l) as unknown)
    } catch {
      throw new Error(`${where} is not JSON (nor one JSON entry per line): ${(err as Error).message}`)
    }
  }
  if (!Array.isArray(list))
    throw new Error(`${where} must be a JSON array of keys, {"keys": [...]}, or one entry per line`)
  const seen = new Set<string>()
  return list.map((entry: unknown, i) => {
    const e = (entry ?? {}) as Record<string, unknown>
    const issues: Issue[] = []
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      throw new Error(`${where}: key ${i} must be an object`)
    if ('key' in e) throw new Error(`${where}: key ${i} holds a plain key; give its sha256 (npm run new-key)`)
    const input = checkKeyInput(e, `/${i}`, Number.NEGATIVE_INFINITY, issues)
    if (typeof e.id !== 'string' || !new RegExp(KEY_ID_PATTERN).test(e.id))
      issues.push({ path: `/${i}/id`, message: 'must be 16 lowercase hex digits' })
    else if (seen.has(e.id)) issues.push({ path: `/${i}/id`, message: 'appears twice' })
    if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256))
      issues.push({ path: `/${i}/sha256`, message: 'must be 64 lowercase hex digits' })
    if (issues.length > 0 || !input) throw new Error(`${where}: ${issues[0].path} ${issues[0].message}`)
    seen.add(e.id as string)
    return {
      id: e.id as string,
      name: input.name,
      role: input.role,
      sha256: e.sha256 as string,
      createdAt: 0,
      expiresAt: input.expiresAt,
      source,
    }
  })
}
