import { after, type TestContext } from 'node:test'
import { Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka'
import { type KafkaBroker, kafkaUnavailableReason, startKafka } from '../../scripts/kafka.ts'
import { KafkaLog, type KafkaSettings } from '../../src/log/kafka-log.ts'
import { silentLogger } from '../../src/logger.ts'

/**
 * Why the Kafka tests cannot run here (java/mvn missing), as the message their skip prints; under
 * CI=true that is a failure instead. Undefined when a broker can start.
 */
export function kafkaSkipReason(): string | undefined {
  const reason = kafkaUnavailableReason()
  if (!reason) return undefined
  if (process.env.CI === 'true') throw new Error(`Kafka tests cannot run: ${reason}`)
  return `Kafka tests skipped: ${reason}`
}

/**
 * One broker shared by the tests of a file (each uses topics and groups of its own), started by
 * the first that asks and stopped after the file; undefined with a skip where it cannot run.
 */
export function fileBroker(): (t: TestContext) => Promise<string | undefined> {
  let broker: Promise<KafkaBroker> | undefined
  after(async () => (await broker)?.destroy())
  return async (t) => {
    const skip = kafkaSkipReason()
    if (skip) {
      t.skip(skip)
      return undefined
    }
    broker ??= startKafka()
    return (await broker).brokers
  }
}

/** One real broker for a test, or a skip with the reason (see kafkaSkipReason). */
export async function brokerFor(t: TestContext): Promise<KafkaBroker | undefined> {
  const skip = kafkaSkipReason()
  if (skip) {
    t.skip(skip)
    return undefined
  }
  return startKafka()
}

export function plainProducer(brokers: string) {
  return new Producer({
    clientId: 'test-producer',
    bootstrapBrokers: [brokers],
    serializers: stringSerializers,
  })
}

/** `work`, or an error once `ms` pass: a test step that cannot hang the suite. */
async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out ${what}`)), ms)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

type Read = {
  key: string | undefined
  value: string
  headers: Map<string, string>
  partition: number
  offset: bigint
}

/** A fresh group reading `topic` from the start (read_committed), collecting what it reads until closed. */
async function collect(brokers: string, topic: string) {
  const consumer = new Consumer({
    groupId: `test-${Math.random().toString(36).slice(2)}`,
    clientId: 'test-consumer',
    bootstrapBrokers: [brokers],
    deserializers: stringDeserializers,
  })
  const got: Read[] = []
  let lastAt = Date.now()
  const stream = await within(
    30_000,
    `joining a group to read ${topic}`,
    consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxWaitTime: 100 }),
  )
  stream.on('data', (m) => {
    got.push({ key: m.key, value: m.value, headers: m.headers, partition: m.partition, offset: m.offset })
    lastAt = Date.now()
  })
  return {
    got,
    lastAt: () => lastAt,
    close: async () => {
      await within(10_000, 'closing a reader', stream.close()).catch(() => undefined)
      await within(10_000, 'closing a consumer', consumer.close(true)).catch(() => undefined)
    },
  }
}

/** Reads a topic from the start with a fresh group until `done(messages)` holds or `timeoutMs` passes. */
export async function consumeUntil(
  brokers: string,
  topic: string,
  done: (values: Read[]) => boolean,
  timeoutMs = 20_000,
): Promise<Read[]> {
  return readWhile(brokers, topic, (got) => !done(got), timeoutMs)
}

/**
 * Everything a `read_committed` reader sees on `topic` once at least `atLeast` messages came and
 * then nothing more for `quietMs` (so an extra message, a duplicate, is seen too).
 */
export async function readCommitted(
  brokers: string,
  topic: string,
  atLeast: number,
  quietMs = 2_000,
  timeoutMs = 60_000,
): Promise<Read[]> {
  return readWhile(
    brokers,
    topic,
    (got, lastAt) => got.length < atLeast || Date.now() - lastAt < quietMs,
    timeoutMs,
  )
}

async function readWhile(
  brokers: string,
  topic: string,
  more: (got: Read[], lastAt: number) => boolean,
  timeoutMs: number,
): Promise<Read[]> {
  const reader = await collect(brokers, topic)
  try {
    const deadline = Date.now() + timeoutMs
    while (more(reader.got, reader.lastAt())) {
      if (Date.now() > deadline) throw new Error(`timed out reading ${topic}: ${reader.got.length} messages`)
      await new Promise((r) => setTimeout(r, 20))
    }
    return reader.got
  } finally {
    await reader.close()
  }
}

/** A KafkaLog on a test broker, closed after the test. */
export function testKafkaLog(
  t: TestContext,
  brokers: string,
  clientId: string,
  partitions = 1,
  delivery: KafkaSettings['delivery'] = 'exactly-once',
): KafkaLog {
  const log = new KafkaLog(
    { brokers: [brokers], clientId, partitions, replication: 1, tls: false, compression: 'lz4', delivery },
    silentLogger(),
  )
  t.after(() => log.close())
  return log
}
