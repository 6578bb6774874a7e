package datapulse.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The bench's Kafka Streams peer: events (the API's JSON shape) from a topic, a tumbling 60 s
 * count by data.user_id with 2 s grace, only final results (suppress until the window closes),
 * written as JSON to the sink. One stream thread, the defaults otherwise (at-least-once, a
 * commit every 30 s). Prints "first-record <epoch ms>" when the first
 * event arrives. Arguments: brokers, source topic, sink topic, application id.
 */
public final class CountJob {
  /** What the job needs of an event, parsed once by the source's serde. */
  record Event(String user, long timestamp) {}

  private static final ObjectMapper JSON = new ObjectMapper();

  public static void main(String[] args) throws Exception {
    String brokers = args[0];
    String source = args[1];
    String sink = args[2];
    String applicationId = args[3];

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    props.put(StreamsConfig.STATE_DIR_CONFIG, args.length > 4 ? args[4] : System.getProperty("java.io.tmpdir"));
    props.put("consumer.auto.offset.reset", "earliest");

    Serde<Event> events = Serdes.serdeFrom(compact(), (Deserializer<Event>) CountJob::read);
    TimestampExtractor eventTime = (rec, previous) -> ((Event) rec.value()).timestamp();
    long[] first = {0};

    StreamsBuilder builder = new StreamsBuilder();
    builder.stream(source, Consumed.with(Serdes.String(), events).withTimestampExtractor(eventTime))
        .peek((k, v) -> {
          if (first[0] == 0) {
            first[0] = System.currentTimeMillis();
            System.out.println("first-record " + first[0]);
          }
        })
        .groupBy((k, v) -> v.user(), Grouped.with(Serdes.String(), events))
        .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofSeconds(60), Duration.ofSeconds(2)))
        .count(Materialized.<String, Long, WindowStore<Bytes, byte[]>>as("counts")
            .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()))
        .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
        .toStream()
        .map((w, count) -> KeyValue.pair(w.key(),
            "{\"window_start\":" + w.window().start() + ",\"key\":\"" + w.key() + "\",\"count\":" + count + "}"))
        .to(sink, Produced.with(Serdes.String(), Serdes.String()));

    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    CountDownLatch done = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close(Duration.ofSeconds(10));
      done.countDown();
    }));
    streams.start();
    System.out.println("started");
    done.await();
  }

  static Event parse(byte[] bytes) {
    try {
      JsonNode e = JSON.readTree(bytes);
      return new Event(e.path("data").path("user_id").asText(), Instant.parse(e.path("timestamp").asText()).toEpochMilli());
    } catch (Exception err) {
      throw new IllegalArgumentException(err);
    }
  }

  /** The repartition topic carries (event time, user) in 8 bytes plus the user's UTF-8, not JSON again. */
  static Serializer<Event> compact() {
    return (topic, e) -> {
      byte[] user = e.user().getBytes(StandardCharsets.UTF_8);
      return ByteBuffer.allocate(8 + user.length).putLong(e.timestamp()).put(user).array();
    };
  }

  /** Reads either form: the source's JSON or the repartition topic's compact bytes. */
  static Event read(String topic, byte[] bytes) {
    if (bytes.length > 0 && bytes[0] == '{') return parse(bytes);
    ByteBuffer b = ByteBuffer.wrap(bytes);
    long timestamp = b.getLong();
    return new Event(new String(bytes, 8, bytes.length - 8, StandardCharsets.UTF_8), timestamp);
  }
}
