//! The DStream API's windowed operators against the brute-force oracle:
//! records of batch `k` carry time `k·B`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use engine::dstream::KeyRetention;
use engine::StreamingContext;
use proptest::prelude::*;

use crate::oracle::{self, Event, Mode};

type Batches = Vec<Vec<(u32, i64)>>;

fn batches() -> impl Strategy<Value = Batches> {
    let batch = prop_oneof![
        2 => Just(Vec::new()),
        5 => proptest::collection::vec((0_u32..6, -50_i64..50), 1..12),
    ];
    proptest::collection::vec(batch, 0..14)
}

/// Long, mostly empty streams over three keys: keys leave every window and
/// come back, often.
fn sparse_batches() -> impl Strategy<Value = Batches> {
    let batch = prop_oneof![
        5 => Just(Vec::new()),
        2 => proptest::collection::vec((0_u32..3, -50_i64..50), 1..5),
    ];
    proptest::collection::vec(batch, 0..40)
}

/// The oracle's per-key `pick` of every window, as `(end, key → value)`.
fn expected_by(
    events: &[Event<i64>],
    window: i64,
    slide: i64,
    mode: Mode,
    pick: impl Fn(&oracle::Row) -> i64,
) -> Vec<(i64, BTreeMap<u32, i64>)> {
    oracle::windows(events, window, slide, mode)
        .into_iter()
        .map(|(end, rows)| (end, rows.iter().map(|(k, r)| (*k, pick(r))).collect()))
        .collect()
}

/// Every generic windowed operator against the oracle on one input, for
/// every retention, with and without an inverse function.
fn check_generic_operators(
    input: &Batches,
    w: u64,
    s: u64,
    threads: usize,
) -> Result<(), TestCaseError> {
    let (b, window, slide) = (
        100_u64,
        Duration::from_millis(100 * w),
        Duration::from_millis(100 * s),
    );
    let ssc = StreamingContext::with_threads(Duration::from_millis(b), threads).unwrap();
    let stream = ssc.queue_stream(input.clone());
    let sum_inv = stream
        .reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, window, slide)
        .unwrap()
        .collect();
    let sum_two_stacks = stream
        .reduce_by_key_and_window(|a, b| a + b, window, slide)
        .unwrap()
        .collect();
    let max = stream
        .reduce_by_key_and_window(i64::max, window, slide)
        .unwrap()
        .collect();
    let no_inverse = None::<fn(i64, i64) -> i64>;
    // Without an inverse, Spark's retention acts as live (Spark recomputes).
    let max_spark = stream
        .reduce_by_key_and_window_with(
            i64::max,
            no_inverse,
            window,
            slide,
            KeyRetention::SparkCompatible,
        )
        .unwrap()
        .collect();
    let spark = stream
        .reduce_by_key_and_window_with(
            |a, b| a + b,
            Some(|a, b| a - b),
            window,
            slide,
            KeyRetention::SparkCompatible,
        )
        .unwrap()
        .collect();
    let keys = stream.map(|(k, _)| k);
    let by_value = keys
        .count_by_value_and_window(window, slide)
        .unwrap()
        .collect();
    let counts = stream.count_by_window(window, slide).unwrap().collect();
    let records = stream.window(window, slide).unwrap().collect();
    ssc.run().unwrap();

    let events = events(input, b as i64);
    let (w_ms, s_ms) = (100 * w as i64, 100 * s as i64);
    let live_sums = expected(&events, w_ms, s_ms, Mode::Live);
    assert_oracle_then_quiet(&as_maps(sum_inv.take()), &live_sums);
    assert_oracle_then_quiet(&as_maps(sum_two_stacks.take()), &live_sums);
    assert_oracle_then_quiet(
        &as_maps(spark.take()),
        &expected(&events, w_ms, s_ms, Mode::Spark),
    );
    let live_max = expected_by(&events, w_ms, s_ms, Mode::Live, |r| r.max.unwrap() as i64);
    // A max of 0 is data, not silence: compare exactly, and ask the windows
    // after the oracle's last to be empty.
    for got in [as_maps(max.take()), as_maps(max_spark.take())] {
        prop_assert!(got.len() >= live_max.len());
        prop_assert_eq!(&got[..live_max.len()], &live_max[..]);
        prop_assert!(got[live_max.len()..]
            .iter()
            .all(|(_, rows)| rows.is_empty()));
    }
    let live_counts = expected_by(&events, w_ms, s_ms, Mode::Live, |r| r.count as i64);
    let by_value: Vec<(i64, Vec<(u32, i64)>)> = by_value
        .take()
        .into_iter()
        .map(|(end, rows)| (end, rows.into_iter().map(|(k, n)| (k, n as i64)).collect()))
        .collect();
    let by_value = as_maps(by_value);
    prop_assert!(by_value.len() >= live_counts.len());
    prop_assert_eq!(&by_value[..live_counts.len()], &live_counts[..]);
    prop_assert!(by_value[live_counts.len()..]
        .iter()
        .all(|(_, rows)| rows.is_empty()));

    // `count_by_window`: one count per slide once the stream has started.
    let total: Vec<(i64, u64)> = live_counts
        .iter()
        .map(|(end, rows)| (*end, rows.values().map(|&n| n as u64).sum()))
        .collect();
    let got_counts = counts.take();
    prop_assert!(got_counts.len() >= total.len());
    for (i, (end, got)) in got_counts.iter().enumerate() {
        prop_assert!(got.len() <= 1, "window {}: {:?}", end, got);
        let n = got.first().copied().unwrap_or(0);
        let want = total.get(i).map_or(0, |t| t.1);
        prop_assert_eq!((*end, n), (total.get(i).map_or(*end, |t| t.0), want));
    }

    check_records(&records.take(), &events, w_ms, &total)
}

fn events(batches: &Batches, batch_ms: i64) -> Vec<Event<i64>> {
    let mut out = Vec::new();
    for (k, batch) in batches.iter().enumerate() {
        for &(key, value) in batch {
            out.push(Event {
                time: k as i64 * batch_ms,
                key,
                value,
            });
        }
    }
    out
}

/// The oracle's windows as `(end, key → sum)`, and `(end, count)`.
fn expected(
    events: &[Event<i64>],
    window: i64,
    slide: i64,
    mode: Mode,
) -> Vec<(i64, BTreeMap<u32, i64>)> {
    oracle::windows(events, window, slide, mode)
        .into_iter()
        .map(|(end, rows)| {
            let sums = rows
                .into_iter()
                .map(|(k, r)| (k, r.int_sum.unwrap_or(0) as i64))
                .collect();
            (end, sums)
        })
        .collect()
}

fn as_maps(collected: Vec<(i64, Vec<(u32, i64)>)>) -> Vec<(i64, BTreeMap<u32, i64>)> {
    collected
        .into_iter()
        .map(|(end, rows)| {
            let map: BTreeMap<u32, i64> = rows.iter().copied().collect();
            assert_eq!(map.len(), rows.len(), "a key appears twice in window {end}");
            (end, map)
        })
        .collect()
}

/// The engine runs every queued batch, trailing empty ones included, so it
/// may emit windows after the oracle's last: those must hold no data.
fn assert_oracle_then_quiet(got: &[(i64, BTreeMap<u32, i64>)], want: &[(i64, BTreeMap<u32, i64>)]) {
    assert!(got.len() >= want.len(), "{got:?} vs {want:?}");
    assert_eq!(&got[..want.len()], want);
    for (end, rows) in &got[want.len()..] {
        assert!(
            rows.values().all(|v| *v == 0),
            "window {end} after the data: {rows:?}"
        );
    }
}

/// `window`: exactly the records of `[end − W, end)`, in arrival order, one
/// window per slide once the stream has started (`total`: the oracle's ends).
fn check_records(
    got_records: &[(i64, Vec<(u32, i64)>)],
    events: &[Event<i64>],
    w_ms: i64,
    total: &[(i64, u64)],
) -> Result<(), TestCaseError> {
    prop_assert!(got_records.len() >= total.len());
    for (end, got) in got_records {
        let want: Vec<(u32, i64)> = events
            .iter()
            .filter(|e| e.time >= end - w_ms && e.time < *end)
            .map(|e| (e.key, e.value))
            .collect();
        prop_assert_eq!(got, &want, "window ending at {}", end);
    }
    let ends: Vec<i64> = got_records.iter().map(|(end, _)| *end).collect();
    let want_ends: Vec<i64> = total.iter().map(|(end, _)| *end).collect();
    prop_assert_eq!(&ends[..want_ends.len()], &want_ends[..]);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn windowed_reductions_equal_the_oracle(
        input in batches(),
        w in 1_u64..=5,
        s in 1_u64..=4,
        threads in 1_usize..=2,
    ) {
        let (b, window, slide) = (100_u64, Duration::from_millis(100 * w), Duration::from_millis(100 * s));
        let ssc = StreamingContext::with_threads(Duration::from_millis(b), threads).unwrap();
        let stream = ssc.queue_stream(input.clone());
        let inverse = stream
            .reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, window, slide)
            .unwrap()
            .collect();
        let two_stacks = stream
            .reduce_by_key_and_window(|a, b| a + b, window, slide)
            .unwrap()
            .collect();
        let spark = stream
            .reduce_by_key_and_window_with(|a, b| a + b, Some(|a, b| a - b), window, slide, KeyRetention::SparkCompatible)
            .unwrap()
            .collect();
        let filtered = stream
            .reduce_by_key_and_window_with(
                |a, b| a + b,
                Some(|a, b| a - b),
                window,
                slide,
                KeyRetention::Filter(Arc::new(|_: &u32, v: &i64| *v > 0)),
            )
            .unwrap()
            .collect();
        let counts = stream.count_by_window(window, slide).unwrap().collect();
        let windows = stream.map(|(k, v)| (k, v)).window(window, slide).unwrap().collect();
        ssc.run().unwrap();

        let events = events(&input, b as i64);
        let (w_ms, s_ms) = (100 * w as i64, 100 * s as i64);
        let live = expected(&events, w_ms, s_ms, Mode::Live);
        assert_oracle_then_quiet(&as_maps(inverse.take()), &live);
        assert_oracle_then_quiet(&as_maps(two_stacks.take()), &live);
        assert_oracle_then_quiet(&as_maps(spark.take()), &expected(&events, w_ms, s_ms, Mode::Spark));

        // A filter `sum > 0` that drops a key restarts it from its next pane,
        // so compare only windows up to the first drop against the oracle.
        let filtered = as_maps(filtered.take());
        for ((end, got), (_, all)) in filtered.iter().zip(&live) {
            let want: BTreeMap<u32, i64> = all.iter().filter(|(_, v)| **v > 0).map(|(k, v)| (*k, *v)).collect();
            if got != &want {
                prop_assert!(all.values().any(|v| *v <= 0), "window {end}: {got:?} vs {want:?}");
                break;
            }
            if all.values().any(|v| *v <= 0) {
                break;
            }
        }

        let oracle_counts: Vec<(i64, u64)> = oracle::windows(&events, w_ms, s_ms, Mode::Live)
            .into_iter()
            .map(|(end, rows)| (end, rows.values().map(|r| r.count).sum()))
            .collect();
        let as_count_maps = |rows: Vec<(i64, u64)>| -> Vec<(i64, BTreeMap<u32, i64>)> {
            rows.into_iter().map(|(end, c)| (end, BTreeMap::from([(0, c as i64)]))).collect()
        };
        let got_counts = counts.take().into_iter().map(|(end, c)| (end, c.first().copied().unwrap_or(0))).collect();
        assert_oracle_then_quiet(&as_count_maps(got_counts), &as_count_maps(oracle_counts.clone()));
        let got_sizes = windows.take().into_iter().map(|(end, r)| (end, r.len() as u64)).collect();
        assert_oracle_then_quiet(&as_count_maps(got_sizes), &as_count_maps(oracle_counts));
    }

    #[test]
    fn every_generic_operator_equals_the_oracle(
        input in batches(),
        w in 1_u64..=5,
        s in 1_u64..=4,
        threads in 1_usize..=2,
    ) {
        check_generic_operators(&input, w, s, threads)?;
    }

    #[test]
    fn keys_that_leave_and_come_back_equal_the_oracle(
        input in sparse_batches(),
        w in 1_u64..=3,
        s in 1_u64..=3,
        threads in 1_usize..=2,
    ) {
        check_generic_operators(&input, w, s, threads)?;
    }
}

/// A key that leaves every window and comes back starts from its new
/// records only, whatever the retention and the inverse.
#[test]
fn a_key_that_comes_back_starts_afresh() {
    let mut input: Batches = vec![vec![(7, 5)]];
    input.extend(std::iter::repeat_n(Vec::new(), 5));
    input.push(vec![(7, 2)]);
    for w in 1..=3 {
        check_generic_operators(&input, w, 1, 1).unwrap();
        check_generic_operators(&input, w, 1, 2).unwrap();
    }
}
