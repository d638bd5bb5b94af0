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
//!   and `seconds` its processing time, which Spark reports);
//! - `latency.csv`: per batch size, the latency at each percentile, from an
//!   HDR histogram of every measured batch;
//! - `summary.md`: medians, ratios, the published figures beside ours and
//!   the targets, met or missed;
//! - `window_throughput.svg`, `threads.svg`, `latency.svg`.
//!
//! The suites are in [`suites`], the summary in [`summary`].

pub mod flink;
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
    /// `polars`, `spark`, `flink`); empty: all that are enabled.
    pub only: Vec<String>,
    /// All threads, for the scaling cases.
    pub threads: usize,
    /// The command line, for `setup.md`.
    pub command: String,
}

/// One measured iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `window`, `threads`, `latency`, `jobs`, `polars`, `spark`, `flink`.
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
        let mut rates: Vec<f64> = self
            .rows
            .iter()
            .filter(|r| {
                r.suite == suite && r.case == case && r.param == param && r.threads == threads
            })
            .map(Row::per_second)
            .collect();
        if rates.is_empty() {
            return None;
        }
        rates.sort_by(f64::total_cmp);
        let n = rates.len();
        Some(if n % 2 == 1 {
            rates[n / 2]
        } else {
            f64::midpoint(rates[n / 2 - 1], rates[n / 2])
        })
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
    if options.with_polars && wanted("polars") {
        suites::polars(&mut rec, options)?;
    } else if !options.with_polars {
        rec.notes.push(
            "polars comparison not run (add `--with-polars`, built with `--features polars`)."
                .into(),
        );
    }
    rec.raw.flush()?;
    write_latency(dir, &rec)?;
    summary::write(dir, &rec, &machine, options)?;
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
