import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { Admin } from '@platformatic/kafka'
import { type KafkaBroker, startKafka } from '../../scripts/kafka.ts'
import { consumeUntil, kafkaSkipReason, plainProducer } from '../helpers/kafka.ts'
import { eventually, startServer } from '../helpers/server.ts'

describe('Kafka source and sink topics on a real broker', () => {
  let broker: KafkaBroker | undefined
  let skipped = ''
  before(async () => {
    skipped = kafkaSkipReason() ?? ''
    if (!skipped) broker = await startKafka()
  })
  after(async () => broker?.destroy())

  const kafkaServer = (t: import('node:test').TestContext) =>
    startServer(t, { env: { KAFKA_BROKERS: broker!.brokers, DATAPULSE_CHECKPOINT_INTERVAL_MS: '100' } })

  // exactly once (the default) and at least once (the runner produces itself): the same output
  for (const [delivery, suffix] of [
    ['exactly-once', ''],
    ['at-least-once', '-alo'],
  ] as const)
    test(`the seed's pipeline reads user-events and writes windowed counts to processed-events (${delivery})`, async (t) => {
      if (!broker) return t.skip(skipped)
      const server = await startServer(t, {
        env: {
          KAFKA_BROKERS: broker.brokers,
          DATAPULSE_CHECKPOINT_INTERVAL_MS: '100',
          KAFKA_DELIVERY: delivery,
        },
      })
      const created = await server.call('POST', '/api/pipelines', {
        name: `user-analytics${suffix}`,
        source_topic: `user-events${suffix}`,
        sink_topic: `processed-events${suffix}`,
        start: true,
        transformation: {
          aggregate: {
            window_seconds: 5,
            function: { count: null },
            group_by: ['data.page'],
            idle_timeout_seconds: 0.5,
          },
        },
      })
      assert.equal(created.status, 201, JSON.stringify(created.body))
      // without group_by, results carry a null Kafka key (not the text "null")
      const totals = await server.call('POST', '/api/pipelines', {
        name: `totals${suffix}`,
        source_topic: `user-events${suffix}`,
        sink_topic: `page-totals${suffix}`,
        start: true,
        transformation: {
          aggregate: { window_seconds: 5, function: { count: null }, idle_timeout_seconds: 0.5 },
        },
      })
      assert.equal(totals.status, 201, JSON.stringify(totals.body))
      const producer = plainProducer(broker.brokers)
      const pages = ['/home', '/home', '/cart', '/home', '/cart', '/about']
      await producer.send({
        messages: pages.map((page, i) => ({
          topic: `user-events${suffix}`,
          key: `u${i}`,
          value: JSON.stringify({
            event_type: 'page_view',
            source: 'web',
            data: { page, user_id: `${i}` },
            timestamp: `2026-11-26T10:00:1${(i * 0.7).toFixed(1)}Z`,
          }),
        })),
      })
      await producer.close()
      const messages = await consumeUntil(broker.brokers, `processed-events${suffix}`, (m) => m.length >= 3)
      const counts = Object.fromEntries(
        messages.map((m) => {
          // a result is an event, as on the embedded log: the window in data
          const event = JSON.parse(m.value)
          assert.equal(event.event_type, 'window_result')
          assert.equal(event.timestamp, '2026-11-26T10:00:10.000Z')
          const w = event.data
          assert.equal(w.pipeline_id, created.body.id)
          assert.equal(w.window_start, '2026-11-26T10:00:10.000Z')
          assert.equal(w.window_end, '2026-11-26T10:00:15.000Z')
          assert.equal(w.closed, true)
          assert.equal(m.key, JSON.stringify(w.key))
          assert.equal(m.headers.get('pipeline_id'), created.body.id)
          assert.equal(m.headers.get('window_start'), '2026-11-26T10:00:10.000Z')
          return [w.key['data.page'], w.results.count]
        }),
      )
      assert.deepEqual(counts, { '/home': 3, '/cart': 2, '/about': 1 })
      const [total] = await consumeUntil(broker.brokers, `page-totals${suffix}`, (m) => m.length >= 1)
      assert.equal(total.key, undefined)
      assert.deepEqual(JSON.parse(total.value).data.key, null)
      assert.equal(JSON.parse(total.value).data.results.count, 6)
      // a pipeline reading another's sink takes its results as events: none dead-lettered
      const chained = await server.call('POST', '/api/pipelines', {
        name: `chained${suffix}`,
        source_topic: `processed-events${suffix}`,
        start: true,
        transformation: {
          aggregate: {
            window_seconds: 3600,
            function: { sum: 'data.results.count' },
            idle_timeout_seconds: 60,
          },
        },
      })
      assert.equal(chained.status, 201, JSON.stringify(chained.body))
      let seen: unknown
      await eventually(
        async () => {
          const open = (await server.call('GET', `/api/pipelines/${chained.body.id}/window?state=open`)).body
          seen = open
          return open.windows.length === 1 && Object.values(open.windows[0].results)[0] === 6
            ? true
            : undefined
        },
        20_000,
        () => `the chained pipeline's window: ${JSON.stringify(seen)}`,
      )
      const chainedStats = (await server.call('GET', `/api/pipelines/${chained.body.id}`)).body.stats
      assert.equal(chainedStats.errors, 0)
      assert.equal(chainedStats.events_in, 3)
      const stats = (await server.call('GET', `/api/pipelines/${created.body.id}`)).body.stats
      assert.equal(stats.events_in, 6)
      assert.equal(stats.condition, 'ok')
      // what the relay still has to send, per pipeline: nothing once the sink has it all
      const scraped = await (await fetch(`${server.url}/metrics`)).text()
      const gauge = `datapulse_pipeline_outbox_messages{pipeline="user-analytics${suffix}"} 0\n`
      assert.ok(scraped.includes(gauge), `${gauge} in ${scraped.slice(0, 200)}`)
      // a deleted pipeline leaves no consumer group behind (its reader's, its relay's); the others stay
      const groups = async () => {
        const admin = new Admin({ clientId: 'groups', bootstrapBrokers: [broker!.brokers] })
        try {
          return [...(await admin.listGroups()).keys()]
        } finally {
          await admin.close()
        }
      }
      const id = created.body.id as string
      const before = await groups()
      assert.ok(before.includes(`datapulse.${id}`), JSON.stringify(before))
      if (delivery === 'exactly-once')
        assert.ok(before.includes(`datapulse.${id}.relay`), JSON.stringify(before))
      assert.equal((await server.call('DELETE', `/api/pipelines/${id}`)).status, 204)
      const after = await groups()
      assert.deepEqual(
        after.filter((g) => g.startsWith(`datapulse.${id}`)),
        [],
        'the deleted pipeline has no group left',
      )
      assert.ok(after.includes(`datapulse.${totals.body.id}`), 'another pipeline keeps its group')
    })

  test('HTTP ingest with Kafka: acknowledged events are on the topic; bad messages land in the DLQ with a reason', async (t) => {
    if (!broker) return t.skip(skipped)
    const server = await kafkaServer(t)
    const p = (
      await server.call('POST', '/api/pipelines', {
        name: 'sums',
        source_topic: 'orders',
        sink_topic: 'order-sums',
        start: true,
        transformation: { aggregate: { window_seconds: 3600, function: { sum: 'data.amount' } } },
      })
    ).body
    const ingest = await server.call('POST', '/api/events/ingest', {
      topic: 'orders',
      events: [1, 2, 3].map((amount) => ({
        event_type: 'order',
        source: 'shop',
        data: { amount },
        id: `o${amount}`,
      })),
    })
    assert.deepEqual(ingest.body, { accepted: 3, topics: ['orders'] })
    const onTopic = await consumeUntil(broker.brokers, 'orders', (m) => m.length >= 3)
    assert.deepEqual(
      onTopic.map((m) => [m.key, JSON.parse(m.value).data.amount]),
      [
        ['o1', 1],
        ['o2', 2],
        ['o3', 3],
      ],
    )
    const producer = plainProducer(broker.brokers)
    await producer.send({
      messages: [
        { topic: 'orders', value: 'not json {' },
        { topic: 'orders', value: JSON.stringify({ source: 'shop', data: { amount: 5 } }) },
        {
          topic: 'orders',
          value: JSON.stringify({ event_type: 'order', source: 'shop', data: { amount: 'five' } }),
        },
        {
          topic: 'orders',
          value: JSON.stringify({ event_type: 'order', source: 'shop', data: { amount: 4 } }),
        },
      ],
    })
    await producer.close()
    const dlq = await consumeUntil(broker.brokers, 'order-sums.dlq', (m) => m.length >= 3)
    const reasons = dlq.map((m) => JSON.parse(m.value))
    assert.deepEqual(
      reasons.map((d) => d.reason),
      ['invalid_event', 'invalid_event', 'type_mismatch'],
    )
    assert.match(reasons[0].detail, /not JSON/)
    assert.equal(reasons[0].payload, 'not json {')
    assert.match(reasons[1].detail, /event_type/)
    assert.equal(reasons[2].pipeline_id, p.id)
    // the event as the API shows it: RFC 3339, like every other time DataPulse writes
    assert.match(reasons[2].payload.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    assert.deepEqual(reasons[2].payload.data, { amount: 'five' })
    const window = await eventually(async () => {
      const w = (await server.call('GET', `/api/pipelines/${p.id}/window`)).body.windows
      return w[0]?.results.sum_data_amount === 10 ? w[0] : undefined
    }, 20_000)
    assert.equal(window.closed, false)
    const stats = (await server.call('GET', `/api/pipelines/${p.id}`)).body.stats
    assert.equal(stats.events_in, 7)
    assert.equal(stats.errors, 3)
    assert.equal(stats.condition, 'ok')
  })

  test('a source topic with message.timestamp.type=LogAppendTime: events without a timestamp take the time the broker appended them', async (t) => {
    if (!broker) return t.skip(skipped)
    const server = await kafkaServer(t)
    const admin = new Admin({ clientId: 'test-admin', bootstrapBrokers: [broker.brokers] })
    await admin.createTopics({
      topics: ['appended'],
      partitions: 1,
      replicas: 1,
      configs: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }],
    })
    await admin.close()
    const p = (
      await server.call('POST', '/api/pipelines', {
        name: 'by-append-time',
        source_topic: 'appended',
        start: true,
        transformation: { aggregate: { window_seconds: 3600, function: 'count' } },
      })
    ).body
    const producer = plainProducer(broker.brokers)
    const before = Date.now()
    // the producer's create time says 2001; the topic keeps the broker's clock instead
    // (unpatched, @platformatic/kafka gave each record the create time)
    await producer.send({
      messages: [1, 2, 3].map((i) => ({
        topic: 'appended',
        value: JSON.stringify({ event_type: 'tick', source: 'clock', data: { i } }),
        timestamp: BigInt(Date.parse('2001-01-01T00:00:00Z')),
      })),
    })
    await producer.close()
    const window = await eventually(async () => {
      const w = (await server.call('GET', `/api/pipelines/${p.id}/window`)).body.windows
      return w[0]?.results.count === 3 ? w[0] : undefined
    }, 20_000)
    // the hour the broker appended them in (the produce took well under an hour)
    assert.ok(
      Date.parse(window.window_end) > before && Date.parse(window.window_start) <= Date.now(),
      `window ${window.window_start} is not around ${new Date(before).toISOString()}`,
    )
  })

  test('broker stopped and restarted mid-stream: degraded meanwhile, 503 on ingest, then every event counted', async (t) => {
    if (!broker) return t.skip(skipped)
    const server = await kafkaServer(t)
    const admin = new Admin({ clientId: 'test-admin', bootstrapBrokers: [broker.brokers] })
    await admin.createTopics({ topics: ['stream'], partitions: 2, replicas: 1 })
    await admin.close()
    const p = (
      await server.call('POST', '/api/pipelines', {
        name: 'through-outage',
        source_topic: 'stream',
        start: true,
        transformation: { aggregate: { window_seconds: 3600, function: 'count' } },
      })
    ).body
    const send = (n: number, from: number) =>
      server.call('POST', '/api/events/ingest', {
        topic: 'stream',
        events: Array.from({ length: n }, (_, i) => ({ event_type: 'e', source: 's', id: `e${from + i}` })),
      })
    let acked = 0
    for (let i = 0; i < 5; i++) if ((await send(100, i * 100)).status === 200) acked += 100
    await broker.stop()
    const during = await send(10, 10_000)
    assert.equal(during.status, 503)
    assert.ok(during.headers.get('retry-after'))
    const degraded = await eventually(
      async () => {
        const s = (await server.call('GET', `/api/pipelines/${p.id}`)).body
        return s.stats.condition === 'degraded' ? s : undefined
      },
      30_000,
      'the degraded condition',
    )
    assert.equal(degraded.status, 'running')
    assert.match(degraded.stats.condition_reason, /Kafka/)
    await broker.start()
    for (let i = 0; i < 3; i++) {
      const r = await eventually(
        async () => {
          const res = await send(100, 20_000 + i * 100)
          return res.status === 200 ? res : undefined
        },
        30_000,
        'ingest after the restart',
      )
      acked += r.body.accepted
    }
    let seen: unknown
    const counted = await eventually(
      async () => {
        const w = (await server.call('GET', `/api/pipelines/${p.id}/window`)).body.windows
        seen = {
          count: w[0]?.results.count,
          stats: (await server.call('GET', `/api/pipelines/${p.id}`)).body.stats,
        }
        return w[0]?.results.count === acked ? w[0].results.count : undefined
      },
      60_000,
      () => `all ${acked} acknowledged events counted (last seen: ${JSON.stringify(seen)})`,
    )
    assert.equal(counted, 800)
    assert.equal((await server.call('GET', `/api/pipelines/${p.id}`)).body.stats.condition, 'ok')
  })
})
