import type { LookupSource } from '../engine/stages/enrich.ts'
import type { Store } from '../stores/store.ts'

/**
 * Lookup tables held in memory for `enrich`, persisted in the store. A table is replaced whole,
 * so running pipelines see the new rows on their next event, without a restart.
 */
export class Lookups implements LookupSource {
  readonly #tables = new Map<string, Map<string, Record<string, unknown>>>()
  readonly #store: Store

  constructor(store: Store) {
    this.#store = store
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
  }

  async delete(table: string): Promise<boolean> {
    const existed = await this.#store.deleteLookupTable(table)
    this.#tables.delete(table)
    return existed
  }
}
