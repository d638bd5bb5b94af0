//! `StreamingContext::checkpoint`: a graph stopped after some micro-batches
//! and built again over the same checkpoint directory goes on where it
//! stopped; the windows before and after the stop are those of a run that
//! never stopped (random streams, with and without an inverse, record
//! windows and counts).

use std::time::Duration;

use engine::checkpoint::Checkpointing;
use engine::{DStream, StreamingContext};

use crate::util::TempDir;

type Windows = Vec<(i64, Vec<(String, i64)>)>;

/// Seeded batches of `(key, value)` pairs, some empty.
fn batches(seed: u64, n: usize) -> Vec<Vec<(String, i64)>> {
    let mut rng = datasets::Rng::new(seed);
    (0..n)
        .map(|_| {
            let len = if rng.below(5) == 0 { 0 } else { rng.below(40) };
            (0..len)
                .map(|_| (format!("k{}", rng.below(12)), rng.below(100) as i64 - 30))
                .collect()
        })
        .collect()
}

fn sorted(mut windows: Windows) -> Windows {
    for (_, rows) in &mut windows {
        rows.sort();
    }
    windows
}

/// The graph under test: three windowed streams over one source, each
/// collected. `checkpoint` is the directory, if any; `stop_after` runs only
/// that many micro-batches.
fn run(
    input: &[Vec<(String, i64)>],
    checkpoint: Option<&std::path::Path>,
    stop_after: Option<i64>,
) -> (Windows, Windows, Windows, Vec<(i64, Vec<u64>)>) {
    let ssc = StreamingContext::with_threads(Duration::from_millis(100), 2).unwrap();
    if let Some(dir) = checkpoint {
        ssc.checkpoint_with(Checkpointing {
            every: Duration::ZERO,
            ..Checkpointing::new(dir)
        })
        .unwrap();
    }
    let pairs = ssc.queue_stream(input.to_vec());
    let window = Duration::from_millis(500);
    let slide = Duration::from_millis(200);
    let inverse = pairs
        .reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, window, slide)
        .unwrap()
        .checkpointed()
        .unwrap();
    // Without an inverse: the sliding max of two-stacks.
    let maxima = pairs
        .reduce_by_key_and_window(i64::max, window, slide)
        .unwrap()
        .checkpointed()
        .unwrap();
    let records: DStream<(String, i64)> = pairs
        .window(Duration::from_millis(300), Duration::from_millis(100))
        .unwrap()
        .checkpointed()
        .unwrap();
    let counts = pairs.count_by_window(window, slide).unwrap();
    let (inverse, maxima) = (inverse.collect(), maxima.collect());
    let (records, counts) = (records.collect(), counts.collect());
    match stop_after {
        Some(batches) => ssc.run_batches(batches).unwrap(),
        None => ssc.run().unwrap(),
    }
    (
        sorted(inverse.take()),
        sorted(maxima.take()),
        sorted(records.take()),
        counts.take(),
    )
}

#[test]
fn a_resumed_graph_gives_the_windows_of_an_uninterrupted_one() {
    for seed in 0..6 {
        let input = batches(seed, 30);
        let whole = run(&input, None, None);
        let dir = TempDir::new(&format!("dstream-ckpt-{seed}"));
        let checkpoints = dir.path("checkpoints");
        let stop = 5 + seed as i64 * 3;
        let first = run(&input, Some(&checkpoints), Some(stop));
        let second = run(&input, Some(&checkpoints), None);
        let joined = (
            [first.0, second.0].concat(),
            [first.1, second.1].concat(),
            [first.2, second.2].concat(),
            [first.3, second.3].concat(),
        );
        assert_eq!(joined, whole, "seed {seed}, stopped after {stop} batches");
        // Finished: a third run has nothing to do.
        let third = run(&input, Some(&checkpoints), None);
        assert!(third.0.is_empty() && third.3.is_empty(), "seed {seed}");
    }
}

#[test]
fn an_unmarked_windowed_stream_or_another_graph_is_refused() {
    let dir = TempDir::new("dstream-ckpt-refused");
    let ssc = StreamingContext::with_threads(Duration::from_millis(100), 1).unwrap();
    ssc.checkpoint(dir.path("c")).unwrap();
    let pairs = ssc.queue_stream(vec![vec![("a".to_string(), 1_i64)]]);
    let _unmarked = pairs
        .reduce_by_key_and_window(
            |a, b| a + b,
            Duration::from_secs(1),
            Duration::from_millis(100),
        )
        .unwrap();
    let err = ssc.run().unwrap_err().to_string();
    assert!(
        err.contains(
            "`reduce_by_key_and_window(window 1000 ms, slide 100 ms, without inverse, live keys)`"
        ),
        "{err}"
    );
    assert!(err.contains(".checkpointed()"), "{err}");

    // A checkpoint of a graph with another batch interval is refused.
    let input = batches(9, 10);
    let checkpoints = dir.path("other");
    let _ = run(&input, Some(&checkpoints), Some(3));
    let ssc = StreamingContext::with_threads(Duration::from_millis(200), 2).unwrap();
    ssc.checkpoint(&checkpoints).unwrap();
    let _ = ssc
        .queue_stream(input)
        .reduce_by_key_and_window_inv(
            |a, b| a + b,
            |a, b| a - b,
            Duration::from_millis(600),
            Duration::from_millis(200),
        )
        .unwrap()
        .checkpointed()
        .unwrap();
    let err = ssc.run().unwrap_err().to_string();
    assert!(
        err.contains("is of another job: its batch is 100 ms, this job's is 200 ms"),
        "{err}"
    );
}

#[test]
fn the_columnar_operators_say_they_cannot_be_checkpointed_yet() {
    let dir = TempDir::new("dstream-ckpt-columnar");
    let ssc = StreamingContext::with_threads(Duration::from_millis(100), 1).unwrap();
    ssc.checkpoint(dir.path("c")).unwrap();
    let lines = ssc.queue_stream(vec![vec!["a b".to_string()]]);
    let counts = lines
        .words()
        .count_by_value_and_window(Duration::from_secs(1), Duration::from_millis(100))
        .unwrap();
    let Err(err) = counts.checkpointed() else {
        panic!("the columnar operator's state cannot be saved yet");
    };
    let err = err.to_string();
    assert!(err.contains("words().count_by_value_and_window"), "{err}");
    let err = ssc.run().unwrap_err().to_string();
    assert!(err.contains("checkpoints do not support"), "{err}");
}
