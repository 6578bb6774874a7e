import type { Logger } from '../logger.ts'
import type { Acquired, ClusterStore, Fence, InstanceRecord, LeaseRecord } from '../stores/store.ts'

/** Below the lease's length by this much a lease counts as no longer surely held (clock rates differ a little). */
const SAFETY_MS = 1_000

export interface MembershipOptions {
  cluster: ClusterStore
  instanceId: string
  /** where the others reach this instance (known once the server listens) */
  url: () => string
  startedAt: number
  leaseMs: number
  heartbeatMs: number
  logger: Logger
  /** after every heartbeat, with the leases this instance still holds */
  onBeat: (held: ReadonlySet<string>) => void
}

interface Held {
  lease: LeaseRecord
  /** performance.now() past which the lease may have expired (from when its renewal was sent) */
  validUntil: number
}

/** The cluster as one instance sees it, for GET /api/cluster. */
export interface ClusterView {
  instance: string
  leaseMs: number
  instances: InstanceRecord[]
  leases: LeaseRecord[]
}

/**
 * This instance's place in a cluster: it says it is alive every heartbeat (renewing the leases it
 * holds), takes leases, and knows, as of the last heartbeat, who else is alive and who runs what.
 */
export class ClusterMembership {
  readonly instanceId: string
  readonly leaseMs: number
  readonly #o: MembershipOptions
  readonly #held = new Map<string, Held>()
  #instances: InstanceRecord[] = []
  #leases: LeaseRecord[] = []
  #timer: NodeJS.Timeout | undefined
  #beating: Promise<void> | undefined
  #stopped = false

  constructor(options: MembershipOptions) {
    this.#o = options
    this.instanceId = options.instanceId
    this.leaseMs = options.leaseMs
  }

  async start(): Promise<void> {
    await this.beat()
    this.#timer = setInterval(() => void this.beat(), this.#o.heartbeatMs)
    this.#timer.unref()
  }

  /** One heartbeat (also run at once when something changed); never two at a time. */
  beat(): Promise<void> {
    this.#beating ??= this.#beat().finally(() => {
      this.#beating = undefined
    })
    return this.#beating
  }

  async #beat(): Promise<void> {
    if (this.#stopped) return
    const { cluster, instanceId, url, startedAt, leaseMs } = this.#o
    const sentAt = performance.now()
    try {
      const renewed = await cluster.heartbeat({ id: instanceId, url: url(), startedAt }, leaseMs)
      const still = new Map(renewed.map((l) => [l.pipelineId, l]))
      for (const [id, held] of this.#held) {
        const lease = still.get(id)
        if (lease === undefined || lease.epoch !== held.lease.epoch) this.#held.delete(id)
        else this.#held.set(id, { lease, validUntil: sentAt + leaseMs - SAFETY_MS })
      }
      ;[this.#instances, this.#leases] = await Promise.all([cluster.instances(leaseMs), cluster.leases()])
    } catch (err) {
      // the leases run out by themselves if this goes on: owned() says so, and runners stop
      this.#o.logger.warn({ err: (err as Error).message }, 'cluster heartbeat failed')
    }
    if (!this.#stopped) this.#o.onBeat(new Set(this.#held.keys()))
  }

  /** Takes the pipeline's lease if it is free, expired or this instance's own (a new epoch either way). */
  async acquire(pipelineId: string): Promise<Acquired | undefined> {
    const sentAt = performance.now()
    const got = await this.#o.cluster.acquire(pipelineId, this.instanceId, this.leaseMs)
    if (got) {
      this.#held.set(pipelineId, { lease: got.lease, validUntil: sentAt + this.leaseMs - SAFETY_MS })
      this.#leases = [...this.#leases.filter((l) => l.pipelineId !== pipelineId), got.lease]
    }
    return got
  }

  /** Whether `fence` is still this instance's lease for sure (not past its length since its last renewal). */
  owns(pipelineId: string, fence: Fence): boolean {
    const held = this.#held.get(pipelineId)
    return held !== undefined && held.lease.epoch === fence.epoch && performance.now() < held.validUntil
  }

  async release(pipelineId: string, fence: Fence): Promise<void> {
    this.#held.delete(pipelineId)
    await this.#o.cluster.release(pipelineId, fence).catch((err: Error) => {
      this.#o.logger.warn(
        { pipeline: pipelineId, err: err.message },
        'releasing the lease failed; it expires',
      )
    })
  }

  forget(pipelineId: string): void {
    this.#held.delete(pipelineId)
  }

  /** The live instance (other than this one) whose lease on the pipeline has not expired, as of the last heartbeat. */
  ownerElsewhere(pipelineId: string): InstanceRecord | undefined {
    if (this.#held.has(pipelineId)) return undefined
    const lease = this.#leases.find((l) => l.pipelineId === pipelineId && l.expiresAt > 0)
    if (!lease || lease.instanceId === this.instanceId) return undefined
    return this.#instances.find((i) => i.id === lease.instanceId)
  }

  /** Whether another live instance holds the pipeline's lease (so this one should not try to take it). */
  heldElsewhere(pipelineId: string): boolean {
    return this.ownerElsewhere(pipelineId) !== undefined
  }

  /** The most pipelines this instance should run of `running`: an even share over the live instances. */
  share(running: number): number {
    const alive = Math.max(1, this.#instances.filter((i) => i.id !== this.instanceId).length + 1)
    return Math.ceil(running / alive)
  }

  /** Whether another live instance runs fewer than its share of `running` pipelines (one could be handed to it). */
  peerBelowShare(running: number): boolean {
    const others = this.#instances.filter((i) => i.id !== this.instanceId)
    const share = Math.ceil(running / (others.length + 1))
    return others.some(
      (i) => this.#leases.filter((l) => l.instanceId === i.id && l.expiresAt > 0).length < share,
    )
  }

  view(): ClusterView {
    return {
      instance: this.instanceId,
      leaseMs: this.leaseMs,
      instances: this.#instances,
      leases: this.#leases,
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#timer)
    await this.#beating
  }
}
