import { newKey } from '../../src/auth/api-keys.ts'

/** An admin key given as configuration (its hash, in DATAPULSE_API_KEYS), as an operator would. */
export function configuredAdmin(): { key: string; env: Record<string, string> } {
  const made = newKey()
  return {
    key: made.key,
    env: {
      DATAPULSE_API_KEYS: JSON.stringify([{ id: made.id, name: 'ops', role: 'admin', sha256: made.sha256 }]),
    },
  }
}

export const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` })
