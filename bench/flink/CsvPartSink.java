// A sink writing each subtask's rows to DIR/part-<subtask>.csv, one line a
// row, no header; the rows are counted in FlinkPeer.ROWS.

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.stream.Stream;

import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;

final class CsvPartSink implements Sink<String> {
    private static final long serialVersionUID = 1L;
    private final String dir;

    CsvPartSink(String dir) {
        this.dir = dir;
    }

    /** Creates `dir` and removes the part files of an earlier run. */
    static void prepare(String dir) throws IOException {
        Path path = Paths.get(dir);
        Files.createDirectories(path);
        try (Stream<Path> old = Files.list(path)) {
            old.filter(p -> p.getFileName().toString().matches("part-[0-9]+\\.csv"))
                .forEach(p -> {
                    try {
                        Files.delete(p);
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                });
        }
    }

    @Override
    public SinkWriter<String> createWriter(WriterInitContext context) throws IOException {
        int subtask = context.getTaskInfo().getIndexOfThisSubtask();
        return new Writer(Files.newBufferedWriter(
            Paths.get(dir, "part-" + subtask + ".csv"), StandardCharsets.UTF_8));
    }

    static final class Writer implements SinkWriter<String> {
        private final BufferedWriter out;
        private long rows;

        Writer(BufferedWriter out) {
            this.out = out;
        }

        @Override
        public void write(String row, Context context) throws IOException {
            out.write(row);
            out.write('\n');
            rows++;
        }

        @Override
        public void flush(boolean endOfInput) throws IOException {
            out.flush();
        }

        @Override
        public void close() throws IOException {
            out.close();
            FlinkPeer.ROWS.addAndGet(rows);
        }
    }
}
