import { PostgresStore } from '../../src/stores/postgres/postgres-store.ts'
import { freshDatabase } from '../helpers/postgres.ts'
import { storeContract } from './store-contract.ts'

storeContract('postgres', async (t) => {
  const url = await freshDatabase(t)
  if (url === undefined) return undefined
  const store = await PostgresStore.open(url)
  t.after(() => store.close())
  return store
})
