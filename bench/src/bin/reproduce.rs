//! `cargo run -p bench --release --bin reproduce`: runs the benchmark suite
//! at documented sizes and writes a run folder (`results/runs/<date>-<host>/`
//! by default) with the machine's setup, raw CSV, a summary beside the
//! published figures, and SVG plots. See `bench::harness`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::{bail, Result};
use bench::harness::{self, Options, Sizes};
use clap::Parser;

/// Reproduce the engine's benchmark results on this machine.
#[derive(Debug, Parser)]
#[command(name = "reproduce", version, about)]
// Command-line switches: one bool each is what clap maps them to.
#[allow(clippy::struct_excessive_bools)]
struct Args {
    /// A short run (under 5 minutes): fewer W/S ratios, iterations and bytes.
    #[arg(long)]
    quick: bool,
    /// The run folder [default: results/runs/<date>-<host>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Include polars' `group_by_dynamic` (needs `--features polars`).
    #[arg(long)]
    with_polars: bool,
    /// Include the Spark Streaming peers (installs pyspark into a virtual
    /// environment on first use: bench/spark/install.sh).
    #[arg(long)]
    with_spark: bool,
    /// Include the Apache Flink peer, `DataStream` and SQL (installs Flink's
    /// jars into a virtual environment on first use: bench/flink/install.sh).
    #[arg(long)]
    with_flink: bool,
    /// Run only this suite (repeatable): window, threads, latency, jobs,
    /// ingest (the engine beside the C references of bench/c/ and the
    /// parsers alone), polars, spark, flink.
    #[arg(long, value_name = "SUITE", value_parser = ["window", "threads", "latency", "jobs", "ingest", "polars", "spark", "flink"])]
    only: Vec<String>,
    /// Threads of the "all threads" cases [default: all cores].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.with_polars && !cfg!(feature = "polars") {
        bail!(
            "--with-polars needs the polars comparison compiled in (about 28 minutes to build from clean):\n  \
             cargo run -p bench --release --features polars --bin reproduce -- --with-polars"
        );
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    if args.with_polars {
        // polars sizes its thread pool from this on first use: the same
        // threads as the engine's "all threads" cases, so ratios compare
        // equal resources. Set before any other thread exists.
        std::env::set_var("POLARS_MAX_THREADS", threads.to_string());
    }
    let options = Options {
        sizes: if args.quick {
            Sizes::QUICK
        } else {
            Sizes::FULL
        },
        out: args.out.unwrap_or_else(harness::default_out_dir),
        with_polars: args.with_polars,
        with_spark: args.with_spark,
        with_flink: args.with_flink,
        only: args.only,
        threads,
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    harness::run(&options)
}
