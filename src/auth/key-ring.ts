import { AppError, notFound, type Outcome, validationError } from '../errors.ts'
import type { Store } from '../stores/store.ts'
import { checkKeyInput, keyIdOf, keyMatches, newKey } from './api-keys.ts'
import type { ApiKeyRecord } from './key-types.ts'

export type Authentication = { ok: true; key: ApiKeyRecord } | { ok: false; reason: 'invalid' | 'expired' }

/**
 * Every API key the server accepts: the configured ones (keys file, environment) and those made
 * through the API (kept in the store, as hashes). Once any key exists, every non-public route
 * needs one.
 */
export class KeyRing {
  readonly #store: Store
  readonly #configured: ApiKeyRecord[]
  #keys = new Map<string, ApiKeyRecord>()
  /** called after a key is made or deleted here (a cluster tells the other instances) */
  onChange: () => void = () => undefined

  private constructor(store: Store, configured: ApiKeyRecord[], stored: ApiKeyRecord[]) {
    this.#store = store
    this.#configured = configured
    this.#set(stored)
  }

  static async open(configured: ApiKeyRecord[], store: Store): Promise<KeyRing> {
    return new KeyRing(store, configured, await store.listApiKeys())
  }

  /** Reads the stored keys again (another instance made or deleted one). */
  async reload(): Promise<void> {
    this.#set(await this.#store.listApiKeys())
  }

  #set(stored: ApiKeyRecord[]): void {
    // a configured key wins over a stored one with the same id
    this.#keys = new Map([...stored, ...this.#configured].map((k) => [k.id, k]))
  }

  /** true once any key exists: requests then need one */
  get required(): boolean {
    return this.#keys.size > 0
  }

  authenticate(presented: string, now: number): Authentication {
    const id = keyIdOf(presented)
    const record = id === undefined ? undefined : this.#keys.get(id)
    // the hash is compared even when no record matches, so a miss costs what a hit does
    if (!keyMatches(presented, record) || !record) return { ok: false, reason: 'invalid' }
    if (record.expiresAt !== null && record.expiresAt <= now) return { ok: false, reason: 'expired' }
    return { ok: true, key: record }
  }

  /** still valid at `now` (a stream checks its key on every update) */
  isValid(id: string, now: number): boolean {
    const record = this.#keys.get(id)
    return record !== undefined && (record.expiresAt === null || record.expiresAt > now)
  }

  list(): ApiKeyRecord[] {
    return [...this.#keys.values()].sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id))
  }

  /** Makes a key; the plain key is returned this once and kept only as its hash. */
  async create(body: unknown, now: number): Promise<Outcome<{ record: ApiKeyRecord; key: string }>> {
    const issues: { path: string; message: string }[] = []
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      return { ok: false, error: validationError([{ path: '/', message: 'must be an object' }]) }
    for (const k of Object.keys(body))
      if (!['name', 'role', 'expires_at'].includes(k))
        issues.push({ path: `/${k}`, message: 'is not a key field (name, role, expires_at)' })
    const input = checkKeyInput(body as Record<string, unknown>, '', now, issues)
    if (!input || issues.length > 0) return { ok: false, error: validationError(issues) }
    if (!this.required && input.role !== 'admin')
      return {
        ok: false,
        error: new AppError(
          'conflict',
          'the first key must have role admin: once a key exists every request needs one, and only an admin can make more',
        ),
      }
    const made = newKey()
    const record: ApiKeyRecord = { id: made.id, sha256: made.sha256, createdAt: now, source: 'api', ...input }
    await this.#store.insertApiKey(record)
    this.#keys.set(record.id, record)
    this.onChange()
    return { ok: true, value: { record, key: made.key } }
  }

  async remove(id: string, now: number): Promise<Outcome<void>> {
    const record = this.#keys.get(id)
    if (!record) return { ok: false, error: notFound('key', id) }
    if (record.source !== 'api')
      return {
        ok: false,
        error: new AppError(
          'conflict',
          `key '${id}' comes from the ${record.source === 'file' ? 'keys file' : 'environment'}: remove it there and restart`,
        ),
      }
    const otherAdmins = this.list().filter(
      (k) => k.id !== id && k.role === 'admin' && this.isValid(k.id, now),
    )
    if (record.role === 'admin' && otherAdmins.length === 0 && this.#keys.size > 1)
      return {
        ok: false,
        error: new AppError(
          'conflict',
          `key '${id}' is the last admin key: make another admin key first, or delete the other keys first`,
        ),
      }
    await this.#store.deleteApiKey(id)
    this.#keys.delete(id)
    this.onChange()
    return { ok: true, value: undefined }
  }
}
