import type { LookupSource } from '../engine/stages/enrich.ts'
import type { Store } from '../stores/store.ts'

/**
 * Lookup tables held in memory for `enrich`, persisted in the store. A table is replaced whole,
 * so running pipelines see the new rows on their next event, without a restart.
 */
export class Lookups implements LookupSource {
  readonly #tables = new Map<string, Map<string, Record<string, unknown>>>()
  readonly #store: Store
  /** called after a table is replaced or deleted here (a cluster tells the other instances) */
  onChange: (table: string) => void = () => undefined

  constructor(store: Store) {
    this.#store = store
  }

  /** Reads one table again (another instance replaced or deleted it). */
  async reload(table: string): Promise<void> {
    const rows = await this.#store.loadLookupTable(table)
    if (rows) this.#tables.set(table, rows)
    else this.#tables.delete(table)
  }

  async load(): Promise<void> {
    for (const info of await this.#store.listLookupTables()) {
      const rows = await this.#store.loadLookupTable(info.name)
      if (rows) this.#tables.set(info.name, rows)
    }
  }

  get(table: string, key: string): Record<string, unknown> | undefined {
    return this.#tables.get(table)?.get(key)
  }

  /** Every row of a table, in key order of upload, or undefined for an unknown table. */
  rows(table: string): Array<Record<string, unknown>> | undefined {
    const t = this.#tables.get(table)
    return t && [...t.values()]
  }

  has(table: string): boolean {
    return this.#tables.has(table)
  }

  async put(
    table: string,
    keyField: string,
    rows: Array<[string, Record<string, unknown>]>,
    at: number,
  ): Promise<void> {
    await this.#store.putLookupTable(table, keyField, rows, at)
    this.#tables.set(table, new Map(rows))
    this.onChange(table)
  }

  async delete(table: string): Promise<boolean> {
    const existed = await this.#store.deleteLookupTable(table)
    this.#tables.delete(table)
    this.onChange(table)
    return existed
  }
}
