/** What a key may do (DESIGN §8): read = every GET, write = ingest and metrics, admin = everything. */
export const ROLES = ['read', 'write', 'admin'] as const
export type Role = (typeof ROLES)[number]
/** What a route needs: a role, or nothing (health, the dashboard's files). */
export type RouteRole = Role | 'public'

/** Where a key was configured: a keys file or the environment (fixed), or the API (stored). */
export type KeySource = 'file' | 'env' | 'api'

/** A key as kept: never the key itself, only its SHA-256. */
export interface ApiKeyRecord {
  id: string
  name: string
  role: Role
  /** hex SHA-256 of the whole key */
  sha256: string
  createdAt: number
  /** epoch ms; null = never */
  expiresAt: number | null
  source: KeySource
}
