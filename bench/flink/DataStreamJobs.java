// The DataStream API peer: SlidingEventTimeWindows with an incremental
// AggregateFunction per key, and a ProcessWindowFunction that adds the
// window's end to each result.

import java.time.Duration;

import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.java.tuple.Tuple3;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.SlidingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;

final class DataStreamJobs {
    private DataStreamJobs() {}

    static void build(StreamExecutionEnvironment env, FlinkPeer.Job job) {
        SlidingEventTimeWindows windows = SlidingEventTimeWindows.of(
            Duration.ofSeconds(job.windowS()), Duration.ofSeconds(job.slideS()));
        DataStream<String> rows;
        if (job.workload().equals("wordcount")) {
            rows = Inputs.timedLines(env, job.input(), job.rate())
                .flatMap(new Inputs.Words())
                .name("split words")
                .keyBy(word -> word)
                .window(windows)
                .aggregate(new Count(), new WithEnd<Long>())
                .name("sliding count per word");
        } else {
            rows = Inputs.events(env, job.input())
                .keyBy(event -> event.f1)
                .window(windows)
                .aggregate(new CountSumMinMax(), new WithEnd<long[]>())
                .name("sliding count,sum,min,max per key");
        }
        rows.sinkTo(new CsvPartSink(job.out())).name("csv parts");
    }

    /** Words counted. */
    static final class Count implements AggregateFunction<String, Long, Long> {
        @Override
        public Long createAccumulator() {
            return 0L;
        }

        @Override
        public Long add(String word, Long count) {
            return count + 1;
        }

        @Override
        public Long getResult(Long count) {
            return count;
        }

        @Override
        public Long merge(Long a, Long b) {
            return a + b;
        }
    }

    /** {count, sum, min, max} of the values, updated in place. */
    static final class CountSumMinMax
        implements AggregateFunction<Tuple3<Long, String, Long>, long[], long[]> {
        @Override
        public long[] createAccumulator() {
            return new long[] {0, 0, Long.MAX_VALUE, Long.MIN_VALUE};
        }

        @Override
        public long[] add(Tuple3<Long, String, Long> event, long[] acc) {
            long v = event.f2;
            acc[0]++;
            acc[1] += v;
            acc[2] = Math.min(acc[2], v);
            acc[3] = Math.max(acc[3], v);
            return acc;
        }

        @Override
        public long[] getResult(long[] acc) {
            return acc;
        }

        @Override
        public long[] merge(long[] a, long[] b) {
            return new long[] {a[0] + b[0], a[1] + b[1], Math.min(a[2], b[2]), Math.max(a[3], b[3])};
        }
    }

    /** `window_end,key,aggregates…`: a Long, or a long[] joined by commas. */
    static final class WithEnd<R> extends ProcessWindowFunction<R, String, String, TimeWindow> {
        @Override
        public void process(String key, Context context, Iterable<R> results, Collector<String> out) {
            for (R result : results) {
                StringBuilder row = new StringBuilder(48)
                    .append(context.window().getEnd()).append(',').append(key);
                if (result instanceof long[] values) {
                    for (long v : values) row.append(',').append(v);
                } else {
                    row.append(',').append(result);
                }
                out.collect(row.toString());
            }
        }
    }
}
