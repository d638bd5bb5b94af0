//! Records per second consumed from a local Kafka broker against the same
//! job over the same records in a file (issue 12).
//!
//! - `kafka_source/file`: a keyed aggregate (count, sum per key, 10 s
//!   windows sliding by 1 s, event time) over 1 M CSV events in a file,
//!   memory-mapped, all threads.
//! - `kafka_source/kafka`: the same events as records of a 4-partition
//!   topic on a local broker (tansu: `$TANSU_BIN`, or
//!   `~/.cache/tansu/*/bin/tansu`), read to the end offsets they had at the
//!   start (`until_end`), with the per-partition watermark alignment.
//!
//! - `kafka_source/consume_only`: a bare librdkafka consumer reading the
//!   topic to its end, nothing parsed: the broker's ceiling on this
//!   machine, which the engine's Kafka case is to be compared with.
//!
//! Both outputs are checked equal before anything is timed. Throughput is
//! in records. Run with `cargo bench -p bench --features kafka --bench
//! kafka`; without a broker the bench says so and measures nothing.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::future::Future as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use engine::job::{self, Input, JobConfig, JobHooks, JobKind, MmapChoice, OnError, TimeMode};
use engine::source::kafka::{KafkaOptions, KafkaStart};
use engine::{AggSet, Dictionary, ValueType, WindowResult};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

const EVENTS: usize = 1_000_000;
const KEYS: u64 = 10_000;
const TOPIC: &str = "bench-events";

/// Counts window rows (and sums their counts, to compare runs).
#[derive(Default)]
struct Rows(u64, u64);

impl JobHooks for Rows {
    fn window(&mut self, window: &WindowResult, _: &Dictionary) -> engine::Result<()> {
        self.0 += window.len() as u64;
        if let Some(counts) = window.column(engine::Agg::Count) {
            self.1 += (0..counts.len())
                .filter_map(|i| counts.get_f64(i))
                .sum::<f64>() as u64;
        }
        Ok(())
    }
    fn bad_record(&mut self, _: &str, _: u64, _: &engine::ingest::RecordError) {}
    fn notice(&mut self, _: &engine::job::Notice<'_>) {}
}

/// The events: `ts,key,value`, 1 ms apart, keys spread by a multiplicative
/// hash.
fn events() -> Vec<(i64, String, i64)> {
    (0..EVENTS as u64)
        .map(|i| {
            let key = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % KEYS;
            (i as i64, format!("k{key}"), (i % 1_000) as i64)
        })
        .collect()
}

fn job(input: Input) -> JobConfig {
    JobConfig {
        input,
        format: Some(engine::ingest::Format::Csv),
        time: TimeMode::Column("ts".into()),
        kind: JobKind::Aggregate {
            key: "key".into(),
            value: Some("value".into()),
            aggs: "count,sum".parse::<AggSet>().expect("known aggregates"),
            value_type: ValueType::I64,
            filter: None,
            lookup: None,
        },
        spec: engine::WindowSpec::from_millis(1_000, 10_000, 1_000).expect("a valid window"),
        until: None,
        keep_empty: false,
        key_ttl: None,
        threads: 0,
        on_error: OnError::Skip,
        max_line_bytes: 1 << 20,
        run_for: None,
        socket: engine::source::SocketOptions::default(),
        // SAFETY: the file is written before the benchmark and not changed
        // while it runs.
        mmap: unsafe { MmapChoice::auto() },
        checkpoint: None,
        metrics: None,
    }
}

fn run(config: &JobConfig) -> Rows {
    let mut rows = Rows::default();
    let report =
        job::run(config, &mut rows, &Arc::new(AtomicBool::new(false))).expect("the job runs");
    assert_eq!(report.records, EVENTS as u64);
    assert_eq!(report.skipped + report.late, 0);
    rows
}

/// A tansu broker on a free port, killed when dropped.
struct Broker(Child, String);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tansu() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TANSU_BIN") {
        return Some(path.into());
    }
    let cache = Path::new(&std::env::var_os("HOME")?).join(".cache/tansu");
    std::fs::read_dir(cache)
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin/tansu"))
        .find(|p| p.is_file())
}

fn start_broker() -> Option<Broker> {
    let bin = tansu()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(bin)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "the broker did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Broker(child, addr))
}

/// Creates the topic and fills it with the events, keyed by key.
fn fill(addr: &str, events: &[(i64, String, i64)]) {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", addr);
    let admin: AdminClient<DefaultClientContext> = config.create().expect("an admin client");
    let topic = NewTopic::new(TOPIC, 4, TopicReplication::Fixed(1));
    let created = admin.create_topics([&topic], &AdminOptions::new());
    let mut created = std::pin::pin!(created);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    while created.as_mut().poll(&mut cx).is_pending() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let producer: BaseProducer = config
        .clone()
        .set("linger.ms", "5")
        .set("queue.buffering.max.kbytes", "65536")
        .create()
        .expect("a producer");
    for (ts, key, value) in events {
        let payload = format!("{ts},{key},{value}");
        let mut record = BaseRecord::to(TOPIC).key(key.as_str()).payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("every record acknowledged");
}

/// Reads every record of the topic with a bare consumer; their count.
fn consume_only(addr: &str) -> usize {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "bench-consume-only")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("a consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..4 {
        tpl.add_partition_offset(TOPIC, p, rdkafka::Offset::Beginning)
            .expect("a partition");
    }
    consumer.assign(&tpl).expect("assigned");
    let (mut records, mut ends) = (0, 0);
    while ends < 4 {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => records += 1,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => ends += 1,
            _ => {}
        }
    }
    records
}

fn bench(c: &mut Criterion) {
    let Some(broker) = start_broker() else {
        eprintln!("kafka_source: no tansu broker (set TANSU_BIN): nothing measured");
        return;
    };
    let events = events();
    let dir = std::env::temp_dir().join(format!("engine-bench-kafka-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let file = dir.join("events.csv");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).expect("the file"));
        writeln!(out, "ts,key,value").expect("written");
        for (ts, key, value) in &events {
            writeln!(out, "{ts},{key},{value}").expect("written");
        }
    }
    fill(&broker.1, &events);
    let from_file = job(Input::File(file.clone()));
    let from_kafka = job(Input::Kafka(KafkaOptions {
        brokers: broker.1.clone(),
        topic: TOPIC.into(),
        group: None,
        start: KafkaStart::Earliest,
        until_end: true,
        idle_after: None,
        record_time: false,
        csv_header: Some("ts,key,value".into()),
        properties: Vec::new(),
    }));
    let (a, b) = (run(&from_file), run(&from_kafka));
    assert_eq!(
        (a.0, a.1),
        (b.0, b.1),
        "the same windows from the file and the topic"
    );
    let mut group = c.benchmark_group("kafka_source");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.bench_function("file", |b| b.iter(|| run(&from_file)));
    group.bench_function("kafka", |b| b.iter(|| run(&from_kafka)));
    assert_eq!(consume_only(&broker.1), EVENTS);
    group.bench_function("consume_only", |b| b.iter(|| consume_only(&broker.1)));
    group.finish();
    let _ = std::fs::remove_dir_all(dir);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
