//! The window workloads shared by the Criterion benches (`benches/window.rs`)
//! and the `reproduce` harness: pre-built columnar micro-batches from the
//! seeded [`datasets::events`] generator, the engine's operator kept in
//! steady state ([`Incremental`]), and the two baselines it is compared
//! with: re-aggregating the whole window on every slide ([`Recompute`]) and a
//! plain single-threaded `std` `HashMap` implementation ([`HashMapWindow`]).
//!
//! ```
//! use bench::workloads::{Batches, Incremental, Recompute};
//!
//! let batches = Batches::with_keys(1_000, 10);
//! let mut engine = Incremental::new(&batches, "count,sum", 10, 1);
//! let mut baseline = Recompute::new(&batches, 10);
//! engine.run(3);
//! baseline.run(3);
//! bench::workloads::check_baseline(&batches);
//! ```

use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::time::{Duration, Instant};

use datasets::EventConfig;
use engine::{
    Agg, AggColumn, Batch, Column, Dictionary, TimePolicy, ValueType, WindowAggregator,
    WindowResult, WindowSpec,
};

/// Distinct keys of the generated stream.
pub const KEYS: usize = 10_000;
/// Events per micro-batch of the engine's benchmarks: one iteration. A 1 s
/// batch of a stream at 1 M events/s; the window's per-key work (10 000 keys
/// per slide) is then a small part of a slide, as in a high-rate job.
pub const EVENTS_PER_BATCH: usize = 1_000_000;
/// Events per micro-batch of the recompute baseline (whose throughput does
/// not depend on it: a slide re-reads the whole window either way) and of
/// `window_small_batches`.
pub const SMALL_BATCH: usize = 100_000;
/// Pre-built batches, pushed in a cycle.
pub const DISTINCT_BATCHES: usize = 4;
/// Batch interval and slide, ms.
pub const BATCH_MS: i64 = 1_000;
/// Window length over slide.
pub const RATIOS: [i64; 4] = [10, 60, 600, 3600];

/// The pre-built input batches.
pub struct Batches {
    events_per_batch: usize,
    key_count: usize,
    keys: Vec<Vec<u32>>,
    values: Vec<Vec<i64>>,
    /// The same columns as the engine's batches (no time column: they are
    /// pushed as micro-batches), built once so that no copy is timed.
    columnar: Vec<Batch>,
    dictionary: Dictionary,
}

impl Batches {
    /// Batches of `events_per_batch` events over [`KEYS`] uniform keys.
    #[must_use]
    pub fn new(events_per_batch: usize) -> Self {
        Self::with_keys(events_per_batch, KEYS)
    }

    /// Batches of `events_per_batch` events over `key_count` uniform keys.
    #[must_use]
    pub fn with_keys(events_per_batch: usize, key_count: usize) -> Self {
        let events = datasets::events(&EventConfig {
            events: events_per_batch * DISTINCT_BATCHES,
            keys: key_count,
            skew: 0.0,
            ..EventConfig::default()
        });
        let keys: Vec<Vec<u32>> = events
            .keys
            .chunks(events_per_batch)
            .map(<[u32]>::to_vec)
            .collect();
        let values: Vec<Vec<i64>> = events
            .values
            .chunks(events_per_batch)
            .map(<[i64]>::to_vec)
            .collect();
        let dictionary = dictionary_of(key_count);
        let columnar = keys
            .iter()
            .zip(&values)
            .map(|(k, v)| {
                Batch::without_times(dictionary.clone(), k.clone(), vec![Column::I64(v.clone())])
                    .expect("a valid batch")
            })
            .collect();
        Self {
            events_per_batch,
            key_count,
            keys,
            values,
            columnar,
            dictionary,
        }
    }

    /// The engine's batch `index` (batches repeat every [`DISTINCT_BATCHES`]).
    #[must_use]
    pub fn batch(&self, index: i64) -> &Batch {
        &self.columnar[index.rem_euclid(DISTINCT_BATCHES as i64) as usize]
    }

    /// The dictionary of the batches' key ids.
    #[must_use]
    pub fn dictionary(&self) -> &Dictionary {
        &self.dictionary
    }

    /// Events per micro-batch.
    #[must_use]
    pub fn events_per_batch(&self) -> usize {
        self.events_per_batch
    }

    /// Distinct keys of the stream.
    #[must_use]
    pub fn key_count(&self) -> usize {
        self.key_count
    }

    /// The columns of micro-batch `index` (batches repeat every
    /// [`DISTINCT_BATCHES`]).
    #[must_use]
    pub fn get(&self, index: i64) -> (&[u32], &[i64]) {
        let i = index.rem_euclid(DISTINCT_BATCHES as i64) as usize;
        (&self.keys[i], &self.values[i])
    }
}

/// A 1 s batch and slide, and a window `ratio` slides long.
#[must_use]
pub fn spec(ratio: i64) -> WindowSpec {
    WindowSpec::from_millis(BATCH_MS, ratio * BATCH_MS, BATCH_MS).expect("a valid window")
}

/// The engine's operator in steady state, kept across criterion's calls.
pub struct Incremental<'a> {
    op: WindowAggregator,
    batches: &'a Batches,
    next: i64,
    rows: u64,
}

impl<'a> Incremental<'a> {
    /// An operator computing `aggs` over `W = ratio · S`, warmed up past the
    /// first eviction.
    ///
    /// # Panics
    /// On unknown aggregates (a broken benchmark).
    #[must_use]
    pub fn new(batches: &'a Batches, aggs: &str, ratio: i64, threads: usize) -> Self {
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

    /// Pushes the next batch (emitting one window).
    pub fn push(&mut self) {
        let batch = self.batches.batch(self.next);
        let rows = &mut self.rows;
        self.op
            .push_with(
                batch,
                TimePolicy::MicroBatch(self.next),
                &mut |w: WindowResult| {
                    *rows += black_box(&w).len() as u64;
                },
            )
            .expect("in-order batches");
        self.next += 1;
    }

    /// Pushes `iters` batches; their wall-clock time.
    pub fn run(&mut self, iters: u64) -> Duration {
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
pub struct Rows {
    end: i64,
    keys: Vec<u32>,
    counts: Vec<u64>,
    sums: Vec<i64>,
}

/// The naive baseline: keeps the window's batches and re-aggregates all of
/// them on every slide (count and sum per key, in a dense array by key id).
pub struct Recompute<'a> {
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
    #[must_use]
    pub fn new(batches: &'a Batches, ratio: i64) -> Self {
        let mut this = Self {
            batches,
            ratio: ratio as usize,
            window: VecDeque::with_capacity(ratio as usize + 1),
            acc: vec![(0, 0); batches.key_count],
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
    pub fn push(&mut self) -> Option<Rows> {
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
            keys: Vec::with_capacity(self.acc.len()),
            counts: Vec::with_capacity(self.acc.len()),
            sums: Vec::with_capacity(self.acc.len()),
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

    /// Pushes `iters` batches; their wall-clock time.
    pub fn run(&mut self, iters: u64) -> Duration {
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
///
/// # Panics
/// When they differ.
pub fn check_baseline(batches: &Batches) {
    let ratio = 10;
    let mut engine = Incremental::new(batches, "count,sum", ratio, 1);
    let mut baseline = Recompute::new(batches, ratio);
    // Align the baseline with the engine's next batch.
    while baseline.next < engine.next {
        baseline.push();
    }
    let expected = baseline.push().expect("a full window");
    let mut windows = Vec::new();
    let batch = batches.batch(engine.next);
    engine
        .op
        .push_with(batch, TimePolicy::MicroBatch(engine.next), &mut |w| {
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

/// A plain single-threaded windowed count and sum on `std`'s `HashMap`:
/// per-pane maps, running totals, subtract on evict (incremental too, but
/// with a hashed lookup per event and no columns).
pub struct HashMapWindow<'a> {
    batches: &'a Batches,
    ratio: usize,
    panes: VecDeque<HashMap<u32, (u64, i64)>>,
    totals: HashMap<u32, (u64, i64)>,
    next: i64,
    rows: u64,
}

impl<'a> HashMapWindow<'a> {
    /// The baseline over `W = ratio · S`, warmed up past the first eviction.
    #[must_use]
    pub fn new(batches: &'a Batches, ratio: i64) -> Self {
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

    /// Pushes the next batch (emitting one window).
    pub fn push(&mut self) {
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

    /// Pushes `iters` batches; their wall-clock time.
    pub fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.push();
        }
        start.elapsed()
    }
}

/// A dictionary whose ids `0..keys` are the keys `k0`, `k1`, …
///
/// # Panics
/// Never for the benchmarks' key counts (a dictionary holds 2^32 keys).
#[must_use]
pub fn dictionary_of(keys: usize) -> Dictionary {
    let dictionary = Dictionary::new();
    for i in 0..keys {
        dictionary
            .intern(&format!("k{i}"))
            .expect("room for the keys");
    }
    dictionary
}
