package datapulse.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * The consume-only ceiling in Java: a plain consumer reads `count` records from the start of the
 * topic and parses each value with Jackson, as any consumer must. Prints
 * "first-record <epoch ms>" and then "done <epoch ms>". Arguments: brokers, topic, group, count.
 */
public final class ConsumeOnly {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(ConsumerConfig.GROUP_ID_CONFIG, args[2]);
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    long wanted = Long.parseLong(args[3]);
    ObjectMapper json = new ObjectMapper();
    long n = 0;
    long checksum = 0;
    try (KafkaConsumer<byte[], byte[]> consumer =
        new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      consumer.subscribe(List.of(args[1]));
      while (n < wanted) {
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
          if (n == 0) System.out.println("first-record " + System.currentTimeMillis());
          checksum += json.readTree(r.value()).size();
          n++;
        }
      }
    }
    System.out.println("done " + System.currentTimeMillis() + " " + checksum);
  }
}
