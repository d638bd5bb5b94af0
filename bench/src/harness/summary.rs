//! `summary.md` of a run: medians of the raw rows with their spread
//! (min–max), ratios, the published figures beside ours (per core), the
//! targets, the machine's load, and every case of the run in one table (so
//! that a new suite or peer is summarized without code of its own here).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use super::load::Load;
use super::{Options, Recorder, Spread};
use crate::jobs::Workload;
use crate::machine::Machine;

/// A published figure, per core.
struct Published {
    source: &'static str,
    workload: &'static str,
    /// Records (events) per second per core.
    per_core: f64,
    /// How the per-core figure was derived.
    derivation: &'static str,
    /// Which of our figures it is compared with: `(suite, case, param)`.
    ours: (&'static str, &'static str, i64),
    /// What our figure is.
    ours_is: &'static str,
}

const PUBLISHED: &[Published] = &[
    Published {
        source: "D-Streams (SOSP 2013)",
        workload: "Grep, 100-byte records",
        per_core: 160e3,
        derivation: "≈ 640 K records/s per 4-core node (approximate, read off Fig. 8)",
        ours: ("jobs", "grep", 0),
        ours_is: "`grep` job, 100-byte records from an mmap'd file",
    },
    Published {
        source: "D-Streams (SOSP 2013)",
        workload: "WordCount, 30 s sliding window, inverse reduce",
        per_core: 62.5e3,
        derivation: "≈ 250 K records/s per 4-core node (approximate)",
        ours: ("jobs", "wordcount", 0),
        ours_is: "`wordcount` job, 30 s window / 1 s slide, 100-byte records",
    },
    Published {
        source: "YSB follow-ups (Databricks 2017, McSherry 2018)",
        workload: "YSB, Flink (no JSON parsing), best",
        per_core: 4.0e6,
        derivation: "1.6–4.0 M events/s per core; the upper end",
        ours: ("jobs", "ysb", 0),
        ours_is: "`ysb` job from NDJSON (parsing included)",
    },
    Published {
        source: "YSB follow-ups",
        workload: "YSB, Spark (no JSON parsing)",
        per_core: 2.5e6,
        derivation: "2.5 M events/s per core",
        ours: ("jobs", "ysb", 0),
        ours_is: "`ysb` job from NDJSON (parsing included)",
    },
    Published {
        source: "McSherry 2018",
        workload: "YSB, differential dataflow (no JSON parsing)",
        per_core: 35e6,
        derivation: "≈ 35 M events/s on one thread",
        ours: ("jobs", "ysb", 0),
        ours_is: "`ysb` job from NDJSON (parsing included)",
    },
    Published {
        source: "LightSaber (SIGMOD 2020)",
        workload: "sliding-window aggregation, in-memory tuples",
        per_core: 470e6 / 16.0,
        derivation: "470 M records/s on 16 cores",
        ours: ("window", "engine_count_sum", 60),
        ours_is: "window operator, count and sum, W/S 60, columns in memory",
    },
];

/// Throughput in millions per second, or a dash.
fn m(rate: Option<f64>) -> String {
    rate.map_or_else(|| "–".into(), |r| format!("{:.2}", r / 1e6))
}

/// A figure to three significant digits (at least two decimals below 10).
fn sig(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// A median with its spread, each multiplied by `k`: `2.10 (1.95–2.31)`;
/// a single value without one; a dash if the case did not run.
#[must_use]
pub fn ms(spread: Option<Spread>, k: f64) -> String {
    match spread.map(|s| s.scaled(k)) {
        None => "–".into(),
        Some(s) if s.n == 1 => sig(s.median),
        Some(s) => format!("{} ({}–{})", sig(s.median), sig(s.min), sig(s.max)),
    }
}

/// A ratio with its spread: `4.1× (3.9–4.3)`, or a dash.
#[must_use]
pub fn ratio_spread(spread: Option<Spread>) -> String {
    match spread {
        None => "–".into(),
        Some(s) if s.n == 1 => format!("{}×", sig(s.median)),
        Some(s) => format!("{}× ({}–{})", sig(s.median), sig(s.min), sig(s.max)),
    }
}

/// [`verdict`] on the median (higher is better), saying so when the
/// spread straddles the target: a noisy verdict.
#[must_use]
pub fn verdict_spread(spread: Option<Spread>, target: f64) -> String {
    let v = verdict(spread.map(|s| s.median), target, true);
    match spread {
        Some(s) if s.min < target && target <= s.max => {
            format!("{v}; the spread straddles the target")
        }
        _ => v,
    }
}
/// A ratio `a / b` as `12.3×`, or a dash.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.1}×", a / b),
        _ => "–".into(),
    }
}

/// `met` or `missed (0.25× of the target)`.
fn verdict(value: Option<f64>, target: f64, higher_is_better: bool) -> String {
    match value {
        None => "not measured in this run".into(),
        Some(v) if (v >= target) == higher_is_better => {
            format!(
                "**met** ({:.2}× the target)",
                if higher_is_better {
                    v / target
                } else {
                    target / v
                }
            )
        }
        Some(v) => format!(
            "**missed**: {:.2}× of the target",
            if higher_is_better {
                v / target
            } else {
                target / v
            }
        ),
    }
}

/// Writes `summary.md` and the plots.
pub fn write(
    dir: &Path,
    rec: &Recorder,
    machine: &Machine,
    options: &Options,
    load: &Load,
) -> Result<()> {
    let all_threads = options.threads.max(1);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Summary: {} run on {}\n\n{}{}\nFigures are medians of the iterations in `raw.csv` (elements per second of wall-clock time), \
         with their spread in brackets: (min–max over the iterations). \
         \"Per core\" is the 1-thread figure. Ratios are ours ÷ theirs, of the medians unless said otherwise.\n",
        if options.sizes.quick { "quick" } else { "full" },
        machine.host,
        machine.markdown(),
        load.markdown()
    );

    // Window operator by W/S.
    let _ = writeln!(out, "## Window operator by W/S (1 thread, M events/s)\n");
    let _ = writeln!(
        out,
        "| W/S | engine count,sum | engine max | recompute baseline | HashMap baseline | engine ÷ recompute | engine ÷ HashMap |\n|---|---|---|---|---|---|---|"
    );
    for &ratio_ws in options.sizes.ratios {
        let spread = |case| rec.spread("window", case, ratio_ws, 1);
        let median = |case| spread(case).map(|s| s.median);
        let engine = median("engine_count_sum");
        let _ = writeln!(
            out,
            "| {ratio_ws} | {} | {} | {} | {} | {} | {} |",
            ms(spread("engine_count_sum"), 1e-6),
            ms(spread("engine_max"), 1e-6),
            ms(spread("recompute"), 1e-6),
            ms(spread("hashmap"), 1e-6),
            ratio(engine, median("recompute")),
            ratio(engine, median("hashmap"))
        );
    }

    // Scaling.
    let _ = writeln!(
        out,
        "\n## Scaling: 1 thread vs {all_threads} (M per second)\n"
    );
    let _ = writeln!(out, "| workload | 1 thread | {all_threads} threads | speed-up | MB/s on {all_threads} threads |\n|---|---|---|---|---|");
    let one = rec.spread("threads", "engine_count_sum", 60, 1);
    let all = rec.spread("threads", "engine_count_sum", 60, all_threads);
    let median = |s: Option<Spread>| s.map(|s| s.median);
    let _ = writeln!(
        out,
        "| window count,sum, W/S 60 (events) | {} | {} | {} | |",
        ms(one, 1e-6),
        ms(all, 1e-6),
        ratio(median(all), median(one))
    );
    for w in Workload::ALL {
        let one = rec.spread("jobs", w.name(), 0, 1);
        let all = rec.spread("jobs", w.name(), 0, all_threads);
        let bytes = rec
            .facts
            .get(&format!("bytes_per_record_{}", w.name()))
            .copied();
        let mbs = bytes.map_or_else(|| "–".into(), |b| ms(all, b / 1e6));
        let _ = writeln!(
            out,
            "| job `{}` (records) | {} | {} | {} | {mbs} |",
            w.name(),
            ms(one, 1e-6),
            ms(all, 1e-6),
            ratio(median(all), median(one))
        );
    }

    latency_section(&mut out, rec);
    peers_section(&mut out, rec, all_threads);
    super::flink::summary_section(&mut out, rec, all_threads);
    super::ingest::summary(&mut out, rec, all_threads);
    published_section(&mut out, rec, machine);
    targets_section(&mut out, rec, all_threads);
    every_case_section(&mut out, rec);
    if !rec.notes.is_empty() {
        let _ = writeln!(out, "\n## Notes\n");
        for note in &rec.notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    std::fs::write(dir.join("summary.md"), out)?;
    super::plots::write(dir, rec, options)
}

/// Every case of the run, whatever its suite: a new suite or peer shows
/// here without code of its own.
fn every_case_section(out: &mut String, rec: &Recorder) {
    let _ = writeln!(
        out,
        "\n## Every case of the run\n\nElements (events, records, lines) per second of each case, in the order measured.\n\n\
         | suite | case | param | threads | runs | M/s: median (min–max) |\n|---|---|---|---|---|---|"
    );
    for (suite, case, param, threads) in rec.cases() {
        let spread = rec.spread(suite, case, param, threads);
        let _ = writeln!(
            out,
            "| {suite} | {case} | {param} | {threads} | {} | {} |",
            spread.map_or(0, |s| s.n),
            ms(spread, 1e-6)
        );
    }
}

/// The latency table.
fn latency_section(out: &mut String, rec: &Recorder) {
    let _ = writeln!(
        out,
        "\n## Latency per micro-batch (count,sum, 10 000 keys, W/S 10, 1 thread; µs)\n"
    );
    let _ = writeln!(
        out,
        "| batch | p50 | p90 | p99 | p99.9 | max | mean |\n|---|---|---|---|---|---|---|"
    );
    let at = |points: &[(f64, f64)], p: f64| {
        points
            .iter()
            .find(|(q, _)| (*q - p).abs() < 1e-9)
            .map_or_else(|| "–".into(), |(_, us)| format!("{us:.0}"))
    };
    for (events, points) in &rec.latency {
        let mean = rec.facts.get(&format!("latency_mean_us_{events}")).copied();
        let _ = writeln!(
            out,
            "| {events} events | {} | {} | {} | {} | {} | {} |",
            at(points, 50.0),
            at(points, 90.0),
            at(points, 99.0),
            at(points, 99.9),
            at(points, 100.0),
            mean.map_or_else(|| "–".into(), |m| format!("{m:.0}"))
        );
    }
}

/// The polars and Spark tables.
fn peers_section(out: &mut String, rec: &Recorder, all_threads: usize) {
    let _ = writeln!(
        out,
        "\n## The engine vs polars `group_by_dynamic` (same events and windows; M events/s)\n"
    );
    if rec.rows().iter().any(|r| r.suite == "polars") {
        let _ = writeln!(
            out,
            "| W/S | engine, 1 thread | engine, {all_threads} threads | polars, input sorted by key | polars, input in time order | engine ÷ polars (sorted) | engine ÷ polars (time order) |\n|---|---|---|---|---|---|---|"
        );
        for r in [10, 60] {
            let engine = rec.median("polars", "engine", r, all_threads);
            let time_order = rec.median("polars", "polars_time_order", r, all_threads);
            let _ = writeln!(
                out,
                "| {r} | {} | {} | {} | {} | {} | {} |",
                ms(rec.spread("polars", "engine", r, 1), 1e-6),
                ms(rec.spread("polars", "engine", r, all_threads), 1e-6),
                ms(rec.spread("polars", "polars", r, all_threads), 1e-6),
                ms(
                    rec.spread("polars", "polars_time_order", r, all_threads),
                    1e-6
                ),
                ratio(polars_ratio(rec, r, all_threads), Some(1.0)),
                ratio(engine, time_order)
            );
        }
        let _ = writeln!(
            out,
            "\npolars runs on {all_threads} threads. \"Sorted\": its input frame is sorted by key before the timing (the issue's setup; \
             it saves polars its own sort); \"time order\": the frame in the events' order, as a stream delivers them. The engine reads \
             the events in time order, one push per second of event time, emitting every window; both results are checked equal \
             (rows and total count). The target compares with the sorted case."
        );
    } else {
        let _ = writeln!(out, "Not run in this run.");
    }

    let _ = writeln!(out, "\n## Spark side by side (WordCount, 30 s window / 1 s slide, the same 100-byte records, local[{all_threads}])\n");
    let (engine_wc, spark) = spark_rates(rec, all_threads);
    let _ = writeln!(
        out,
        "| system | records/s | per micro-batch: M records/s of processing time | engine ÷ it |\n|---|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| engine, {all_threads} threads | {} M | (whole runs) {} | |",
        m(engine_wc),
        ms(rec.spread("jobs", "wordcount", 0, all_threads), 1e-6)
    );
    let peers = [
        ("dstream", "Spark DStream, receiver-less source (reduceByKeyAndWindow with inverse, checkpointing; Spark's backpressure)"),
        ("dstream_receiver", "Spark DStream, fed by a receiver (as socketTextStream is)"),
        ("structured", "Spark Structured Streaming (groupBy(window, word).count())"),
    ];
    for ((case, name), rate) in peers.iter().zip(spark) {
        let _ = writeln!(
            out,
            "| {name} | {} M | {} | {} |",
            m(rate),
            ms(rec.spread("spark", case, 0, all_threads), 1e-6),
            ratio(engine_wc, rate)
        );
    }
    let _ = writeln!(
        out,
        "\nSpark's rate is what it sustained over the measured period after a 45 s warm-up, with 1 s batches \
         (DStream) or back-to-back micro-batches (Structured); the engine's is the same job on the same file, \
         as fast as it goes. The target compares with the fastest Spark DStream."
    );
}

/// The published figures beside ours.
fn published_section(out: &mut String, rec: &Recorder, machine: &Machine) {
    let _ = writeln!(
        out,
        "\n## Published figures, per core\n\nSources and the approximations behind them: \
         [`results/published-figures.md`](../../published-figures.md) (in the repository).\n"
    );
    let _ = writeln!(out, "| source | workload | published per core | how | ours per core | ours is | ours ÷ published |\n|---|---|---|---|---|---|---|");
    for p in PUBLISHED {
        let spread = rec.spread(p.ours.0, p.ours.1, p.ours.2, 1);
        let ours = spread.map(|s| s.median);
        let _ = writeln!(
            out,
            "| {} | {} | {} M/s | {} | {} M/s | {} | {} |",
            p.source,
            p.workload,
            m(Some(p.per_core)),
            p.derivation,
            ms(spread, 1e-6),
            p.ours_is,
            ratio(ours, Some(p.per_core))
        );
    }
    let ceiling = machine.read_gbps * 1e9 / 12.0;
    let window_spread = rec.spread("window", "engine_count_sum", 60, 1);
    let window_one = window_spread.map(|s| s.median);
    let _ = writeln!(
        out,
        "| this machine | memory-bandwidth ceiling of one core | {} M/s | measured read {:.1} GB/s ÷ 12 bytes an event (u32 key + i64 value) | {} M/s | window operator, W/S 60 | {} |",
        m(Some(ceiling)),
        machine.read_gbps,
        ms(window_spread, 1e-6),
        ratio(window_one, Some(ceiling))
    );
    let mean_10k = rec.facts.get("latency_mean_us_10000").copied();
    let _ = writeln!(
        out,
        "\nLatency: LightSaber reports 132 µs on average; our mean processing time per 10 000-event micro-batch is {} µs (p99 {}). D-Streams reports sub-second end-to-end latency with 1 s batches.",
        mean_10k.map_or_else(|| "–".into(), |v| format!("{v:.0}")),
        p99_10k(rec).map_or_else(|| "–".into(), |v| format!("{v:.0} µs"))
    );
}

/// The targets, met or missed.
fn targets_section(out: &mut String, rec: &Recorder, all_threads: usize) {
    let (engine_wc, [spark_d, ..]) = spark_rates(rec, all_threads);
    let p99 = p99_10k(rec);
    let _ = writeln!(
        out,
        "\n## Targets\n\n| target | measured | verdict |\n|---|---|---|"
    );
    let ysb = rec.spread("jobs", "ysb", 0, 1);
    let _ = writeln!(
        out,
        "| YSB from an NDJSON file ≥ 10 M events/s per core | {} M/s | {} |",
        ms(ysb, 1e-6),
        verdict_spread(ysb, 10e6)
    );
    let wc = rec.spread("jobs", "wordcount", 0, 1);
    let _ = writeln!(
        out,
        "| WordCount ≥ 100× D-Streams per core (≥ 6.25 M records/s) | {} M/s ({}) | {} |",
        ms(wc, 1e-6),
        ratio(wc.map(|s| s.median), Some(62.5e3)),
        verdict_spread(wc, 100.0 * 62.5e3)
    );
    let _ = writeln!(
        out,
        "| WordCount ≥ 100× Spark DStream side by side | {} | {} |",
        ratio(engine_wc, spark_d),
        verdict(engine_wc.zip(spark_d).map(|(a, b)| a / b), 100.0, true)
    );
    for r in [10, 60] {
        let v = polars_ratio(rec, r, all_threads);
        let _ = writeln!(
            out,
            "| ≥ 50× polars at W/S {r} | {} | {} |",
            ratio(polars_ratio(rec, r, all_threads), Some(1.0)),
            verdict(v, 50.0, true)
        );
    }
    let _ = writeln!(
        out,
        "| p99 batch latency ≤ 1 ms for 10 k-event batches | {} | {} |",
        p99.map_or_else(|| "–".into(), |v| format!("{v:.0} µs")),
        verdict(p99, 1_000.0, false)
    );
}

/// The p99 latency of the 10 000-event batches, µs.
fn p99_10k(rec: &Recorder) -> Option<f64> {
    rec.latency
        .iter()
        .find(|(e, _)| *e == 10_000)
        .and_then(|(_, pts)| pts.iter().find(|(q, _)| (*q - 99.0).abs() < 1e-9))
        .map(|(_, us)| *us)
}

/// The engine's speed over polars' at `W/S` = `r`, both on `threads`.
fn polars_ratio(rec: &Recorder, r: i64, threads: usize) -> Option<f64> {
    rec.median("polars", "engine", r, threads)
        .zip(rec.median("polars", "polars", r, threads))
        .map(|(a, b)| a / b)
}

/// The engine's WordCount on all threads and the Spark peers' rates:
/// DStream (receiver-less source), DStream (receiver), Structured.
fn spark_rates(rec: &Recorder, all_threads: usize) -> (Option<f64>, [Option<f64>; 3]) {
    let rate = |case: &str| {
        rec.facts
            .get(&format!("spark_{case}_records_per_s"))
            .copied()
    };
    (
        rec.median("jobs", "wordcount", 0, all_threads),
        [
            rate("dstream"),
            rate("dstream_receiver"),
            rate("structured"),
        ],
    )
}
