//! The measurements of a `reproduce` run, one function per suite; each
//! records one [`Row`] per measured iteration.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;

use super::{Options, Recorder, Row};
use crate::jobs::{self, JobInputs, Workload};
use crate::workloads::{
    check_baseline, Batches, HashMapWindow, Incremental, Recompute, EVENTS_PER_BATCH, SMALL_BATCH,
};

/// Today's date (UTC), `YYYY-MM-DD`.
#[must_use]
pub fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The polars version compiled in, or why there is none.
#[must_use]
pub fn polars_version() -> String {
    if cfg!(feature = "polars") {
        // The version Cargo.lock pins (the crate exports no version constant).
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
            .unwrap_or_default();
        let version = lock
            .split("[[package]]")
            .find(|p| p.contains("name = \"polars\"\n"))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
            .map_or("unknown", |v| v.trim_matches('"'))
            .to_owned();
        format!("{version} (lazy, dynamic_group_by)")
    } else {
        "not built in (feature `polars` off)".into()
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// What a measured case is: its suite, name, parameter and threads.
#[derive(Clone, Copy)]
struct Case<'a> {
    suite: &'static str,
    name: &'a str,
    param: i64,
    threads: usize,
}

/// Records `iterations` runs of `one`, each processing `elements`.
fn measure(
    rec: &mut Recorder,
    case: Case<'_>,
    iterations: u64,
    elements: usize,
    mut one: impl FnMut() -> Duration,
) -> Result<()> {
    for iteration in 0..iterations {
        let seconds = secs(one());
        rec.push(Row {
            suite: case.suite,
            case: case.name.into(),
            param: case.param,
            threads: case.threads,
            iteration,
            elements: elements as u64,
            seconds,
        })?;
    }
    Ok(())
}

/// Steady-state window throughput by `W/S`: the engine (count and sum, max),
/// the recompute baseline and the `HashMap` baseline, one thread.
pub fn window(rec: &mut Recorder, options: &Options) -> Result<()> {
    let s = options.sizes;
    let large = Batches::new(EVENTS_PER_BATCH);
    for &ratio in s.ratios {
        for (case, aggs) in [("engine_count_sum", "count,sum"), ("engine_max", "max")] {
            rec.say(&format!("window: {case} at W/S {ratio}"));
            let mut op = Incremental::new(&large, aggs, ratio, 1);
            let case = Case {
                suite: "window",
                name: case,
                param: ratio,
                threads: 1,
            };
            measure(rec, case, s.window_iterations, EVENTS_PER_BATCH, || {
                op.run(1)
            })?;
        }
        if ratio <= 600 {
            rec.say(&format!("window: HashMap baseline at W/S {ratio}"));
            let mut baseline = HashMapWindow::new(&large, ratio);
            let case = Case {
                suite: "window",
                name: "hashmap",
                param: ratio,
                threads: 1,
            };
            measure(rec, case, s.hashmap_iterations, EVENTS_PER_BATCH, || {
                baseline.run(1)
            })?;
        }
    }
    drop(large);
    let small = Batches::new(SMALL_BATCH);
    check_baseline(&small);
    for &ratio in s.ratios {
        rec.say(&format!("window: recompute baseline at W/S {ratio}"));
        let mut baseline = Recompute::new(&small, ratio);
        let case = Case {
            suite: "window",
            name: "recompute",
            param: ratio,
            threads: 1,
        };
        measure(rec, case, s.recompute_iterations, SMALL_BATCH, || {
            baseline.run(1)
        })?;
    }
    Ok(())
}

/// The thread counts compared: 1 and all.
fn thread_counts(options: &Options) -> Vec<usize> {
    let mut counts = vec![1, options.threads.max(1)];
    counts.dedup();
    counts
}

/// The window operator (count and sum, `W/S` = 60) on 1 thread and on all.
pub fn threads(rec: &mut Recorder, options: &Options) -> Result<()> {
    let large = Batches::new(EVENTS_PER_BATCH);
    for threads in thread_counts(options) {
        rec.say(&format!("threads: window count,sum at W/S 60 on {threads}"));
        let mut op = Incremental::new(&large, "count,sum", 60, threads);
        let case = Case {
            suite: "threads",
            name: "engine_count_sum",
            param: 60,
            threads,
        };
        let iterations = options.sizes.window_iterations;
        measure(rec, case, iterations, EVENTS_PER_BATCH, || op.run(1))?;
    }
    Ok(())
}

/// Percentiles kept from each latency histogram (100 = the maximum).
pub const PERCENTILES: [f64; 11] = [
    0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 100.0,
];

/// Per-micro-batch processing time for 1 k, 10 k and 100 k-event batches:
/// count and sum, 10 000 keys, `W/S` = 10, one thread.
pub fn latency(rec: &mut Recorder, options: &Options) -> Result<()> {
    for (events, batches) in [1_000_usize, 10_000, 100_000]
        .into_iter()
        .zip(options.sizes.latency_batches)
    {
        rec.say(&format!("latency: {batches} batches of {events} events"));
        let input = Batches::new(events);
        let mut op = Incremental::new(&input, "count,sum", 10, 1);
        // Nanoseconds, 1 ns to 100 s, 3 significant digits.
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 3)?;
        let case = Case {
            suite: "latency",
            name: "batch",
            param: events as i64,
            threads: 1,
        };
        measure(rec, case, batches, events, || {
            let took = op.run(1);
            histogram.saturating_record(took.as_nanos() as u64);
            took
        })?;
        let points = PERCENTILES
            .iter()
            .map(|&p| {
                let ns = if p >= 100.0 {
                    histogram.max()
                } else {
                    histogram.value_at_percentile(p)
                };
                (p, ns as f64 / 1e3)
            })
            .collect();
        rec.latency.push((events as u64, points));
        rec.facts
            .insert(format!("latency_mean_us_{events}"), histogram.mean() / 1e3);
    }
    Ok(())
}

/// Generates the jobs' inputs (which the Spark peers read too).
pub fn job_inputs(rec: &mut Recorder, options: &Options, scratch: &Path) -> Result<JobInputs> {
    rec.say(&format!(
        "jobs: generating {} MiB of each input in {}",
        options.sizes.job_bytes >> 20,
        scratch.display()
    ));
    JobInputs::create(scratch, options.sizes.job_bytes)
}

/// Whole jobs on generated files, on 1 thread and on all. Returns the
/// inputs, which the Spark peers read too.
pub fn jobs(rec: &mut Recorder, options: &Options, scratch: &Path) -> Result<JobInputs> {
    let inputs = job_inputs(rec, options, scratch)?;
    for workload in Workload::ALL {
        let mut checksum = None;
        for threads in thread_counts(options) {
            rec.say(&format!("jobs: {} on {threads} thread(s)", workload.name()));
            for iteration in 0..options.sizes.job_iterations {
                let outcome = jobs::run(workload, &inputs, threads)?;
                if *checksum.get_or_insert(outcome.checksum) != outcome.checksum {
                    bail!("{}: results differ between runs", workload.name());
                }
                rec.facts.insert(
                    format!("bytes_per_record_{}", workload.name()),
                    outcome.bytes as f64 / outcome.records as f64,
                );
                rec.push(Row {
                    suite: "jobs",
                    case: workload.name().into(),
                    param: 0,
                    threads,
                    iteration,
                    elements: outcome.records,
                    seconds: outcome.seconds,
                })?;
            }
        }
    }
    Ok(inputs)
}

/// The Spark peers (`bench/spark/run.sh`) on the WordCount input: DStream
/// WordCount with an inverse-reduce window, fed by a receiver-less source
/// (Spark's fastest) and by a receiver (as `socketTextStream` is), and
/// Structured Streaming. A peer that cannot be installed or run is skipped
/// with a note.
pub fn spark(rec: &mut Recorder, options: &Options, inputs: &JobInputs) -> Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("spark/run.sh");
    let cores = options.threads.max(1);
    let work = std::env::temp_dir().join(format!("engine-spark-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    // (case, program, extra arguments)
    let peers: [(&str, &str, &[&str]); 3] = [
        (
            "dstream",
            "dstream",
            &["--batch-ms", "1000", "--source", "direct"],
        ),
        (
            "dstream_receiver",
            "dstream",
            &["--batch-ms", "1000", "--source", "receiver"],
        ),
        // Structured Streaming triggers each micro-batch when the last one
        // ends: its fastest.
        ("structured", "structured", &[]),
    ];
    for (case, mode, extra) in peers {
        rec.say(&format!(
            "spark: {case} WordCount, local[{cores}], {} s (installs on first use)",
            options.sizes.spark_seconds
        ));
        let csv = work.join(format!("{case}.csv"));
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(&script)
            .arg(mode)
            .args(["--input", &inputs.words.to_string_lossy()])
            .args(["--cores", &cores.to_string()])
            .args(extra)
            .args(["--window-s", "30", "--slide-s", "1"])
            .args(["--duration-s", &options.sizes.spark_seconds.to_string()])
            // The JIT, code generation and backpressure settle over the
            // first window: warm up for a window and 15 s more.
            .args(["--warmup-s", "45"])
            .args(["--out", &csv.to_string_lossy()])
            .args([
                "--checkpoint",
                &work.join(format!("{case}-checkpoint")).to_string_lossy(),
            ])
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let why = stderr
                .lines()
                .find(|l| l.starts_with("spark peer unavailable"))
                .or_else(|| stderr.lines().last())
                .unwrap_or("no message");
            rec.say(&format!("spark: {case} skipped: {why}"));
            rec.notes.push(format!(
                "Spark {case} skipped after {:.0} s: {why}",
                started.elapsed().as_secs_f64()
            ));
            if why.starts_with("spark peer unavailable") {
                // Not installable: the other peers would fail the same way.
                rec.notes
                    .push("The other Spark peers were not tried (same installation).".into());
                break;
            }
            continue;
        }
        let Some(summary) = stdout
            .lines()
            .find(|l| l.starts_with(&format!("spark {mode}:")))
        else {
            rec.notes
                .push(format!("Spark {case}: no summary line in its output"));
            continue;
        };
        rec.say(summary);
        rec.notes.push(format!("Spark {case} said: `{summary}`"));
        if let Some(rate) = number_before(summary, "records/s") {
            rec.facts
                .insert(format!("spark_{case}_records_per_s"), rate);
        }
        if let Some(p99) = number_before(summary, "ms").filter(|_| summary.contains("p99")) {
            rec.facts.insert(format!("spark_{case}_p99_ms"), p99);
        }
        let text = std::fs::read_to_string(&csv).unwrap_or_default();
        for (iteration, line) in text.lines().skip(1).enumerate() {
            // peer,mode,cores,batch_time_ms,records,processing_ms,...
            let f: Vec<&str> = line.split(',').collect();
            let (Some(records), Some(ms)) = (
                f.get(4).and_then(|v| v.parse::<u64>().ok()),
                f.get(5).and_then(|v| v.parse::<f64>().ok()),
            ) else {
                continue;
            };
            rec.push(Row {
                suite: "spark",
                case: case.into(),
                param: 0,
                threads: cores,
                iteration: iteration as u64,
                elements: records,
                seconds: ms / 1e3,
            })?;
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// The number just before the last occurrence of `unit` in `text`, as in
/// `… p99 123.4 ms` (`unit` = `ms`) or `71234 records/s`.
fn number_before(text: &str, unit: &str) -> Option<f64> {
    let at = text.rfind(unit)?;
    text[..at]
        .split_whitespace()
        .last()?
        .trim_end_matches(',')
        .parse()
        .ok()
}

/// The engine against polars' `group_by_dynamic` over the same events and
/// windows (`W/S` = 10 and 60, slide 1 s): count and sum per key of every
/// window holding an event. polars gets its input sorted by key, outside the
/// timing; the engine gets it in time order, as a stream.
#[cfg(feature = "polars")]
pub fn polars(rec: &mut Recorder, options: &Options) -> Result<()> {
    use crate::polars_cmp::{sliding_count_sum, PolarsInput};
    use engine::{Agg, AggColumn, Batch, Column, ValueType, WindowAggregator, WindowSpec};

    let s = options.sizes;
    rec.say(&format!("polars: generating {} events", s.polars_events));
    let events = datasets::events(&datasets::EventConfig {
        events: s.polars_events,
        keys: 10_000,
        rate: 1_000_000,
        ..datasets::EventConfig::default()
    });
    let values: Vec<f64> = events.values.iter().map(|&v| v as f64).collect();
    rec.say("polars: building the frames (sorting one by key, untimed)");
    let sorted = PolarsInput::new(&events.times, &events.keys, &values)?;
    let arrival = PolarsInput::in_time_order(&events.times, &events.keys, &values)?;
    // The engine's input: one batch per second of event time, as 1 s
    // micro-batches, built before any timing.
    let dictionary = crate::workloads::dictionary_of(10_000);
    let mut seconds_batches = Vec::new();
    let mut start = 0;
    while start < events.times.len() {
        let second = events.times[start].div_euclid(1_000);
        let end = start + events.times[start..].partition_point(|&t| t.div_euclid(1_000) == second);
        seconds_batches.push(Batch::try_new(
            dictionary.clone(),
            events.times[start..end].to_vec(),
            events.keys[start..end].to_vec(),
            vec![Column::F64(values[start..end].to_vec())],
        )?);
        start = end;
    }
    for ratio in [10_i64, 60] {
        let (window, slide) = (ratio * 1_000, 1_000);
        // (rows, total count) of each side, which must agree.
        let mut polars_result = None;
        for (input, case) in [(&sorted, "polars"), (&arrival, "polars_time_order")] {
            for iteration in 0..s.polars_iterations {
                rec.say(&format!("polars: group_by_dynamic at W/S {ratio} ({case})"));
                let started = Instant::now();
                let result = sliding_count_sum(input, window, slide)?;
                let seconds = secs(started.elapsed());
                let summary = (result.count.len() as u64, result.count.iter().sum::<u64>());
                if *polars_result.get_or_insert(summary) != summary {
                    bail!("W/S {ratio}: polars' results differ by input order");
                }
                rec.push(Row {
                    suite: "polars",
                    case: case.into(),
                    param: ratio,
                    threads: options.threads,
                    iteration,
                    elements: input.rows() as u64,
                    seconds,
                })?;
            }
        }
        for threads in thread_counts(options) {
            for iteration in 0..s.polars_iterations {
                rec.say(&format!(
                    "polars: the engine at W/S {ratio} on {threads} thread(s)"
                ));
                let mut op =
                    WindowAggregator::builder(WindowSpec::from_millis(1_000, window, slide)?)
                        .aggregates(engine::AggSet::new([Agg::Count, Agg::Sum]))
                        .values(ValueType::F64)
                        .threads(threads)
                        .build()?;
                let (mut rows, mut total) = (0_u64, 0_u64);
                let mut sink = |w: engine::WindowResult| {
                    rows += w.len() as u64;
                    if let Some(AggColumn::U64(c)) = w.column(Agg::Count) {
                        total += c.iter().sum::<u64>();
                    }
                };
                let started = Instant::now();
                // One push per second of event time, as a 1 s micro-batch.
                for batch in &seconds_batches {
                    op.push(batch, &mut sink)?;
                }
                op.finish(&mut sink)?;
                let seconds = secs(started.elapsed());
                if polars_result.is_some_and(|p| p != (rows, total)) {
                    bail!(
                        "W/S {ratio}: the engine gave {rows} rows and {total} counted events, polars {polars_result:?}"
                    );
                }
                rec.push(Row {
                    suite: "polars",
                    case: "engine".into(),
                    param: ratio,
                    threads,
                    iteration,
                    elements: values.len() as u64,
                    seconds,
                })?;
            }
        }
    }
    Ok(())
}

/// Without the `polars` feature: an error saying how to get it.
#[cfg(not(feature = "polars"))]
pub fn polars(_rec: &mut Recorder, _options: &Options) -> Result<()> {
    bail!(
        "--with-polars needs the polars comparison compiled in: \
         cargo run -p bench --release --features polars --bin reproduce -- --with-polars"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_before_their_unit() {
        let line =
            "spark dstream: 71234.5 records/s sustained, p50 batch latency 420 ms, p99 980.5 ms";
        assert_eq!(number_before(line, "records/s"), Some(71_234.5));
        assert_eq!(number_before(line, "ms"), Some(980.5));
        assert_eq!(number_before("nothing", "ms"), None);
    }

    #[test]
    fn today_is_a_date() {
        let d = today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20") && d.as_bytes()[4] == b'-' && d.as_bytes()[7] == b'-');
    }
}
