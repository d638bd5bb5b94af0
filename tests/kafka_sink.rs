//! `--output kafka` against a real Kafka-protocol broker (tansu): the
//! records consumed from the topic are the rows `--output ndjson` writes for
//! the same job (key = the row's key, value = the NDJSON line, timestamp =
//! the window end), in the same order within each key; with checkpoints
//! too; a missing topic is refused before any input is read.
//!
//! The broker is `tansu` (`$TANSU`, or `~/.cache/tansu/install/bin/tansu`);
//! without it the tests say so and pass, unless `ENGINE_KAFKA_TESTS=require`
//! (CI), where a missing broker fails them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::cli_usability::repo_root;
use crate::util::{p, stderr, stdout, TempDir, TestCommand};

/// A tansu broker with in-memory storage on a free port, killed when
/// dropped. (The shared `tests/kafka_util.rs` helper replaces this once it
/// lands.)
struct Broker {
    child: Child,
    tansu: PathBuf,
    port: u16,
}

impl Broker {
    /// A broker, or `None` (said on stderr) when tansu is not installed.
    fn start() -> Option<Self> {
        let tansu = std::env::var_os("TANSU").map_or_else(
            || {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                    .join(".cache/tansu/install/bin/tansu")
            },
            PathBuf::from,
        );
        if !tansu.is_file() {
            assert!(
                std::env::var("ENGINE_KAFKA_TESTS").as_deref() != Ok("require"),
                "no tansu broker at {}",
                tansu.display()
            );
            eprintln!(
                "skipped: no tansu broker at {} (set TANSU)",
                tansu.display()
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut child = Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        let out = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(out).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("ready") => break,
                Some(Ok(_)) => {}
                _ => panic!("tansu exited before it was ready"),
            }
        }
        // The rest of its output, drained so that it never blocks.
        std::thread::spawn(move || lines.for_each(drop));
        Some(Self { child, tansu, port })
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(&self.tansu)
            .args([
                "topic",
                "create",
                name,
                "--partitions",
                &partitions.to_string(),
            ])
            .args(["--broker", &format!("tcp://127.0.0.1:{}", self.port)])
            .output()
            .expect("tansu topic create runs");
        assert!(out.status.success(), "{}", stderr(&out));
    }

    /// Every record of `topic`'s `partitions`: (partition, key, value,
    /// timestamp), each partition's in offset order; waits until `count`
    /// have come (or 60 s).
    fn consume_all(&self, topic: &str, partitions: i32, count: usize) -> Vec<Record> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .set("group.id", "engine-test")
            .set("enable.auto.commit", "false")
            .create()
            .expect("a consumer");
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let mut records = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while records.len() < count && Instant::now() < deadline {
            let Some(message) = consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            let message = message.expect("a record");
            let text =
                |b: Option<&[u8]>| String::from_utf8(b.unwrap_or_default().to_vec()).unwrap();
            records.push(Record {
                partition: message.partition(),
                key: text(message.key()),
                value: text(message.payload()),
                timestamp: message.timestamp().to_millis().unwrap_or(-1),
            });
        }
        // Nothing more than expected comes.
        if let Some(Ok(extra)) = consumer.poll(Duration::from_secs(1)) {
            panic!(
                "a record beyond the {count} expected: {:?}",
                extra.payload()
            );
        }
        records
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Record {
    partition: i32,
    key: String,
    value: String,
    timestamp: i64,
}

/// The member `name` of an NDJSON row as text (a string's unescaped
/// contents for the generated keys, which need no escaping).
fn member<'a>(row: &'a str, name: &str) -> &'a str {
    let at = row.find(&format!("\"{name}\":")).expect(name) + name.len() + 3;
    let rest = &row[at..];
    match rest.strip_prefix('"') {
        Some(s) => &s[..s.find('"').unwrap()],
        None => &rest[..rest.find([',', '}']).unwrap()],
    }
}

/// Checks that `records` are `ndjson`'s rows: each key's records, in
/// order, are its rows; each record's key and timestamp are its row's; a
/// key is in one partition.
fn assert_records_are_rows(records: &[Record], ndjson: &str) {
    let mut rows: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for line in ndjson.lines() {
        rows.entry(member(line, "key")).or_default().push(line);
    }
    let mut got: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut partition_of = BTreeMap::new();
    for r in records {
        assert_eq!(member(&r.value, "key"), r.key, "{r:?}");
        assert_eq!(
            member(&r.value, "window_end"),
            r.timestamp.to_string(),
            "{r:?}"
        );
        assert_eq!(
            *partition_of.entry(&r.key).or_insert(r.partition),
            r.partition,
            "{r:?}"
        );
        got.entry(&r.key).or_default().push(&r.value);
    }
    assert_eq!(got, rows);
}

const JOB: [&str; 12] = [
    "--key-col",
    "key",
    "--value-col",
    "value",
    "--time-col",
    "ts",
    "--window",
    "2s",
    "--slide",
    "1s",
    "--agg",
    "count,sum,max",
];

/// `engine run` with `input`, `JOB` and `output`: its stdout, after a
/// successful run.
fn run_ok(input: &[&str], output: &[&str]) -> String {
    let args: Vec<&str> = [input, &JOB[..], output, &["--quiet"]].concat();
    let out = TestCommand::run(&args).output();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn kafka_records_are_the_ndjson_rows_of_the_same_job() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("out", 4);
    let input = ["--generate", "events", "--records", "50000"];
    let ndjson = run_ok(&input, &["--output", "ndjson"]);
    let rows = ndjson.lines().count();
    assert!(rows > 1_000, "{rows} rows");
    let brokers = broker.brokers();
    let to_kafka = ["--output", "kafka", "--kafka-brokers", &brokers];
    let quiet = run_ok(
        &input,
        &[&to_kafka[..], &["--kafka-output-topic", "out"]].concat(),
    );
    assert_eq!(quiet, "", "nothing on stdout");
    let records = broker.consume_all("out", 4, rows);
    assert_records_are_rows(&records, &ndjson);
    let partitions: std::collections::BTreeSet<i32> = records.iter().map(|r| r.partition).collect();
    assert!(
        partitions.len() > 1,
        "keys spread over partitions: {partitions:?}"
    );
}

#[test]
fn a_checkpointed_job_writes_every_row_once_when_it_is_not_interrupted() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("rows", 2);
    let events = repo_root().join("datasets/samples/events.csv");
    let input = ["--input", p(&events)];
    let ndjson = run_ok(&input, &["--output", "ndjson"]);
    let dir = TempDir::new("kafka-sink-checkpoint");
    let brokers = broker.brokers();
    let output = [
        "--output",
        "kafka",
        "--kafka-output-brokers",
        &brokers,
        "--kafka-output-topic",
        "rows",
        "--checkpoint",
        p(&dir.0),
        "--checkpoint-every",
        "0s",
    ];
    run_ok(&input, &output);
    let records = broker.consume_all("rows", 2, ndjson.lines().count());
    assert_records_are_rows(&records, &ndjson);
    // Run again: the job had finished, nothing more is written.
    run_ok(&input, &output);
    let again = broker.consume_all("rows", 2, ndjson.lines().count());
    assert_eq!(again.len(), records.len());
}

#[test]
fn a_missing_topic_is_refused_before_any_input_is_read() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let brokers = broker.brokers();
    let args = [
        &["--generate", "events", "--records", "10"][..],
        &JOB,
        &["--output", "kafka", "--kafka-brokers", &brokers],
        &["--kafka-output-topic", "nowhere"],
    ]
    .concat();
    let out = TestCommand::run(&args).output();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("nowhere") && err.contains("does not exist"),
        "{err}"
    );
}
