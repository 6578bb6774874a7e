import { after } from 'node:test'
import type { KafkaBroker } from '../../scripts/kafka.ts'
import { startKafka } from '../../scripts/kafka.ts'
import { KafkaLog } from '../../src/log/kafka-log.ts'
import { silentLogger } from '../../src/logger.ts'
import { kafkaSkipReason } from '../helpers/kafka.ts'
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
  const log = new KafkaLog(
    {
      brokers: [brokers],
      clientId: 'contract',
      partitions: 1,
      replication: 1,
      tls: false,
      compression: 'lz4',
      delivery: 'exactly-once',
    },
    silentLogger(),
  )
  t.after(() => log.close())
  return log
})
