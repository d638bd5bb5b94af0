//! The Apache Flink peer (`bench/flink/`): the same two windowed jobs in
//! Flink's `DataStream` API and in Flink SQL, on the same files as the engine,
//! with their outputs checked equal to the engine's.
//!
//! | workload | input | job |
//! |---|---|---|
//! | `wordcount` | the jobs suite's 100-byte Zipf word records | words counted over a 10 s window sliding by 1 s, virtual time [`TEXT_RATE`] lines/s |
//! | `aggregate` | `datasets events` CSV `ts,key,value` (10 000 keys, 1 M events/s of event time) | count, sum, min and max of `value` per `key`, 10 s / 1 s, event time `ts` |
//!
//! Both inputs are [`input_bytes`] long (64 MiB, 16 MiB with `--quick`):
//! Flink's `DataStream` sliding windows take minutes on more. Each job runs in
//! the engine (through [`engine::job::run`], rows written by the engine's
//! own CSV sink) and in Flink (`bench/flink/run.sh`, one JVM per run, a
//! local environment with parallelism = the engine's threads). Rows of
//! `raw.csv`, suite `flink`:
//!
//! - `engine_<workload>`: the engine's job time;
//! - `<api>_<workload>` (`datastream_…`, `sql_hop_…`): Flink's job time, from
//!   the first record read to the end of the job, as the Java program
//!   measures it (the JVM, the local cluster and the job graph already up);
//! - `<api>_<workload>_with_startup`: the wall time of the whole `java`
//!   process (JVM start, planning, cluster start-up, job, shut-down).
//!
//! The CPU time of each (the engine's process over its job; Flink's JVM over
//! its job, and the whole `java` process) goes to the facts as records per
//! CPU-second: on a shared machine it moves less than wall time.

mod compare;
mod engine_side;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{ensure, Context, Result};

pub use compare::{read_parts, sorted_rows, Comparison};
pub use engine_side::{
    copy_prefix, cpu_times, engine_config, parse_stat, run_engine, write_events, CpuTimes,
    EngineRun,
};

use super::summary::{ms, ratio_spread};
use super::{Options, Recorder, Row, Sizes, Spread};
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
    /// CPU time of the whole JVM (tasks, JIT, GC) over `job_seconds`.
    pub job_cpu_seconds: f64,
}

/// Finds and reads `flink <mode> <workload>: records=… rows=… job_seconds=…
/// net_runtime_seconds=… job_cpu_seconds=…` in a run's stdout.
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
        job_cpu_seconds: field("job_cpu_seconds")?.parse().ok()?,
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

/// Bytes of each Flink input: 64 MiB, 16 MiB in a quick run, never more
/// than the jobs suite's inputs.
#[must_use]
pub fn input_bytes(sizes: Sizes) -> usize {
    let bytes = if sizes.quick { 16 << 20 } else { 64 << 20 };
    bytes.min(sizes.job_bytes)
}

/// Records and CPU seconds summed over the iterations of a case.
#[derive(Debug, Default, Clone, Copy)]
struct CpuTally {
    records: f64,
    seconds: f64,
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
    let bytes = input_bytes(options.sizes);
    rec.say(&format!(
        "flink: inputs of {} MiB: the first word records, generated events",
        bytes >> 20
    ));
    let words = scratch.join("flink-words.txt");
    let events = scratch.join("flink-events.csv");
    copy_prefix(&inputs.words, &words, bytes)?;
    write_events(&events, bytes)?;
    rec.facts.insert("flink_input_bytes".into(), bytes as f64);
    let outcome = compare_all(rec, options, &words, &events);
    let _ = std::fs::remove_file(&words);
    let _ = std::fs::remove_file(&events);
    outcome
}

fn compare_all(rec: &mut Recorder, options: &Options, words: &Path, events: &Path) -> Result<()> {
    let threads = options.threads.max(1);
    let iterations = if options.sizes.quick { 1 } else { 2 };
    let mut cpu: BTreeMap<String, CpuTally> = BTreeMap::new();
    for workload in FlinkWorkload::ALL {
        let input = match workload {
            FlinkWorkload::WordCount => words,
            FlinkWorkload::Aggregate => events,
        };
        let mut engine_rows: Option<Vec<String>> = None;
        let mut failed = [false; Api::ALL.len()];
        // The engine and each API in turn, so that iteration i of each ran
        // under about the same load (the summary pairs them).
        for iteration in 0..iterations {
            rec.say(&format!(
                "flink: the engine's {} on {threads} thread(s)",
                workload.name()
            ));
            let run = run_engine(workload, input, threads)?;
            let name = format!("engine_{}", workload.name());
            if let Some(seconds) = run.cpu_seconds {
                let tally = cpu.entry(name.clone()).or_default();
                tally.records += run.records as f64;
                tally.seconds += seconds;
            }
            rec.push(Row {
                suite: "flink",
                case: name,
                param: 0,
                threads,
                iteration,
                elements: run.records,
                seconds: run.seconds,
            })?;
            let rows = engine_rows.get_or_insert(run.rows.clone());
            ensure!(
                *rows == run.rows,
                "the engine's {} rows differ between runs",
                workload.name()
            );
            for (api, failed) in Api::ALL.into_iter().zip(&mut failed) {
                if !*failed {
                    let ran = (api, workload);
                    *failed = !run_flink(rec, &mut cpu, ran, input, threads, iteration, rows)?;
                }
            }
        }
    }
    for (name, tally) in cpu {
        if tally.seconds > 0.0 {
            rec.facts.insert(
                format!("flink_cpu_rate_{name}"),
                tally.records / tally.seconds,
            );
        }
    }
    Ok(())
}

/// One Flink run: its rows in `raw.csv`, its CPU time, its output compared
/// with the engine's. `Ok(false)` when it failed (noted).
fn run_flink(
    rec: &mut Recorder,
    cpu: &mut BTreeMap<String, CpuTally>,
    (api, workload): (Api, FlinkWorkload),
    input: &Path,
    threads: usize,
    iteration: u64,
    engine_rows: &[String],
) -> Result<bool> {
    let script = flink_dir().join("run.sh");
    let out = input.with_extension(format!("flink-{}-{}", api.mode(), workload.name()));
    let name = case(api, workload, false);
    rec.say(&format!("flink: {name} (parallelism {threads})"));
    let cpu_before = cpu_times();
    let started = Instant::now();
    let run = Command::new("bash")
        .arg(&script)
        .args(run_args(api, workload, input, &out, threads))
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    let wall = started.elapsed().as_secs_f64();
    let process_cpu = cpu_before
        .zip(cpu_times())
        .map(|(before, after)| after.children - before.children);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let Some(summary) = parse_summary(&stdout, api, workload).filter(|_| run.status.success())
    else {
        let stderr = String::from_utf8_lossy(&run.stderr);
        let why = stderr.lines().last().unwrap_or("no message");
        rec.say(&format!("flink: {name} failed: {why}"));
        rec.notes
            .push(format!("Flink {name} failed after {wall:.0} s: {why}"));
        let _ = std::fs::remove_dir_all(&out);
        return Ok(false);
    };
    rec.say(&format!(
        "flink: {} records in {:.2} s (job, {:.2} CPU-s), {wall:.2} s with start-up ({} CPU-s)",
        summary.records,
        summary.job_seconds,
        summary.job_cpu_seconds,
        process_cpu.map_or("?".into(), |s| format!("{s:.2}"))
    ));
    for (with_startup, seconds, cpu_seconds) in [
        (false, summary.job_seconds, Some(summary.job_cpu_seconds)),
        (true, wall, process_cpu),
    ] {
        let case = case(api, workload, with_startup);
        if let Some(cpu_seconds) = cpu_seconds {
            let tally = cpu.entry(case.clone()).or_default();
            tally.records += summary.records as f64;
            tally.seconds += cpu_seconds;
        }
        rec.push(Row {
            suite: "flink",
            case,
            param: 0,
            threads,
            iteration,
            elements: summary.records,
            seconds,
        })?;
    }
    let comparison = Comparison::of(engine_rows, &read_parts(&out)?);
    let _ = std::fs::remove_dir_all(&out);
    rec.facts.insert(
        format!("flink_{name}_output_equal"),
        f64::from(u8::from(comparison.equal())),
    );
    if iteration == 0 || !comparison.equal() {
        rec.notes
            .push(format!("Flink {name} output: {}", comparison.describe()));
    }
    Ok(true)
}

/// The Flink section of `summary.md`: medians with their spread (min–max
/// over the iterations); the engine's ratios pair each iteration with the
/// Flink run that followed it.
pub fn summary_section(out: &mut String, rec: &Recorder, threads: usize) {
    let ran = rec
        .rows()
        .iter()
        .any(|r| r.suite == "flink" && !r.case.starts_with("engine_"));
    let _ = write!(
        out,
        "\n## Flink side by side ({WINDOW_S} s window / {SLIDE_S} s slide"
    );
    if let (true, Some(bytes)) = (ran, rec.facts.get("flink_input_bytes")) {
        let _ = write!(
            out,
            ", the same {:.0} MiB files, parallelism {threads}",
            bytes / f64::from(1 << 20)
        );
    }
    let _ = writeln!(out, ")\n");
    if !ran {
        let _ = writeln!(out, "Not run in this run (see the notes).");
        return;
    }
    // Thousands: Flink's figures are a few thousand.
    let k = |case: &str| ms(rec.spread("flink", case, 0, threads), 1e-3);
    let versus = |engine: &str, case: &str| {
        ratio_spread(rec.paired_ratio(("flink", engine, 0, threads), ("flink", case, 0, threads)))
    };
    let cpu = |name: &str| rec.facts.get(&format!("flink_cpu_rate_{name}")).copied();
    // One figure over every iteration (their records ÷ their CPU time).
    let cpu_k = |name: &str| ms(Spread::of(cpu(name)), 1e-3);
    let _ = writeln!(
        out,
        "| workload | system | K records/s: job | with start-up | engine ÷ it: job | with start-up | K records per CPU-second: job | with start-up | engine ÷ it, per CPU-second: job | output |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for workload in FlinkWorkload::ALL {
        let engine = format!("engine_{}", workload.name());
        let _ = writeln!(
            out,
            "| {} | engine, {threads} threads | {} | | | | {} | | | |",
            workload.name(),
            k(&engine),
            cpu_k(&engine)
        );
        for api in Api::ALL {
            let (job, all) = (case(api, workload, false), case(api, workload, true));
            let equal = rec
                .facts
                .get(&format!("flink_{job}_output_equal"))
                .map_or("–", |&e| if e > 0.0 { "equal" } else { "**differs**" });
            let per_cpu = ratio_spread(Spread::of(cpu(&engine).zip(cpu(&job)).map(|(a, b)| a / b)));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {per_cpu} | {equal} |",
                workload.name(),
                api.title(),
                k(&job),
                k(&all),
                versus(&engine, &job),
                versus(&engine, &all),
                cpu_k(&job),
                cpu_k(&all),
            );
        }
    }
    let _ = writeln!(
        out,
        "\nRecords: 100-byte word records (WordCount, virtual time {TEXT_RATE} lines/s, about 22 words each) or \
         `ts,key,value` events (aggregate: count, sum, min, max of the value per key, 10 000 keys). Flink's job time \
         runs from its first record read to the end of the job; \"with start-up\" is the whole `java` process (JVM, \
         planning, local cluster, job, shut-down). CPU-seconds: the engine's process over its job; Flink's JVM over \
         its job (tasks, JIT, GC), and the whole `java` process; on a shared machine they move less than wall time. \
         Outputs are compared row by row, sorted (see the notes)."
    );
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let stdout = "something\nflink sql aggregate: records=5000000 rows=150000 job_seconds=12.5 net_runtime_seconds=14.250 job_cpu_seconds=20.5\n";
        assert_eq!(
            parse_summary(stdout, Api::SqlHop, FlinkWorkload::Aggregate),
            Some(FlinkSummary {
                records: 5_000_000,
                rows: 150_000,
                job_seconds: 12.5,
                net_runtime_seconds: 14.25,
                job_cpu_seconds: 20.5,
            })
        );
        // Another job's line, or a broken one, is not taken.
        assert_eq!(
            parse_summary(stdout, Api::DataStream, FlinkWorkload::Aggregate),
            None
        );
        assert_eq!(
            parse_summary(
                "flink sql aggregate: records=x rows=1 job_seconds=1 net_runtime_seconds=1 job_cpu_seconds=1",
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
    fn the_summary_puts_each_flink_case_beside_the_engine() {
        let dir = std::env::temp_dir().join(format!("bench-flink-summary-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut rec = Recorder::create(&dir).unwrap();
        let mut summary = String::new();
        summary_section(&mut summary, &rec, 2);
        assert!(
            summary.contains("Not run in this run (see the notes)."),
            "{summary}"
        );
        assert!(!summary.contains("MiB"), "{summary}");

        let row = |case: &str, seconds: f64| Row {
            suite: "flink",
            case: case.into(),
            param: 0,
            threads: 2,
            iteration: 0,
            elements: 1_000_000,
            seconds,
        };
        // The engine at 1 M records/s, DataStream at 10 K/s (20 K with its
        // start-up), SQL not run.
        rec.push(row("engine_wordcount", 1.0)).unwrap();
        rec.push(row("datastream_wordcount", 100.0)).unwrap();
        rec.push(row("datastream_wordcount_with_startup", 125.0))
            .unwrap();
        rec.facts
            .insert("flink_cpu_rate_engine_wordcount".into(), 2e6);
        rec.facts
            .insert("flink_cpu_rate_datastream_wordcount".into(), 1e4);
        rec.facts
            .insert("flink_datastream_wordcount_output_equal".into(), 1.0);
        rec.facts
            .insert("flink_input_bytes".into(), f64::from(64 << 20));
        let mut summary = String::new();
        summary_section(&mut summary, &rec, 2);
        assert!(
            summary.contains("the same 64 MiB files, parallelism 2"),
            "{summary}"
        );
        assert!(
            summary.contains("| wordcount | engine, 2 threads | 1000 | | | | 2000 |"),
            "{summary}"
        );
        assert!(
            summary.contains("| 10.0 | 8.00 | 100× | 125× | 10.0 | – | 200× | equal |"),
            "{summary}"
        );
        // SQL did not run: dashes, no verdict on its output.
        assert!(
            summary.contains("| wordcount | Flink SQL (HOP window TVF, two-phase, mini-batch) | – | – | – | – | – | – | – | – |"),
            "{summary}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
