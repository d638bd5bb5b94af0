//! The `reproduce` harness: runs the suite at documented sizes and writes a
//! run folder, as ripgrep's benchsuite does.
//!
//! A run folder (`results/runs/<date>-<host>/` by default) holds:
//!
//! - `setup.md`: the machine ([`crate::machine::Machine`]), the command, the
//!   sizes and the versions;
//! - `raw.csv`: one row per measured iteration, columns `suite, case, param,
//!   threads, iteration, elements, seconds, per_second` (elements per
//!   second of wall-clock time; for the Spark peers a row is one micro-batch
//!   and `seconds` its processing time, which Spark reports). A peer's rows
//!   have the peer as their suite (`spark`, `polars`, `c`, …): the summary
//!   and the plots show every suite's rows without knowing it;
//! - `latency.csv`: per batch size, the latency at each percentile, from an
//!   HDR histogram of every measured batch;
//! - `summary.md`: medians with their spread (min–max over the
//!   iterations), ratios, the published figures beside ours, the targets,
//!   met or missed, and the machine's load during the run ([`load`]);
//! - `window_throughput.svg`, `threads.svg` (with ideal scaling),
//!   `peers.svg` (every job and peer, median and spread), `latency.svg`.
//!
//! The suites are in [`suites`] and [`ingest`] (with the C references of
//! [`cref`]), the summary in [`summary`], the plots in [`plots`].

pub mod cref;
pub mod flink;
pub mod ingest;
pub mod load;
pub mod plots;
pub mod suites;
pub mod summary;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::machine::Machine;

/// How big a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// `--quick`.
    pub quick: bool,
    /// Window ratios `W/S` of the steady-state window suite.
    pub ratios: &'static [i64],
    /// Measured pushes of a 1 M-event batch per engine case.
    pub window_iterations: u64,
    /// Measured slides of the recompute baseline (100 k-event batches).
    pub recompute_iterations: u64,
    /// Measured pushes of the `HashMap` baseline.
    pub hashmap_iterations: u64,
    /// Measured batches per latency case: 1 k, 10 k, 100 k events.
    pub latency_batches: [u64; 3],
    /// Bytes of each generated job input.
    pub job_bytes: usize,
    /// Runs of each job per thread count.
    pub job_iterations: u64,
    /// Events of the polars comparison (10 k keys, 1 M events/s).
    pub polars_events: usize,
    /// Runs of each polars-comparison case.
    pub polars_iterations: u64,
    /// Bytes of the memory-bandwidth buffer.
    pub bandwidth_bytes: usize,
    /// Seconds each Spark peer is measured (after its warm-up).
    pub spark_seconds: u64,
    /// Bytes of each input of the `ingest` suite.
    pub ingest_bytes: usize,
    /// Alternating runs of the engine and the C references in `ingest`.
    pub ingest_iterations: u64,
}

impl Sizes {
    /// The documented full run: under 15 minutes on 2 cores, Spark excluded.
    pub const FULL: Sizes = Sizes {
        quick: false,
        ratios: &crate::workloads::RATIOS,
        window_iterations: 40,
        recompute_iterations: 5,
        hashmap_iterations: 10,
        latency_batches: [20_000, 5_000, 1_000],
        job_bytes: 256 << 20,
        job_iterations: 3,
        polars_events: 10_000_000,
        polars_iterations: 3,
        bandwidth_bytes: 1 << 30,
        spark_seconds: 90,
        ingest_bytes: 256 << 20,
        ingest_iterations: 5,
    };

    /// `--quick`: under 5 minutes, fewer ratios and iterations.
    pub const QUICK: Sizes = Sizes {
        quick: true,
        ratios: &[10, 60, 600],
        window_iterations: 20,
        recompute_iterations: 3,
        hashmap_iterations: 5,
        latency_batches: [10_000, 2_000, 300],
        job_bytes: 64 << 20,
        job_iterations: 2,
        polars_events: 2_000_000,
        polars_iterations: 1,
        bandwidth_bytes: 256 << 20,
        spark_seconds: 30,
        ingest_bytes: 64 << 20,
        ingest_iterations: 3,
    };
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The sizes.
    pub sizes: Sizes,
    /// The run folder.
    pub out: PathBuf,
    /// Include the polars comparison (needs the `polars` feature).
    pub with_polars: bool,
    /// Include the Spark peers (needs `bench/spark/install.sh` to succeed).
    pub with_spark: bool,
    /// Include the Flink peer (needs `bench/flink/install.sh` to succeed).
    pub with_flink: bool,
    /// Run only these suites (`window`, `threads`, `latency`, `jobs`,
    /// `ingest`, `polars`, `spark`, `flink`); empty: all that are enabled.
    pub only: Vec<String>,
    /// All threads, for the scaling cases.
    pub threads: usize,
    /// The command line, for `setup.md`.
    pub command: String,
}

/// One measured iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `window`, `threads`, `latency`, `jobs`, `ingest`, or a peer: `c`,
    /// `polars`, `spark`, `flink`.
    pub suite: &'static str,
    /// What ran, e.g. `engine_count_sum`, `recompute`, `ysb`.
    pub case: String,
    /// The case's parameter (the window ratio, the batch size), or 0.
    pub param: i64,
    /// Threads used.
    pub threads: usize,
    /// 0-based.
    pub iteration: u64,
    /// Events, records or lines processed.
    pub elements: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl Row {
    /// Elements per second.
    #[must_use]
    pub fn per_second(&self) -> f64 {
        self.elements as f64 / self.seconds.max(1e-12)
    }
}

/// The median of a case's iterations and their spread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The median (of an even count, the mean of the middle two).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// How many values.
    pub n: usize,
}

impl Spread {
    /// The spread of `values`; `None` if there are none (NaNs are ignored).
    #[must_use]
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        Some(Self {
            median: if n % 2 == 1 {
                v[n / 2]
            } else {
                f64::midpoint(v[n / 2 - 1], v[n / 2])
            },
            min: v[0],
            max: v[n - 1],
            n,
        })
    }

    /// Every figure multiplied by `k` (a unit change; `k` ≥ 0).
    #[must_use]
    pub fn scaled(self, k: f64) -> Self {
        Self {
            median: self.median * k,
            min: self.min * k,
            max: self.max * k,
            n: self.n,
        }
    }
}

/// Which rows: `(suite, case, param, threads)`.
pub type Key<'a> = (&'a str, &'a str, i64, usize);

/// Collects rows and writes them to `raw.csv` as they come, so that an
/// interrupted run keeps what it measured.
pub struct Recorder {
    rows: Vec<Row>,
    raw: BufWriter<File>,
    started: Instant,
    /// Percentiles per latency batch size: `(events, [(percentile, µs)])`.
    pub latency: Vec<(u64, Vec<(f64, f64)>)>,
    /// Notes for the summary (peers skipped and why).
    pub notes: Vec<String>,
    /// Single figures of the run: bytes per record of each job, mean
    /// latencies, the Spark peers' sustained rates.
    pub facts: BTreeMap<String, f64>,
    /// Lines (`- …`) that the suites add to `setup.md` at the end of the
    /// run: the C compiler and its flags, say.
    pub setup: Vec<String>,
}

impl Recorder {
    fn create(dir: &Path) -> Result<Self> {
        let path = dir.join("raw.csv");
        let mut raw = BufWriter::new(
            File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        );
        writeln!(
            raw,
            "suite,case,param,threads,iteration,elements,seconds,per_second"
        )?;
        Ok(Self {
            rows: Vec::new(),
            raw,
            started: Instant::now(),
            latency: Vec::new(),
            notes: Vec::new(),
            facts: BTreeMap::new(),
            setup: Vec::new(),
        })
    }

    /// Records one iteration.
    pub fn push(&mut self, row: Row) -> Result<()> {
        writeln!(
            self.raw,
            "{},{},{},{},{},{},{:.9},{:.1}",
            row.suite,
            row.case,
            row.param,
            row.threads,
            row.iteration,
            row.elements,
            row.seconds,
            row.per_second()
        )?;
        self.rows.push(row);
        Ok(())
    }

    /// Every row so far.
    #[must_use]
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Prints a progress line on stderr with the elapsed time.
    pub fn say(&self, what: &str) {
        eprintln!("[{:6.1} s] {what}", self.started.elapsed().as_secs_f64());
    }

    /// The median of elements per second of a case, if it ran.
    #[must_use]
    pub fn median(&self, suite: &str, case: &str, param: i64, threads: usize) -> Option<f64> {
        self.spread(suite, case, param, threads).map(|s| s.median)
    }

    /// The rows of a case.
    fn of<'a>(&'a self, key: Key<'a>) -> impl Iterator<Item = &'a Row> + 'a {
        let (suite, case, param, threads) = key;
        self.rows.iter().filter(move |r| {
            r.suite == suite && r.case == case && r.param == param && r.threads == threads
        })
    }

    /// Every case that has rows, `(suite, case, param, threads)`, in the
    /// order of their first rows.
    #[must_use]
    pub fn cases(&self) -> Vec<Key<'_>> {
        let mut cases: Vec<Key<'_>> = Vec::new();
        for r in &self.rows {
            let key = (r.suite, r.case.as_str(), r.param, r.threads);
            if !cases.contains(&key) {
                cases.push(key);
            }
        }
        cases
    }

    /// The median and spread of elements per second of a case, if it ran.
    #[must_use]
    pub fn spread(&self, suite: &str, case: &str, param: i64, threads: usize) -> Option<Spread> {
        Spread::of(self.of((suite, case, param, threads)).map(Row::per_second))
    }

    /// The ratio of case `a`'s rate to case `b`'s, iteration by iteration
    /// (cases run alternately: iteration `i` of each ran under the same
    /// conditions), over the iterations both have.
    #[must_use]
    pub fn paired_ratio(&self, a: Key<'_>, b: Key<'_>) -> Option<Spread> {
        Spread::of(self.of(a).filter_map(|x| {
            self.of(b)
                .find(|y| y.iteration == x.iteration)
                .map(|y| x.per_second() / y.per_second())
        }))
    }
}

/// The default run folder: `results/runs/<date>-<host>` in the workspace.
#[must_use]
pub fn default_out_dir() -> PathBuf {
    let date = suites::today();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .unwrap_or(manifest)
        .join("results/runs")
        .join(format!("{date}-{}", crate::machine::host_name()))
}

/// Runs everything `options` asks for and writes the run folder.
pub fn run(options: &Options) -> Result<()> {
    let dir = &options.out;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut rec = Recorder::create(dir)?;
    let start = load::Sample::now();
    rec.say(&format!("run folder {}", dir.display()));
    rec.say("probing the machine and its memory bandwidth");
    let machine = Machine::probe(options.sizes.bandwidth_bytes);
    write_setup(dir, options, &machine)?;

    let wanted = |suite: &str| options.only.is_empty() || options.only.iter().any(|s| s == suite);
    if wanted("window") {
        suites::window(&mut rec, options)?;
    }
    if wanted("threads") {
        suites::threads(&mut rec, options)?;
    }
    if wanted("latency") {
        suites::latency(&mut rec, options)?;
    }
    let spark = options.with_spark && wanted("spark");
    let flink = options.with_flink && wanted("flink");
    if wanted("jobs") || spark || flink {
        let scratch = std::env::temp_dir().join(format!("engine-reproduce-{}", std::process::id()));
        let jobs = if wanted("jobs") {
            suites::jobs(&mut rec, options, &scratch)
        } else {
            suites::job_inputs(&mut rec, options, &scratch)
        };
        let outcome = jobs.and_then(|inputs| {
            let mut outcome = if spark {
                suites::spark(&mut rec, options, &inputs)
            } else {
                Ok(())
            };
            if flink && outcome.is_ok() {
                outcome = flink::flink(&mut rec, options, &inputs, &scratch);
            }
            inputs.remove();
            outcome
        });
        let _ = std::fs::remove_dir_all(&scratch);
        outcome?;
    }
    if !options.with_spark {
        rec.notes
            .push("Spark peers not run (add `--with-spark`).".into());
    }
    if !options.with_flink {
        rec.notes
            .push("Flink peer not run (add `--with-flink`).".into());
    }
    if wanted("ingest") {
        let scratch = std::env::temp_dir().join(format!("engine-ingest-{}", std::process::id()));
        let outcome = ingest::ingest(&mut rec, options, &scratch);
        let _ = std::fs::remove_dir_all(&scratch);
        outcome?;
    }
    if options.with_polars && wanted("polars") {
        suites::polars(&mut rec, options)?;
    } else if !options.with_polars {
        rec.notes.push(
            "polars comparison not run (add `--with-polars`, built with `--features polars`)."
                .into(),
        );
    }
    rec.raw.flush()?;
    let load = load::Load::between(&start, &load::Sample::now(), machine.cores);
    append_setup(dir, &rec, &load)?;
    write_latency(dir, &rec)?;
    summary::write(dir, &rec, &machine, options, &load)?;
    rec.say(&format!("done: {}", dir.join("summary.md").display()));
    Ok(())
}

fn write_setup(dir: &Path, options: &Options, machine: &Machine) -> Result<()> {
    let s = options.sizes;
    let mut text = String::from("# Setup\n\n");
    let _ = writeln!(text, "Command: `{}`\n", options.command);
    text.push_str(&machine.markdown());
    let _ = writeln!(text, "- polars: {}", suites::polars_version());
    let _ = writeln!(
        text,
        "- run: {} ({}); threads for scaling: {}\n",
        if s.quick { "quick" } else { "full" },
        suites::today(),
        options.threads
    );
    let _ = writeln!(text, "## Sizes\n");
    let _ = writeln!(
        text,
        "- window: 1 M-event batches (1 s each), 10 000 uniform keys, W/S {:?}; {} pushes per case after a warm-up of W/S + 2 pushes",
        s.ratios, s.window_iterations
    );
    let _ = writeln!(
        text,
        "- recompute baseline: 100 k-event batches, {} slides per ratio; HashMap baseline: 1 M-event batches, {} pushes",
        s.recompute_iterations, s.hashmap_iterations
    );
    let _ = writeln!(
        text,
        "- latency: count and sum, W/S 10, 1 thread; {:?} batches of 1 k / 10 k / 100 k events",
        s.latency_batches
    );
    let _ = writeln!(
        text,
        "- jobs: {} MiB of each generated input, {} run(s) per job and thread count",
        s.job_bytes >> 20,
        s.job_iterations
    );
    let _ = writeln!(
        text,
        "- polars comparison: {} events, 10 000 keys, 1 M events/s of event time, {} run(s)",
        s.polars_events, s.polars_iterations
    );
    let _ = writeln!(text, "- Spark peers: {} s measured each", s.spark_seconds);
    let _ = writeln!(
        text,
        "- ingest: {} MiB of each input (word lines, YSB events in both spellings), {} alternating run(s) of the engine (all threads, 1 thread) and the C references",
        s.ingest_bytes >> 20,
        s.ingest_iterations
    );
    std::fs::write(dir.join("setup.md"), text)?;
    Ok(())
}

/// Adds what the suites learned (compilers) and the load during the run to
/// `setup.md`.
fn append_setup(dir: &Path, rec: &Recorder, load: &load::Load) -> Result<()> {
    let mut text = std::fs::read_to_string(dir.join("setup.md")).unwrap_or_default();
    if !rec.setup.is_empty() {
        text.push_str("\n## Tools of the suites\n\n");
        for line in &rec.setup {
            let _ = writeln!(text, "- {line}");
        }
    }
    text.push_str("\n## Load during the run\n\n");
    text.push_str(&load.markdown());
    std::fs::write(dir.join("setup.md"), text)?;
    Ok(())
}

fn write_latency(dir: &Path, rec: &Recorder) -> Result<()> {
    let mut text = String::from("batch_events,percentile,micros\n");
    for (events, points) in &rec.latency {
        for (p, us) in points {
            let _ = writeln!(text, "{events},{p},{us:.2}");
        }
    }
    std::fs::write(dir.join("latency.csv"), text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_the_median_and_the_extremes() {
        let odd = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((odd.median, odd.min, odd.max, odd.n), (2.0, 1.0, 3.0, 3));
        let even = Spread::of([4.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!((even.median, even.min, even.max), (3.0, 1.0, 10.0));
        let one = Spread::of([5.0, f64::NAN]).unwrap();
        assert_eq!((one.median, one.min, one.max, one.n), (5.0, 5.0, 5.0, 1));
        assert_eq!(Spread::of([]), None);
        let scaled = even.scaled(0.5);
        assert_eq!(
            (scaled.median, scaled.min, scaled.max, scaled.n),
            (1.5, 0.5, 5.0, 4)
        );
    }

    fn row(suite: &'static str, case: &str, threads: usize, iteration: u64, seconds: f64) -> Row {
        Row {
            suite,
            case: case.into(),
            param: 0,
            threads,
            iteration,
            elements: 100,
            seconds,
        }
    }

    #[test]
    fn cases_spreads_and_paired_ratios_come_from_the_rows() {
        let dir = std::env::temp_dir().join(format!("bench-recorder-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut rec = Recorder::create(&dir).unwrap();
        // The engine at 100, 50, 25 per second; C at 50, 50, 5: run by run
        // the ratios are 2, 1, 5 (the medians' ratio would be 50 / 50 = 1).
        for (i, (engine, c)) in [(1.0, 2.0), (2.0, 2.0), (4.0, 20.0)]
            .into_iter()
            .enumerate()
        {
            rec.push(row("ingest", "ysb", 1, i as u64, engine)).unwrap();
            rec.push(row("c", "ysb", 1, i as u64, c)).unwrap();
        }
        rec.push(row("ingest", "ysb", 2, 0, 0.5)).unwrap();
        assert_eq!(
            rec.cases(),
            vec![
                ("ingest", "ysb", 0, 1),
                ("c", "ysb", 0, 1),
                ("ingest", "ysb", 0, 2)
            ]
        );
        let engine = rec.spread("ingest", "ysb", 0, 1).unwrap();
        assert_eq!(
            (engine.median, engine.min, engine.max, engine.n),
            (50.0, 25.0, 100.0, 3)
        );
        assert_eq!(rec.median("c", "ysb", 0, 1), Some(50.0));
        let paired = rec
            .paired_ratio(("ingest", "ysb", 0, 1), ("c", "ysb", 0, 1))
            .unwrap();
        assert_eq!(
            (paired.median, paired.min, paired.max, paired.n),
            (2.0, 1.0, 5.0, 3)
        );
        // Only iterations both have are paired.
        let two = rec
            .paired_ratio(("ingest", "ysb", 0, 2), ("c", "ysb", 0, 1))
            .unwrap();
        assert_eq!((two.median, two.n), (4.0, 1));
        assert_eq!(
            rec.paired_ratio(("ingest", "nope", 0, 1), ("c", "ysb", 0, 1)),
            None
        );
        rec.raw.flush().unwrap();
        let raw = std::fs::read_to_string(dir.join("raw.csv")).unwrap();
        assert_eq!(raw.lines().count(), 1 + 7);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
