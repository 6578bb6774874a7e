import { fileBroker, testKafkaLog } from '../helpers/kafka.ts'
import { logContract } from '../log/log-contract.ts'

const broker = fileBroker()

logContract('Kafka log', async (t) => {
  const brokers = await broker(t)
  return brokers === undefined ? undefined : testKafkaLog(t, brokers, 'contract')
})
