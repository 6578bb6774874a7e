import { after } from 'node:test'
import type { KafkaBroker } from '../../scripts/kafka.ts'
import { startKafka } from '../../scripts/kafka.ts'
import { kafkaSkipReason, testKafkaLog } from '../helpers/kafka.ts'
import { logContract } from '../log/log-contract.ts'

// one broker for the file; each test has topics and groups of its own
let broker: Promise<KafkaBroker> | undefined
after(async () => (await broker)?.destroy())

logContract('Kafka log', async (t) => {
  const skip = kafkaSkipReason()
  if (skip) {
    t.skip(skip)
    return undefined
  }
  broker ??= startKafka()
  const { brokers } = await broker
  return testKafkaLog(t, brokers, 'contract')
})
