//! The terminal side of a job: window output, malformed-record reports, a
//! progress bar, and the closing summary.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use engine::ingest::RecordError;
use engine::job::{Input, JobConfig, JobHooks, JobReport, Notice};
use engine::sink::{RowOrder, Sink};
use engine::{Dictionary, WindowResult};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::args::OutputOptions;

/// Malformed records reported one by one on stderr; the rest are counted.
const REPORTED_BAD_RECORDS: u64 = 5;

/// Writes a diagnostic line on stderr. A closed or full stderr loses the
/// line, never the job (`eprintln!` would panic).
pub fn diag(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
    let _ = err.flush();
}

pub struct CliHooks {
    /// Where window rows go.
    sink: Box<dyn Sink>,
    quiet: bool,
    bad_reported: u64,
    progress: Option<ProgressBar>,
    /// Window rows go to the terminal the progress bar is drawn on: the bar
    /// is hidden while they are written, so no stale copy stays between them.
    rows_on_terminal: bool,
    write_error: Option<std::io::Error>,
    /// A checkpointed job's output file in progress: its path and a handle
    /// to sync it through.
    committer: Option<(std::path::PathBuf, std::fs::File)>,
}

impl CliHooks {
    pub fn new(
        out: Box<dyn Write>,
        config: &JobConfig,
        options: &OutputOptions,
        rows_path: Option<&std::path::Path>,
    ) -> Self {
        let columns = options
            .columns
            .clone()
            .unwrap_or_else(|| config.output_columns());
        let sink: Box<dyn Sink> = match &options.file {
            #[cfg(feature = "parquet")]
            Some(path) if options.parquet => Box::new(engine::sink::ParquetSink::new(
                rows_path.map_or_else(|| path.clone(), std::path::Path::to_path_buf),
                &columns,
                config.value_type(),
            )),
            _ => {
                let order = options.top.map_or(RowOrder::ByKey, RowOrder::Top);
                options.format.sink(out, columns, order, options.table_rows)
            }
        };
        let progress = shows_progress_bar(config, options.quiet).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        #[cfg(not(feature = "parquet"))]
        let _ = rows_path;
        Self {
            sink,
            quiet: options.quiet,
            bad_reported: 0,
            progress,
            rows_on_terminal: options.file.is_none()
                && options.kafka.is_none()
                && std::io::stdout().is_terminal(),
            write_error: None,
            committer: None,
        }
    }

    /// Checkpoints commit the rows written to `path` through `file` (a
    /// handle of the same open file).
    pub fn commit_through(&mut self, path: &std::path::Path, file: std::fs::File) {
        self.committer = Some((path.to_path_buf(), file));
    }

    /// The rows go to `sink` instead (`--output kafka`).
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))] // Only Kafka's sink is made apart.
    pub fn use_sink(&mut self, sink: Box<dyn Sink>) {
        self.sink = sink;
    }

    /// The output file already holds rows from before a checkpoint.
    pub fn continue_output(&mut self) {
        self.sink.continue_output();
    }

    /// The error that stopped writing the output, if one did.
    pub fn take_write_error(&mut self) -> Option<std::io::Error> {
        self.write_error.take()
    }

    pub fn finish_progress(&mut self) {
        if let Some(bar) = self.progress.take() {
            bar.finish_and_clear();
        }
    }

    /// Flushes the output and prints the summary (marked interrupted when a
    /// signal stopped the job); returns the summary as JSON.
    pub fn finish(mut self, report: &JobReport, signal: Option<i32>) -> anyhow::Result<String> {
        self.finish_progress();
        if let Some(e) = self.write_error.take() {
            return Err(e.into());
        }
        self.sink.finish()?;
        let summary = Summary::of(report);
        if report.skipped > 0 {
            diag(&format!(
                "engine: skipped {} malformed records",
                report.skipped
            ));
        }
        if report.late > 0 {
            diag(&format!(
                "engine: dropped {} late records (an earlier record was already in a later pane: event times must not go back past the start of the latest pane)",
                report.late
            ));
        }
        if report.unmatched > 0 {
            diag(&format!(
                "engine: dropped {} events whose key is not in the --lookup table",
                report.unmatched
            ));
        }
        if report.after_until > 0 {
            diag(&format!(
                "engine: {} records at or after --until are in no window written",
                report.after_until
            ));
        }
        if report.overflowed > 0 {
            diag(&format!(
                "engine: {} results overflowed their type and were written as null",
                report.overflowed
            ));
        }
        if report.interrupted {
            let by = match signal {
                Some(2) => " by SIGINT".to_owned(),
                Some(15) => " by SIGTERM".to_owned(),
                Some(1) => " by SIGHUP".to_owned(),
                Some(n) => format!(" by signal {n}"),
                None => String::new(),
            };
            diag(&format!(
                "engine: interrupted{by}: the windows that had closed are written; the open ones are not (they would be incomplete)"
            ));
        }
        if !self.quiet {
            diag(&summary.text());
        }
        Ok(summary.json())
    }
}

/// Whether a job shows a progress bar: a file's, on a terminal's stderr.
pub fn shows_progress_bar(config: &JobConfig, quiet: bool) -> bool {
    matches!(config.input, Input::File(_)) && !quiet && std::io::stderr().is_terminal()
}

/// The summary line of a job still running, from its live metrics (batch
/// latency quantiles estimated from the histogram's buckets).
pub fn running_summary(metrics: &engine::metrics::Metrics) -> String {
    let report = metrics.report();
    Summary {
        report: &report,
        p50: metrics.latency_quantile(0.5),
        p99: metrics.latency_quantile(0.99),
        peak_rss_mb: peak_rss_mb(),
        running: true,
    }
    .text()
}

impl JobHooks for CliHooks {
    fn window(&mut self, window: &WindowResult, dict: &Dictionary) -> engine::Result<()> {
        if self.write_error.is_some() {
            return Ok(());
        }
        let sink = &mut self.sink;
        let written = match &self.progress {
            Some(bar) if self.rows_on_terminal => bar.suspend(|| sink.write_window(window, dict)),
            _ => sink.write_window(window, dict),
        };
        if let Err(e) = written {
            // The job stops; `main` tells a closed pipe (`| head`: a quiet
            // end) from a real write error.
            let stop = engine::Error::io("output", &e);
            self.write_error = Some(e);
            return Err(stop);
        }
        Ok(())
    }

    fn bad_record(&mut self, origin: &str, line: u64, reason: &RecordError) {
        self.bad_reported += 1;
        if self.bad_reported <= REPORTED_BAD_RECORDS {
            let reason = super::errors::reason_text(reason);
            self.print(&format!("engine: skipped {origin} line {line}: {reason}"));
        } else if self.bad_reported == REPORTED_BAD_RECORDS + 1 {
            self.print("engine: more malformed records are skipped and counted silently");
        }
    }

    fn notice(&mut self, notice: &Notice<'_>) {
        self.print(&format!("engine: {}", super::errors::notice_text(notice)));
    }

    fn progress(&mut self, done: u64, total: u64) {
        if let Some(bar) = &self.progress {
            bar.set_length(total);
            bar.set_position(done);
        }
    }

    fn commit_output(
        &mut self,
        finished: bool,
    ) -> engine::Result<Option<engine::checkpoint::OutputPosition>> {
        if let Some(e) = &self.write_error {
            return Err(engine::Error::io("output", e));
        }
        // Text sinks flush after each window: what they wrote is in the
        // file; a finished output gets what goes only at its end first. A
        // Kafka sink waits for the broker's acknowledgements (commits its
        // transaction) before anything else.
        let flushed =
            self.sink
                .commit()
                .and_then(|()| if finished { self.sink.finish() } else { Ok(()) });
        let Some((path, file)) = &self.committer else {
            return flushed
                .map(|()| None)
                .map_err(|e| engine::Error::io("output", &e));
        };
        let shown = path.display().to_string();
        let len = flushed
            .and_then(|()| file.sync_data())
            .and_then(|()| file.metadata())
            .map_err(|e| engine::Error::io(&shown, &e))?
            .len();
        Ok(Some(engine::checkpoint::OutputPosition {
            path: path.clone(),
            len,
        }))
    }
}

impl CliHooks {
    fn print(&self, line: &str) {
        match &self.progress {
            Some(bar) => bar.suspend(|| diag(line)),
            None => diag(line),
        }
    }
}

/// The closing summary: the report, and what is derived from it once.
struct Summary<'r> {
    report: &'r JobReport,
    p50: Duration,
    p99: Duration,
    peak_rss_mb: f64,
    /// The job is still running: the line says "so far".
    running: bool,
}

/// Peak resident memory of this process (Linux: `VmHWM`), MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024.0 / 1e6)
        })
        .unwrap_or(0.0)
}

impl<'r> Summary<'r> {
    fn of(report: &'r JobReport) -> Self {
        let mut latencies = report.batch_latencies.clone();
        latencies.sort_unstable();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        Self {
            report,
            p50: at(0.5),
            p99: at(0.99),
            peak_rss_mb: peak_rss_mb(),
            running: false,
        }
    }

    fn seconds(&self) -> f64 {
        self.report.elapsed.as_secs_f64().max(1e-9)
    }

    fn text(&self) -> String {
        let r = self.report;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        format!(
            "engine: {}{} records, {:.1} MB in {:.3} s: {:.0} records/s, {:.1} MB/s; {} windows; \
             batch latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} events from {} records, skipped {} malformed, \
             {} late, {} unmatched, {} filtered, {} after --until; peak RSS {:.0} MB{}",
            match (self.running, r.interrupted) {
                (true, _) => "so far ",
                (false, true) => "interrupted after ",
                (false, false) => "",
            },
            r.records,
            r.bytes as f64 / 1e6,
            self.seconds(),
            r.records as f64 / self.seconds(),
            r.bytes as f64 / 1e6 / self.seconds(),
            r.windows,
            ms(self.p50),
            ms(self.p99),
            ms(r.max_batch_latency),
            r.events,
            r.in_windows,
            r.skipped,
            r.late,
            r.unmatched,
            r.filtered,
            r.after_until,
            self.peak_rss_mb,
            if r.checkpoints > 0 {
                format!(
                    "; {} checkpoints, longest pause {:.1} ms, largest {:.1} MB",
                    r.checkpoints,
                    ms(r.checkpoint_max_pause),
                    r.checkpoint_max_bytes as f64 / 1e6
                )
            } else {
                String::new()
            },
        )
    }

    fn json(&self) -> String {
        let r = self.report;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        format!(
            "{{\"records\":{},\"bytes\":{},\"elapsed_s\":{},\"records_per_s\":{},\"mb_per_s\":{},\
             \"windows\":{},\"batch_latency_ms\":{{\"p50\":{},\"p99\":{},\"max\":{}}},\
             \"skipped\":{},\"late\":{},\"unmatched\":{},\"peak_rss_mb\":{:.1},\
             \"events\":{},\"in_windows\":{},\"filtered\":{},\"after_until\":{},\"overflowed\":{},\"interrupted\":{},\
             \"checkpoints\":{{\"written\":{},\"max_pause_ms\":{},\"total_pause_ms\":{},\"max_bytes\":{}}}}}\n",
            r.records,
            r.bytes,
            self.seconds(),
            r.records as f64 / self.seconds(),
            r.bytes as f64 / 1e6 / self.seconds(),
            r.windows,
            ms(self.p50),
            ms(self.p99),
            ms(r.max_batch_latency),
            r.skipped,
            r.late,
            r.unmatched,
            self.peak_rss_mb,
            r.events,
            r.in_windows,
            r.filtered,
            r.after_until,
            r.overflowed,
            r.interrupted,
            r.checkpoints,
            ms(r.checkpoint_max_pause),
            ms(r.checkpoint_total_pause),
            r.checkpoint_max_bytes,
        )
    }
}
