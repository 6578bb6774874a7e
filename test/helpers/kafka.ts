import type { TestContext } from 'node:test'
import { Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka'
import { type KafkaBroker, kafkaUnavailableReason, startKafka } from '../../scripts/kafka.ts'

/**
 * One real broker for a test file. Where java/mvn are missing it skips with the reason, except
 * under CI=true, where it fails.
 */
export async function brokerFor(t: TestContext): Promise<KafkaBroker | undefined> {
  const reason = kafkaUnavailableReason()
  if (reason) {
    if (process.env.CI === 'true') throw new Error(`Kafka tests cannot run: ${reason}`)
    t.skip(`Kafka tests skipped: ${reason}`)
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
