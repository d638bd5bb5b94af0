// Spark Streaming (DStream API) windowed WordCount, the job of the D-Streams
// paper (Zaharia et al., SOSP 2013): lines -> words -> (word, 1) ->
// reduceByKeyAndWindow(+, -, window, slide) with the inverse function and
// checkpointing, one action per batch so that every window is computed.
//
//   run.sh dstream --input FILE --cores N --batch-ms 1000 --window-s 30 --slide-s 1 \
//          --duration-s 60 --warmup-s 20 --out dstream.csv --checkpoint /tmp/ckpt
//
// Input: the same text file the Rust engine reads (lines of space-separated
// words, e.g. `datasets words --record-bytes 100`), looped over when a run
// needs more lines than it has.
//
// How the input is fed (--source):
//
//   direct (default): a receiver-less input DStream, in the manner of Spark's
//     Kafka "direct" stream: at each batch time the driver takes the next n
//     lines of the file (n = rate x batch interval) and makes an RDD of
//     `cores` partitions, each task reading its own range of lines from the
//     file (page cache). The rate is Spark's own backpressure algorithm:
//     PIDRateEstimator (spark.streaming.backpressure.*) fed with every
//     completed batch, exactly as Spark's RateController does, starting at
//     --initial-rate and capped at --max-rate. So the input settles at the
//     largest rate whose batches are processed within the batch interval:
//     Spark's sustained maximum. No core is held by a receiver, which is the
//     fairest figure on a 2-core machine.
//   receiver: the classic path, a custom Receiver<String> that reads the
//     file and store()s each line (single-record store, so that the block
//     generator's rate limiter applies; bulk store(iterator) would bypass
//     it), with spark.streaming.backpressure.enabled=true. The receiver holds
//     one of the N task slots for the whole run, so processing gets N-1.
//
// Measured with a StreamingListener: per completed batch, batch time,
// numRecords, processing delay, scheduling delay and total delay. Batches
// completed during --duration-s seconds of wall clock after --warmup-s are
// written to --out and summarised on stdout:
//
//   spark dstream: R records/s sustained, p50 batch latency X ms, p99 Y ms
//
// R = records of the measured batches / wall time they span; batch latency
// is Spark's total delay (scheduling delay + processing time, from the batch
// time to the end of its jobs). If the scheduling delay grows from batch to
// batch, Spark is NOT keeping up with its input: the sustained rate is then
// the rate at which it processed batches, not an input rate it can hold, and
// the latencies grow without bound with the run's length. With the direct
// source's backpressure this should not happen for long; stderr shows the
// largest scheduling delay seen.

import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;

import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.rdd.RDD;
import org.apache.spark.storage.StorageLevel;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.StreamingContext;
import org.apache.spark.streaming.Time;
import org.apache.spark.streaming.api.java.JavaDStream;
import org.apache.spark.streaming.api.java.JavaPairDStream;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.apache.spark.streaming.dstream.InputDStream;
import org.apache.spark.streaming.receiver.Receiver;
import org.apache.spark.streaming.scheduler.BatchInfo;
import org.apache.spark.streaming.scheduler.StreamInputInfo;
import org.apache.spark.streaming.scheduler.StreamingListener;
import org.apache.spark.streaming.scheduler.StreamingListenerBatchCompleted;
import org.apache.spark.streaming.scheduler.rate.PIDRateEstimator;

import scala.Option;
import scala.Tuple2;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;

public final class DStreamWordCount {
    private static final String USAGE =
        "usage: DStreamWordCount --input FILE --out CSV --checkpoint DIR [--cores N] [--batch-ms B]\n"
        + "         [--window-s W] [--slide-s S] [--duration-s D] [--warmup-s U]\n"
        + "         [--source direct|receiver] [--initial-rate LINES_PER_S] [--max-rate LINES_PER_S]\n"
        + "         [--verbose true]";

    /** Every STRIDE-th line's byte offset is kept in the driver's index. */
    static final int STRIDE = 4096;

    /** Lines per second the direct source feeds; set by the PID estimator (driver only). */
    static volatile double currentRate;
    static volatile double maxRate;

    public static void main(String[] argv) throws Exception {
        PeerBench.Args a = new PeerBench.Args(argv, USAGE, "input", "cores", "batch-ms", "window-s",
            "slide-s", "duration-s", "warmup-s", "out", "checkpoint", "source", "initial-rate", "max-rate", "verbose");
        String input = a.str("input", null);
        String out = a.str("out", null);
        String checkpointRoot = a.str("checkpoint", null);
        int cores = (int) a.num("cores", 2);
        long batchMs = a.num("batch-ms", 1000);
        long windowS = a.num("window-s", 30);
        long slideS = a.num("slide-s", 1);
        long durationS = a.num("duration-s", 60);
        long warmupS = a.num("warmup-s", 20);
        String source = a.str("source", "direct");
        double initialRate = a.dbl("initial-rate", 20_000);
        maxRate = a.dbl("max-rate", 1e12);
        final boolean verbose = a.str("verbose", "false").equals("true");
        if (!source.equals("direct") && !source.equals("receiver")) PeerBench.fail("--source must be direct or receiver");
        if (!new File(input).isFile()) PeerBench.fail("no such file: " + input);
        if (windowS * 1000 % batchMs != 0 || slideS * 1000 % batchMs != 0) {
            PeerBench.fail("--window-s and --slide-s must be multiples of --batch-ms");
        }
        if (source.equals("receiver") && cores < 2) PeerBench.fail("--source receiver needs --cores 2 or more (the receiver holds one)");

        // A fresh checkpoint directory for this run, removed at the end.
        Path checkpoint = Paths.get(checkpointRoot, "dstream-" + System.currentTimeMillis());
        Files.createDirectories(checkpoint);

        SparkConf conf = new SparkConf().setAppName("DStreamWordCount");
        conf.setIfMissing("spark.master", "local[" + cores + "]");
        conf.setIfMissing("spark.ui.enabled", "false");
        conf.setIfMissing("spark.default.parallelism", Integer.toString(cores));
        conf.setIfMissing("spark.sql.shuffle.partitions", Integer.toString(cores));
        conf.setIfMissing("spark.streaming.gracefulStopTimeout", Long.toString(Math.max(10_000, 5 * batchMs)));
        if (source.equals("receiver")) {
            conf.set("spark.streaming.backpressure.enabled", "true");
            conf.setIfMissing("spark.streaming.backpressure.initialRate", Long.toString((long) initialRate));
            if (maxRate < 1e12) conf.setIfMissing("spark.streaming.receiver.maxRate", Long.toString((long) maxRate));
        }

        JavaStreamingContext ssc = new JavaStreamingContext(conf, Durations.milliseconds(batchMs));
        ssc.sparkContext().setLogLevel("WARN");
        ssc.checkpoint(checkpoint.toUri().toString());

        JavaDStream<String> lines;
        if (source.equals("direct")) {
            currentRate = Math.min(initialRate, maxRate);
            LineIndex index = LineIndex.build(input);
            System.err.printf("spark dstream: %s has %d lines; direct source, initial rate %.0f lines/s%n",
                input, index.totalLines, currentRate);
            ClassTag<String> tag = ClassTag$.MODULE$.apply(String.class);
            lines = new JavaDStream<>(new FileSliceDStream(ssc.ssc(), tag, index, cores, batchMs), tag);
        } else {
            lines = ssc.receiverStream(new LineReceiver(input));
        }

        // The D-Streams WordCount. The filter drops words whose count fell to
        // 0 (the engine's default: keys that leave the window leave the state).
        JavaPairDStream<String, Integer> pairs = lines
            .flatMap(line -> Arrays.asList(line.split(" ")).iterator())
            .mapToPair(word -> new Tuple2<>(word, 1));
        JavaPairDStream<String, Integer> counts = pairs.reduceByKeyAndWindow(
            (x, y) -> x + y,
            (x, y) -> x - y,
            Durations.seconds(windowS),
            Durations.seconds(slideS),
            cores,
            kv -> kv._2() != 0);
        counts.foreachRDD(rdd -> {
            rdd.count();
        });

        PeerBench.Recorder recorder = new PeerBench.Recorder();
        final boolean direct = source.equals("direct");
        final PIDRateEstimator pid = new PIDRateEstimator(batchMs, 1.0, 0.2, 0.0, 100.0);
        ssc.addStreamingListener(new StreamingListener() {
            @Override
            public void onBatchCompleted(StreamingListenerBatchCompleted completed) {
                BatchInfo info = completed.batchInfo();
                long processing = optLong(info.processingDelay(), 0);
                long scheduling = optLong(info.schedulingDelay(), 0);
                long total = optLong(info.totalDelay(), processing + scheduling);
                long end = optLong(info.processingEndTime(), System.currentTimeMillis());
                recorder.add(new PeerBench.Batch(info.batchTime().milliseconds(), info.numRecords(),
                    processing, scheduling, total, end));
                if (direct) {
                    // What Spark's RateController does with each completed batch.
                    Option<Object> next = pid.compute(end, info.numRecords(), processing, scheduling);
                    if (next.isDefined()) currentRate = Math.min(maxRate, (Double) next.get());
                }
                if (verbose) {
                    System.err.printf("batch %d: %d records, processing %d ms, scheduling delay %d ms%s%n",
                        info.batchTime().milliseconds(), info.numRecords(), processing, scheduling,
                        direct ? String.format(", next rate %.0f lines/s", currentRate) : "");
                }
            }
        });

        ssc.start();
        long startedAt = System.currentTimeMillis();
        long measureFrom = startedAt + warmupS * 1000;
        long measureTo = measureFrom + durationS * 1000;
        PeerBench.sleepUntil(measureTo);
        List<PeerBench.Batch> batches = recorder.snapshot();
        ssc.stop(true, true);
        PeerBench.report("dstream", cores, batches, measureFrom, measureTo, out,
            "batch latency = total delay (scheduling + processing)");
        PeerBench.deleteTree(checkpoint);
        System.exit(0);
    }

    static long optLong(Option<Object> o, long dflt) {
        return o.isDefined() ? (Long) o.get() : dflt;
    }

    /** Byte offsets of every STRIDE-th line of the file, and its line count. */
    static final class LineIndex implements Serializable {
        final String path;
        final long totalLines;
        final long[] offsets;

        LineIndex(String path, long totalLines, long[] offsets) {
            this.path = path;
            this.totalLines = totalLines;
            this.offsets = offsets;
        }

        static LineIndex build(String path) throws IOException {
            List<Long> offs = new ArrayList<>();
            long lines = 0;
            try (FileChannel ch = FileChannel.open(Paths.get(path))) {
                ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
                long pos = 0;
                boolean atLineStart = true;
                while (ch.read(buf) > 0) {
                    buf.flip();
                    while (buf.hasRemaining()) {
                        byte b = buf.get();
                        if (atLineStart) {
                            if (lines % STRIDE == 0) offs.add(pos);
                            atLineStart = false;
                        }
                        if (b == '\n') {
                            lines++;
                            atLineStart = true;
                        }
                        pos++;
                    }
                    buf.clear();
                }
                if (!atLineStart) lines++; // a last line without '\n'
            }
            if (lines == 0) PeerBench.fail(path + " has no lines");
            long[] o = new long[offs.size()];
            for (int i = 0; i < o.length; i++) o[i] = offs.get(i);
            return new LineIndex(path, lines, o);
        }
    }

    /** Reads lines [start, start + count) of the file, line numbers taken modulo its length. */
    static final class ReadLines implements FlatMapFunction<long[], String> {
        private final LineIndex index;

        ReadLines(LineIndex index) {
            this.index = index;
        }

        @Override
        public Iterator<String> call(long[] range) throws IOException {
            long line = range[0] % index.totalLines;
            long count = range[1];
            List<String> out = new ArrayList<>((int) Math.min(count, 1 << 24));
            try (RandomAccessFile f = new RandomAccessFile(index.path, "r")) {
                while (count > 0) {
                    int block = (int) (line / STRIDE);
                    f.seek(index.offsets[block]);
                    java.io.BufferedReader r = new java.io.BufferedReader(
                        new java.io.InputStreamReader(java.nio.channels.Channels.newInputStream(f.getChannel()),
                            StandardCharsets.UTF_8), 1 << 16);
                    for (long skip = line - (long) block * STRIDE; skip > 0; skip--) r.readLine();
                    while (count > 0 && line < index.totalLines) {
                        String s = r.readLine();
                        if (s == null) break;
                        out.add(s);
                        count--;
                        line++;
                    }
                    line = 0; // wrap around to the file's start
                }
            }
            return out.iterator();
        }
    }

    /**
     * Receiver-less input: each batch takes the next `rate x batch` lines of
     * the file, split into `parts` ranges read by the tasks themselves.
     */
    static final class FileSliceDStream extends InputDStream<String> {
        private final LineIndex index;
        private final int parts;
        private final long batchMs;
        private long next;

        FileSliceDStream(StreamingContext ssc, ClassTag<String> tag, LineIndex index, int parts, long batchMs) {
            super(ssc, tag);
            this.index = index;
            this.parts = parts;
            this.batchMs = batchMs;
        }

        @Override
        public void start() {}

        @Override
        public void stop() {}

        @Override
        public Option<RDD<String>> compute(Time validTime) {
            long n = Math.max(1, Math.round(currentRate * batchMs / 1000.0));
            List<long[]> ranges = new ArrayList<>(parts);
            long start = next;
            for (int p = 0; p < parts; p++) {
                long c = n / parts + (p < n % parts ? 1 : 0);
                if (c > 0) ranges.add(new long[] {start, c});
                start += c;
            }
            next = start;
            JavaSparkContext jsc = JavaSparkContext.fromSparkContext(context().sparkContext());
            JavaRDD<String> rdd = jsc.parallelize(ranges, ranges.size()).flatMap(new ReadLines(index));
            scala.collection.immutable.Map<String, Object> meta = scala.collection.immutable.Map$.MODULE$.empty();
            context().scheduler().inputInfoTracker().reportInfo(validTime, new StreamInputInfo(id(), n, meta));
            return Option.apply(rdd.rdd());
        }
    }

    /** Reads the file in a loop and stores its lines one at a time (rate-limited by backpressure). */
    static final class LineReceiver extends Receiver<String> {
        private final String path;
        private volatile boolean stopped;

        LineReceiver(String path) {
            super(StorageLevel.MEMORY_AND_DISK_SER());
            this.path = path;
        }

        @Override
        public void onStart() {
            stopped = false;
            Thread t = new Thread(this::feed, "line-receiver");
            t.setDaemon(true);
            t.start();
        }

        @Override
        public void onStop() {
            stopped = true;
        }

        private void feed() {
            try {
                while (!stopped && !isStopped()) {
                    try (java.io.BufferedReader r = Files.newBufferedReader(Paths.get(path), StandardCharsets.UTF_8)) {
                        String s;
                        while (!stopped && !isStopped() && (s = r.readLine()) != null) store(s);
                    }
                }
            } catch (Throwable e) {
                if (!stopped && !isStopped()) restart("reading " + path + " failed", e);
            }
        }
    }
}
