//! Spark Streaming's documented window semantics, as golden files.
//!
//! Each test runs a small job through the DStream API and renders every batch
//! the way `print` does (records sorted, so that the file does not depend on
//! hash order); the result must equal `tests/golden/<name>.txt` byte for byte.
//! The expected files were written by hand from Spark's semantics: batch `k`
//! has time `(k+1)·B`, its records time `k·B`, a window ending at `t` covers
//! `[t − W, t)`, and windows are due at multiples of the slide.

use std::fmt::Debug;
use std::path::PathBuf;
use std::time::Duration;

use engine::dstream::{write_batch, Collected, KeyRetention};
use engine::{
    Agg, AggSet, Batch, Dictionary, Retention, StreamingContext, ValueType, WindowAggregator,
    WindowSpec,
};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn context() -> StreamingContext {
    StreamingContext::with_threads(secs(1), 2).unwrap()
}

fn render<T: Debug + Ord + Clone>(collected: &Collected<T>) -> String {
    let mut out = Vec::new();
    for (time, mut records) in collected.take() {
        records.sort();
        write_batch(&mut out, time, &records, 100).unwrap();
    }
    String::from_utf8(out).unwrap()
}

fn assert_golden(name: &str, actual: &str) {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/golden/{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(actual, expected, "output differs from {}", path.display());
}

fn singles(values: &[&'static str]) -> Vec<Vec<&'static str>> {
    values.iter().map(|v| vec![*v]).collect()
}

#[test]
fn window_slides_by_one_batch() {
    let ssc = context();
    let out = ssc
        .queue_stream(singles(&["a", "b", "c"]))
        .window(secs(2), secs(1))
        .unwrap()
        .collect();
    ssc.run().unwrap();
    assert_golden("window_slides_by_one_batch", &render(&out));
}

#[test]
fn tumbling_window_emits_each_batch_once() {
    let ssc = context();
    let out = ssc
        .queue_stream(singles(&["a", "b", "c", "d"]))
        .window(secs(2), secs(2))
        .unwrap()
        .collect();
    ssc.run().unwrap();
    assert_golden("tumbling_window_emits_each_batch_once", &render(&out));
}

#[test]
fn window_larger_than_slide_overlaps() {
    let ssc = context();
    let out = ssc
        .queue_stream(singles(&["1", "2", "3", "4", "5", "6"]))
        .window(secs(3), secs(2))
        .unwrap()
        .collect();
    ssc.run().unwrap();
    assert_golden("window_larger_than_slide_overlaps", &render(&out));
}

#[test]
fn non_overlapping_window_skips_batches() {
    let ssc = context();
    let out = ssc
        .queue_stream(singles(&["1", "2", "3", "4", "5", "6"]))
        .window(secs(1), secs(2))
        .unwrap()
        .collect();
    ssc.run().unwrap();
    assert_golden("non_overlapping_window_skips_batches", &render(&out));
}

fn pairs() -> Vec<Vec<(&'static str, i64)>> {
    vec![vec![("a", 1), ("b", 1)], vec![("a", 1)], vec![], vec![]]
}

#[test]
fn reduce_by_key_and_window_with_inverse_keeps_zero_keys_in_spark_mode() {
    let ssc = context();
    let spark = ssc
        .queue_stream(pairs())
        .reduce_by_key_and_window_with(
            |a, b| a + b,
            Some(|a, b| a - b),
            secs(2),
            secs(1),
            KeyRetention::SparkCompatible,
        )
        .unwrap()
        .collect();
    ssc.run_batches(5).unwrap();
    assert_golden("reduce_by_key_and_window_spark_mode", &render(&spark));
}

#[test]
fn reduce_by_key_and_window_drops_keys_that_leave_by_default() {
    let ssc = context();
    let stream = ssc.queue_stream(pairs());
    let with_inverse = stream
        .reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, secs(2), secs(1))
        .unwrap()
        .collect();
    let without_inverse = stream
        .reduce_by_key_and_window(|a, b| a + b, secs(2), secs(1))
        .unwrap()
        .collect();
    let spark_filter = stream
        .reduce_by_key_and_window_with(
            |a, b| a + b,
            Some(|a, b| a - b),
            secs(2),
            secs(1),
            KeyRetention::Filter(std::sync::Arc::new(|_: &&str, v: &i64| *v != 0)),
        )
        .unwrap()
        .collect();
    ssc.run_batches(5).unwrap();
    let expected = render(&with_inverse);
    assert_golden("reduce_by_key_and_window_default", &expected);
    assert_eq!(render(&without_inverse), expected);
    assert_eq!(render(&spark_filter), expected);
}

#[test]
fn count_by_window_counts_zero_once_started() {
    let ssc = context();
    let out = ssc
        .queue_stream(vec![vec!["x", "y"], vec!["z"], vec![], vec![]])
        .count_by_window(secs(2), secs(1))
        .unwrap()
        .collect();
    ssc.run_batches(5).unwrap();
    assert_golden("count_by_window", &render(&out));
}

#[test]
fn count_by_value_and_window_drops_zero_counts() {
    let ssc = context();
    let lines = ssc.queue_stream(vec![vec!["a", "a", "b"], vec!["b"], vec![], vec![]]);
    let generic = lines
        .count_by_value_and_window(secs(2), secs(1))
        .unwrap()
        .collect();
    let columnar = lines
        .map(ToString::to_string)
        .words()
        .count_by_value_and_window(secs(2), secs(1))
        .unwrap()
        .collect();
    ssc.run_batches(5).unwrap();
    let expected = render(&generic);
    assert_golden("count_by_value_and_window", &expected);
    assert_eq!(
        render(&columnar).replace('"', ""),
        expected.replace('"', "")
    );
}

/// The columnar operator in Spark mode: a key whose events all left reads
/// exactly zero (not a rounding residue), and nulls for what has no value.
#[test]
fn emptied_float_window_reads_exactly_zero_in_spark_mode() {
    let dict = Dictionary::new();
    let spec = WindowSpec::from_millis(1_000, 2_000, 1_000).unwrap();
    let mut op = WindowAggregator::builder(spec)
        .aggregates(AggSet::new(Agg::ALL))
        .values(ValueType::F64)
        .retention(Retention::SparkCompatible)
        .threads(2)
        .build()
        .unwrap();
    let batch = Batch::from_rows(&dict, [(0, "k", 0.1), (10, "k", 0.2), (20, "k", 0.3)]).unwrap();
    let mut windows = Vec::new();
    op.push(&batch, &mut |w| windows.push(w)).unwrap();
    op.advance_to(4_000, &mut |w| windows.push(w)).unwrap();
    let ends: Vec<i64> = windows.iter().map(engine::WindowResult::end).collect();
    assert_eq!(ends, [1_000, 2_000, 3_000, 4_000]);
    let last = &windows[3];
    assert_eq!(last.len(), 1, "Spark mode keeps the key");
    let sum = last.column(Agg::Sum).unwrap().get_f64(0).unwrap();
    assert_eq!(sum.to_bits(), 0.0_f64.to_bits());
    assert_eq!(last.column(Agg::Count).unwrap().get_f64(0), Some(0.0));
    for agg in [Agg::Avg, Agg::Min, Agg::Max, Agg::Variance, Agg::Stddev] {
        assert_eq!(last.column(agg).unwrap().get_f64(0), None, "{agg}");
    }
}

#[test]
fn windows_not_multiple_of_the_batch_are_refused_like_spark() {
    let ssc = context();
    let stream = ssc.queue_stream(singles(&["a"]));
    let err = stream
        .window(Duration::from_millis(2_500), secs(1))
        .err()
        .unwrap();
    assert!(err.to_string().contains("2500 ms"), "{err}");
}
