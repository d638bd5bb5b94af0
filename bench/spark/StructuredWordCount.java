// Spark Structured Streaming windowed WordCount with built-in functions only:
// text lines -> split + explode into words -> event time -> groupBy(window(ts,
// W, S), word).count(), output mode update, to the `noop` sink.
//
//   run.sh structured --input FILE --cores N --window-s 30 --slide-s 1 \
//          --duration-s 60 --warmup-s 20 --out structured.csv --checkpoint /tmp/ckpt
//
// How the input is fed: the built-in `text` file source over a directory.
// A feeder thread cuts the input file (looping over it when a run needs more
// lines) into part files of --lines-per-file lines, written under a hidden
// name then renamed, so the source only sees whole files, and keeps a few
// triggers' worth ahead of the query. The query reads --files-per-trigger
// files per micro-batch (maxFilesPerTrigger) and deletes them once
// processed (cleanSource=delete). The default trigger starts each
// micro-batch as soon as the previous one ends (--batch-ms 0), so the run
// measures Spark's maximum throughput at that micro-batch size; --batch-ms B
// uses a ProcessingTime(B) trigger instead.
//
// Event time is the engine's virtual time: record i has time
// floor(i * 1000 / rate) ms (--rate, default 1000000 lines/s). Rows carry no
// line number, so the time is taken from the part file's name (its first
// line's number, read from the hidden `_metadata.file_name` column): every
// line of a file gets the time of the file's first line. The window each line
// falls in is nevertheless exactly the engine's, because a part file never
// straddles a pane (gcd(window, slide)) boundary: --lines-per-file must
// divide the lines of a pane (rate x pane), which is checked. A watermark of
// --watermark-s (default 0: the virtual time never goes back) lets Spark
// drop the state of closed windows. Spark's sliding windows copy each word
// into every window that holds it (window/slide copies), as Spark does.
//
// Measured with a StreamingQueryListener: per micro-batch, the progress
// timestamp (batch_time_ms, the trigger's start), numInputRows (records =
// lines) and durationMs.triggerExecution (processing_ms). total_delay_ms is
// also triggerExecution: the time from the trigger's start to the batch's
// commit, a lower bound of a line's latency (a line that arrives while a
// batch runs waits for the next one). scheduling_delay_ms is left empty: a
// micro-batch starts when the previous one ends, so there is no queue of
// batches as in DStreams. Summary line as for DStreams:
//
//   spark structured: R records/s sustained, p50 batch latency X ms, p99 Y ms
//
// R = lines of the micro-batches completed during --duration-s after
// --warmup-s / the wall time they span (the query always runs flat out, so
// this is its processing rate at this micro-batch size).

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.spark.SparkConf;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.apache.spark.sql.streaming.StreamingQueryListener;
import org.apache.spark.sql.streaming.StreamingQueryProgress;
import org.apache.spark.sql.streaming.Trigger;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.explode;
import static org.apache.spark.sql.functions.expr;
import static org.apache.spark.sql.functions.rtrim;
import static org.apache.spark.sql.functions.split;
import static org.apache.spark.sql.functions.window;

public final class StructuredWordCount {
    private static final String USAGE =
        "usage: StructuredWordCount --input FILE --out CSV --checkpoint DIR [--cores N] [--window-s W]\n"
        + "         [--slide-s S] [--duration-s D] [--warmup-s U] [--rate LINES_PER_S]\n"
        + "         [--lines-per-file L] [--files-per-trigger F] [--batch-ms B] [--watermark-s X]\n"
        + "         [--verbose true]";

    /** Digits of the first line's number in a part file's name: part-NNN...N.txt */
    private static final int NAME_DIGITS = 15;

    public static void main(String[] argv) throws Exception {
        PeerBench.Args a = new PeerBench.Args(argv, USAGE, "input", "cores", "batch-ms", "window-s",
            "slide-s", "duration-s", "warmup-s", "out", "checkpoint", "rate", "lines-per-file",
            "files-per-trigger", "watermark-s", "verbose");
        String input = a.str("input", null);
        String out = a.str("out", null);
        String checkpointRoot = a.str("checkpoint", null);
        int cores = (int) a.num("cores", 2);
        long batchMs = a.num("batch-ms", 0);
        long windowS = a.num("window-s", 30);
        long slideS = a.num("slide-s", 1);
        long durationS = a.num("duration-s", 60);
        long warmupS = a.num("warmup-s", 20);
        long rate = a.num("rate", 1_000_000);
        long linesPerFile = a.num("lines-per-file", 50_000);
        int filesPerTrigger = (int) a.num("files-per-trigger", cores);
        long watermarkS = a.num("watermark-s", 0);
        final boolean verbose = a.str("verbose", "false").equals("true");
        if (!Files.isRegularFile(Paths.get(input))) PeerBench.fail("no such file: " + input);
        if (rate <= 0 || linesPerFile <= 0 || filesPerTrigger <= 0) PeerBench.fail("--rate, --lines-per-file and --files-per-trigger must be positive");
        long paneS = gcd(windowS, slideS);
        if ((rate * paneS) % linesPerFile != 0) {
            PeerBench.fail("--lines-per-file " + linesPerFile + " must divide the " + rate * paneS
                + " lines of a pane (rate x gcd(window, slide)) for exact event times");
        }

        Path root = Paths.get(checkpointRoot, "structured-" + System.currentTimeMillis());
        Path inputDir = root.resolve("input");
        Path checkpoint = root.resolve("checkpoint");
        Files.createDirectories(inputDir);

        SparkConf conf = new SparkConf().setAppName("StructuredWordCount");
        conf.setIfMissing("spark.master", "local[" + cores + "]");
        conf.setIfMissing("spark.ui.enabled", "false");
        conf.setIfMissing("spark.sql.shuffle.partitions", Integer.toString(cores));
        conf.setIfMissing("spark.default.parallelism", Integer.toString(cores));
        SparkSession spark = SparkSession.builder().config(conf).getOrCreate();
        spark.sparkContext().setLogLevel("WARN");

        // The feeder: part files cut from the input, a few triggers ahead.
        AtomicLong consumedLines = new AtomicLong();
        long aheadFiles = 3L * filesPerTrigger + 2;
        Feeder feeder = new Feeder(Paths.get(input), inputDir, linesPerFile, aheadFiles, consumedLines);
        feeder.fillAhead();
        Thread feederThread = new Thread(feeder, "part-file-feeder");
        feederThread.setDaemon(true);
        feederThread.start();

        Dataset<Row> lines = spark.readStream()
            .format("text")
            .option("maxFilesPerTrigger", filesPerTrigger)
            .option("cleanSource", "delete")
            .load(inputDir.toString());
        // Virtual event time of the file's first line, floor(i * 1000 / rate) ms.
        Column ts = expr("timestamp_millis(cast(floor(cast(substring(_metadata.file_name, 6, " + NAME_DIGITS
            + ") as bigint) * 1000 / " + rate + ") as bigint))");
        Dataset<Row> words = lines.select(ts.as("ts"), explode(split(rtrim(col("value")), " ")).as("word"));
        Dataset<Row> counts = words
            .withWatermark("ts", watermarkS + " seconds")
            .groupBy(window(col("ts"), windowS + " seconds", slideS + " seconds"), col("word"))
            .count();

        PeerBench.Recorder recorder = new PeerBench.Recorder();
        spark.streams().addListener(new StreamingQueryListener() {
            @Override
            public void onQueryStarted(QueryStartedEvent event) {}

            @Override
            public void onQueryProgress(QueryProgressEvent event) {
                StreamingQueryProgress p = event.progress();
                Map<String, Long> d = p.durationMs();
                long trigger = d.getOrDefault("triggerExecution", 0L);
                long start = Instant.parse(p.timestamp()).toEpochMilli();
                recorder.add(new PeerBench.Batch(start, p.numInputRows(), trigger, -1, trigger, start + trigger));
                consumedLines.addAndGet(p.numInputRows());
                if (verbose) {
                    System.err.printf("batch %d: %d rows, %s%n", p.batchId(), p.numInputRows(), d);
                }
            }

            @Override
            public void onQueryTerminated(QueryTerminatedEvent event) {}
        });

        StreamingQuery query = counts.writeStream()
            .format("noop")
            .outputMode("update")
            .option("checkpointLocation", checkpoint.toString())
            .trigger(Trigger.ProcessingTime(batchMs))
            .start();

        long startedAt = System.currentTimeMillis();
        long measureFrom = startedAt + warmupS * 1000;
        long measureTo = measureFrom + durationS * 1000;
        while (System.currentTimeMillis() < measureTo) {
            if (!query.isActive()) {
                System.err.println("error: the query stopped: " + query.exception());
                System.exit(1);
            }
            Thread.sleep(Math.min(500, Math.max(1, measureTo - System.currentTimeMillis())));
        }
        List<PeerBench.Batch> batches = recorder.snapshot();
        feeder.stop();
        query.stop();
        PeerBench.report("structured", cores, batches, measureFrom, measureTo, out,
            "batch latency = triggerExecution");
        spark.stop();
        PeerBench.deleteTree(root);
        System.exit(0);
    }

    static long gcd(long x, long y) {
        return y == 0 ? x : gcd(y, x % y);
    }

    /** Cuts the input into part files named by their first line's number, looping over the input. */
    static final class Feeder implements Runnable {
        private final Path source;
        private final Path dir;
        private final long linesPerFile;
        private final long aheadFiles;
        private final AtomicLong consumedLines;
        private volatile boolean stopped;
        private BufferedReader reader;
        private long nextLine;

        Feeder(Path source, Path dir, long linesPerFile, long aheadFiles, AtomicLong consumedLines) {
            this.source = source;
            this.dir = dir;
            this.linesPerFile = linesPerFile;
            this.aheadFiles = aheadFiles;
            this.consumedLines = consumedLines;
        }

        void stop() {
            stopped = true;
        }

        /** Writes files until `aheadFiles` are waiting to be read. */
        void fillAhead() throws IOException {
            while (!stopped && nextLine - consumedLines.get() < aheadFiles * linesPerFile) writeFile();
        }

        @Override
        public void run() {
            try {
                while (!stopped) {
                    fillAhead();
                    Thread.sleep(20);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (IOException e) {
                System.err.println("error: feeder: " + e);
                System.exit(1);
            }
        }

        private String nextInputLine() throws IOException {
            for (int attempt = 0; attempt < 2; attempt++) {
                if (reader == null) reader = Files.newBufferedReader(source, StandardCharsets.UTF_8);
                String s = reader.readLine();
                if (s != null) return s;
                reader.close();
                reader = null; // loop over the input
            }
            throw new IOException(source + " has no lines");
        }

        private void writeFile() throws IOException {
            String name = String.format("part-%0" + NAME_DIGITS + "d.txt", nextLine);
            Path tmp = dir.resolve("." + name + ".tmp");
            try (BufferedWriter w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
                for (long i = 0; i < linesPerFile; i++) {
                    w.write(nextInputLine());
                    w.write('\n');
                }
            }
            Files.move(tmp, dir.resolve(name), StandardCopyOption.ATOMIC_MOVE);
            nextLine += linesPerFile;
        }
    }
}
