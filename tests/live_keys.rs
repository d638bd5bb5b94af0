//! State follows live keys: ids, window state and memory are released when
//! a key leaves every window, and `--key-ttl` bounds `--keep-empty`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{
    AggSet, Batch, Column, Dictionary, KeyReclaimer, Retention, ValueType, WindowAggregator,
    WindowResult, WindowSpec,
};
use proptest::prelude::*;

use crate::oracle::{self, Event, Mode};
use crate::util::{engine, stderr, TestCommand};
use crate::window_props::assert_matches_oracle;

/// Current resident memory of a running process, MB (0 once it has ended).
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Streams ever-new keys (`session-0`, `session-1`, …) into `engine run
/// ARGS --input -` until enough have gone through, sampling its resident
/// memory; returns the keys written and the samples after a warm-up.
fn stream_new_keys(args: &[&str]) -> (u64, Vec<f64>) {
    let mut child = engine()
        .args(["--input", "-"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the engine starts");
    let mut stdin = child.stdin.take().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written) = (Arc::clone(&stop), Arc::clone(&written));
        std::thread::spawn(move || {
            let mut next = 0_u64;
            let mut buf = Vec::with_capacity(1 << 20);
            while !stop.load(Ordering::Relaxed) {
                buf.clear();
                for _ in 0..50_000 {
                    writeln!(buf, "session-{next}").unwrap();
                    next += 1;
                }
                if stdin.write_all(&buf).is_err() {
                    break;
                }
                written.store(next, Ordering::Relaxed);
            }
        })
    };
    let mut stdout = child.stdout.take().unwrap();
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0; 1 << 16];
        while matches!(stdout.read(&mut buf), Ok(n) if n > 0) {}
    });
    let started = Instant::now();
    let mut samples = Vec::new();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let elapsed = started.elapsed();
        let keys = written.load(Ordering::Relaxed);
        if elapsed > Duration::from_millis(1_500) {
            samples.push(rss_mb(child.id()));
        }
        assert!(child.try_wait().unwrap().is_none(), "the job ended early");
        let enough = keys >= 4_000_000 && elapsed > Duration::from_secs(6);
        if enough || elapsed > Duration::from_secs(20) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = child.kill();
    let _ = child.wait();
    let _ = writer.join();
    let _ = drain.join();
    (written.load(Ordering::Relaxed), samples)
}

/// Peak memory of the first and the last third of the samples.
fn thirds(samples: &[f64]) -> (f64, f64) {
    let third = samples.len() / 3;
    let peak = |s: &[f64]| s.iter().copied().fold(0.0, f64::max);
    (
        peak(&samples[..third]),
        peak(&samples[samples.len() - third..]),
    )
}

/// A wordcount in virtual time over ever-new keys, 10 000 of them live per
/// 100 ms window, with `extra` flags; its memory must plateau.
fn assert_plateau(extra: &[&str]) {
    let mut args = vec![
        "--job",
        "wordcount",
        "--rate",
        "100000",
        "--batch",
        "100ms",
        "--window",
        "100ms",
        "--top",
        "3",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let (keys, samples) = stream_new_keys(&args);
    assert!(
        keys >= 1_000_000 && samples.len() >= 9,
        "too few keys ({keys}) or samples ({}) to show a plateau",
        samples.len()
    );
    let (first, last) = thirds(&samples);
    // Without releasing keys, memory grows by tens of MB per million keys
    // (it went from 160 to 330 MB over 15 M keys); with it, it is flat.
    assert!(
        last <= first * 1.25 + 16.0,
        "peak RSS grew from {first:.0} MB to {last:.0} MB over {keys} ever-new keys: {samples:?}"
    );
}

#[test]
fn memory_plateaus_on_an_endless_stream_of_ever_new_keys() {
    assert_plateau(&[]);
}

#[test]
fn memory_plateaus_with_keep_empty_and_a_key_ttl() {
    assert_plateau(&["--keep-empty", "--key-ttl", "200ms"]);
}

#[test]
fn key_ttl_without_keep_empty_or_of_zero_is_a_usage_error() {
    for (args, wanted) in [
        (
            &["--key-ttl", "1s"][..],
            "--key-ttl applies to --keep-empty",
        ),
        (
            &["--keep-empty", "--key-ttl", "0s"][..],
            "invalid duration `0s` for --key-ttl",
        ),
        (
            &["--keep-empty", "--key-ttl", "soon"][..],
            "invalid duration `soon` for --key-ttl",
        ),
    ] {
        let mut all = vec!["--input", "-", "--job", "wordcount", "--rate", "10"];
        all.extend_from_slice(args);
        let out = TestCommand::run(&all).stdin_bytes(b"a b\n");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(wanted), "{args:?}: {}", stderr(&out));
    }
}

/// A key that leaves every window gives its id and its state back; the id
/// goes to the next new key.
#[test]
fn a_key_that_left_every_window_releases_its_id_and_state_for_reuse() {
    let dict = Dictionary::new();
    let spec = WindowSpec::from_millis(1_000, 2_000, 1_000).unwrap();
    let mut op = WindowAggregator::builder(spec)
        .aggregates("count,sum,max".parse().unwrap())
        .values(ValueType::I64)
        .threads(2)
        .build()
        .unwrap();
    // A pass at every call (a reclaimer of its own waits for the
    // dictionary to double between passes).
    let reclaim = |op: &mut WindowAggregator| {
        KeyReclaimer::starting_at(1).maybe_reclaim(&dict, |m| op.for_each_held_key(m))
    };
    let mut windows: Vec<WindowResult> = Vec::new();
    let old = dict.intern("old").unwrap();
    let batch = Batch::try_new(
        dict.clone(),
        vec![0, 10],
        vec![old, old],
        vec![Column::I64(vec![1, 2])],
    )
    .unwrap();
    op.push(&batch, &mut |w| windows.push(w)).unwrap();
    // Still in the open pane, then in the windows ending at 1 s and 2 s.
    for now in [500, 1_000, 2_000] {
        op.advance_to(now, &mut |w| windows.push(w)).unwrap();
        assert_eq!(reclaim(&mut op), 0, "at {now}");
        assert_eq!(dict.read().get(old), Some("old"));
    }
    assert_eq!(op.live_keys(), 1);
    // The window ending at 3 s no longer covers [0, 1 s): the key leaves.
    op.advance_to(3_000, &mut |w| windows.push(w)).unwrap();
    assert_eq!(op.live_keys(), 0);
    assert_eq!(reclaim(&mut op), 1);
    assert_eq!(dict.len(), 0);
    assert_eq!(dict.read().get(old), None);
    // Its id is reused, and the new key starts from nothing.
    let new = dict.intern("new").unwrap();
    assert_eq!(new, old);
    let batch = Batch::try_new(
        dict.clone(),
        vec![3_500],
        vec![new],
        vec![Column::I64(vec![7])],
    )
    .unwrap();
    windows.clear();
    op.push(&batch, &mut |w| windows.push(w)).unwrap();
    op.finish(&mut |w| windows.push(w)).unwrap();
    let first = &windows[0];
    assert_eq!((first.end(), first.keys()), (4_000, &[new][..]));
    assert_eq!(
        first.column(engine::Agg::Count).unwrap().get_f64(0),
        Some(1.0)
    );
    assert_eq!(
        first.column(engine::Agg::Sum).unwrap().get_f64(0),
        Some(7.0)
    );
}

/// Spark-compatible retention keeps keys with count 0 — and so holds their
/// ids — until the TTL passes.
#[test]
fn keep_empty_holds_a_key_until_its_ttl_then_releases_it() {
    let dict = Dictionary::new();
    let spec = WindowSpec::from_millis(1_000, 1_000, 1_000).unwrap();
    let mut op = WindowAggregator::builder(spec)
        .retention(Retention::SparkCompatible)
        .key_ttl(Duration::from_secs(3))
        .threads(1)
        .build()
        .unwrap();
    let mut reclaimer = KeyReclaimer::starting_at(1);
    let key = dict.intern("k").unwrap();
    let batch = Batch::try_new(dict.clone(), vec![0], vec![key], vec![]).unwrap();
    let mut rows = BTreeMap::new();
    let mut sink = |w: WindowResult| {
        rows.insert(w.end(), w.keys().to_vec());
    };
    op.push(&batch, &mut sink).unwrap();
    op.advance_to(6_000, &mut sink).unwrap();
    // Its last pane [0, 1 s) ended at 1 s: kept while t − 1 s < 3 s.
    let expected: BTreeMap<i64, Vec<u32>> = [
        (1_000, vec![key]),
        (2_000, vec![key]),
        (3_000, vec![key]),
        (4_000, vec![]),
        (5_000, vec![]),
        (6_000, vec![]),
    ]
    .into();
    assert_eq!(rows, expected);
    assert_eq!(
        reclaimer.maybe_reclaim(&dict, |m| op.for_each_held_key(m)),
        1
    );
}

/// The oracle of Spark-compatible retention with a TTL: every key seen
/// before the window's end, except those with no event in the window whose
/// last event's pane ended `ttl` or more before it.
fn ttl_oracle(
    events: &[Event<i64>],
    spec: WindowSpec,
    ttl: i64,
) -> Vec<(i64, BTreeMap<u32, oracle::Row>)> {
    let pane = spec.pane();
    let mut windows = oracle::windows(events, spec.window(), spec.slide(), Mode::Spark);
    for (end, rows) in &mut windows {
        rows.retain(|key, row| {
            let last_pane_end = events
                .iter()
                .filter(|e| e.key == *key && e.time < *end)
                .map(|e| (e.time.div_euclid(pane) + 1) * pane)
                .max()
                .expect("a key in the output has an event before the end");
            row.count > 0 || *end - last_pane_end < ttl
        });
    }
    windows
}

fn ttl_stream() -> impl Strategy<Value = Vec<Event<i64>>> {
    proptest::collection::vec((0_i64..400, 0_u32..6, -50_i64..50), 0..60).prop_map(|mut rows| {
        rows.sort_by_key(|r| r.0);
        rows.into_iter()
            .map(|(time, key, value)| Event { time, key, value })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn keep_empty_with_a_key_ttl_equals_the_oracle(
        events in ttl_stream(),
        (b, w, s) in (prop_oneof![Just(5_i64), Just(10)], 1_i64..=5, 1_i64..=4),
        ttl in 1_i64..120,
        threads in 1_usize..=2,
        cut in 1_usize..20,
    ) {
        let spec = WindowSpec::from_millis(b, b * w, b * s).unwrap();
        let dict = Dictionary::new();
        for k in 0..6 {
            dict.intern(&format!("k{k}")).unwrap();
        }
        let mut op = WindowAggregator::builder(spec)
            .aggregates(AggSet::new(engine::Agg::ALL))
            .values(ValueType::I64)
            .retention(Retention::SparkCompatible)
            .key_ttl(Duration::from_millis(ttl as u64))
            .threads(threads)
            .build()
            .unwrap();
        let mut out = Vec::new();
        for part in events.chunks(cut) {
            let batch = Batch::try_new(
                dict.clone(),
                part.iter().map(|e| e.time).collect(),
                part.iter().map(|e| e.key).collect(),
                vec![Column::I64(part.iter().map(|e| e.value).collect())],
            )
            .unwrap();
            op.push(&batch, &mut |w| out.push(w)).unwrap();
        }
        op.finish(&mut |w| out.push(w)).unwrap();
        for w in &mut out {
            w.sort_by_key_id();
        }
        assert_matches_oracle(&out, &ttl_oracle(&events, spec, ttl));
    }
}

/// Keys released and their ids reused mid-stream never mix up rows: a
/// wordcount over 1.2 M records — a third of them ever-new keys, a third
/// keys that leave and come back 120 000 records later (with another id),
/// a third a small recurring set — equals a brute-force count, window by
/// window. The dictionary passes its reclaim threshold many times.
#[test]
fn released_and_reused_ids_never_mix_up_rows() {
    const RECORDS: u64 = 1_200_000;
    let key = |i: u64| match i % 3 {
        0 => format!("new{i}"),
        1 => format!("back{}", i % 120_000),
        _ => format!("hot{}", i % 7),
    };
    let mut input = Vec::new();
    for i in 0..RECORDS {
        writeln!(input, "{}", key(i)).unwrap();
    }
    // --rate 100000: record i at i/100 ms, so 10 000 records per 100 ms window.
    let out = TestCommand::run(&[
        "--input",
        "-",
        "--job",
        "wordcount",
        "--rate",
        "100000",
        "--batch",
        "100ms",
        "--window",
        "100ms",
        "--output",
        "csv",
        "--quiet",
    ])
    .stdin_bytes(&input);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut expected: BTreeMap<(u64, String), u64> = BTreeMap::new();
    for i in 0..RECORDS {
        let end = (i / 10_000 + 1) * 100;
        *expected.entry((end, key(i))).or_default() += 1;
    }
    let mut got: BTreeMap<(u64, String), u64> = BTreeMap::new();
    let text = String::from_utf8(out.stdout).unwrap();
    for line in text.lines().skip(1) {
        let mut fields = line.split(',');
        let end: u64 = fields.next().unwrap().parse().unwrap();
        let word = fields.next().unwrap().to_owned();
        let count: u64 = fields.next().unwrap().parse().unwrap();
        assert!(
            got.insert((end, word), count).is_none(),
            "a duplicate row: {line}"
        );
    }
    assert_eq!(got.len(), expected.len());
    assert!(
        got == expected,
        "the windows differ from the brute-force count"
    );
}
