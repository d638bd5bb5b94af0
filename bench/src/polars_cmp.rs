//! The polars baseline: sliding-window count and sum per key with polars'
//! lazy `group_by_dynamic` (`--features polars`).
//!
//! Windows follow the engine's (Spark's) semantics: a window of `window_ms`
//! every `slide_ms` is the half-open interval `[end - window_ms, end)` where
//! `end` is a multiple of `slide_ms`; an event at `t` belongs to every window
//! with `end > t` and `end - window_ms <= t`. Each window holding at least one
//! event of a key gives one row for that key.

use anyhow::{ensure, Context};
use polars::prelude::{
    col, len, ClosedWindow, Column, DataFrame, DataType, Duration, DynamicGroupOptions, IntoLazy,
    Label, SortMultipleOptions, StartBy,
};
use rayon::slice::ParallelSliceMut;

/// Name of the time column (ms, `Int64`).
const TS: &str = "ts";
/// Name of the key column (`UInt32`).
const KEY: &str = "key";
/// Name of the value column (`Float64`).
const VALUE: &str = "value";
/// Name of the count column of the result.
const COUNT: &str = "count";
/// Name of the sum column of the result.
const SUM: &str = "sum";

/// Events as columns: times in ms (non-decreasing), key ids, float values.
///
/// Holds a polars `DataFrame` (columns `ts: i64`, `key: u32`,
/// `value: f64`) sorted by key then time, built outside any timed region.
#[derive(Debug, Clone)]
pub struct PolarsInput {
    /// The events, sorted by `(key, ts)`.
    df: DataFrame,
}

impl PolarsInput {
    /// Builds the `DataFrame` (columns `ts: i64`, `key: u32`, `value: f64`)
    /// and sorts it by `(key, ts)` — outside any timed region, as polars'
    /// `group_by_dynamic` by key is far faster on input sorted by key: it
    /// then skips its own arg-sort and gather of every column into key
    /// order (on 10 M events of 10 k keys in time order, 10 s / 1 s windows,
    /// about 1 M rows/s; sorted by key, about 27 M rows/s). This build and
    /// sort take about 5 s for 10 M events.
    ///
    /// # Errors
    ///
    /// If the three slices differ in length, or polars fails to build the
    /// frame.
    pub fn new(times: &[i64], keys: &[u32], values: &[f64]) -> anyhow::Result<Self> {
        check_lengths(times, keys, values)?;
        let mut order: Vec<usize> = (0..times.len()).collect();
        // Stable, so equal (key, ts) keep their input order.
        order.par_sort_by_key(|&i| (keys[i], times[i]));
        Self::build(times, keys, values, &order)
    }

    /// The frame in the events' own (time) order, as a stream delivers
    /// them: polars then sorts by key inside `group_by_dynamic`, in the
    /// timed call (about 1 M rows/s here on 10 M events).
    ///
    /// # Errors
    ///
    /// As [`PolarsInput::new`].
    pub fn in_time_order(times: &[i64], keys: &[u32], values: &[f64]) -> anyhow::Result<Self> {
        check_lengths(times, keys, values)?;
        let order: Vec<usize> = (0..times.len()).collect();
        Self::build(times, keys, values, &order)
    }

    fn build(times: &[i64], keys: &[u32], values: &[f64], order: &[usize]) -> anyhow::Result<Self> {
        let ts: Vec<i64> = order.iter().map(|&i| times[i]).collect();
        let key: Vec<u32> = order.iter().map(|&i| keys[i]).collect();
        let value: Vec<f64> = order.iter().map(|&i| values[i]).collect();
        let df = DataFrame::new(
            order.len(),
            vec![
                Column::new(TS.into(), ts),
                Column::new(KEY.into(), key),
                Column::new(VALUE.into(), value),
            ],
        )
        .context("building the polars input frame")?;
        Ok(Self { df })
    }

    /// Number of events.
    #[must_use]
    pub fn rows(&self) -> usize {
        self.df.height()
    }
}

fn check_lengths(times: &[i64], keys: &[u32], values: &[f64]) -> anyhow::Result<()> {
    let n = times.len();
    ensure!(
        keys.len() == n && values.len() == n,
        "column lengths differ: {} times, {} keys, {} values",
        n,
        keys.len(),
        values.len()
    );
    Ok(())
}

/// One result: per `(window_end_ms, key)` the count and sum over that window.
///
/// Rows are sorted by `(window_end, key)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolarsWindows {
    /// End (exclusive) of each row's window, ms; a multiple of the slide.
    pub window_end: Vec<i64>,
    /// Key of each row.
    pub key: Vec<u32>,
    /// Number of the key's events in the window.
    pub count: Vec<u64>,
    /// Sum of the values of the key's events in the window.
    pub sum: Vec<f64>,
}

impl PolarsWindows {
    /// Number of result rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.window_end.len()
    }

    /// Whether there are no result rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.window_end.is_empty()
    }
}

/// Sliding windows of `window_ms` every `slide_ms` (Spark semantics: windows
/// are `[end - window_ms, end)` with `end` a multiple of `slide_ms`), count
/// and sum of `value` per key, computed with polars lazy `group_by_dynamic`
/// on the integer `ts` column grouped by `key`.
///
/// The windows are `every = slide_ms`, `period = window_ms`, closed on the
/// left, started at window bounds with `offset = slide_ms - window_ms`
/// (without that offset polars would start each key at the window *starting*
/// at or before its first event, and miss the `window_ms / slide_ms - 1`
/// earlier windows that also hold it). Durations are index (`"…i"`) units,
/// so no datetime column is involved.
///
/// The timed work includes the conversion of the result to `Vec`s and its
/// sort by `(window_end, key)` (a polars sort inside the lazy query; the
/// result has far fewer rows than the input).
///
/// # Errors
///
/// If `slide_ms` is not positive or `window_ms < slide_ms` (Spark's
/// requirement), or polars fails.
pub fn sliding_count_sum(
    input: &PolarsInput,
    window_ms: i64,
    slide_ms: i64,
) -> anyhow::Result<PolarsWindows> {
    ensure!(slide_ms > 0, "slide must be positive, got {slide_ms} ms");
    ensure!(
        window_ms >= slide_ms,
        "window ({window_ms} ms) must not be shorter than the slide ({slide_ms} ms)"
    );
    // Integer durations ("…i" index units) on the Int64 `ts` column.
    let options = DynamicGroupOptions {
        index_column: TS.into(),
        every: Duration::new(slide_ms),
        period: Duration::new(window_ms),
        offset: Duration::new(slide_ms - window_ms),
        // The time column of the result is the window start.
        label: Label::Left,
        include_boundaries: false,
        // [start, stop).
        closed_window: ClosedWindow::Left,
        start_by: StartBy::WindowBound,
    };
    let out = input
        .df
        .clone()
        .lazy()
        .group_by_dynamic(col(TS), [col(KEY)], options)
        .agg([len().alias(COUNT), col(VALUE).sum().alias(SUM)])
        .sort([TS, KEY], SortMultipleOptions::default())
        .collect()
        .context("polars group_by_dynamic")?;

    let start = out.column(TS)?.i64()?;
    let key = out.column(KEY)?.u32()?;
    let count = out.column(COUNT)?.cast(&DataType::UInt64)?;
    let count = count.u64()?;
    let sum = out.column(SUM)?.f64()?;
    ensure!(
        start.null_count() + key.null_count() + count.null_count() + sum.null_count() == 0,
        "nulls in the polars result"
    );
    Ok(PolarsWindows {
        window_end: start.into_no_null_iter().map(|s| s + window_ms).collect(),
        key: key.into_no_null_iter().collect(),
        count: count.into_no_null_iter().collect(),
        sum: sum.into_no_null_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Instant;

    use datasets::{EventConfig, Rng};

    use super::*;

    /// The definition: each event adds to every window `[e - window, e)`
    /// holding it, `e` a multiple of `slide`.
    fn oracle(
        times: &[i64],
        keys: &[u32],
        values: &[f64],
        window_ms: i64,
        slide_ms: i64,
    ) -> PolarsWindows {
        let mut acc: BTreeMap<(i64, u32), (u64, f64)> = BTreeMap::new();
        for ((&t, &k), &v) in times.iter().zip(keys).zip(values) {
            // The first end after t, then every end up to t + window.
            let mut e = (t.div_euclid(slide_ms) + 1) * slide_ms;
            while e - window_ms <= t {
                let slot = acc.entry((e, k)).or_insert((0, 0.0));
                slot.0 += 1;
                slot.1 += v;
                e += slide_ms;
            }
        }
        let mut out = PolarsWindows::default();
        for ((e, k), (c, s)) in acc {
            out.window_end.push(e);
            out.key.push(k);
            out.count.push(c);
            out.sum.push(s);
        }
        out
    }

    fn assert_matches(got: &PolarsWindows, want: &PolarsWindows, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: row count");
        assert_eq!(got.window_end, want.window_end, "{what}: window ends");
        assert_eq!(got.key, want.key, "{what}: keys");
        assert_eq!(got.count, want.count, "{what}: counts");
        for (i, (&g, &w)) in got.sum.iter().zip(&want.sum).enumerate() {
            let tolerance = 1e-9 * w.abs().max(1.0);
            assert!(
                (g - w).abs() <= tolerance,
                "{what}: row {i} ({}, {}): sum {g} != {w}",
                got.window_end[i],
                got.key[i]
            );
        }
    }

    /// A random stream: non-decreasing times from `start` with random gaps
    /// (some repeated times), `keys` keys, values in `[-100, 100)`.
    fn stream(seed: u64, n: usize, keys: u64, start: i64) -> (Vec<i64>, Vec<u32>, Vec<f64>) {
        let mut rng = Rng::new(seed);
        let mut t = start;
        let mut times = Vec::with_capacity(n);
        let mut ks = Vec::with_capacity(n);
        let mut values = Vec::with_capacity(n);
        for _ in 0..n {
            // Mostly small steps, sometimes a gap longer than any window.
            t += match rng.below(100) {
                0 => 5_000 + i64::try_from(rng.below(5_000)).unwrap(),
                1..=30 => 0,
                _ => i64::try_from(rng.below(40)).unwrap(),
            };
            times.push(t);
            ks.push(u32::try_from(rng.below(keys)).unwrap());
            values.push(rng.unit() * 200.0 - 100.0);
        }
        (times, ks, values)
    }

    #[test]
    fn matches_oracle_on_random_streams() {
        // (window, slide): tumbling, W/S = 10 and 60, and others.
        let shapes = [
            (100, 100),
            (1_000, 1_000),
            (1_000, 100),
            (600, 10),
            (6_000, 100),
            (250, 100),
            (7, 3),
        ];
        for seed in 0..4_u64 {
            let keys = [1, 3, 7, 20][usize::try_from(seed).unwrap()];
            let start = [0, 12_345, -7_777, 1_700_000_000_000][usize::try_from(seed).unwrap()];
            let (times, ks, values) = stream(seed, 3_000, keys, start);
            let sorted = PolarsInput::new(&times, &ks, &values).unwrap();
            let arrival = PolarsInput::in_time_order(&times, &ks, &values).unwrap();
            assert_eq!(sorted.rows(), times.len());
            for &(window, slide) in &shapes {
                let want = oracle(&times, &ks, &values, window, slide);
                assert!(!want.is_empty());
                for (input, order) in [(&sorted, "by key"), (&arrival, "in time order")] {
                    let got = sliding_count_sum(input, window, slide).unwrap();
                    let what = format!("seed {seed}, {window}/{slide}, input {order}");
                    assert_matches(&got, &want, &what);
                }
            }
        }
    }

    #[test]
    fn first_windows_of_each_key_are_present() {
        // Key 0 starts at 1_005, key 1 at 2_950, key 2 at exactly 3_000;
        // with 1 s windows every 100 ms the first windows end at 1_100,
        // 3_000 and 3_100.
        let times = [1_005, 1_500, 2_950, 3_000, 3_000, 4_200];
        let keys = [0, 0, 1, 2, 0, 1];
        let values = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0];
        let input = PolarsInput::new(&times, &keys, &values).unwrap();
        let got = sliding_count_sum(&input, 1_000, 100).unwrap();
        let want = oracle(&times, &keys, &values, 1_000, 100);
        assert_matches(&got, &want, "first windows");
        for (k, first_end) in [(0, 1_100), (1, 3_000), (2, 3_100)] {
            let ends: Vec<i64> = (0..got.len())
                .filter(|&i| got.key[i] == k)
                .map(|i| got.window_end[i])
                .collect();
            assert_eq!(ends.first(), Some(&first_end), "key {k}: {ends:?}");
        }
        // Key 0's event at 1_005 is in the 10 windows ending 1_100..=2_000.
        let key0_first: Vec<u64> = (0..got.len())
            .filter(|&i| got.key[i] == 0 && got.window_end[i] <= 2_000)
            .map(|i| got.count[i])
            .collect();
        assert_eq!(key0_first, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    }

    #[test]
    fn rejects_bad_shapes_and_handles_empty_input() {
        let input = PolarsInput::new(&[0, 1], &[0, 0], &[1.0, 2.0]).unwrap();
        assert!(sliding_count_sum(&input, 100, 0).is_err());
        assert!(sliding_count_sum(&input, 50, 100).is_err());
        assert!(PolarsInput::new(&[0], &[0, 1], &[1.0]).is_err());
        let empty = PolarsInput::new(&[], &[], &[]).unwrap();
        assert!(sliding_count_sum(&empty, 1_000, 100).unwrap().is_empty());
    }

    /// Throughput on 10 M events, 10 k uniform keys, 1 M events/s of event
    /// time: `cargo test --release -p bench --features polars --lib --
    /// --ignored --nocapture polars_throughput`.
    #[test]
    #[ignore = "slow: 10 M events"]
    fn polars_throughput() {
        let events = datasets::events(&EventConfig {
            events: 10_000_000,
            keys: 10_000,
            rate: 1_000_000,
            ..EventConfig::default()
        });
        #[allow(clippy::cast_precision_loss)]
        let values: Vec<f64> = events.values.iter().map(|&v| v as f64).collect();
        let built = Instant::now();
        let input = PolarsInput::new(&events.times, &events.keys, &values).unwrap();
        println!("build + sort of the input: {:.2?}", built.elapsed());
        for (window, slide) in [(10_000, 1_000), (60_000, 1_000)] {
            let mut best = f64::INFINITY;
            let mut rows = 0;
            for run in 0..4 {
                let started = Instant::now();
                let out = sliding_count_sum(&input, window, slide).unwrap();
                let secs = started.elapsed().as_secs_f64();
                rows = out.len();
                // Every event is in exactly window / slide windows.
                let windows_per_event = u64::try_from(window / slide).unwrap();
                let events = u64::try_from(input.rows()).unwrap();
                assert_eq!(out.count.iter().sum::<u64>(), events * windows_per_event);
                // Run 0 warms up.
                if run > 0 {
                    best = best.min(secs);
                }
                println!("{window}/{slide} ms run {run}: {secs:.3} s");
            }
            #[allow(clippy::cast_precision_loss)]
            let rate = input.rows() as f64 / best;
            println!(
                "{window}/{slide} ms: best {best:.3} s, {rate:.0} input rows/s, {rows} output rows"
            );
        }
    }
}
