//! The Apache Flink peer (`bench/flink/`): the same two windowed jobs in
//! Flink's DataStream API and in Flink SQL, on the same files as the engine,
//! with their outputs checked equal to the engine's.
//!
//! | workload | input | job |
//! |---|---|---|
//! | `wordcount` | the jobs suite's 100-byte Zipf word records | words counted over a 10 s window sliding by 1 s, virtual time [`TEXT_RATE`] lines/s |
//! | `aggregate` | `datasets events` CSV `ts,key,value` (10 000 keys, 1 M events/s of event time) | count, sum, min and max of `value` per `key`, 10 s / 1 s, event time `ts` |
//!
//! Each job runs once in the engine (through [`engine::job::run`], rows
//! written by the engine's own CSV sink) and in Flink (`bench/flink/run.sh`,
//! one JVM per run, local environment with parallelism = the engine's
//! threads). Rows of `raw.csv`, suite `flink`:
//!
//! - `engine_<workload>`: the engine's job time;
//! - `<api>_<workload>` (`datastream_…`, `sql_hop_…`): Flink's job time, from
//!   the first record read to the end of the job, as the Java program
//!   measures it (the JVM, the local cluster and the job graph already up);
//! - `<api>_<workload>_with_startup`: the wall time of the whole `java`
//!   process (JVM start, planning, cluster start-up, job, shut-down).

use std::fmt::Write as _;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use datasets::{EventConfig, EventStream, Limit};
use engine::ingest::Format;
use engine::job::{self, Input, JobConfig, JobHooks, JobKind, OnError, TimeMode};
use engine::sink::{CsvSink, Sink};
use engine::{Agg, AggSet, Dictionary, ValueType, WindowResult, WindowSpec};

use super::{Options, Recorder, Row};
use crate::jobs::{JobInputs, TEXT_RATE};

/// Window length and slide of both workloads, seconds.
pub const WINDOW_S: u64 = 10;
/// The slide, seconds.
pub const SLIDE_S: u64 = 1;
/// Events per second of event time of the generated events.
pub const EVENT_RATE: u64 = 1_000_000;

/// Flink's API of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `SlidingEventTimeWindows` + `aggregate(AggregateFunction)`.
    DataStream,
    /// `TABLE(HOP(...))` grouped by window and key.
    SqlHop,
}

impl Api {
    /// Both, in the order they are run and reported.
    pub const ALL: [Api; 2] = [Api::DataStream, Api::SqlHop];

    /// The first argument of `run.sh`.
    #[must_use]
    pub fn mode(self) -> &'static str {
        match self {
            Api::DataStream => "datastream",
            Api::SqlHop => "sql",
        }
    }

    /// The prefix of its cases in `raw.csv`.
    #[must_use]
    pub fn case_prefix(self) -> &'static str {
        match self {
            Api::DataStream => "datastream",
            Api::SqlHop => "sql_hop",
        }
    }

    /// Its name in the summary.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Api::DataStream => "Flink DataStream (SlidingEventTimeWindows, AggregateFunction)",
            Api::SqlHop => "Flink SQL (HOP window TVF, two-phase, mini-batch)",
        }
    }
}

/// A job of the Flink comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlinkWorkload {
    /// Words counted, virtual time.
    WordCount,
    /// Count, sum, min and max per key, event time.
    Aggregate,
}

impl FlinkWorkload {
    /// Both, in the order they are run and reported.
    pub const ALL: [FlinkWorkload; 2] = [FlinkWorkload::WordCount, FlinkWorkload::Aggregate];

    /// The `--workload` of the Java program and the suffix of the cases.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            FlinkWorkload::WordCount => "wordcount",
            FlinkWorkload::Aggregate => "aggregate",
        }
    }
}

/// The case of a Flink run in `raw.csv`, e.g. `sql_hop_wordcount`, or with
/// `_with_startup` when the time is the whole process's.
#[must_use]
pub fn case(api: Api, workload: FlinkWorkload, with_startup: bool) -> String {
    let suffix = if with_startup { "_with_startup" } else { "" };
    format!("{}_{}{suffix}", api.case_prefix(), workload.name())
}

/// The arguments of `bench/flink/run.sh` for one run.
#[must_use]
pub fn run_args(
    api: Api,
    workload: FlinkWorkload,
    input: &Path,
    out: &Path,
    parallelism: usize,
) -> Vec<String> {
    let mut args = vec![
        api.mode().to_owned(),
        "--workload".into(),
        workload.name().into(),
        "--input".into(),
        input.to_string_lossy().into_owned(),
        "--out".into(),
        out.to_string_lossy().into_owned(),
        "--parallelism".into(),
        parallelism.max(1).to_string(),
        "--window-s".into(),
        WINDOW_S.to_string(),
        "--slide-s".into(),
        SLIDE_S.to_string(),
    ];
    if workload == FlinkWorkload::WordCount {
        args.extend(["--rate".into(), TEXT_RATE.to_string()]);
    }
    args
}

/// The summary line of a Flink run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlinkSummary {
    /// Input records read (lines, or events without the header).
    pub records: u64,
    /// Result rows written.
    pub rows: u64,
    /// From the first record read to the end of the job.
    pub job_seconds: f64,
    /// Flink's own net runtime of the job (from its submission).
    pub net_runtime_seconds: f64,
}

/// Finds and reads `flink <mode> <workload>: records=… rows=… job_seconds=…
/// net_runtime_seconds=…` in a run's stdout.
#[must_use]
pub fn parse_summary(stdout: &str, api: Api, workload: FlinkWorkload) -> Option<FlinkSummary> {
    let prefix = format!("flink {} {}:", api.mode(), workload.name());
    let line = stdout.lines().find_map(|l| l.strip_prefix(&prefix))?;
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    };
    Some(FlinkSummary {
        records: field("records")?.parse().ok()?,
        rows: field("rows")?.parse().ok()?,
        job_seconds: field("job_seconds")?.parse().ok()?,
        net_runtime_seconds: field("net_runtime_seconds")?.parse().ok()?,
    })
}

/// The rows of a CSV text without its header line, sorted: the engine's
/// rows are by window then key, Flink's in the order its subtasks wrote.
#[must_use]
pub fn sorted_rows(csv: &str, has_header: bool) -> Vec<String> {
    let mut rows: Vec<String> = csv
        .lines()
        .skip(usize::from(has_header))
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    rows.sort_unstable();
    rows
}

/// Flink's rows: every `part-<n>.csv` of `dir`, sorted.
pub fn read_parts(dir: &Path) -> Result<Vec<String>> {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("part-") && name.ends_with(".csv") {
            text.push_str(&std::fs::read_to_string(&path)?);
        }
    }
    Ok(sorted_rows(&text, false))
}

/// How two sorted row sets differ.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Comparison {
    /// Rows in both.
    pub common: usize,
    /// Rows only the engine wrote (or with other values).
    pub only_engine: Vec<String>,
    /// Rows only Flink wrote (or with other values).
    pub only_flink: Vec<String>,
}

impl Comparison {
    /// Compares two sorted row sets.
    #[must_use]
    pub fn of(engine: &[String], flink: &[String]) -> Self {
        let mut c = Comparison::default();
        let (mut i, mut j) = (0, 0);
        while i < engine.len() || j < flink.len() {
            match (engine.get(i), flink.get(j)) {
                (Some(a), Some(b)) if a == b => {
                    c.common += 1;
                    i += 1;
                    j += 1;
                }
                (Some(a), Some(b)) if a < b => {
                    c.only_engine.push(a.clone());
                    i += 1;
                }
                (Some(a), None) => {
                    c.only_engine.push(a.clone());
                    i += 1;
                }
                (_, Some(b)) => {
                    c.only_flink.push(b.clone());
                    j += 1;
                }
                (None, None) => unreachable!("the loop runs while one side has rows"),
            }
        }
        c
    }

    /// Both wrote the same rows.
    #[must_use]
    pub fn equal(&self) -> bool {
        self.only_engine.is_empty() && self.only_flink.is_empty()
    }

    /// One sentence: equal, or how many rows differ and in which windows.
    #[must_use]
    pub fn describe(&self) -> String {
        if self.equal() {
            return format!("equal to the engine's ({} rows)", self.common);
        }
        let ends = |rows: &[String]| {
            let mut ends: Vec<i64> = rows
                .iter()
                .filter_map(|r| r.split(',').next()?.parse().ok())
                .collect();
            ends.sort_unstable();
            ends.dedup();
            match ends.as_slice() {
                [] => String::new(),
                [one] => format!(" (window ending {one})"),
                [first, .., last] => {
                    format!(" ({} windows ending {first} … {last} ms)", ends.len())
                }
            }
        };
        format!(
            "**differs** from the engine's: {} rows in common, {} only in the engine's output{}, {} only in Flink's{}; first: `{}`",
            self.common,
            self.only_engine.len(),
            ends(&self.only_engine),
            self.only_flink.len(),
            ends(&self.only_flink),
            self.only_engine
                .first()
                .or(self.only_flink.first())
                .map_or("", String::as_str)
        )
    }
}

/// Writes about `bytes` of `datasets events` CSV to `path`: 10 000 uniform
/// keys, [`EVENT_RATE`] events per second of event time, in time order.
pub fn write_events(path: &Path, bytes: usize) -> Result<()> {
    let mut events = EventStream::new(&EventConfig {
        rate: EVENT_RATE,
        ..EventConfig::default()
    });
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    datasets::write_records(&mut events, Limit::Bytes(bytes as u64), &mut out, |_| {})
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The engine's configuration of `workload` on `input`: what `engine run
/// --input F --job wordcount --rate 50000 --window 10s --slide 1s` and
/// `engine run --input F --time-col ts --key-col key --value-col value
/// --value-type int --agg count,sum,min,max --window 10s --slide 1s` do.
pub fn engine_config(workload: FlinkWorkload, input: &Path, threads: usize) -> Result<JobConfig> {
    let ms = |s: u64| s as i64 * 1_000;
    let spec = WindowSpec::from_millis(ms(SLIDE_S), ms(WINDOW_S), ms(SLIDE_S))?;
    let (format, time, kind) = match workload {
        FlinkWorkload::WordCount => (Format::Text, TimeMode::Rate(TEXT_RATE), JobKind::WordCount),
        FlinkWorkload::Aggregate => (
            Format::Csv,
            TimeMode::Column("ts".into()),
            JobKind::Aggregate {
                key: "key".into(),
                value: Some("value".into()),
                aggs: AggSet::new([Agg::Count, Agg::Sum, Agg::Min, Agg::Max]),
                value_type: ValueType::I64,
                filter: None,
                lookup: None,
            },
        ),
    };
    Ok(JobConfig {
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
    })
}

/// Hooks writing the windows with the engine's CSV sink, as `engine run
/// --output csv` does.
struct CsvHooks {
    sink: CsvSink<Vec<u8>>,
    bad: u64,
}

impl JobHooks for CsvHooks {
    fn window(&mut self, window: &WindowResult, dict: &Dictionary) -> engine::Result<()> {
        self.sink
            .write_window(window, dict)
            .map_err(|e| engine::Error::io("the engine's CSV rows (in memory)", e))
    }

    fn bad_record(&mut self, _origin: &str, _line: u64, _reason: &engine::ingest::RecordError) {
        self.bad += 1;
    }

    fn notice(&mut self, _notice: &engine::job::Notice<'_>) {}
}

/// What one engine run gave: records, seconds and its sorted rows.
pub struct EngineRun {
    /// Input records.
    pub records: u64,
    /// The job's wall time.
    pub seconds: f64,
    /// The CSV rows, sorted, without the header.
    pub rows: Vec<String>,
}

/// Runs `workload` in the engine on `threads` threads.
pub fn run_engine(workload: FlinkWorkload, input: &Path, threads: usize) -> Result<EngineRun> {
    let config = engine_config(workload, input, threads)?;
    let mut hooks = CsvHooks {
        sink: CsvSink::new(Vec::with_capacity(64 << 20), config.output_columns()),
        bad: 0,
    };
    let report = job::run(&config, &mut hooks, &Arc::new(AtomicBool::new(false)))?;
    let csv = hooks.sink.into_inner()?;
    ensure!(
        report.skipped + hooks.bad + report.late == 0,
        "engine {}: {} malformed and {} late records",
        workload.name(),
        report.skipped.max(hooks.bad),
        report.late
    );
    Ok(EngineRun {
        records: report.records,
        seconds: report.elapsed.as_secs_f64(),
        rows: sorted_rows(&String::from_utf8(csv)?, true),
    })
}

/// `bench/flink/`.
fn flink_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("flink")
}

/// Installs the peer (or finds it installed): `Err(why)` when it cannot be
/// had, else whether it was installed now.
fn install(rec: &mut Recorder) -> Result<bool, String> {
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(flink_dir().join("install.sh"))
        .output()
        .map_err(|e| format!("flink peer unavailable: cannot run install.sh: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(stderr
            .lines()
            .find(|l| l.starts_with("flink peer unavailable"))
            .or_else(|| stderr.lines().last())
            .unwrap_or("flink peer unavailable: install.sh failed")
            .to_owned());
    }
    let installed = stderr.contains("flink install: creating");
    if installed {
        let seconds = started.elapsed().as_secs_f64();
        rec.facts.insert("flink_install_seconds".into(), seconds);
        rec.notes.push(format!(
            "Flink installed in {seconds:.0} s (bench/flink/install.sh)."
        ));
    }
    Ok(installed)
}

/// The Flink comparison: each workload in the engine, then in Flink's two
/// APIs, outputs compared. Skipped with a note when Flink cannot be had.
pub fn flink(
    rec: &mut Recorder,
    options: &Options,
    inputs: &JobInputs,
    scratch: &Path,
) -> Result<()> {
    rec.say(
        "flink: installing the peer (bench/flink/install.sh; about 310 MB from PyPI on first use)",
    );
    if let Err(why) = install(rec) {
        rec.say(&format!("flink: skipped: {why}"));
        rec.notes.push(format!("Flink peer skipped: {why}"));
        return Ok(());
    }
    let threads = options.threads.max(1);
    let events = scratch.join("events.csv");
    rec.say(&format!(
        "flink: generating {} MiB of events (ts,key,value)",
        options.sizes.job_bytes >> 20
    ));
    write_events(&events, options.sizes.job_bytes)?;
    let iterations = if options.sizes.quick { 1 } else { 2 };
    let script = flink_dir().join("run.sh");
    let outcome = (|| -> Result<()> {
        for workload in FlinkWorkload::ALL {
            let input = match workload {
                FlinkWorkload::WordCount => &inputs.words,
                FlinkWorkload::Aggregate => &events,
            };
            let mut engine_rows = Vec::new();
            for iteration in 0..iterations {
                rec.say(&format!(
                    "flink: the engine's {} on {threads} thread(s)",
                    workload.name()
                ));
                let run = run_engine(workload, input, threads)?;
                rec.push(Row {
                    suite: "flink",
                    case: format!("engine_{}", workload.name()),
                    param: 0,
                    threads,
                    iteration,
                    elements: run.records,
                    seconds: run.seconds,
                })?;
                engine_rows = run.rows;
            }
            for api in Api::ALL {
                let out = scratch.join(format!("flink-{}-{}", api.mode(), workload.name()));
                for iteration in 0..iterations {
                    rec.say(&format!(
                        "flink: {} {} (parallelism {threads})",
                        api.mode(),
                        workload.name()
                    ));
                    let started = Instant::now();
                    let run = Command::new("bash")
                        .arg(&script)
                        .args(run_args(api, workload, input, &out, threads))
                        .output()
                        .with_context(|| format!("running {}", script.display()))?;
                    let wall = started.elapsed().as_secs_f64();
                    let stdout = String::from_utf8_lossy(&run.stdout);
                    let summary =
                        parse_summary(&stdout, api, workload).filter(|_| run.status.success());
                    let Some(summary) = summary else {
                        let stderr = String::from_utf8_lossy(&run.stderr);
                        let why = stderr.lines().last().unwrap_or("no message");
                        rec.say(&format!(
                            "flink: {} failed: {why}",
                            case(api, workload, false)
                        ));
                        rec.notes.push(format!(
                            "Flink {} failed after {wall:.0} s: {why}",
                            case(api, workload, false)
                        ));
                        break;
                    };
                    rec.say(&format!(
                        "flink: {} records in {:.2} s (job), {wall:.2} s with start-up",
                        summary.records, summary.job_seconds
                    ));
                    for (with_startup, seconds) in [(false, summary.job_seconds), (true, wall)] {
                        rec.push(Row {
                            suite: "flink",
                            case: case(api, workload, with_startup),
                            param: 0,
                            threads,
                            iteration,
                            elements: summary.records,
                            seconds,
                        })?;
                    }
                    let comparison = Comparison::of(&engine_rows, &read_parts(&out)?);
                    let name = case(api, workload, false);
                    rec.facts.insert(
                        format!("flink_{name}_output_equal"),
                        f64::from(u8::from(comparison.equal())),
                    );
                    if iteration == 0 || !comparison.equal() {
                        rec.notes
                            .push(format!("Flink {name} output: {}", comparison.describe()));
                    }
                    let _ = std::fs::remove_dir_all(&out);
                }
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&events);
    outcome
}

/// The Flink section of `summary.md`.
pub fn summary_section(out: &mut String, rec: &Recorder, threads: usize) {
    let _ = writeln!(
        out,
        "\n## Flink side by side ({WINDOW_S} s window / {SLIDE_S} s slide, the same files, parallelism {threads})\n"
    );
    if !rec
        .rows()
        .iter()
        .any(|r| r.suite == "flink" && r.case != "engine_wordcount")
    {
        let _ = writeln!(out, "Not run in this run.");
        return;
    }
    let m = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{:.3}", v / 1e6));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.1}×", a / b),
        _ => "–".into(),
    };
    let _ = writeln!(
        out,
        "| workload | system | M records/s, job | M records/s, with start-up | engine ÷ it, job | engine ÷ it, with start-up | output |\n|---|---|---:|---:|---:|---:|---|"
    );
    for workload in FlinkWorkload::ALL {
        let engine = rec.median("flink", &format!("engine_{}", workload.name()), 0, threads);
        let _ = writeln!(
            out,
            "| {} | engine, {threads} threads | {} | | | | |",
            workload.name(),
            m(engine)
        );
        for api in Api::ALL {
            let job = rec.median("flink", &case(api, workload, false), 0, threads);
            let all = rec.median("flink", &case(api, workload, true), 0, threads);
            let equal = rec
                .facts
                .get(&format!(
                    "flink_{}_output_equal",
                    case(api, workload, false)
                ))
                .map_or("–", |&e| if e > 0.0 { "equal" } else { "**differs**" });
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {equal} |",
                workload.name(),
                api.title(),
                m(job),
                m(all),
                ratio(engine, job),
                ratio(engine, all)
            );
        }
    }
    let _ = writeln!(
        out,
        "\nRecords: lines of 100-byte word records (WordCount, virtual time {TEXT_RATE} lines/s) or `ts,key,value` \
         events (aggregate: count, sum, min, max per key). Flink's job time runs from its first record read to the end \
         of the job; with start-up it is the whole `java` process. Outputs are compared row by row, sorted (see the notes)."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = text.iter().map(|&s| s.to_owned()).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn run_args_name_the_job_and_only_wordcount_has_a_rate() {
        let args = run_args(
            Api::SqlHop,
            FlinkWorkload::WordCount,
            Path::new("/d/words.txt"),
            Path::new("/o"),
            2,
        );
        assert_eq!(
            args.join(" "),
            "sql --workload wordcount --input /d/words.txt --out /o --parallelism 2 \
             --window-s 10 --slide-s 1 --rate 50000"
        );
        let args = run_args(
            Api::DataStream,
            FlinkWorkload::Aggregate,
            Path::new("e.csv"),
            Path::new("o"),
            0,
        );
        assert_eq!(args[0], "datastream");
        assert!(!args.contains(&"--rate".to_owned()), "{args:?}");
        // Parallelism is at least 1.
        assert_eq!(
            args[args.iter().position(|a| a == "--parallelism").unwrap() + 1],
            "1"
        );
        assert_eq!(
            case(Api::SqlHop, FlinkWorkload::Aggregate, true),
            "sql_hop_aggregate_with_startup"
        );
        assert_eq!(
            case(Api::DataStream, FlinkWorkload::WordCount, false),
            "datastream_wordcount"
        );
    }

    #[test]
    fn the_summary_line_is_found_among_other_output() {
        let stdout = "something\nflink sql aggregate: records=5000000 rows=150000 job_seconds=12.5 net_runtime_seconds=14.250\n";
        assert_eq!(
            parse_summary(stdout, Api::SqlHop, FlinkWorkload::Aggregate),
            Some(FlinkSummary {
                records: 5_000_000,
                rows: 150_000,
                job_seconds: 12.5,
                net_runtime_seconds: 14.25,
            })
        );
        // Another job's line, or a broken one, is not taken.
        assert_eq!(
            parse_summary(stdout, Api::DataStream, FlinkWorkload::Aggregate),
            None
        );
        assert_eq!(
            parse_summary(
                "flink sql aggregate: records=x rows=1 job_seconds=1 net_runtime_seconds=1",
                Api::SqlHop,
                FlinkWorkload::Aggregate
            ),
            None
        );
        assert_eq!(
            parse_summary(
                "flink sql aggregate: records=1 rows=1",
                Api::SqlHop,
                FlinkWorkload::Aggregate
            ),
            None
        );
    }

    #[test]
    fn rows_are_compared_sorted_and_differences_name_their_windows() {
        let engine = sorted_rows(
            "window_end,key,count\n1000,w1,2\n1000,w0,5\n2000,w0,7\n",
            true,
        );
        assert_eq!(engine, rows(&["1000,w0,5", "1000,w1,2", "2000,w0,7"]));
        let same = Comparison::of(&engine, &rows(&["2000,w0,7", "1000,w1,2", "1000,w0,5"]));
        assert!(same.equal());
        assert_eq!(same.describe(), "equal to the engine's (3 rows)");

        // A different count and a missing edge window.
        let flink = rows(&["1000,w0,5", "1000,w1,3", "3000,w0,1"]);
        let c = Comparison::of(&engine, &flink);
        assert!(!c.equal());
        assert_eq!(c.common, 1);
        assert_eq!(c.only_engine, rows(&["1000,w1,2", "2000,w0,7"]));
        assert_eq!(c.only_flink, rows(&["1000,w1,3", "3000,w0,1"]));
        let text = c.describe();
        assert!(text.contains("2 windows ending 1000 … 2000 ms"), "{text}");
        assert!(text.contains("first: `1000,w1,2`"), "{text}");
        // Empty on one side.
        let c = Comparison::of(&engine, &[]);
        assert_eq!(
            (c.common, c.only_engine.len(), c.only_flink.len()),
            (0, 3, 0)
        );
    }

    #[test]
    fn flink_parts_are_read_together_and_other_files_ignored() {
        let dir = std::env::temp_dir().join(format!("bench-flink-parts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("part-0.csv"), "2000,w0,7\n1000,w1,2\n").unwrap();
        std::fs::write(dir.join("part-1.csv"), "1000,w0,5\n").unwrap();
        std::fs::write(dir.join("notes.txt"), "9,x,9\n").unwrap();
        assert_eq!(
            read_parts(&dir).unwrap(),
            rows(&["1000,w0,5", "1000,w1,2", "2000,w0,7"])
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_engine_side_writes_its_csv_columns_for_both_workloads() {
        let dir = std::env::temp_dir().join(format!("bench-flink-engine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let events = dir.join("events.csv");
        write_events(&events, 200_000).unwrap();
        let run = run_engine(FlinkWorkload::Aggregate, &events, 2).unwrap();
        // ~15 000 events at 1 M/s: one pane, so 10 windows of the same rows.
        assert!(run.records > 10_000, "{}", run.records);
        let total: u64 = run
            .rows
            .iter()
            .filter(|r| r.starts_with("1000,"))
            .map(|r| r.split(',').nth(2).unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(total, run.records);
        let fields: Vec<&str> = run.rows[0].split(',').collect();
        assert_eq!(
            fields.len(),
            6,
            "window_end,key,count,sum,min,max: {fields:?}"
        );
        let [count, sum, min, max] = [2, 3, 4, 5].map(|i| fields[i].parse::<i64>().unwrap());
        assert!(
            min <= max && (min * count..=max * count).contains(&sum),
            "{fields:?}"
        );

        let words = dir.join("words.txt");
        std::fs::write(&words, "a b  a\nb\n").unwrap();
        let run = run_engine(FlinkWorkload::WordCount, &words, 1).unwrap();
        // Two lines at 50 000 lines/s: both in the first pane.
        let expected: Vec<String> = (1..=10)
            .flat_map(|s| [format!("{}000,a,2", s), format!("{}000,b,2", s)])
            .collect();
        assert_eq!(run.rows, {
            let mut e = expected;
            e.sort_unstable();
            e
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
