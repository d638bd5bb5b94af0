// Shared by DStreamWordCount and StructuredWordCount: argument parsing, the
// per-batch records, the CSV and the one-line summary.

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

final class PeerBench {
    private PeerBench() {}

    static final String HEADER =
        "peer,mode,cores,batch_time_ms,records,processing_ms,scheduling_delay_ms,total_delay_ms";

    /** `--name value` or `--name=value` arguments; unknown names are an error. */
    static final class Args {
        private final Map<String, String> values = new HashMap<>();

        Args(String[] argv, String usage, String... known) {
            List<String> names = Arrays.asList(known);
            for (int i = 0; i < argv.length; i++) {
                String a = argv[i];
                if (a.equals("-h") || a.equals("--help")) {
                    System.out.println(usage);
                    System.exit(0);
                }
                if (!a.startsWith("--")) fail("unexpected argument `" + a + "`\n" + usage);
                String name;
                String value;
                int eq = a.indexOf('=');
                if (eq > 0) {
                    name = a.substring(2, eq);
                    value = a.substring(eq + 1);
                } else {
                    name = a.substring(2);
                    if (i + 1 >= argv.length) fail("--" + name + " needs a value");
                    value = argv[++i];
                }
                if (!names.contains(name)) fail("unknown option --" + name + "\n" + usage);
                values.put(name, value);
            }
        }

        String str(String name, String dflt) {
            String v = values.get(name);
            if (v == null && dflt == null) fail("missing --" + name);
            return v == null ? dflt : v;
        }

        long num(String name, long dflt) {
            String v = values.get(name);
            if (v == null) return dflt;
            try {
                return Long.parseLong(v.replace("_", ""));
            } catch (NumberFormatException e) {
                fail("--" + name + " must be an integer, got `" + v + "`");
                return 0;
            }
        }

        double dbl(String name, double dflt) {
            String v = values.get(name);
            if (v == null) return dflt;
            try {
                return Double.parseDouble(v);
            } catch (NumberFormatException e) {
                fail("--" + name + " must be a number, got `" + v + "`");
                return 0;
            }
        }
    }

    static void fail(String msg) {
        System.err.println("error: " + msg);
        System.exit(2);
    }

    /** One completed (micro-)batch. `schedulingDelayMs` < 0 means not applicable. */
    static final class Batch {
        final long batchTimeMs;
        final long records;
        final long processingMs;
        final long schedulingDelayMs;
        final long totalDelayMs;
        /** Wall clock (epoch ms) when the batch was seen complete. */
        final long completedAtMs;

        Batch(long batchTimeMs, long records, long processingMs, long schedulingDelayMs,
              long totalDelayMs, long completedAtMs) {
            this.batchTimeMs = batchTimeMs;
            this.records = records;
            this.processingMs = processingMs;
            this.schedulingDelayMs = schedulingDelayMs;
            this.totalDelayMs = totalDelayMs;
            this.completedAtMs = completedAtMs;
        }
    }

    /** Batches completed so far, appended by the listener thread. */
    static final class Recorder {
        private final List<Batch> batches = new ArrayList<>();

        synchronized void add(Batch b) {
            batches.add(b);
        }

        synchronized List<Batch> snapshot() {
            return new ArrayList<>(batches);
        }
    }

    /**
     * Writes the CSV of the batches completed in [measureFromMs, measureToMs]
     * (wall clock) and prints the summary line. The sustained rate is the
     * records of those batches over the wall time they span: from the
     * completion of the last batch before the measurement (or measureFromMs
     * when there is none) to the completion of the last measured batch. When
     * the engine keeps up this is the input rate; when it does not (growing
     * scheduling delay), it is the rate at which batches were processed.
     */
    static void report(String mode, int cores, List<Batch> all, long measureFromMs, long measureToMs,
                       String outCsv, String latencyNote) throws IOException {
        List<Batch> measured = new ArrayList<>();
        long lastBefore = Long.MIN_VALUE;
        for (Batch b : all) {
            if (b.completedAtMs < measureFromMs) {
                lastBefore = Math.max(lastBefore, b.completedAtMs);
            } else if (b.completedAtMs <= measureToMs) {
                measured.add(b);
            }
        }
        long spanStart = lastBefore == Long.MIN_VALUE ? measureFromMs : lastBefore;
        Path out = Paths.get(outCsv);
        if (out.getParent() != null) Files.createDirectories(out.getParent());
        try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(out, StandardCharsets.UTF_8))) {
            w.println(HEADER);
            for (Batch b : measured) {
                w.println("spark," + mode + "," + cores + "," + b.batchTimeMs + "," + b.records + ","
                    + b.processingMs + "," + (b.schedulingDelayMs < 0 ? "" : Long.toString(b.schedulingDelayMs))
                    + "," + b.totalDelayMs);
            }
        }
        if (measured.isEmpty()) {
            System.out.println("spark " + mode + ": no batch completed in the measured period (warm-up too short, or Spark far behind)");
            return;
        }
        // Latency percentiles are over the batches that had input (Structured
        // Streaming also runs no-data batches that only advance the watermark).
        long records = 0;
        long[] lat = new long[measured.size()];
        int n = 0;
        long maxSched = -1;
        for (Batch b : measured) {
            records += b.records;
            if (b.records > 0) lat[n++] = b.totalDelayMs;
            maxSched = Math.max(maxSched, b.schedulingDelayMs);
        }
        if (n == 0) {
            System.out.println("spark " + mode + ": no input in the measured period");
            return;
        }
        lat = Arrays.copyOf(lat, n);
        long last = measured.get(measured.size() - 1).completedAtMs;
        double spanS = Math.max(1, last - spanStart) / 1000.0;
        Arrays.sort(lat);
        System.out.printf("spark %s: %.0f records/s sustained, p50 batch latency %d ms, p99 %d ms%n",
            mode, records / spanS, percentile(lat, 50), percentile(lat, 99));
        System.err.printf("spark %s: %d batches (%d with input), %d records over %.1f s; %s%s%n",
            mode, measured.size(), n, records, spanS, latencyNote,
            maxSched >= 0 ? "; largest scheduling delay " + maxSched + " ms" : "");
    }

    /** Nearest-rank percentile of sorted values. */
    static long percentile(long[] sorted, double p) {
        int rank = (int) Math.ceil(p / 100.0 * sorted.length);
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
    }

    static void sleepUntil(long wallMs) throws InterruptedException {
        for (long now = System.currentTimeMillis(); now < wallMs; now = System.currentTimeMillis()) {
            Thread.sleep(Math.min(500, wallMs - now));
        }
    }

    /** Removes a directory tree (checkpoints, part files), warning on failure. */
    static void deleteTree(Path p) {
        try (Stream<Path> s = Files.walk(p)) {
            s.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException e) {
            System.err.println("warning: could not remove " + p + ": " + e);
        }
    }
}
