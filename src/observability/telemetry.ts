import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { PipelineStats } from '../stores/store.ts'

/** What the collectors read at scrape time: the same counters /api/stats shows. */
export interface TelemetrySource {
  /** this instance's id, as the info metric's label (several instances scraped apart) */
  instanceId: string
  pipelines(): Array<{
    name: string
    stats: PipelineStats
    lag: number
    /** covered outbox messages the relay has not sent yet */
    outbox: number
    watermark: number | null
    running: boolean
  }>
}

const PIPELINE_COUNTERS: Array<[Exclude<keyof PipelineStats, 'replay'>, string]> = [
  ['events_in', 'events read by the pipeline'],
  ['events_out', 'events that passed every stage'],
  ['filtered', 'events dropped by filter (or enrich with on_missing: drop)'],
  ['late', 'events behind the watermark (dead-lettered)'],
  ['errors', 'events a stage could not process (dead-lettered)'],
  ['results', 'window results emitted (closed windows)'],
]

/** The engine's own metrics, in Prometheus text format at GET /metrics. */
export class Telemetry {
  readonly registry = new Registry()
  readonly ingestEvents: Counter
  readonly ingestBytes: Counter
  readonly ingestRequests: Counter<'status'>
  readonly ingestToProcessed: Histogram
  readonly storeCommit: Histogram
  readonly logAppend: Histogram

  constructor(source: TelemetrySource) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry, prefix: 'datapulse_', eventLoopMonitoringPrecision: 10 })
    this.ingestEvents = new Counter({
      name: 'datapulse_ingest_events_total',
      help: 'events accepted by POST /api/events/ingest',
      registers,
    })
    this.ingestBytes = new Counter({
      name: 'datapulse_ingest_bytes_total',
      help: 'request body bytes of accepted ingest requests',
      registers,
    })
    this.ingestRequests = new Counter({
      name: 'datapulse_ingest_requests_total',
      help: 'ingest requests by HTTP status',
      labelNames: ['status'],
      registers,
    })
    this.ingestToProcessed = new Histogram({
      name: 'datapulse_ingest_to_processed_seconds',
      help: 'from an event batch being durable in the log to the pipeline having applied it (open windows updated)',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    })
    this.storeCommit = new Histogram({
      name: 'datapulse_store_commit_seconds',
      help: 'store transactions of pipeline output (results, dead letters, series, checkpoints)',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1],
      registers,
    })
    this.logAppend = new Histogram({
      name: 'datapulse_log_append_seconds',
      help: 'log appends until durable (group commit included)',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1],
      registers,
    })
    for (const [field, help] of PIPELINE_COUNTERS) {
      new Counter({
        name: `datapulse_pipeline_${field}_total`,
        help,
        labelNames: ['pipeline'],
        registers,
        collect() {
          this.reset()
          for (const p of source.pipelines()) this.inc({ pipeline: p.name }, p.stats[field])
        },
      })
    }
    new Gauge({
      name: 'datapulse_instance_info',
      help: 'always 1; its label names the instance (in a cluster, each scrape says which one it was)',
      labelNames: ['instance_id'],
      registers,
    }).set({ instance_id: source.instanceId }, 1)
    new Gauge({
      name: 'datapulse_pipeline_lag_events',
      help: 'events on the source topic not yet processed (the queue in front of the pipeline)',
      labelNames: ['pipeline'],
      registers,
      collect() {
        this.reset()
        for (const p of source.pipelines()) this.set({ pipeline: p.name }, p.lag)
      },
    })
    new Gauge({
      name: 'datapulse_pipeline_outbox_messages',
      help: 'sink and .dlq messages a checkpoint covered that the relay has not sent to Kafka yet (exactly-once output)',
      labelNames: ['pipeline'],
      registers,
      collect() {
        this.reset()
        for (const p of source.pipelines()) if (p.running) this.set({ pipeline: p.name }, p.outbox)
      },
    })
    new Gauge({
      name: 'datapulse_pipeline_watermark_seconds',
      help: 'the event-time watermark of a windowed pipeline (epoch seconds)',
      labelNames: ['pipeline'],
      registers,
      collect() {
        this.reset()
        for (const p of source.pipelines())
          if (p.watermark !== null) this.set({ pipeline: p.name }, p.watermark / 1000)
      },
    })
    new Gauge({
      name: 'datapulse_pipelines',
      help: 'pipelines by state',
      labelNames: ['state'],
      registers,
      collect() {
        const all = source.pipelines()
        this.set({ state: 'running' }, all.filter((p) => p.running).length)
        this.set({ state: 'total' }, all.length)
      },
    })
  }
}
