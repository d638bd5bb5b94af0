// The Apache Flink peer of the engine's side-by-side benchmarks: one windowed
// job (WordCount or a keyed aggregate) in one API (DataStream or SQL), in a
// local environment, over a file the engine reads too. Writes the windows as
// CSV part files with the engine's columns and prints one summary line.

import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.configuration.ExecutionOptions;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

public final class FlinkPeer {
    private FlinkPeer() {}

    static final String USAGE = String.join("\n",
        "usage: FlinkPeer --api datastream|sql --workload wordcount|aggregate --input FILE --out DIR",
        "                 [--parallelism N] [--rate R] [--window-s 10] [--slide-s 1] [--explain true]",
        "                 [--sql-settings best|default]",
        "",
        "  --api          datastream: SlidingEventTimeWindows + aggregate(AggregateFunction)",
        "                 sql: TABLE(HOP(...)) GROUP BY window_start, window_end, key",
        "  --workload     wordcount: text lines, words counted, virtual time floor(i*1000/R) ms",
        "                 aggregate: CSV ts,key,value (header skipped), count,sum,min,max of value",
        "  --input        the file (read by one FileSource reader)",
        "  --out          directory for part-<subtask>.csv: window_end,key,count[,sum,min,max]",
        "  --parallelism  the local environment's parallelism [2]",
        "  --rate         wordcount: lines per second of virtual time [50000]",
        "  --window-s     window length, whole seconds [10]",
        "  --slide-s      slide, whole seconds [1]",
        "  --explain      sql: print the optimized plan on stderr [false]",
        "  --sql-settings sql: best = mini-batch and two-phase aggregation on; default = Flink's",
        "                 defaults (window TVFs share slices either way) [best]",
        "",
        "stdout: `flink API WORKLOAD: records=N rows=M job_seconds=S net_runtime_seconds=S",
        "job_cpu_seconds=S`: job_seconds from the first record read to the end of the job",
        "(after the environment and the job graph are up), job_cpu_seconds the CPU time",
        "of the whole JVM (every thread: tasks, JIT, GC) over the same span.");

    /** Nanos of the first record read (0: none yet); tasks run in this JVM. */
    static final AtomicLong FIRST_RECORD_NANOS = new AtomicLong();
    /** The process's CPU time (ns, all threads) at the first record read. */
    static final AtomicLong FIRST_RECORD_CPU_NANOS = new AtomicLong();
    /** Input records read (lines, or CSV events without the header). */
    static final AtomicLong RECORDS = new AtomicLong();
    /** Result rows written. */
    static final AtomicLong ROWS = new AtomicLong();

    /** What one run computes. */
    record Job(String api, String workload, String input, String out, int parallelism,
               long rate, long windowS, long slideS, boolean explain, boolean bestSql) {
        String name() {
            return api + " " + workload;
        }
    }

    public static void main(String[] argv) throws Exception {
        long mainStarted = System.nanoTime();
        double jvmSeconds =
            (System.currentTimeMillis() - ManagementFactory.getRuntimeMXBean().getStartTime()) / 1e3;
        Map<String, String> a = parse(argv);
        Job job = new Job(
            choice(a, "api", "datastream", "sql"),
            choice(a, "workload", "wordcount", "aggregate"),
            required(a, "input"),
            required(a, "out"),
            (int) number(a, "parallelism", 2),
            number(a, "rate", 50_000),
            number(a, "window-s", 10),
            number(a, "slide-s", 1),
            Boolean.parseBoolean(a.getOrDefault("explain", "false")),
            optionalChoice(a, "sql-settings", "best", "default").equals("best"));
        if (job.windowS() % job.slideS() != 0) {
            fail("--window-s must be a multiple of --slide-s");
        }
        CsvPartSink.prepare(job.out());

        Configuration conf = new Configuration();
        conf.set(ExecutionOptions.RUNTIME_MODE, RuntimeExecutionMode.STREAMING);
        conf.set(CoreOptions.DEFAULT_PARALLELISM, job.parallelism());
        // Records are not copied between chained operators (the programs do
        // not keep references to their inputs).
        conf.set(PipelineOptions.OBJECT_REUSE, true);
        StreamExecutionEnvironment env =
            StreamExecutionEnvironment.createLocalEnvironment(job.parallelism(), conf);

        if (job.api().equals("datastream")) {
            DataStreamJobs.build(env, job);
        } else {
            SqlHopJobs.build(env, job);
        }
        long submitted = System.nanoTime();
        JobExecutionResult result = env.execute("flink " + job.name());
        long end = System.nanoTime();
        long endCpu = processCpuNanos();
        long first = FIRST_RECORD_NANOS.get();
        double jobSeconds = (end - (first == 0 ? submitted : first)) / 1e9;
        System.err.printf(
            "flink %s: start-up: JVM %.1f s, building the job %.1f s, from submission to the first record %.1f s%n",
            job.name(), jvmSeconds, (submitted - mainStarted) / 1e9,
            first == 0 ? 0.0 : (first - submitted) / 1e9);
        System.out.printf(
            "flink %s: records=%d rows=%d job_seconds=%.6f net_runtime_seconds=%.3f job_cpu_seconds=%.3f%n",
            job.name(), RECORDS.get(), ROWS.get(), jobSeconds, result.getNetRuntime() / 1e3,
            (endCpu - FIRST_RECORD_CPU_NANOS.get()) / 1e9);
    }

    /** Called by the reading task with its first record. */
    static void firstRecord() {
        if (FIRST_RECORD_NANOS.compareAndSet(0, System.nanoTime())) {
            FIRST_RECORD_CPU_NANOS.set(processCpuNanos());
        }
    }

    /** CPU time of the whole JVM so far, ns. */
    static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean)
            ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    static Map<String, String> parse(String[] argv) {
        List<String> known = Arrays.asList("api", "workload", "input", "out", "parallelism",
            "rate", "window-s", "slide-s", "explain", "sql-settings");
        Map<String, String> values = new HashMap<>();
        for (int i = 0; i < argv.length; i++) {
            String arg = argv[i];
            if (arg.equals("-h") || arg.equals("--help")) {
                System.out.println(USAGE);
                System.exit(0);
            }
            if (!arg.startsWith("--")) fail("unexpected argument `" + arg + "`");
            int eq = arg.indexOf('=');
            String name = eq > 0 ? arg.substring(2, eq) : arg.substring(2);
            if (!known.contains(name)) fail("unknown option --" + name);
            if (eq < 0 && i + 1 >= argv.length) fail("--" + name + " needs a value");
            values.put(name, eq > 0 ? arg.substring(eq + 1) : argv[++i]);
        }
        return values;
    }

    static String required(Map<String, String> a, String name) {
        String v = a.get(name);
        if (v == null) fail("missing --" + name);
        return v;
    }

    static String choice(Map<String, String> a, String name, String... allowed) {
        return oneOf(name, required(a, name), allowed);
    }

    /** --name, one of `allowed`, the first of them when not given. */
    static String optionalChoice(Map<String, String> a, String name, String... allowed) {
        return oneOf(name, a.getOrDefault(name, allowed[0]), allowed);
    }

    static String oneOf(String name, String v, String... allowed) {
        if (!Arrays.asList(allowed).contains(v)) {
            fail("--" + name + " must be one of " + String.join(", ", allowed) + ", got `" + v + "`");
        }
        return v;
    }

    static long number(Map<String, String> a, String name, long dflt) {
        String v = a.get(name);
        if (v == null) return dflt;
        try {
            long n = Long.parseLong(v.replace("_", ""));
            if (n <= 0) fail("--" + name + " must be positive, got " + n);
            return n;
        } catch (NumberFormatException e) {
            fail("--" + name + " must be an integer, got `" + v + "`");
            return 0;
        }
    }

    static void fail(String why) {
        System.err.println("FlinkPeer: " + why + "\n" + USAGE);
        System.exit(2);
    }
}
