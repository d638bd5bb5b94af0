//! Windowed aggregation from pre-parsed columnar input against the window
//! operator's in-memory speed on the same events (issue 10's target: at
//! least half of it).
//!
//! One group, `columnar_input`: count and sum over a 10 s window sliding
//! by 1 s (batch 1 s, event time), on one thread, over [`EVENTS`] seeded
//! events (the window benchmarks' stream: 10 000 uniform keys, 1 M events
//! a second, integer values), in events per second:
//!
//! - `in_memory_micro_batch`: the operator alone, fed the events as
//!   pre-built 1 M-event batches without times (`bench/benches/window.rs`'s
//!   setup, the figure the target is relative to);
//! - `in_memory_event_time`: the same batches with their time column,
//!   pushed in event time (what a job does);
//! - `binary`: a whole job ([`engine::job::run`]) on the events written by
//!   `datasets events --format binary`, memory-mapped;
//! - `arrow` and `parquet` (feature `columnar`): the same job on an Arrow
//!   IPC file (64 Ki-row record batches, text keys) and a Parquet file
//!   (snappy, 1 Mi-row row groups).
//!
//! Every job emits the windows up to the last event's (`until`), as the
//! in-memory cases do; the inputs are written to the temporary directory
//! before any timing and removed at the end.
//!
//! Run with `cargo bench -p bench --bench columnar` (binary only) or
//! `cargo bench -p bench --features columnar --bench columnar`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use datasets::{EventConfig, EventFormat, EventStream, Limit};
use engine::ingest::Format;
use engine::job::{self, Input, JobConfig, JobHooks, JobKind, MmapChoice, OnError, TimeMode};
use engine::{
    AggSet, Batch, Column, Dictionary, TimePolicy, ValueType, WindowAggregator, WindowResult,
    WindowSpec,
};

/// Events of every case: 8 one-second panes.
const EVENTS: usize = 8 << 20;
/// Events a second, and so a pane's (and an in-memory batch's) events.
const RATE: usize = 1 << 20;
/// Distinct keys.
const KEYS: usize = 10_000;

fn spec() -> WindowSpec {
    WindowSpec::from_millis(1_000, 10_000, 1_000).expect("a valid window")
}

fn event_config() -> EventConfig {
    EventConfig {
        events: EVENTS,
        keys: KEYS,
        rate: RATE as u64,
        ..EventConfig::default()
    }
}

/// The end of the last window holding an event.
fn until() -> i64 {
    ((EVENTS / RATE) * 1_000) as i64
}

/// Counts the rows of the windows.
struct Rows(u64);

impl JobHooks for Rows {
    fn window(&mut self, window: &WindowResult, _dict: &Dictionary) -> engine::Result<()> {
        self.0 += window.len() as u64;
        Ok(())
    }
    fn bad_record(&mut self, _: &str, _: u64, _: &engine::ingest::RecordError) {
        panic!("the benchmark's input has no malformed record");
    }
    fn notice(&mut self, _: &engine::job::Notice<'_>) {}
}

fn job(path: &Path, format: Format) -> JobConfig {
    JobConfig {
        input: Input::File(path.to_owned()),
        format: Some(format),
        time: TimeMode::Column("ts".into()),
        kind: JobKind::Aggregate {
            key: "key".into(),
            value: Some("value".into()),
            aggs: "count,sum".parse::<AggSet>().expect("known aggregates"),
            value_type: ValueType::I64,
            filter: None,
            lookup: None,
        },
        spec: spec(),
        until: Some(until()),
        keep_empty: false,
        key_ttl: None,
        threads: 1,
        on_error: OnError::Skip,
        max_line_bytes: 1 << 20,
        run_for: None,
        socket: engine::source::SocketOptions::default(),
        // SAFETY: the inputs are written before the benchmark and not
        // changed while it runs.
        mmap: unsafe { MmapChoice::auto() },
        checkpoint: None,
        metrics: None,
    }
}

/// Runs the job, returning the rows of its windows.
fn run_job(config: &JobConfig) -> u64 {
    let mut rows = Rows(0);
    let report =
        job::run(config, &mut rows, &Arc::new(AtomicBool::new(false))).expect("the job runs");
    assert_eq!(report.records, EVENTS as u64);
    assert_eq!(report.skipped + report.late, 0);
    rows.0
}

/// The in-memory operator fed `batches` (one per pane), then advanced to
/// the same end as the jobs.
fn run_in_memory(batches: &[Batch], policy: fn(i64) -> TimePolicy) -> u64 {
    let mut op = WindowAggregator::builder(spec())
        .aggregates("count,sum".parse().expect("known aggregates"))
        .values(ValueType::I64)
        .threads(1)
        .build()
        .expect("a valid operator");
    let mut rows = 0;
    let mut sink = |w: WindowResult| rows += w.len() as u64;
    for (i, batch) in batches.iter().enumerate() {
        op.push_with(batch, policy(i as i64), &mut sink)
            .expect("pushed");
    }
    op.advance_to(until(), &mut sink).expect("advanced");
    rows
}

/// The seeded events as in-memory batches (with or without times), and
/// written as binary events.
fn inputs(dir: &Path) -> (Vec<Batch>, Vec<Batch>, PathBuf) {
    let events = datasets::events(&event_config());
    let dict = Dictionary::new();
    let mut ids = Vec::new();
    dict.intern_all(
        (0..KEYS)
            .map(|k| format!("k{k}"))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str),
        &mut ids,
    )
    .expect("interned");
    let (mut plain, mut timed) = (Vec::new(), Vec::new());
    for start in (0..EVENTS).step_by(RATE) {
        let keys: Vec<u32> = events.keys[start..start + RATE]
            .iter()
            .map(|&k| ids[k as usize])
            .collect();
        let values = vec![Column::I64(events.values[start..start + RATE].to_vec())];
        let pane_times = events.times[start..start + RATE].to_vec();
        plain
            .push(Batch::without_times(dict.clone(), keys.clone(), values.clone()).expect("valid"));
        timed.push(Batch::try_new(dict.clone(), pane_times, keys, values).expect("valid"));
    }
    let binary = dir.join("events.bin");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&binary).expect("created"));
    let mut stream = EventStream::new(&event_config()).with_format(EventFormat::Binary);
    datasets::write_records(
        &mut stream,
        Limit::Records(EVENTS as u64),
        &mut file,
        |_| {},
    )
    .expect("written");
    drop(file);
    (plain, timed, binary)
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let dir = std::env::temp_dir().join(format!("engine-bench-columnar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let (plain, timed, binary) = inputs(&dir);
    let expected = run_in_memory(&plain, TimePolicy::MicroBatch);
    let mut group = c.benchmark_group("columnar_input");
    group
        .throughput(Throughput::Elements(EVENTS as u64))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    group.bench_function("in_memory_micro_batch", |b| {
        b.iter(|| run_in_memory(&plain, TimePolicy::MicroBatch));
    });
    group.bench_function("in_memory_event_time", |b| {
        b.iter(|| run_in_memory(&timed, |_| TimePolicy::EventTime));
    });
    drop((plain, timed));
    let cases = [
        vec![("binary", job(&binary, Format::Binary))],
        more_inputs(&dir),
    ]
    .concat();
    for (name, config) in &cases {
        assert_eq!(run_job(config), expected, "{name}: the same windows");
        group.bench_function(*name, |b| b.iter(|| run_job(config)));
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
    c.final_summary();
}

/// The Arrow and Parquet cases (feature `columnar`).
fn more_inputs(dir: &Path) -> Vec<(&'static str, JobConfig)> {
    #[cfg(feature = "columnar")]
    return arrow_inputs::write(dir, job);
    #[cfg(not(feature = "columnar"))]
    {
        let _ = dir;
        Vec::new()
    }
}

#[cfg(feature = "columnar")]
mod arrow_inputs {
    //! The same events as an Arrow IPC file and a Parquet file.

    use std::path::Path;
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use engine::ingest::Format;
    use engine::job::JobConfig;

    use super::{event_config, EVENTS};

    pub fn write(
        dir: &Path,
        job: fn(&Path, Format) -> JobConfig,
    ) -> Vec<(&'static str, JobConfig)> {
        let events = datasets::events(&event_config());
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Int64, false),
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Int64, false),
        ]));
        let texts: Vec<String> = (0..super::KEYS).map(|k| format!("k{k}")).collect();
        let batches = (0..EVENTS).step_by(64 << 10).map(|start| {
            let end = (start + (64 << 10)).min(EVENTS);
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(events.times[start..end].to_vec())),
                Arc::new(StringArray::from_iter_values(
                    events.keys[start..end].iter().map(|&k| &texts[k as usize]),
                )),
                Arc::new(Int64Array::from(events.values[start..end].to_vec())),
            ];
            RecordBatch::try_new(Arc::clone(&schema), columns).expect("a valid batch")
        });
        let arrow = dir.join("events.arrow");
        let parquet = dir.join("events.parquet");
        let mut ipc = arrow_ipc::writer::FileWriter::try_new(
            std::fs::File::create(&arrow).expect("created"),
            &schema,
        )
        .expect("a writer");
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .set_max_row_group_row_count(Some(1 << 20))
            .build();
        let mut pq = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&parquet).expect("created"),
            Arc::clone(&schema),
            Some(props),
        )
        .expect("a writer");
        for batch in batches {
            ipc.write(&batch).expect("written");
            pq.write(&batch).expect("written");
        }
        ipc.finish().expect("written");
        pq.close().expect("written");
        vec![
            ("arrow", job(&arrow, Format::Arrow)),
            ("parquet", job(&parquet, Format::Parquet)),
        ]
    }
}
