// The Flink SQL peer: window TVF `TABLE(HOP(...))` aggregated by
// GROUP BY window_start, window_end, key, with Flink's settings for sliding
// windows. The window TVF aggregation slices hop windows into panes of
// gcd(size, slide) and merges the panes of each window (pane sharing; Flink
// does it by default for window TVFs); two-phase (local-global) aggregation
// and mini-batch are switched on.

import java.time.Duration;
import java.time.ZoneOffset;
import java.time.LocalDateTime;

import org.apache.flink.api.java.tuple.Tuple3;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.Schema;
import org.apache.flink.table.api.Table;
import org.apache.flink.table.api.TableConfig;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.table.api.config.ExecutionConfigOptions;
import org.apache.flink.table.api.config.OptimizerConfigOptions;
import org.apache.flink.types.Row;

final class SqlHopJobs {
    private SqlHopJobs() {}

    static void build(StreamExecutionEnvironment env, FlinkPeer.Job job) {
        StreamTableEnvironment tEnv = StreamTableEnvironment.create(
            env, EnvironmentSettings.newInstance().inStreamingMode().build());
        configure(tEnv.getConfig(), job.parallelism(), job.bestSql());

        String hop = "TABLE(HOP(TABLE %s, DESCRIPTOR(rowtime), INTERVAL '" + job.slideS()
            + "' SECOND, INTERVAL '" + job.windowS() + "' SECOND))";
        String query;
        if (job.workload().equals("wordcount")) {
            DataStream<String> lines = Inputs.timedLines(env, job.input(), job.rate());
            tEnv.createTemporaryView("lines", lines, Schema.newBuilder()
                .column("f0", DataTypes.STRING())
                .columnByMetadata("rowtime", "TIMESTAMP_LTZ(3)")
                .watermark("rowtime", "SOURCE_WATERMARK()")
                .build());
            // SPLIT on the one separator of the generated text (a space);
            // the padding of fixed-size records gives empty strings.
            tEnv.createTemporaryView("words", tEnv.sqlQuery(
                "SELECT word, rowtime FROM lines CROSS JOIN UNNEST(SPLIT(f0, ' ')) AS T(word)"
                    + " WHERE word <> ''"));
            query = "SELECT window_end, word, COUNT(*) FROM " + String.format(hop, "words")
                + " GROUP BY window_start, window_end, word";
        } else {
            DataStream<Tuple3<Long, String, Long>> events = Inputs.events(env, job.input());
            tEnv.createTemporaryView("events", events, Schema.newBuilder()
                .column("f0", DataTypes.BIGINT().notNull())
                .column("f1", DataTypes.STRING())
                .column("f2", DataTypes.BIGINT().notNull())
                .columnByMetadata("rowtime", "TIMESTAMP_LTZ(3)")
                .watermark("rowtime", "SOURCE_WATERMARK()")
                .build());
            query = "SELECT window_end, f1, COUNT(*), SUM(f2), MIN(f2), MAX(f2) FROM "
                + String.format(hop, "events") + " GROUP BY window_start, window_end, f1";
        }
        if (job.explain()) {
            System.err.println(tEnv.explainSql(query));
        }
        Table result = tEnv.sqlQuery(query);
        tEnv.toDataStream(result)
            .map(SqlHopJobs::csv)
            .name("row to csv")
            .sinkTo(new CsvPartSink(job.out()))
            .name("csv parts");
    }

    /** Flink's best settings for sliding-window aggregation (or its defaults). */
    static void configure(TableConfig config, int parallelism, boolean best) {
        config.setLocalTimeZone(ZoneOffset.UTC);
        config.set(ExecutionConfigOptions.TABLE_EXEC_RESOURCE_DEFAULT_PARALLELISM, parallelism);
        if (!best) return;
        config.set(ExecutionConfigOptions.TABLE_EXEC_MINIBATCH_ENABLED, true);
        config.set(ExecutionConfigOptions.TABLE_EXEC_MINIBATCH_ALLOW_LATENCY, Duration.ofSeconds(1));
        config.set(ExecutionConfigOptions.TABLE_EXEC_MINIBATCH_SIZE, 10_000L);
        config.set(OptimizerConfigOptions.TABLE_OPTIMIZER_AGG_PHASE_STRATEGY,
            org.apache.flink.table.api.config.AggregatePhaseStrategy.TWO_PHASE);
    }

    /** window_end (a TIMESTAMP(3) in UTC) as epoch ms, then the other columns. */
    static String csv(Row row) {
        StringBuilder out = new StringBuilder(48)
            .append(((LocalDateTime) row.getField(0)).toInstant(ZoneOffset.UTC).toEpochMilli());
        for (int i = 1; i < row.getArity(); i++) {
            out.append(',').append(row.getField(i));
        }
        return out.toString();
    }
}
