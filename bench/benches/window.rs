//! Steady-state throughput of the sliding-window operator
//! ([`engine::WindowAggregator`]), in events per second.
//!
//! Every iteration pushes one micro-batch with
//! [`WindowAggregator::push_micro_batch`] (batch interval = slide = 1 s, window
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

use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use datasets::EventConfig;
use engine::{Agg, AggColumn, ValueType, Values, WindowAggregator, WindowResult, WindowSpec};

/// Distinct keys of the generated stream.
const KEYS: usize = 10_000;
/// Events per micro-batch of the engine's benchmarks: one iteration. A 1 s
/// batch of a stream at 1 M events/s; the window's per-key work (10 000 keys
/// per slide) is then a small part of a slide, as in a high-rate job.
const EVENTS_PER_BATCH: usize = 1_000_000;
/// Events per micro-batch of the recompute baseline (whose throughput does
/// not depend on it: a slide re-reads the whole window either way) and of
/// `window_small_batches`.
const SMALL_BATCH: usize = 100_000;
/// Pre-built batches, pushed in a cycle.
const DISTINCT_BATCHES: usize = 4;
/// Batch interval and slide, ms.
const BATCH_MS: i64 = 1_000;
/// Window length over slide.
const RATIOS: [i64; 4] = [10, 60, 600, 3600];

/// The pre-built input batches.
struct Batches {
    events_per_batch: usize,
    key_count: usize,
    keys: Vec<Vec<u32>>,
    values: Vec<Vec<i64>>,
}

impl Batches {
    fn new(events_per_batch: usize) -> Self {
        Self::with_keys(events_per_batch, KEYS)
    }

    fn with_keys(events_per_batch: usize, key_count: usize) -> Self {
        let events = datasets::events(&EventConfig {
            events: events_per_batch * DISTINCT_BATCHES,
            keys: key_count,
            skew: 0.0,
            ..EventConfig::default()
        });
        Self {
            events_per_batch,
            key_count,
            keys: events
                .keys
                .chunks(events_per_batch)
                .map(<[u32]>::to_vec)
                .collect(),
            values: events
                .values
                .chunks(events_per_batch)
                .map(<[i64]>::to_vec)
                .collect(),
        }
    }

    /// The columns of micro-batch `index`.
    fn get(&self, index: i64) -> (&[u32], &[i64]) {
        let i = index.rem_euclid(DISTINCT_BATCHES as i64) as usize;
        (&self.keys[i], &self.values[i])
    }
}

fn spec(ratio: i64) -> WindowSpec {
    WindowSpec::from_millis(BATCH_MS, ratio * BATCH_MS, BATCH_MS).expect("a valid window")
}

/// The engine's operator in steady state, kept across criterion's calls.
struct Incremental<'a> {
    op: WindowAggregator,
    batches: &'a Batches,
    next: i64,
    rows: u64,
}

impl<'a> Incremental<'a> {
    /// An operator computing `aggs` over `W = ratio · S`, warmed up past the
    /// first eviction.
    fn new(batches: &'a Batches, aggs: &str, ratio: i64, threads: usize) -> Self {
        let op = WindowAggregator::builder(spec(ratio))
            .aggregates(aggs.parse().expect("known aggregates"))
            .values(ValueType::I64)
            .threads(threads)
            .build()
            .expect("a valid operator");
        let mut this = Self {
            op,
            batches,
            next: 0,
            rows: 0,
        };
        // Batches 0..=ratio + 1: push `ratio` closes pane ratio − 1, filling
        // the window, and push `ratio + 1` evicts pane 0, the first eviction.
        for _ in 0..ratio + 2 {
            this.push();
        }
        assert_eq!(
            this.op.stats().windows,
            ratio as u64 + 1,
            "one window per slide"
        );
        let live = this.op.live_keys();
        assert!(
            live > 0 && live <= batches.key_count,
            "{live} live keys of {}",
            batches.key_count
        );
        this
    }

    fn push(&mut self) {
        let (keys, values) = self.batches.get(self.next);
        let rows = &mut self.rows;
        self.op
            .push_micro_batch(
                self.next,
                keys,
                Values::I64(values),
                &mut |w: WindowResult| {
                    *rows += black_box(&w).len() as u64;
                },
            )
            .expect("in-order batches");
        self.next += 1;
    }

    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.push();
        }
        let elapsed = start.elapsed();
        black_box(self.rows);
        elapsed
    }
}

/// One window of the baseline, columnar like the engine's.
struct Rows {
    end: i64,
    keys: Vec<u32>,
    counts: Vec<u64>,
    sums: Vec<i64>,
}

/// The naive baseline: keeps the window's batches and re-aggregates all of
/// them on every slide (count and sum per key, in a dense array by key id).
struct Recompute<'a> {
    batches: &'a Batches,
    ratio: usize,
    /// Indices of the batches in the window, oldest first.
    window: VecDeque<i64>,
    /// (count, sum) by key id.
    acc: Vec<(u64, i64)>,
    next: i64,
    rows: u64,
}

impl<'a> Recompute<'a> {
    /// The baseline over `W = ratio · S`, with a full window (it keeps batch
    /// indices only, so warming up costs nothing).
    fn new(batches: &'a Batches, ratio: i64) -> Self {
        let mut this = Self {
            batches,
            ratio: ratio as usize,
            window: VecDeque::with_capacity(ratio as usize + 1),
            acc: vec![(0, 0); KEYS],
            next: 0,
            rows: 0,
        };
        for index in 0..ratio {
            this.window.push_back(index);
        }
        this.next = ratio;
        this
    }

    /// Pushes the next batch: emits the window ending at its time (the
    /// `ratio` batches before it), then slides.
    fn push(&mut self) -> Option<Rows> {
        let index = self.next;
        let rows = (!self.window.is_empty()).then(|| self.recompute(index * BATCH_MS));
        self.window.push_back(index);
        if self.window.len() > self.ratio {
            self.window.pop_front();
        }
        self.next += 1;
        rows
    }

    fn recompute(&mut self, end: i64) -> Rows {
        self.acc.fill((0, 0));
        for &batch in &self.window {
            let (keys, values) = self.batches.get(batch);
            for (&key, &value) in keys.iter().zip(values) {
                let entry = &mut self.acc[key as usize];
                entry.0 += 1;
                entry.1 += value;
            }
        }
        let mut rows = Rows {
            end,
            keys: Vec::with_capacity(KEYS),
            counts: Vec::with_capacity(KEYS),
            sums: Vec::with_capacity(KEYS),
        };
        for (key, &(count, sum)) in self.acc.iter().enumerate() {
            if count > 0 {
                rows.keys.push(key as u32);
                rows.counts.push(count);
                rows.sums.push(sum);
            }
        }
        rows
    }

    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            if let Some(rows) = self.push() {
                self.rows += black_box(&rows).keys.len() as u64;
            }
        }
        let elapsed = start.elapsed();
        black_box(self.rows);
        elapsed
    }
}

/// Checks once that the baseline computes what the engine does, so that the
/// comparison is between equal results.
fn check_baseline(batches: &Batches) {
    let ratio = 10;
    let mut engine = Incremental::new(batches, "count,sum", ratio, 1);
    let mut baseline = Recompute::new(batches, ratio);
    // Align the baseline with the engine's next batch.
    while baseline.next < engine.next {
        baseline.push();
    }
    let expected = baseline.push().expect("a full window");
    let mut windows = Vec::new();
    let (keys, values) = batches.get(engine.next);
    engine
        .op
        .push_micro_batch(engine.next, keys, Values::I64(values), &mut |w| {
            windows.push(w);
        })
        .expect("in-order batches");
    let [mut window] = <[WindowResult; 1]>::try_from(windows).expect("one window per slide");
    window.sort_by_key_id();
    assert_eq!(window.end(), expected.end);
    assert_eq!(window.keys(), expected.keys.as_slice());
    assert_eq!(
        window.column(Agg::Count),
        Some(&AggColumn::U64(expected.counts))
    );
    assert_eq!(
        window.column(Agg::Sum),
        Some(&AggColumn::I64(expected.sums))
    );
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, batches: &Batches) {
    group
        .throughput(Throughput::Elements(batches.events_per_batch as u64))
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
    let floats: Vec<Vec<f64>> = batches
        .values
        .iter()
        .map(|v| v.iter().map(|&x| x as f64 * 0.25).collect())
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
                    op.push_micro_batch(
                        *next,
                        &batches.keys[i],
                        Values::F64(&floats[i]),
                        &mut |w| {
                            black_box(w.len());
                        },
                    )
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

/// A plain single-threaded windowed count and sum on `std`'s `HashMap`:
/// per-pane maps, running totals, subtract on evict (incremental too, but
/// with a hashed lookup per event and no columns).
struct HashMapWindow<'a> {
    batches: &'a Batches,
    ratio: usize,
    panes: VecDeque<HashMap<u32, (u64, i64)>>,
    totals: HashMap<u32, (u64, i64)>,
    next: i64,
    rows: u64,
}

impl<'a> HashMapWindow<'a> {
    fn new(batches: &'a Batches, ratio: i64) -> Self {
        let mut this = Self {
            batches,
            ratio: ratio as usize,
            panes: VecDeque::new(),
            totals: HashMap::new(),
            next: 0,
            rows: 0,
        };
        for _ in 0..ratio + 2 {
            this.push();
        }
        this
    }

    fn push(&mut self) {
        let (keys, values) = self.batches.get(self.next);
        let mut pane: HashMap<u32, (u64, i64)> = HashMap::new();
        for (&key, &value) in keys.iter().zip(values) {
            let entry = pane.entry(key).or_default();
            entry.0 += 1;
            entry.1 += value;
        }
        for (&key, &(count, sum)) in &pane {
            let total = self.totals.entry(key).or_default();
            total.0 += count;
            total.1 += sum;
        }
        self.panes.push_back(pane);
        if self.panes.len() > self.ratio {
            let old = self.panes.pop_front().expect("more panes than the window");
            for (key, (count, sum)) in old {
                let total = self
                    .totals
                    .get_mut(&key)
                    .expect("an evicted key has a total");
                total.0 -= count;
                total.1 -= sum;
                if total.0 == 0 {
                    self.totals.remove(&key);
                }
            }
        }
        // Emit the window, as the engine does.
        let rows: Vec<(u32, u64, i64)> =
            self.totals.iter().map(|(&k, &(c, s))| (k, c, s)).collect();
        self.rows += black_box(rows).len() as u64;
        self.next += 1;
    }

    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.push();
        }
        start.elapsed()
    }
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
