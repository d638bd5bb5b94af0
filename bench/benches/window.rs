//! Steady-state throughput of the sliding-window operator
//! ([`engine::WindowAggregator`]), in events per second.
//!
//! Every iteration pushes one micro-batch with
//! [`WindowAggregator::push_with`] and [`engine::TimePolicy::MicroBatch`] (batch interval = slide = 1 s, window
//! `W = ratio · S`); the push closes the previous pane, evicts the pane that
//! leaves the window, emits the window (about 10 000 rows, which the sink only
//! counts) and pre-aggregates the new batch. The operator is warmed up with
//! `ratio + 2` batches before timing, so the window is full and every timed
//! slide evicts a pane. The inputs are [`DISTINCT_BATCHES`] pre-built columnar
//! batches (`Vec<u32>` keys, `Vec<i64>` values; 10 000 uniform keys, from the
//! seeded [`datasets::events`]) pushed in a cycle, so generating data is never
//! timed.
//!
//! Groups, one question each:
//!
//! - `window_sum_count`: count and sum (invertible: inverse-reduce) at `W/S`
//!   = 10, 60, 600 and 3600, one thread, [`EVENTS_PER_BATCH`] events a batch.
//!   Incremental aggregation should make throughput independent of `W/S`.
//! - `window_max`: max (not invertible: monotonic deques per key), same.
//! - `window_aggs`: each aggregate alone (count, sum, avg, min, max) at
//!   `W/S` = 60, one thread: what each costs.
//! - `window_threads`: count and sum at `W/S` = 60 with 1 and 2 threads.
//! - `window_recompute_baseline`: a naive operator written here that keeps the
//!   window's batches and re-aggregates all `ratio` of them into a dense array
//!   on every slide (count and sum): the cost incremental aggregation avoids.
//!   With [`SMALL_BATCH`] events a batch, to keep a slide at `W/S` = 3600
//!   under a second.
//! - `chunk_rows`: count and sum of `f64` values at `W/S` = 60 on 2 threads,
//!   by pre-aggregation chunk size (float sums are chunked so that results do
//!   not depend on the thread count): the measurement behind
//!   [`engine::CHUNK_ROWS`].
//! - `window_hashmap_baseline`: a plain single-threaded implementation on
//!   `std`'s `HashMap` (per-pane maps, running totals, subtract on evict),
//!   count and sum at `W/S` = 10, 60, 600 with the same 1 M-event batches.
//! - `window_keys`: count and sum at `W/S` = 60, one thread, with 100,
//!   10 000, 100 000 and 1 000 000 distinct keys.
//! - `latency`: the time of one micro-batch of 1 000, 10 000 and 100 000
//!   events (count and sum, W/S = 10, one thread); p50 and p99 on stderr.
//! - `window_small_batches`: count and sum at `W/S` = 60 with [`SMALL_BATCH`]
//!   events a batch, 1 and 2 threads: 10 events per key and slide, so the
//!   per-key work of a slide weighs more.
//!
//! Run with `cargo bench -p bench --bench window` (about five minutes on two
//! cores, 3 GB of memory at `W/S` = 3600); one group with e.g.
//! `cargo bench -p bench --bench window -- window_max`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::{Duration, Instant};

use bench::workloads::{
    check_baseline, spec, Batches, HashMapWindow, Incremental, Recompute, DISTINCT_BATCHES,
    EVENTS_PER_BATCH, RATIOS, SMALL_BATCH,
};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use engine::{Batch, Column, TimePolicy, ValueType, WindowAggregator};

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, batches: &Batches) {
    group
        .throughput(Throughput::Elements(batches.events_per_batch() as u64))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
}

/// One benchmark per ratio of the engine computing `aggs` on one thread.
fn incremental_by_ratio(c: &mut Criterion, batches: &Batches, name: &str, aggs: &str) {
    let mut group = c.benchmark_group(name);
    configure(&mut group, batches);
    for ratio in RATIOS {
        // Built on the first call (criterion calls the routine once per
        // sample) and dropped with the benchmark, so only one window's state
        // is alive at a time and filtered-out benchmarks cost nothing.
        let mut state = None;
        group.bench_with_input(BenchmarkId::from_parameter(ratio), &ratio, |b, &ratio| {
            let state = state.get_or_insert_with(|| Incremental::new(batches, aggs, ratio, 1));
            b.iter_custom(|iters| state.run(iters));
        });
    }
    group.finish();
}

fn window_sum_count(c: &mut Criterion, batches: &Batches) {
    incremental_by_ratio(c, batches, "window_sum_count", "count,sum");
}

fn window_max(c: &mut Criterion, batches: &Batches) {
    incremental_by_ratio(c, batches, "window_max", "max");
}

fn window_aggs(c: &mut Criterion, batches: &Batches) {
    let mut group = c.benchmark_group("window_aggs");
    configure(&mut group, batches);
    for aggs in ["count", "sum", "avg", "min", "max"] {
        let mut state = None;
        group.bench_with_input(BenchmarkId::from_parameter(aggs), &aggs, |b, &aggs| {
            let state = state.get_or_insert_with(|| Incremental::new(batches, aggs, 60, 1));
            b.iter_custom(|iters| state.run(iters));
        });
    }
    group.finish();
}

fn window_recompute_baseline(c: &mut Criterion, batches: &Batches) {
    let mut group = c.benchmark_group("window_recompute_baseline");
    configure(&mut group, batches);
    // One slide re-reads `ratio` batches: up to 360 M events at W/S = 3600.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(6));
    let mut checked = false;
    for ratio in RATIOS {
        let mut state = None;
        group.bench_with_input(BenchmarkId::from_parameter(ratio), &ratio, |b, &ratio| {
            if !checked {
                check_baseline(batches);
                checked = true;
            }
            let state = state.get_or_insert_with(|| Recompute::new(batches, ratio));
            b.iter_custom(|iters| state.run(iters));
        });
    }
    group.finish();
}

/// Count and sum at `W/S` = 60 on 1 and 2 threads, as benchmark group `name`.
fn by_threads(c: &mut Criterion, batches: &Batches, name: &str) {
    let mut group = c.benchmark_group(name);
    configure(&mut group, batches);
    let ratio = 60;
    for threads in [1, 2] {
        let mut state = None;
        group.bench_with_input(
            BenchmarkId::from_parameter(threads),
            &threads,
            |b, &threads| {
                let state = state
                    .get_or_insert_with(|| Incremental::new(batches, "count,sum", ratio, threads));
                b.iter_custom(|iters| state.run(iters));
            },
        );
    }
    group.finish();
}

fn window_threads(c: &mut Criterion, batches: &Batches) {
    by_threads(c, batches, "window_threads");
}

fn window_small_batches(c: &mut Criterion, batches: &Batches) {
    by_threads(c, batches, "window_small_batches");
}

/// Float sums pre-aggregate in fixed-size chunks (the order of additions
/// must not depend on the thread count): which chunk size is fastest.
fn chunk_rows(c: &mut Criterion, batches: &Batches) {
    let mut group = c.benchmark_group("chunk_rows");
    configure(&mut group, batches);
    let spec = spec(60);
    let floats: Vec<Batch> = (0..DISTINCT_BATCHES as i64)
        .map(|i| {
            let (keys, values) = batches.get(i);
            let values = values.iter().map(|&x| x as f64 * 0.25).collect();
            let dict = batches.dictionary().clone();
            Batch::without_times(dict, keys.to_vec(), vec![Column::F64(values)])
                .expect("a valid batch")
        })
        .collect();
    for rows in [8_192, 16_384, 32_768, 65_536, 131_072, 262_144, 1_048_576] {
        let mut state: Option<(WindowAggregator, i64)> = None;
        group.bench_with_input(BenchmarkId::from_parameter(rows), &rows, |b, &rows| {
            let (op, next) = state.get_or_insert_with(|| {
                let op = WindowAggregator::builder(spec)
                    .aggregates("count,sum".parse().expect("known aggregates"))
                    .values(ValueType::F64)
                    .chunk_rows(rows)
                    .threads(2)
                    .build()
                    .expect("a valid operator");
                (op, 0)
            });
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let i = next.rem_euclid(DISTINCT_BATCHES as i64) as usize;
                    op.push_with(&floats[i], TimePolicy::MicroBatch(*next), &mut |w| {
                        black_box(w.len());
                    })
                    .expect("in-order batches");
                    *next += 1;
                }
                start.elapsed()
            });
        });
    }
    group.finish();
}

/// Count and sum at `W/S` = 60, one thread, by number of distinct keys.
fn window_keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("window_keys");
    for keys in [100, 10_000, 100_000, 1_000_000] {
        let batches = Batches::with_keys(EVENTS_PER_BATCH, keys);
        configure(&mut group, &batches);
        let mut state = None;
        group.bench_with_input(BenchmarkId::from_parameter(keys), &keys, |b, _| {
            let state = state.get_or_insert_with(|| Incremental::new(&batches, "count,sum", 60, 1));
            b.iter_custom(|iters| state.run(iters));
        });
    }
    group.finish();
}

fn window_hashmap_baseline(c: &mut Criterion, batches: &Batches) {
    let mut group = c.benchmark_group("window_hashmap_baseline");
    configure(&mut group, batches);
    group.sample_size(10);
    for ratio in [10, 60, 600] {
        let mut state = None;
        group.bench_with_input(BenchmarkId::from_parameter(ratio), &ratio, |b, &ratio| {
            let state = state.get_or_insert_with(|| HashMapWindow::new(batches, ratio));
            b.iter_custom(|iters| state.run(iters));
        });
    }
    group.finish();
}

/// Time to process one micro-batch (aggregate it, close its pane, evict,
/// emit the window) for 1 000, 10 000 and 100 000-event batches: count and
/// sum, 10 000 keys, W/S = 10, one thread. Criterion reports the mean; the
/// p50 and p99 of the same pushes are printed on stderr.
fn latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("latency");
    for events in [1_000, 10_000, 100_000] {
        let batches = Batches::new(events);
        configure(&mut group, &batches);
        let mut state = None;
        let mut samples: Vec<Duration> = Vec::new();
        group.bench_with_input(BenchmarkId::from_parameter(events), &events, |b, _| {
            let state = state.get_or_insert_with(|| Incremental::new(&batches, "count,sum", 10, 1));
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let one = state.run(1);
                    samples.push(one);
                    total += one;
                }
                total
            });
        });
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
        if !samples.is_empty() {
            eprintln!(
                "latency/{events}: p50 {:.1} µs, p99 {:.1} µs over {} batches",
                at(0.5),
                at(0.99),
                samples.len()
            );
        }
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let large = Batches::new(EVENTS_PER_BATCH);
    window_sum_count(c, &large);
    window_max(c, &large);
    window_aggs(c, &large);
    window_threads(c, &large);
    chunk_rows(c, &large);
    window_hashmap_baseline(c, &large);
    drop(large);
    window_keys(c);
    latency(c);
    let small = Batches::new(SMALL_BATCH);
    window_recompute_baseline(c, &small);
    window_small_batches(c, &small);
}

// What `criterion_group!` and `criterion_main!` expand to, without the public
// function they generate (which would need a doc comment).
fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
