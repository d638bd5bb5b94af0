//! What checkpoints cost (issue 11): the pause of one checkpoint as the
//! window state grows, and a whole job's throughput at several intervals.
//!
//! - `checkpoint_pause`: what a checkpoint holds a job up for (the
//!   dictionary's live keys and the window operator's state copied and
//!   encoded) with 10 thousand, 1 million and 10 million live keys: two
//!   panes of one event per key (one closed, in the window's ring and the
//!   running aggregates; one open), count, sum, min and max on integers,
//!   one thread. Throughput is in live keys.
//! - `checkpoint_write`: the durable write that then runs on a thread of
//!   its own (temporary file, fsync, rename, directory fsync), for 10
//!   thousand and 1 million keys; throughput in bytes.
//! - `checkpoint_cost`: the jobs group's windowed WordCount (64 MB of
//!   100-byte records, 10 s window, 1 s slide, virtual time, all threads)
//!   without checkpoints, at the default interval (10 s of wall time; a
//!   run this short takes only the final one), and every 1 s and 100 ms.
//!
//! Run with `cargo bench -p bench --bench checkpoint`; the checkpoints go to
//! the temporary directory, removed at the end.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::jobs::{self, Workload};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use datasets::WordLines;
use engine::checkpoint::{self, store::Store, Checkpointing};
use engine::job::{self, JobHooks};
use engine::{Batch, Column, Dictionary, TimePolicy, ValueType, WindowAggregator, WindowResult};

/// Discards the windows.
struct Discard;

impl JobHooks for Discard {
    fn window(&mut self, _: &WindowResult, _: &Dictionary) -> engine::Result<()> {
        Ok(())
    }
    fn bad_record(&mut self, _: &str, _: u64, _: &engine::ingest::RecordError) {}
    fn notice(&mut self, _: &engine::job::Notice<'_>) {}
}

/// An operator holding `keys` live keys: a closed pane and an open one,
/// one event per key each.
fn state(keys: usize) -> (WindowAggregator, Dictionary) {
    let dict = Dictionary::new();
    let mut ids = Vec::with_capacity(keys);
    let names: Vec<String> = (0..keys).map(|k| format!("key{k}")).collect();
    dict.intern_all(names.iter().map(String::as_str), &mut ids)
        .expect("interned");
    let spec = engine::WindowSpec::from_millis(1_000, 10_000, 1_000).expect("a valid window");
    let mut op = WindowAggregator::builder(spec)
        .aggregates("count,sum,min,max".parse().expect("known aggregates"))
        .values(ValueType::I64)
        .threads(1)
        .build()
        .expect("an operator");
    let values: Vec<i64> = (0..keys as i64).map(|v| v * 7 % 1_000).collect();
    for pane in 0..2 {
        let batch =
            Batch::without_times(dict.clone(), ids.clone(), vec![Column::I64(values.clone())])
                .expect("a valid batch");
        op.push_with(&batch, TimePolicy::MicroBatch(pane), &mut |_| {})
            .expect("pushed");
    }
    (op, dict)
}

fn pause(c: &mut Criterion, dir: &Path) {
    let mut pause = c.benchmark_group("checkpoint_pause");
    pause
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    let mut states = Vec::new();
    for keys in [10_000, 1_000_000, 10_000_000] {
        let (op, dict) = state(keys);
        let bytes = checkpoint::encode_state(&op, &dict).len();
        eprintln!(
            "checkpoint_pause/{keys}: {:.1} MB a checkpoint",
            bytes as f64 / 1e6
        );
        pause.throughput(Throughput::Elements(keys as u64));
        pause.bench_with_input(BenchmarkId::from_parameter(keys), &keys, |b, _| {
            b.iter(|| checkpoint::encode_state(&op, &dict).len());
        });
        states.push((keys, op, dict));
    }
    pause.finish();
    // The write (temporary file, fsync, rename, directory fsync) that then
    // runs beside the job: 10 million keys' 2 GB take too long to sample.
    let mut write = c.benchmark_group("checkpoint_write");
    write
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    for (keys, op, dict) in states.iter().filter(|(keys, ..)| *keys <= 1_000_000) {
        let bytes = checkpoint::encode_state(op, dict);
        let mut store = Store::open(&dir.join(format!("write-{keys}"))).expect("a store");
        write.throughput(Throughput::Bytes(bytes.len() as u64));
        write.bench_with_input(BenchmarkId::from_parameter(keys), keys, |b, _| {
            b.iter_custom(|iterations| {
                let started = Instant::now();
                for _ in 0..iterations {
                    store.write(&bytes).expect("written");
                }
                started.elapsed()
            });
        });
    }
    write.finish();
}

fn cost(c: &mut Criterion, dir: &Path) {
    let words = dir.join("words-100b.txt");
    let mut lines = WordLines::new(42, 10_000, 1.0, 10).with_record_bytes(100);
    jobs::write(&words, &mut lines, 64 << 20).expect("written");
    // The ad table is read by YSB only.
    let base = jobs::config_for(Workload::WordCount10s, &words, &words, 0).expect("a job");
    let bytes = std::fs::metadata(&words).expect("written").len();
    let mut group = c.benchmark_group("checkpoint_cost");
    group
        .throughput(Throughput::Bytes(bytes))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    let intervals = [
        ("none", None),
        ("every_10s_default", Some(Checkpointing::DEFAULT_EVERY)),
        ("every_1s", Some(Duration::from_secs(1))),
        ("every_100ms", Some(Duration::from_millis(100))),
    ];
    for (name, every) in intervals {
        let mut config = base.clone();
        config.checkpoint = every.map(|every| Checkpointing {
            dir: dir.join(format!("cost-{name}")),
            every,
            output: String::new(),
        });
        group.bench_function(name, |b| {
            b.iter(|| {
                checkpoint::clear(&config).expect("cleared");
                let report = job::run(&config, &mut Discard, &Arc::new(AtomicBool::new(false)))
                    .expect("the job runs");
                assert_eq!(report.bytes, bytes);
                report.checkpoints
            });
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let dir = std::env::temp_dir().join(format!("engine-bench-checkpoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    cost(&mut c, &dir);
    pause(&mut c, &dir);
    c.final_summary();
    let _ = std::fs::remove_dir_all(&dir);
}
