//! The window operator against the brute-force oracle on random streams.

use std::collections::BTreeMap;

use engine::{
    Agg, AggColumn, AggSet, Batch, Column, Dictionary, Retention, ValueType, WindowAggregator,
    WindowResult, WindowSpec,
};
use proptest::prelude::*;

use crate::oracle::{self, Event, Mode, OracleValue, Row};

/// Every aggregate, so each case checks all of them at once.
fn all_aggs() -> AggSet {
    AggSet::new(Agg::ALL)
}

/// A value column type the tests drive the engine with.
pub trait TestValue: OracleValue + std::fmt::Debug + 'static {
    const TYPE: ValueType;
    fn column(values: Vec<Self>) -> Column;
}

impl TestValue for i64 {
    const TYPE: ValueType = ValueType::I64;
    fn column(values: Vec<Self>) -> Column {
        Column::I64(values)
    }
}

impl TestValue for f64 {
    const TYPE: ValueType = ValueType::F64;
    fn column(values: Vec<Self>) -> Column {
        Column::F64(values)
    }
}

/// How a test case feeds the engine.
#[derive(Debug, Clone)]
pub struct Feed {
    /// Sizes of the batches the stream is cut into (the rest goes last).
    pub cuts: Vec<usize>,
    /// Whether to reverse each batch's rows (disorder within a batch).
    pub reverse: bool,
}

/// Runs the engine over `events` (sorted by time) and returns every window,
/// rows sorted by key id.
pub fn run_engine<V: TestValue>(
    events: &[Event<V>],
    spec: WindowSpec,
    aggs: &AggSet,
    retention: Retention,
    threads: usize,
    feed: &Feed,
) -> Vec<WindowResult> {
    let dict = Dictionary::new();
    let max_key = events.iter().map(|e| e.key).max().unwrap_or(0);
    for k in 0..=max_key {
        dict.intern(&format!("k{k}")).unwrap();
    }
    let mut op = WindowAggregator::builder(spec)
        .aggregates(aggs.clone())
        .values(V::TYPE)
        .retention(retention)
        .threads(threads)
        .build()
        .unwrap();
    let mut out = Vec::new();
    let mut rest = events;
    let mut cuts = feed.cuts.iter().copied().chain(std::iter::once(usize::MAX));
    while !rest.is_empty() {
        let n = cuts.next().unwrap_or(usize::MAX).min(rest.len());
        let (mut part, tail) = (rest[..n].to_vec(), &rest[n..]);
        rest = tail;
        if feed.reverse {
            part.reverse();
        }
        let batch = Batch::try_new(
            dict.clone(),
            part.iter().map(|e| e.time).collect(),
            part.iter().map(|e| e.key).collect(),
            vec![V::column(part.iter().map(|e| e.value).collect())],
        )
        .unwrap();
        op.push(&batch, &mut |w| out.push(w)).unwrap();
    }
    op.finish(&mut |w| out.push(w)).unwrap();
    assert_eq!(op.stats().late_events, 0);
    assert_eq!(op.stats().events, events.len() as u64);
    for w in &mut out {
        w.sort_by_key_id();
    }
    out
}

fn close(actual: f64, expected: f64, scale: f64) -> bool {
    let diff = (actual - expected).abs();
    diff <= 1e-9 * expected.abs() || diff <= 1e-12 * scale
}

/// Asserts the engine's windows equal the oracle's: ends, keys, and every
/// aggregate (exact for integers, 1e-9 relative for floats).
pub fn assert_matches_oracle(engine: &[WindowResult], expected: &[(i64, BTreeMap<u32, Row>)]) {
    let engine_ends: Vec<i64> = engine.iter().map(WindowResult::end).collect();
    let oracle_ends: Vec<i64> = expected.iter().map(|(end, _)| *end).collect();
    assert_eq!(engine_ends, oracle_ends, "window ends differ");
    for (window, (end, rows)) in engine.iter().zip(expected) {
        let keys: Vec<u32> = rows.keys().copied().collect();
        assert_eq!(window.keys(), &keys[..], "keys of window {end}");
        for (i, row) in rows.values().enumerate() {
            let at = |agg: Agg| window.column(agg).unwrap();
            let what = |agg: Agg| format!("{agg} of key {} in window {end}: {row:?}", keys[i]);
            assert_eq!(
                at(Agg::Count),
                &count_column_value(at(Agg::Count), i, row.count),
                "{}",
                what(Agg::Count)
            );
            match (at(Agg::Sum), row.int_sum) {
                (AggColumn::I64(sums), Some(exact)) => {
                    assert_eq!(i128::from(sums[i]), exact, "{}", what(Agg::Sum));
                }
                (column, _) => {
                    let sum = column.get_f64(i).unwrap();
                    assert!(
                        close(sum, row.sum, row.abs_sum),
                        "{} = {sum}",
                        what(Agg::Sum)
                    );
                }
            }
            assert_eq!(at(Agg::Min).get_f64(i), row.min, "{}", what(Agg::Min));
            assert_eq!(at(Agg::Max).get_f64(i), row.max, "{}", what(Agg::Max));
            let scale = row.abs_sum / row.count.max(1) as f64;
            for (agg, expected) in [(Agg::Avg, row.avg), (Agg::Variance, row.variance)] {
                let actual = at(agg).get_f64(i);
                let ok = match (actual, expected) {
                    (Some(a), Some(e)) => close(a, e, scale * scale.max(1.0)),
                    (a, e) => a == e,
                };
                assert!(ok, "{} = {actual:?}", what(agg));
            }
            let stddev = at(Agg::Stddev).get_f64(i);
            assert_eq!(
                stddev.is_some(),
                row.variance.is_some(),
                "{}",
                what(Agg::Stddev)
            );
        }
    }
}

fn count_column_value(column: &AggColumn, i: usize, expected: u64) -> AggColumn {
    // Rebuild the column with row `i` replaced by the expected count: equal
    // iff row `i` holds it, and the failure message shows the whole column.
    let AggColumn::U64(counts) = column else {
        panic!("count is a u64 column");
    };
    let mut counts = counts.clone();
    counts[i] = expected;
    AggColumn::U64(counts)
}

/// A random stream: sorted times with bursts and gaps, keys drawn from one of
/// several distributions.
fn stream<V: Copy + std::fmt::Debug>(
    values: impl Strategy<Value = V> + Clone,
) -> impl Strategy<Value = Vec<Event<V>>> {
    let key_space = prop_oneof![Just(1_u32), Just(3), Just(50), Just(10_000)];
    (key_space, any::<bool>(), -5_000_i64..5_000, 0_usize..400).prop_flat_map(
        move |(keys, skewed, start, len)| {
            let step = prop_oneof![
                6 => Just(0_i64),     // a burst at one instant
                6 => 1_i64..30,
                1 => 100_i64..3_000,  // a gap: empty batches and empty windows
            ];
            proptest::collection::vec((step, 0.0_f64..1.0, values.clone()), len).prop_map(
                move |steps| {
                    let mut time = start;
                    steps
                        .into_iter()
                        .map(|(dt, u, value)| {
                            time += dt;
                            // Skewed keys: u³ piles up near key 0.
                            let u = if skewed { u * u * u } else { u };
                            let key = ((f64::from(keys) * u) as u32).min(keys - 1);
                            Event { time, key, value }
                        })
                        .collect()
                },
            )
        },
    )
}

fn float_values() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![
        -1_000.0_f64..1_000.0,
        -1e9_f64..1e9,
        (-1_000_i64..1_000).prop_map(|x| x as f64 / 8.0),
    ]
}

fn spec_strategy() -> impl Strategy<Value = WindowSpec> {
    (
        prop_oneof![Just(1_i64), Just(10), Just(25)],
        1_i64..=8,
        1_i64..=6,
    )
        .prop_map(|(b, w, s)| WindowSpec::from_millis(b, b * w, b * s).unwrap())
}

fn feed_strategy() -> impl Strategy<Value = Feed> {
    (proptest::collection::vec(0_usize..80, 0..12), any::<bool>())
        .prop_map(|(cuts, reverse)| Feed { cuts, reverse })
}

fn mode_strategy() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Live), Just(Mode::Spark)]
}

fn retention(mode: Mode) -> Retention {
    match mode {
        Mode::Live => Retention::Live,
        Mode::Spark => Retention::SparkCompatible,
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(96)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn integer_windows_equal_the_oracle(
        events in stream(-1_000_i64..1_000),
        spec in spec_strategy(),
        feed in feed_strategy(),
        mode in mode_strategy(),
        threads in 1_usize..=2,
    ) {
        let expected = oracle::windows(&events, spec.window(), spec.slide(), mode);
        let actual = run_engine(&events, spec, &all_aggs(), retention(mode), threads, &feed);
        assert_matches_oracle(&actual, &expected);
    }

    #[test]
    fn float_windows_equal_the_oracle(
        events in stream(float_values()),
        spec in spec_strategy(),
        feed in feed_strategy(),
        mode in mode_strategy(),
        threads in 1_usize..=2,
    ) {
        let expected = oracle::windows(&events, spec.window(), spec.slide(), mode);
        let actual = run_engine(&events, spec, &all_aggs(), retention(mode), threads, &feed);
        assert_matches_oracle(&actual, &expected);
    }

    #[test]
    fn one_and_two_threads_give_identical_results(
        events in stream(float_values()),
        spec in spec_strategy(),
        feed in feed_strategy(),
        mode in mode_strategy(),
    ) {
        let one = run_engine(&events, spec, &all_aggs(), retention(mode), 1, &feed);
        let two = run_engine(&events, spec, &all_aggs(), retention(mode), 2, &feed);
        prop_assert_eq!(one, two);
    }
}

/// Events spread over several chunks per batch, so that threads really split
/// the work: float results must still be bit-identical across thread counts.
#[test]
fn many_chunk_batches_are_bit_identical_across_thread_counts() {
    let generated = datasets::events(&datasets::EventConfig {
        events: 3 * engine::tuning::CHUNK_ROWS + 1_234,
        keys: 5_000,
        skew: 1.1,
        rate: 50_000,
        ..datasets::EventConfig::default()
    });
    let events: Vec<Event<f64>> = (0..generated.keys.len())
        .map(|i| Event {
            time: generated.times[i],
            key: generated.keys[i],
            value: generated.values[i] as f64 * 0.37 + 1e-3,
        })
        .collect();
    let spec = WindowSpec::from_millis(1_000, 3_000, 1_000).unwrap();
    let feed = Feed {
        cuts: vec![100_000, 5, 70_000],
        reverse: false,
    };
    let one = run_engine(&events, spec, &all_aggs(), Retention::Live, 1, &feed);
    let two = run_engine(&events, spec, &all_aggs(), Retention::Live, 2, &feed);
    assert_eq!(one, two);
    let expected = oracle::windows(&events, 3_000, 1_000, Mode::Live);
    assert_matches_oracle(&one, &expected);
}

/// The integer path splits big batches into one slice per worker and merges
/// the workers' scratches when a pane closes: same results as one thread.
#[test]
fn many_chunk_integer_batches_equal_the_oracle_on_two_threads() {
    let generated = datasets::events(&datasets::EventConfig {
        events: 3 * engine::tuning::CHUNK_ROWS + 777,
        keys: 20_000,
        skew: 0.8,
        rate: 40_000,
        ..datasets::EventConfig::default()
    });
    let events: Vec<Event<i64>> = (0..generated.keys.len())
        .map(|i| Event {
            time: generated.times[i],
            key: generated.keys[i],
            value: generated.values[i],
        })
        .collect();
    let spec = WindowSpec::from_millis(500, 2_000, 1_000).unwrap();
    let feed = Feed {
        cuts: vec![90_000, 3, 80_000],
        reverse: true,
    };
    let two = run_engine(
        &events,
        spec,
        &all_aggs(),
        Retention::SparkCompatible,
        2,
        &feed,
    );
    let one = run_engine(
        &events,
        spec,
        &all_aggs(),
        Retention::SparkCompatible,
        1,
        &feed,
    );
    assert_eq!(one, two);
    assert_matches_oracle(&two, &oracle::windows(&events, 2_000, 1_000, Mode::Spark));
}

/// Regression guard for drift: after many slides, windows still equal a
/// fresh correctly rounded sum.
#[test]
fn long_float_stream_does_not_drift() {
    let mut rng = datasets::Rng::new(9);
    let events: Vec<Event<f64>> = (0..200_000)
        .map(|i| Event {
            time: i / 20,
            key: rng.below(4) as u32,
            // Magnitudes from 1e-3 to 1e7 make plain summation lose digits.
            value: (rng.unit() - 0.5) * 10_f64.powi(rng.below(11) as i32 - 3),
        })
        .collect();
    let spec = WindowSpec::from_millis(10, 200, 10).unwrap();
    let aggs = AggSet::new([
        Agg::Count,
        Agg::Sum,
        Agg::Min,
        Agg::Max,
        Agg::Avg,
        Agg::Variance,
        Agg::Stddev,
    ]);
    let actual = run_engine(
        &events,
        spec,
        &aggs,
        Retention::SparkCompatible,
        2,
        &Feed {
            cuts: vec![],
            reverse: false,
        },
    );
    let expected = oracle::windows(&events, 200, 10, Mode::Spark);
    assert_matches_oracle(&actual, &expected);
}

/// Keys that leave the window leave the state.
#[test]
fn live_state_follows_live_keys_not_keys_ever_seen() {
    let dict = Dictionary::new();
    let spec = WindowSpec::from_millis(100, 500, 100).unwrap();
    let mut op = WindowAggregator::builder(spec).threads(2).build().unwrap();
    let mut peak = 0;
    for batch_index in 0..200_u32 {
        // Every batch brings 50 brand-new keys.
        let keys: Vec<u32> = (0..50)
            .map(|k| dict.intern(&format!("{batch_index}-{k}")).unwrap())
            .collect();
        let times = vec![i64::from(batch_index) * 100; keys.len()];
        let batch = Batch::try_new(dict.clone(), times, keys, vec![]).unwrap();
        op.push(&batch, &mut |_| {}).unwrap();
        peak = peak.max(op.live_keys());
    }
    assert!(
        peak <= 6 * 50,
        "at most 6 batches' keys are ever live, saw {peak}"
    );
    op.finish(&mut |_| {}).unwrap();
    assert_eq!(
        op.live_keys(),
        50,
        "the last window still holds the last batch"
    );
    op.advance_to(200 * 100 + 500, &mut |_| {}).unwrap();
    assert_eq!(op.live_keys(), 0);
    assert_eq!(dict.len(), 10_000);
}
