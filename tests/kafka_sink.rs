//! `--output kafka` against a real Kafka-protocol broker (tansu): the
//! records consumed from the topic are the rows `--output ndjson` writes for
//! the same job (key = the row's key, value = the NDJSON line, timestamp =
//! the window end), in the same order within each key; with checkpoints
//! too; a missing topic is refused before any input is read.
//!
//! The broker is started by `kafka_util::Broker`; without one the tests say
//! so and pass, unless `ENGINE_REQUIRE_KAFKA=1` (CI).

use std::collections::BTreeMap;

use crate::cli_usability::repo_root;
use crate::kafka_util::{create_topic, Broker};
use crate::util::{p, stderr, stdout, TempDir, TestCommand};

/// Every record of `topic`: (partition, key, value, timestamp), each
/// partition's in offset order; exactly `count` of them.
fn consume_all(broker: &Broker, topic: &str, count: usize) -> Vec<Record> {
    let text = |b: Option<Vec<u8>>| String::from_utf8(b.unwrap_or_default()).unwrap();
    let records: Vec<Record> = crate::kafka_util::consume_all(broker, topic)
        .into_iter()
        .map(|c| Record {
            partition: c.partition,
            key: text(c.key),
            value: text(c.value),
            timestamp: c.timestamp.unwrap_or(-1),
        })
        .collect();
    assert_eq!(records.len(), count, "records in {topic}");
    records
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
    create_topic(&broker, "out", 4);
    let input = ["--generate", "events", "--records", "50000"];
    let ndjson = run_ok(&input, &["--output", "ndjson"]);
    let rows = ndjson.lines().count();
    assert!(rows > 1_000, "{rows} rows");
    let brokers = broker.addr();
    let to_kafka = ["--output", "kafka", "--kafka-brokers", &brokers];
    let quiet = run_ok(
        &input,
        &[&to_kafka[..], &["--kafka-output-topic", "out"]].concat(),
    );
    assert_eq!(quiet, "", "nothing on stdout");
    let records = consume_all(&broker, "out", rows);
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
    create_topic(&broker, "rows", 2);
    let events = repo_root().join("datasets/samples/events.csv");
    let input = ["--input", p(&events)];
    let ndjson = run_ok(&input, &["--output", "ndjson"]);
    let dir = TempDir::new("kafka-sink-checkpoint");
    let brokers = broker.addr();
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
    let records = consume_all(&broker, "rows", ndjson.lines().count());
    assert_records_are_rows(&records, &ndjson);
    // Run again: the job had finished, nothing more is written.
    run_ok(&input, &output);
    let again = consume_all(&broker, "rows", ndjson.lines().count());
    assert_eq!(again.len(), records.len());
}

#[test]
fn a_missing_topic_is_refused_before_any_input_is_read() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let brokers = broker.addr();
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
