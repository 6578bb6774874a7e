import { ProducerFencedError, type TransactionalOutput, type TransactionalSender } from '../log/log.ts'
import { Wakeable } from '../log/wake.ts'
import type { Logger } from '../logger.ts'
import type { Store } from '../stores/store.ts'

/** Outbox messages per Kafka transaction (whole batches: one more than this may go when the first is larger). */
const RELAY_BATCH = 5_000
/** How long an idle relay waits before it looks at the outbox again (a checkpoint wakes it sooner). */
const IDLE_WAIT_MS = 500
const BACKOFF_MAX_MS = 5_000

export interface RelayOptions {
  pipelineId: string
  store: Store
  output: TransactionalOutput
  logger: Logger
  /** false once this process may no longer own the pipeline: a relay then opens no producer (it would fence the owner's) */
  owned?: () => boolean
  /** the relay was fenced by a newer one of the pipeline, or lost its ownership: it has stopped */
  onFenced: (err: Error) => void
}

/**
 * Sends one pipeline's outbox to Kafka: the messages a checkpoint covers, oldest first, each batch
 * in one transaction with the seq to relay next, then trims what was sent. Its producer's
 * transactional.id is the pipeline's, so opening it fences a former owner's relay; where it
 * starts is what the last committed transaction says, so nothing is sent twice or skipped.
 */
export class OutboxRelay {
  readonly #o: RelayOptions
  #sender: TransactionalSender | undefined
  #next = 0
  #loop: Promise<void> | undefined
  #stopping = false
  readonly #wake = new Wakeable()
  #degraded: string | undefined
  /** covered messages not yet sent, as far as this run knows (what it covered minus what it sent) */
  #backlog = 0
  /** resolved when a read finds nothing left */
  #idle: Array<() => void> = []
  /** waiting for the backlog to fall */
  #room: Array<() => void> = []

  constructor(options: RelayOptions) {
    this.#o = options
  }

  /** Why sending fails right now (it keeps retrying), or undefined. */
  get degraded(): string | undefined {
    return this.#degraded
  }

  get backlog(): number {
    return this.#backlog
  }

  /**
   * Starts sending: first it opens the producer (fencing any other of the pipeline), retrying
   * while Kafka is away or a former owner's last transaction is still being completed. The runner
   * does not wait for it: its commits are fenced by the store, and nothing is sent before the open.
   */
  start(): void {
    this.#loop = this.#run()
  }

  /** A checkpoint covered `count` more messages: send them now. */
  covered(count: number): void {
    this.#backlog += count
    this.#wake.wake()
  }

  /** Resolves once the backlog is at most `max` (or the relay stopped). */
  async room(max: number): Promise<void> {
    while (this.#backlog > max && !this.#stopping)
      await new Promise<void>((resolve) => this.#room.push(resolve))
  }

  /** Waits until everything covered so far is sent, at most `timeoutMs` (what is left stays in the outbox). */
  async drain(timeoutMs: number): Promise<boolean> {
    // a relay that stopped (fenced) sends nothing more: no drain to wait for
    if (!this.#loop || this.#stopping) return false
    this.#wake.wake()
    let timer: NodeJS.Timeout | undefined
    const drained = await Promise.race([
      new Promise<boolean>((resolve) => this.#idle.push(() => resolve(true))),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs)
      }),
    ])
    clearTimeout(timer)
    return drained
  }

  async stop(): Promise<void> {
    this.#stopping = true
    this.#wake.wake()
    this.#release(this.#room)
    await this.#loop
    await this.#sender?.close()
    this.#sender = undefined
  }

  /** Not owned any more, as far as this process can tell (it may have been frozen): nothing more may be sent. */
  #checkOwned(): void {
    if (this.#o.owned && !this.#o.owned())
      throw new ProducerFencedError(this.#o.pipelineId, 'this instance may no longer own the pipeline')
  }

  async #open(): Promise<void> {
    this.#checkOwned()
    const sender = await this.#o.output.openSender(this.#o.pipelineId)
    this.#sender = sender
    // where the last committed transaction left off; never before what this run already sent
    this.#next = Math.max(this.#next, sender.next ?? 0)
  }

  async #run(): Promise<void> {
    const { store, pipelineId, logger } = this.#o
    let delay = 200
    while (!this.#stopping) {
      // a drain waits for a read that began after it asked
      const draining = this.#idle.splice(0)
      try {
        if (!this.#sender) await this.#open()
        const sender = this.#sender as TransactionalSender
        const batches = await store.readOutbox(pipelineId, this.#next, RELAY_BATCH)
        if (batches.length === 0) {
          this.#backlog = 0
          this.#release(this.#room)
          this.#release(draining)
          await this.#wake.wait(IDLE_WAIT_MS)
          continue
        }
        this.#idle.unshift(...draining)
        this.#checkOwned()
        await sender.send(batches)
        this.#next = batches[batches.length - 1].seq + 1
        let sent = 0
        for (const b of batches) sent += b.messages.length
        this.#backlog = Math.max(0, this.#backlog - sent)
        this.#degraded = undefined
        delay = 200
        this.#release(this.#room)
        await store.trimOutbox(pipelineId, this.#next)
      } catch (err) {
        this.#idle.unshift(...draining)
        const e = err as Error
        if (e instanceof ProducerFencedError) {
          logger.warn({ pipeline: pipelineId, err: e.message }, 'relay stopped: the pipeline moved')
          this.#stopping = true
          this.#release(this.#room)
          this.#o.onFenced(e)
          break
        }
        this.#degraded = `sending the outbox to Kafka: ${e.message}`
        logger.warn({ pipeline: pipelineId, err: this.#degraded }, 'retrying')
        // a transaction whose answer was lost may have committed: a new producer reads where it stands
        await this.#sender?.close()
        this.#sender = undefined
        // a stop ends the wait
        await this.#wake.wait(delay)
        delay = Math.min(delay * 2, BACKOFF_MAX_MS)
      }
    }
  }

  #release(waiting: Array<() => void>): void {
    for (const resolve of waiting.splice(0)) resolve()
  }
}
