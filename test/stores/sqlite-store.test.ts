import { join } from 'node:path'
import { SqliteStore } from '../../src/stores/sqlite/sqlite-store.ts'
import { tempDir } from '../helpers/tmp.ts'
import { storeContract } from './store-contract.ts'

storeContract('sqlite', async (t) => {
  const store = new SqliteStore(join(tempDir(t), 'store.db'))
  t.after(() => store.close())
  return store
})
