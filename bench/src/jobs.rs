//! Whole jobs end to end, as `engine run` runs them ([`engine::job::run`]):
//! a generated file, memory-mapped from the page cache, parsed, windowed and
//! emitted. Shared by the `jobs` Criterion group and the `reproduce` harness.
//!
//! | [`Workload`] | input | job |
//! |---|---|---|
//! | `wordcount` | 100-byte records of Zipf words (the D-Streams paper's setup) | words counted over a 30 s window sliding by 1 s, virtual time 50 000 lines/s |
//! | `wordcount_10s` | (not in [`Workload::ALL`]: the `ingest` suite's, on its own files) | words counted over a 10 s window sliding by 1 s, virtual time 50 000 lines/s (issue 10's WordCount) |
//! | `grep` | the same records | lines containing `w42` counted per 1 s batch |
//! | `ysb` | Yahoo Streaming Benchmark NDJSON events | `event_type = view` → ad's campaign → count per campaign per 10 s tumbling window (event time) |
//! | `nexmark_q5` | NEXMark bids, CSV | hot items: bids per auction over a 10 s window sliding by 5 s, then the auction with the most bids in each window |
//! | `nexmark_q7` | the same bids | highest bid of each 10 s tumbling window (max per auction, then over auctions) |
//!
//! Throughput is input records per second of wall-clock time (for YSB every
//! event read, as the benchmark counts them, not only the views).
//!
//! ```no_run
//! use bench::jobs::{JobInputs, Workload};
//!
//! let inputs = JobInputs::create(&std::env::temp_dir().join("jobs"), 64 << 20)?;
//! let outcome = bench::jobs::run(Workload::Ysb, &inputs, 1)?;
//! println!("{:.1} M events/s", outcome.records as f64 / outcome.seconds / 1e6);
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use datasets::{BidConfig, BidStream, Generator, Limit, WordLines, YsbConfig, YsbStream};
use engine::ingest::Format;
use engine::job::{self, Input, JobConfig, JobHooks, JobKind, OnError, TimeMode};
use engine::lookup::Lookup;
use engine::sink::Sink;
use engine::ValueType;
use engine::{Agg, AggColumn, AggSet, Dictionary, WindowResult, WindowSpec};

/// A job of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Windowed WordCount, 30 s window sliding by 1 s.
    WordCount,
    /// Windowed WordCount, 10 s window sliding by 1 s: the end-to-end
    /// WordCount of the `ingest` suite (not in [`Workload::ALL`]).
    WordCount10s,
    /// Lines containing a pattern, counted per batch.
    Grep,
    /// The Yahoo Streaming Benchmark.
    Ysb,
    /// NEXMark Q5, hot items.
    NexmarkQ5,
    /// NEXMark Q7, highest bid.
    NexmarkQ7,
}

impl Workload {
    /// Every workload, in the order they are reported.
    pub const ALL: [Workload; 5] = [
        Workload::WordCount,
        Workload::Grep,
        Workload::Ysb,
        Workload::NexmarkQ5,
        Workload::NexmarkQ7,
    ];

    /// The name used in benchmark ids and CSV files.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Workload::WordCount => "wordcount",
            Workload::WordCount10s => "wordcount_10s",
            Workload::Grep => "grep",
            Workload::Ysb => "ysb",
            Workload::NexmarkQ5 => "nexmark_q5",
            Workload::NexmarkQ7 => "nexmark_q7",
        }
    }
}

/// Virtual time of the text jobs: lines per second.
pub const TEXT_RATE: u64 = 50_000;
/// Event-time rate of the generated YSB events (events/s).
pub const YSB_RATE: u64 = 20_000;
/// Event-time rate of the generated bids (bids/s).
pub const BID_RATE: u64 = 10_000;
/// The pattern of `grep`: one word of the vocabulary.
pub const GREP_PATTERN: &str = "w42";

/// The generated input files of the suite, in one directory.
#[derive(Debug)]
pub struct JobInputs {
    dir: PathBuf,
    /// 100-byte word records.
    pub words: PathBuf,
    /// YSB events, NDJSON.
    pub ysb: PathBuf,
    /// YSB's ad → campaign table, CSV.
    pub ads: PathBuf,
    /// NEXMark bids, CSV.
    pub bids: PathBuf,
}

/// Writes `generator`'s records to `path` up to `bytes`.
pub fn write(path: &Path, generator: &mut dyn Generator, bytes: usize) -> Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    datasets::write_records(generator, Limit::Bytes(bytes as u64), &mut out, |_| {})
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

impl JobInputs {
    /// Generates about `bytes` of each input in `dir` (created; the files
    /// are overwritten). Seeded: the same bytes on every machine.
    pub fn create(dir: &Path, bytes: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let this = Self {
            dir: dir.to_owned(),
            words: dir.join("words-100b.txt"),
            ysb: dir.join("ysb.ndjson"),
            ads: dir.join("ysb-campaigns.csv"),
            bids: dir.join("bids.csv"),
        };
        let mut words = WordLines::new(42, 10_000, 1.0, 10).with_record_bytes(100);
        write(&this.words, &mut words, bytes)?;
        let mut ysb = YsbStream::new(&YsbConfig {
            rate: YSB_RATE,
            ..YsbConfig::default()
        });
        write(&this.ysb, &mut ysb, bytes)?;
        ysb.write_campaigns_csv(BufWriter::new(File::create(&this.ads)?))?;
        let mut bids = BidStream::new(&BidConfig {
            rate: BID_RATE,
            ..BidConfig::default()
        });
        write(&this.bids, &mut bids, bytes)?;
        Ok(this)
    }

    /// Removes the files.
    pub fn remove(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What one run of a job did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Outcome {
    /// Input records read.
    pub records: u64,
    /// Input bytes read.
    pub bytes: u64,
    /// Wall-clock seconds of the whole job.
    pub seconds: f64,
    /// Windows emitted.
    pub windows: u64,
    /// Result rows emitted.
    pub rows: u64,
    /// Events aggregated into windows (a word count's words; one per
    /// record otherwise, the filtered ones excluded).
    pub events: u64,
    /// A workload-specific sum of the results (counts, or the highest bids),
    /// equal for every thread count.
    pub checksum: u64,
}

/// Hooks that fold the emitted windows into a checksum, and write them to
/// a sink if there is one.
struct Fold<'a> {
    workload: Workload,
    windows: u64,
    rows: u64,
    checksum: u64,
    bad: u64,
    sink: Option<&'a mut dyn Sink>,
}

impl JobHooks for Fold<'_> {
    fn window(&mut self, window: &WindowResult, dict: &Dictionary) -> engine::Result<()> {
        if let Some(sink) = self.sink.as_mut() {
            sink.write_window(window, dict)
                .map_err(|e| engine::Error::io("the job's rows", e))?;
        }
        self.windows += 1;
        self.rows += window.len() as u64;
        let column = window.column(if self.workload == Workload::NexmarkQ7 {
            Agg::Max
        } else {
            Agg::Count
        });
        self.checksum = self.checksum.wrapping_add(match (self.workload, column) {
            // Hot item: the most bids of one auction in the window.
            (Workload::NexmarkQ5, Some(AggColumn::U64(counts))) => {
                counts.iter().copied().max().unwrap_or(0)
            }
            (_, Some(AggColumn::U64(counts))) => counts.iter().sum(),
            // Highest bid: the max over the auctions' maxima.
            (_, Some(AggColumn::NullableI64(max))) => {
                max.iter().flatten().copied().max().unwrap_or(0) as u64
            }
            (_, other) => unreachable!("unexpected result column {other:?}"),
        });
        Ok(())
    }

    fn bad_record(&mut self, _origin: &str, _line: u64, _reason: &engine::ingest::RecordError) {
        self.bad += 1;
    }

    fn notice(&mut self, _notice: &engine::job::Notice<'_>) {}
}

/// The job configuration of `workload` on `inputs`.
pub fn config(workload: Workload, inputs: &JobInputs, threads: usize) -> Result<JobConfig> {
    let input = match workload {
        Workload::WordCount | Workload::WordCount10s | Workload::Grep => &inputs.words,
        Workload::Ysb => &inputs.ysb,
        Workload::NexmarkQ5 | Workload::NexmarkQ7 => &inputs.bids,
    };
    config_for(workload, input, &inputs.ads, threads)
}

/// The job configuration of `workload` on the file `input` (of the
/// workload's format); `ads` is YSB's ad → campaign table (read for YSB
/// only).
pub fn config_for(
    workload: Workload,
    input: &Path,
    ads: &Path,
    threads: usize,
) -> Result<JobConfig> {
    let seconds = |s: i64| s * 1_000;
    let (format, time, kind, spec) = match workload {
        Workload::WordCount | Workload::WordCount10s => (
            Format::Text,
            TimeMode::Rate(TEXT_RATE),
            JobKind::WordCount,
            WindowSpec::from_millis(
                seconds(1),
                seconds(if workload == Workload::WordCount {
                    30
                } else {
                    10
                }),
                seconds(1),
            )?,
        ),
        Workload::Grep => (
            Format::Text,
            TimeMode::Rate(TEXT_RATE),
            JobKind::Grep(GREP_PATTERN.into()),
            WindowSpec::from_millis(seconds(1), seconds(1), seconds(1))?,
        ),
        Workload::Ysb => (
            Format::Ndjson,
            TimeMode::Column("event_time".into()),
            JobKind::Aggregate {
                key: "ad_id".into(),
                value: None,
                aggs: AggSet::new([Agg::Count]),
                value_type: ValueType::I64,
                filter: Some(("event_type".into(), "view".into())),
                lookup: Some(Arc::new(Lookup::from_csv_file(ads)?)),
            },
            WindowSpec::from_millis(seconds(10), seconds(10), seconds(10))?,
        ),
        Workload::NexmarkQ5 | Workload::NexmarkQ7 => {
            let q5 = workload == Workload::NexmarkQ5;
            (
                Format::Csv,
                TimeMode::Column("date_time".into()),
                JobKind::Aggregate {
                    key: "auction".into(),
                    value: (!q5).then(|| "price".into()),
                    aggs: AggSet::new([if q5 { Agg::Count } else { Agg::Max }]),
                    value_type: ValueType::I64,
                    filter: None,
                    lookup: None,
                },
                if q5 {
                    WindowSpec::from_millis(seconds(5), seconds(10), seconds(5))?
                } else {
                    WindowSpec::from_millis(seconds(10), seconds(10), seconds(10))?
                },
            )
        }
    };
    Ok(file_job(input, format, time, kind, spec, threads))
}

/// A job over a benchmark input file, as `engine run --input` runs it:
/// memory-mapped, malformed records skipped, lines up to 1 MiB.
#[must_use]
pub fn file_job(
    input: &Path,
    format: Format,
    time: TimeMode,
    kind: JobKind,
    spec: WindowSpec,
    threads: usize,
) -> JobConfig {
    JobConfig {
        input: Input::File(input.to_owned()),
        format: Some(format),
        time,
        kind,
        spec,
        until: None,
        keep_empty: false,
        key_ttl: None,
        threads,
        on_error: OnError::Skip,
        max_line_bytes: 1 << 20,
        run_for: None,
        socket: engine::source::SocketOptions::default(),
        // SAFETY: the benchmark's input files are written before the job and
        // not changed while it runs.
        mmap: unsafe { engine::job::MmapChoice::auto() },
        checkpoint: None,
        metrics: None,
    }
}

/// Runs `workload` once on `threads` threads.
pub fn run(workload: Workload, inputs: &JobInputs, threads: usize) -> Result<Outcome> {
    run_config(workload, &config(workload, inputs, threads)?, None)
}

/// Runs `config` (a configuration of `workload`, see [`config_for`]) once,
/// writing the windows to `sink` if given (which is not finished).
pub fn run_config(
    workload: Workload,
    config: &JobConfig,
    sink: Option<&mut dyn Sink>,
) -> Result<Outcome> {
    let mut hooks = Fold {
        workload,
        windows: 0,
        rows: 0,
        checksum: 0,
        bad: 0,
        sink,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let report = job::run(config, &mut hooks, &stop)?;
    ensure!(
        report.skipped + hooks.bad + report.late + report.unmatched == 0,
        "{}: {} malformed, {} late, {} unmatched records",
        workload.name(),
        report.skipped.max(hooks.bad),
        report.late,
        report.unmatched
    );
    ensure!(hooks.rows > 0, "{}: no result", workload.name());
    Ok(Outcome {
        records: report.records,
        bytes: report.bytes,
        seconds: report.elapsed.as_secs_f64(),
        windows: hooks.windows,
        rows: hooks.rows,
        events: report.events,
        checksum: hooks.checksum,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_runs_and_threads_do_not_change_results() {
        let dir = std::env::temp_dir().join(format!("bench-jobs-{}", std::process::id()));
        let inputs = JobInputs::create(&dir, 2 << 20).unwrap();
        for workload in Workload::ALL {
            let one = run(workload, &inputs, 1).unwrap();
            let two = run(workload, &inputs, 2).unwrap();
            assert!(
                one.records > 5_000 && one.windows > 0,
                "{workload:?}: {one:?}"
            );
            assert_eq!(
                (one.records, one.windows, one.rows, one.checksum),
                (two.records, two.windows, two.rows, two.checksum),
                "{workload:?}"
            );
        }
        // WordCount over 10 s windows counts the same words as over 30 s,
        // each in 10 windows instead of 30 (one a slide of 1 s).
        let ten = run(Workload::WordCount10s, &inputs, 1).unwrap();
        let thirty = run(Workload::WordCount, &inputs, 2).unwrap();
        assert_eq!(ten.events, thirty.events);
        assert!(ten.events > 5 * ten.records, "{ten:?}");
        assert_eq!(ten.checksum, 10 * ten.events);
        assert_eq!(thirty.checksum, 30 * thirty.events);
        // Grep's checksum is the number of matching lines.
        let text = std::fs::read_to_string(&inputs.words).unwrap();
        let matching = text.lines().filter(|l| l.contains(GREP_PATTERN)).count() as u64;
        assert_eq!(run(Workload::Grep, &inputs, 1).unwrap().checksum, matching);
        inputs.remove();
    }
}
