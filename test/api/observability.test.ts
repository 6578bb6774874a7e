import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parsePrometheusText } from '../helpers/prometheus-text.ts'
import { eventually, startServer } from '../helpers/server.ts'

test('GET /metrics is valid Prometheus text with ingest, pipeline, latency and runtime metrics', async (t) => {
  const server = await startServer(t)
  await server.call('POST', '/api/pipelines', {
    name: 'obs',
    source_topic: 'o',
    start: true,
    transformations: [
      { filter: { field: 'data.keep', operator: 'eq', value: true } },
      { aggregate: { window_seconds: 60, function: { sum: 'data.v' } } },
    ],
  })
  const events = [
    { event_type: 'e', source: 's', data: { keep: true, v: 1 } },
    { event_type: 'e', source: 's', data: { keep: false, v: 1 } },
    { event_type: 'e', source: 's', data: { keep: true } },
  ]
  await server.call('POST', '/api/events/ingest', { events })
  await server.call('POST', '/api/events/ingest', { events: [{ source: 'no type' }] })
  await eventually(async () =>
    (await server.call('GET', '/api/stats')).body.pipelines.items[0].stats.events_in === 3 ? true : undefined,
  )

  const res = await fetch(`${server.url}/metrics`)
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
  const families = parsePrometheusText(await res.text())
  const samples = [...families.values()].flatMap((f) => f.samples)
  const value = (name: string, labels: Record<string, string> = {}) =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
  assert.equal(families.get('datapulse_ingest_events_total')?.type, 'counter')
  assert.equal(value('datapulse_ingest_events_total'), 3)
  assert.ok((value('datapulse_ingest_bytes_total') ?? 0) > 100)
  assert.equal(value('datapulse_ingest_requests_total', { status: '200' }), 1)
  assert.equal(value('datapulse_ingest_requests_total', { status: '400' }), 1)
  assert.equal(value('datapulse_pipeline_events_in_total', { pipeline: 'obs' }), 3)
  assert.equal(value('datapulse_pipeline_filtered_total', { pipeline: 'obs' }), 1)
  assert.equal(value('datapulse_pipeline_errors_total', { pipeline: 'obs' }), 1)
  assert.equal(value('datapulse_pipeline_events_out_total', { pipeline: 'obs' }), 1)
  assert.equal(value('datapulse_pipeline_lag_events', { pipeline: 'obs' }), 0)
  assert.equal(value('datapulse_pipelines', { state: 'running' }), 1)
  assert.equal(families.get('datapulse_ingest_to_processed_seconds')?.type, 'histogram')
  assert.equal(value('datapulse_ingest_to_processed_seconds_count'), 1)
  assert.ok((value('datapulse_store_commit_seconds_count') ?? 0) >= 1)
  assert.ok(families.has('datapulse_nodejs_eventloop_lag_seconds'))
  assert.ok(families.has('datapulse_process_resident_memory_bytes'))
  // /api/stats reads the same counters
  const stats = (await server.call('GET', '/api/stats')).body
  assert.equal(stats.events.ingested_total, value('datapulse_ingest_events_total'))
  assert.equal(stats.filtered_events, value('datapulse_pipeline_filtered_total', { pipeline: 'obs' }))
})
