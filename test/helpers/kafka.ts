import type { TestContext } from 'node:test'
import { Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka'
import { type KafkaBroker, kafkaUnavailableReason, startKafka } from '../../scripts/kafka.ts'

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

/** Reads a topic from the start with a fresh group until `done(messages)` holds or `timeoutMs` passes. */
export async function consumeUntil(
  brokers: string,
  topic: string,
  done: (values: Array<{ key: string | undefined; value: string; headers: Map<string, string> }>) => boolean,
  timeoutMs = 20_000,
) {
  const consumer = new Consumer({
    groupId: `test-${Math.random().toString(36).slice(2)}`,
    clientId: 'test-consumer',
    bootstrapBrokers: [brokers],
    deserializers: stringDeserializers,
  })
  const got: Array<{ key: string | undefined; value: string; headers: Map<string, string> }> = []
  const stream = await consumer.consume({
    topics: [topic],
    mode: 'earliest',
    autocommit: false,
    maxWaitTime: 100,
  })
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out reading ${topic}: ${got.length} messages`)),
        timeoutMs,
      )
      stream.on('data', (m) => {
        got.push({ key: m.key, value: m.value, headers: m.headers })
        if (done(got)) {
          clearTimeout(timer)
          resolve()
        }
      })
    })
  } finally {
    await stream.close().catch(() => undefined)
    await consumer.close(true).catch(() => undefined)
  }
  return got
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
): Promise<Array<{ key: string | undefined; value: string; headers: Map<string, string> }>> {
  const consumer = new Consumer({
    groupId: `test-${Math.random().toString(36).slice(2)}`,
    clientId: 'test-consumer',
    bootstrapBrokers: [brokers],
    deserializers: stringDeserializers,
  })
  const got: Array<{ key: string | undefined; value: string; headers: Map<string, string> }> = []
  const stream = await consumer.consume({
    topics: [topic],
    mode: 'earliest',
    autocommit: false,
    maxWaitTime: 100,
  })
  try {
    let lastAt = Date.now()
    stream.on('data', (m) => {
      got.push({ key: m.key, value: m.value, headers: m.headers })
      lastAt = Date.now()
    })
    const deadline = Date.now() + timeoutMs
    while (got.length < atLeast || Date.now() - lastAt < quietMs) {
      if (Date.now() > deadline)
        throw new Error(`timed out reading ${topic}: ${got.length} of ${atLeast} messages`)
      await new Promise((r) => setTimeout(r, 100))
    }
  } finally {
    await stream.close().catch(() => undefined)
    await consumer.close(true).catch(() => undefined)
  }
  return got
}
