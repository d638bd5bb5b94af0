// The inputs of both APIs: the file's lines from one FileSource reader, with
// the engine's virtual time (WordCount) or the events' own time (aggregate).

import org.apache.flink.api.common.eventtime.TimestampAssigner;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.functions.RichFlatMapFunction;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple3;
import org.apache.flink.connector.file.src.FileSource;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.core.fs.Path;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.Collector;

final class Inputs {
    private Inputs() {}

    /**
     * The lines of `path` with the engine's virtual time as their timestamps:
     * line i (0-based) is at floor(i * 1000 / rate) ms, as `engine run --rate`.
     * One reader (a text file is one split), so the lines come in file order
     * and the index is the line number; then the lines are dealt round-robin
     * to the environment's parallelism, so that what follows (splitting,
     * SQL's local aggregation) runs on every core.
     */
    static DataStream<String> timedLines(StreamExecutionEnvironment env, String path, long rate) {
        WatermarkStrategy<String> time = WatermarkStrategy.<String>forMonotonousTimestamps()
            .withTimestampAssigner(context -> new VirtualTime(rate));
        return env.fromSource(source(path), time, "lines of " + path)
            .setParallelism(1)
            .rebalance()
            .map(line -> line)
            .returns(Types.STRING)
            .name("lines to every core");
    }

    /**
     * The events `ts,key,value` of a CSV file (the header and any line that
     * does not parse are skipped), timestamped by `ts` (ms). One reader;
     * the lines are dealt round-robin to parsers on every core. The data set
     * is in time order, so each parser sees its events in time order and its
     * watermark follows the largest time it has seen (none is late: the
     * window operators take the smallest watermark of their inputs).
     */
    static DataStream<Tuple3<Long, String, Long>> events(StreamExecutionEnvironment env, String path) {
        WatermarkStrategy<Tuple3<Long, String, Long>> time =
            WatermarkStrategy.<Tuple3<Long, String, Long>>forMonotonousTimestamps()
                .withTimestampAssigner((event, previous) -> event.f0);
        return env.fromSource(source(path), WatermarkStrategy.noWatermarks(), "lines of " + path)
            .setParallelism(1)
            .rebalance()
            .flatMap(new ParseEvent())
            .name("parse ts,key,value")
            .assignTimestampsAndWatermarks(time);
    }

    static FileSource<String> source(String path) {
        return FileSource.forRecordStreamFormat(new TextLineInputFormat(), new Path(path)).build();
    }

    /** Counts the lines and gives each its virtual time. */
    static final class VirtualTime implements TimestampAssigner<String> {
        private final long rate;
        private long index;

        VirtualTime(long rate) {
            this.rate = rate;
        }

        @Override
        public long extractTimestamp(String line, long previous) {
            if (index == 0) FlinkPeer.firstRecord();
            long time = index * 1000 / rate;
            index++;
            FlinkPeer.RECORDS.lazySet(index);
            return time;
        }
    }

    /** `ts,key,value` → (ts, key, value); other lines are dropped. */
    static final class ParseEvent extends RichFlatMapFunction<String, Tuple3<Long, String, Long>> {
        private long count;

        @Override
        public void close() {
            FlinkPeer.RECORDS.addAndGet(count);
        }

        @Override
        public void flatMap(String line, Collector<Tuple3<Long, String, Long>> out) {
            if (count == 0) FlinkPeer.firstRecord();
            int a = line.indexOf(',');
            int b = a < 0 ? -1 : line.indexOf(',', a + 1);
            if (b < 0) return;
            long ts;
            long value;
            try {
                ts = Long.parseLong(line, 0, a, 10);
                value = Long.parseLong(line, b + 1, line.length(), 10);
            } catch (NumberFormatException e) {
                return; // the header `ts,key,value`
            }
            count++;
            out.collect(Tuple3.of(ts, line.substring(a + 1, b), value));
        }
    }

    /** Splits on ASCII whitespace (space, \t, \n, \f, \r), as the engine does. */
    static final class Words implements FlatMapFunction<String, String> {
        @Override
        public void flatMap(String line, Collector<String> out) {
            int n = line.length();
            int i = 0;
            while (i < n) {
                while (i < n && isSpace(line.charAt(i))) i++;
                int start = i;
                while (i < n && !isSpace(line.charAt(i))) i++;
                if (i > start) out.collect(line.substring(start, i));
            }
        }

        static boolean isSpace(char c) {
            return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
        }
    }
}
