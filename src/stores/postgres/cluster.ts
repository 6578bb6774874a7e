import pg from 'pg'
import type { Row } from '../rows.ts'
import type {
  Acquired,
  ClusterChange,
  ClusterStore,
  Fence,
  Handover,
  InstanceRecord,
  LeaseRecord,
} from '../store.ts'

const CHANNEL = 'datapulse_cluster'
/** the database's clock in epoch ms: leases never depend on instances agreeing on time */
const NOW = '(extract(epoch from clock_timestamp()) * 1000)::bigint'
const RECONNECT_MS = 1_000

function leaseOf(r: Row): LeaseRecord {
  return {
    pipelineId: r.pipeline_id as string,
    instanceId: r.instance_id as string,
    epoch: r.epoch as number,
    acquiredAt: r.acquired_at as number,
    renewedAt: r.renewed_at as number,
    expiresAt: r.expires_at as number,
    handover: r.handover === null ? null : (JSON.parse(r.handover as string) as Handover),
  }
}

function instanceOf(r: Row): InstanceRecord {
  return {
    id: r.id as string,
    url: r.url as string,
    startedAt: r.started_at as number,
    lastSeen: r.last_seen as number,
  }
}

function isChange(v: unknown): v is ClusterChange {
  const c = v as ClusterChange
  return (
    typeof c === 'object' &&
    c !== null &&
    (c.kind === 'pipeline' || c.kind === 'keys' || c.kind === 'lookups' || c.kind === 'instances') &&
    typeof c.id === 'string' &&
    typeof c.from === 'string'
  )
}

/**
 * Instances, leases and announcements on PostgreSQL: a lease row per running pipeline (its epoch
 * fences commits, see PostgresStore.commit), a row per instance renewed every heartbeat, and
 * LISTEN/NOTIFY on one channel for changes every instance must see at once.
 */
export class PostgresCluster implements ClusterStore {
  readonly #pool: pg.Pool
  readonly #connectionString: string

  constructor(pool: pg.Pool, connectionString: string) {
    this.#pool = pool
    this.#connectionString = connectionString
  }

  async heartbeat(instance: Omit<InstanceRecord, 'lastSeen'>, leaseMs: number): Promise<LeaseRecord[]> {
    await this.#pool.query(
      `INSERT INTO instances (id, url, started_at, last_seen) VALUES ($1, $2, $3, ${NOW})
       ON CONFLICT (id) DO UPDATE SET url = excluded.url, started_at = excluded.started_at, last_seen = excluded.last_seen`,
      [instance.id, instance.url, instance.startedAt],
    )
    const { rows } = await this.#pool.query(
      `UPDATE pipeline_owners SET renewed_at = ${NOW}, expires_at = ${NOW} + $2
       WHERE instance_id = $1 AND expires_at > 0 RETURNING *`,
      [instance.id, leaseMs],
    )
    return rows.map(leaseOf)
  }

  async leave(instanceId: string): Promise<void> {
    await this.#pool.query('UPDATE instances SET last_seen = 0 WHERE id = $1', [instanceId])
  }

  async instances(aliveMs: number): Promise<InstanceRecord[]> {
    const { rows } = await this.#pool.query(
      `SELECT * FROM instances WHERE last_seen >= ${NOW} - $1 ORDER BY id`,
      [aliveMs],
    )
    return rows.map(instanceOf)
  }

  async leases(): Promise<LeaseRecord[]> {
    const { rows } = await this.#pool.query('SELECT * FROM pipeline_owners ORDER BY pipeline_id')
    return rows.map(leaseOf)
  }

  async acquire(pipelineId: string, instanceId: string, leaseMs: number): Promise<Acquired | undefined> {
    // one statement: of two instances racing for an expired lease, the second sees the first's row
    const { rows } = await this.#pool.query(
      `WITH prev AS (SELECT instance_id, renewed_at, expires_at FROM pipeline_owners WHERE pipeline_id = $1)
       INSERT INTO pipeline_owners (pipeline_id, instance_id, epoch, acquired_at, renewed_at, expires_at, handover)
       SELECT $1, $2, 1, ${NOW}, ${NOW}, ${NOW} + $3, NULL WHERE EXISTS (SELECT 1 FROM pipelines WHERE id = $1)
       ON CONFLICT (pipeline_id) DO UPDATE
         SET instance_id = excluded.instance_id, epoch = pipeline_owners.epoch + 1,
           acquired_at = excluded.acquired_at, renewed_at = excluded.renewed_at, expires_at = excluded.expires_at
         WHERE pipeline_owners.expires_at < ${NOW} OR pipeline_owners.instance_id = excluded.instance_id
       RETURNING *, (SELECT instance_id FROM prev) AS prev_instance, (SELECT renewed_at FROM prev) AS prev_renewed,
         (SELECT expires_at FROM prev) AS prev_expires`,
      [pipelineId, instanceId, leaseMs],
    )
    const r = rows[0]
    if (r === undefined) return undefined
    return {
      lease: leaseOf(r),
      previous:
        r.prev_instance === null
          ? undefined
          : {
              instanceId: r.prev_instance,
              renewedAt: Number(r.prev_renewed),
              released: Number(r.prev_expires) === 0,
            },
    }
  }

  async release(pipelineId: string, fence: Fence): Promise<void> {
    // kept, expired (0: released, not renewed again): the next owner still sees who ran it last and when
    await this.#pool.query(
      `UPDATE pipeline_owners SET renewed_at = ${NOW}, expires_at = 0
       WHERE pipeline_id = $1 AND instance_id = $2 AND epoch = $3`,
      [pipelineId, fence.instanceId, fence.epoch],
    )
  }

  async recordHandover(pipelineId: string, fence: Fence, handover: Handover): Promise<void> {
    await this.#pool.query(
      'UPDATE pipeline_owners SET handover = $4 WHERE pipeline_id = $1 AND instance_id = $2 AND epoch = $3',
      [pipelineId, fence.instanceId, fence.epoch, JSON.stringify(handover)],
    )
  }

  async announce(change: ClusterChange): Promise<void> {
    await this.#pool.query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify(change)])
  }

  /**
   * A connection of its own that LISTENs (a pooled one would be handed to others). When it drops it
   * is opened again; `onChange` then gets a `pipeline` change with id '' (anything may have changed
   * meanwhile: reload everything).
   */
  async listen(onChange: (change: ClusterChange) => void): Promise<() => Promise<void>> {
    let client: pg.Client | undefined
    let stopped = false
    let timer: NodeJS.Timeout | undefined
    const open = async (): Promise<void> => {
      const c = new pg.Client({ connectionString: this.#connectionString })
      c.on('error', () => undefined)
      c.on('end', () => {
        if (stopped || client !== c) return
        client = undefined
        timer = setTimeout(reopen, RECONNECT_MS)
      })
      c.on('notification', (n) => {
        if (n.channel !== CHANNEL || n.payload === undefined) return
        try {
          const change: unknown = JSON.parse(n.payload)
          if (isChange(change)) onChange(change)
        } catch {
          // not ours: ignored
        }
      })
      await c.connect()
      await c.query(`LISTEN ${CHANNEL}`)
      client = c
    }
    const reopen = () => {
      if (stopped) return
      open()
        .then(() => onChange({ kind: 'pipeline', id: '', from: '' }))
        .catch(() => {
          timer = setTimeout(reopen, RECONNECT_MS)
        })
    }
    await open()
    return async () => {
      stopped = true
      clearTimeout(timer)
      await client?.end().catch(() => undefined)
    }
  }
}
