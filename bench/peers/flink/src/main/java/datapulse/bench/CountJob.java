package datapulse.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.time.Instant;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.serialization.SimpleStringSchema;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;

/**
 * The bench's Flink peer: events (the API's JSON shape) from a topic, a tumbling 60 s event-time
 * count by data.user_id with watermarks 2 s behind the newest event, written as JSON to the sink.
 * Parallelism 1, a checkpoint every second, the local mini-cluster in this JVM. Prints
 * "first-record <epoch ms>" when the first event arrives. Arguments: brokers, source, sink, group.
 */
public final class CountJob {
  private static final ObjectMapper JSON = new ObjectMapper();

  public static void main(String[] args) throws Exception {
    String brokers = args[0];
    String source = args[1];
    String sink = args[2];
    String group = args[3];

    StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
    env.setParallelism(1);
    env.enableCheckpointing(1_000);

    KafkaSource<String> in = KafkaSource.<String>builder()
        .setBootstrapServers(brokers)
        .setTopics(source)
        .setGroupId(group)
        .setStartingOffsets(OffsetsInitializer.earliest())
        .setValueOnlyDeserializer(new SimpleStringSchema())
        .build();
    KafkaSink<String> out = KafkaSink.<String>builder()
        .setBootstrapServers(brokers)
        .setRecordSerializer(KafkaRecordSerializationSchema.builder()
            .setTopic(sink)
            .setValueSerializationSchema(new SimpleStringSchema())
            .build())
        .setDeliveryGuarantee(DeliveryGuarantee.AT_LEAST_ONCE)
        .build();

    env.fromSource(in, WatermarkStrategy.noWatermarks(), "events")
        .map(new Parse())
        .assignTimestampsAndWatermarks(WatermarkStrategy.<Tuple2<String, Long>>forBoundedOutOfOrderness(Duration.ofSeconds(2))
            .withTimestampAssigner((e, previous) -> e.f1))
        .keyBy(e -> e.f0)
        .window(TumblingEventTimeWindows.of(Duration.ofSeconds(60)))
        .aggregate(new Count(), new Emit())
        .sinkTo(out);
    System.out.println("started");
    env.execute("datapulse-bench-count");
  }

  /** (user, event time) of an event; the first one prints when it came. */
  static final class Parse implements MapFunction<String, Tuple2<String, Long>> {
    private boolean seen;

    @Override
    public Tuple2<String, Long> map(String value) throws Exception {
      if (!seen) {
        seen = true;
        System.out.println("first-record " + System.currentTimeMillis());
      }
      JsonNode e = JSON.readTree(value);
      return Tuple2.of(e.path("data").path("user_id").asText(), Instant.parse(e.path("timestamp").asText()).toEpochMilli());
    }
  }

  static final class Count implements AggregateFunction<Tuple2<String, Long>, Long, Long> {
    @Override
    public Long createAccumulator() {
      return 0L;
    }

    @Override
    public Long add(Tuple2<String, Long> value, Long acc) {
      return acc + 1;
    }

    @Override
    public Long getResult(Long acc) {
      return acc;
    }

    @Override
    public Long merge(Long a, Long b) {
      return a + b;
    }
  }

  static final class Emit extends ProcessWindowFunction<Long, String, String, TimeWindow> {
    @Override
    public void process(String key, Context context, Iterable<Long> counts, Collector<String> out) {
      long count = counts.iterator().next();
      out.collect("{\"window_start\":" + context.window().getStart() + ",\"key\":\"" + key + "\",\"count\":" + count + "}");
    }
  }
}
