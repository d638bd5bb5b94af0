//! Kafka as a source, against a real Kafka-protocol broker (tansu, started
//! by `kafka_util::Broker`): a keyed topic of 4 partitions gives the file
//! run's output byte for byte; partitions far apart in time are aligned,
//! not late; Kafka timestamps as event time; a checkpointed job killed at
//! random moments resumes to the uninterrupted output; two processes of a
//! group write the one-process result between them; a broker that stops
//! answering for a while loses nothing. Without a broker these tests say so
//! and pass, unless `ENGINE_REQUIRE_KAFKA=1` (CI).

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::kafka_util::{create_topic, produce, Broker};
use crate::util::{engine, p, stderr, TempDir};

/// `(ts, key, value)` rows: keys `k0..k{keys}`, times 3 ms apart from 1 s.
fn rows(n: usize, keys: u64, seed: u64) -> Vec<(i64, String, i64)> {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    (0..n)
        .map(|i| {
            let key = format!("k{}", next() % keys);
            (1_000 + 3 * i as i64, key, (next() % 1_000) as i64)
        })
        .collect()
}

fn csv_file(dir: &TempDir, name: &str, rows: &[(i64, String, i64)]) -> std::path::PathBuf {
    let mut text = String::from("ts,key,value\n");
    for (ts, key, value) in rows {
        writeln!(text, "{ts},{key},{value}").unwrap();
    }
    dir.file(name, text.as_bytes())
}

/// Produces the rows keyed by their key (the default partitioner), each
/// record a CSV line without header, timestamped with its `ts`.
fn produce_rows(broker: &Broker, topic: &str, rows: &[(i64, String, i64)]) {
    let values: Vec<(String, String)> = rows
        .iter()
        .map(|(ts, key, value)| (key.clone(), format!("{ts},{key},{value}")))
        .collect();
    let records: Vec<_> = values
        .iter()
        .zip(rows)
        .map(|((k, v), (ts, ..))| (None, k.as_bytes(), v.as_bytes(), *ts))
        .collect();
    produce(broker, topic, &records);
}

const AGG: &[&str] = &[
    "--time-col",
    "ts",
    "--key-col",
    "key",
    "--value-col",
    "value",
    "--value-type",
    "int",
    "--agg",
    "count,sum,min,max",
    "--window",
    "2s",
    "--slide",
    "1s",
    "--output",
    "csv",
];

fn kafka_args<'a>(broker: &'a str, topic: &'a str) -> Vec<&'a str> {
    vec![
        "--kafka-brokers",
        broker,
        "--kafka-topic",
        topic,
        "--format",
        "csv",
        "--header",
        "ts,key,value",
        "--kafka-until-end",
    ]
}

/// The file run's output of `AGG` over `file`.
fn file_output(file: &std::path::Path) -> Vec<u8> {
    let mut args = vec!["--input", p(file)];
    args.extend_from_slice(AGG);
    let out = engine().args(&args).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    out.stdout
}

fn run_ok(args: &[&str]) -> std::process::Output {
    let out = engine().args(args).output().unwrap();
    assert!(out.status.success(), "engine {args:?}: {}", stderr(&out));
    out
}

#[test]
fn a_keyed_topic_of_four_partitions_gives_the_file_runs_output() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = TempDir::new("kafka-keyed");
    let rows = rows(20_000, 50, 1);
    let file = csv_file(&dir, "rows.csv", &rows);
    create_topic(&broker, "keyed", 4);
    produce_rows(&broker, "keyed", &rows);
    let expected = file_output(&file);
    let addr = broker.addr();
    for threads in ["1", "2", "4"] {
        let mut args = kafka_args(&addr, "keyed");
        args.extend_from_slice(AGG);
        args.extend_from_slice(&["--threads", threads]);
        let out = run_ok(&args);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&expected),
            "--threads {threads}"
        );
        let told = stderr(&out);
        assert!(told.contains("20000 records"), "{told}");
        assert!(told.contains(" 0 late"), "{told}");
    }
}

#[test]
fn partitions_far_apart_in_time_are_aligned_not_late() {
    // Partition 0 holds the first half of the stream, partition 1 the
    // second: read in parallel, partition 1's records arrive long before
    // partition 0's last ones. Per-partition watermarks keep them all.
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = TempDir::new("kafka-aligned");
    let rows = rows(6_000, 20, 2);
    let file = csv_file(&dir, "rows.csv", &rows);
    create_topic(&broker, "halves", 2);
    let values: Vec<String> = rows
        .iter()
        .map(|(ts, key, value)| format!("{ts},{key},{value}"))
        .collect();
    // The second half first, so that it is fetched first.
    let mut records: Vec<_> = values
        .iter()
        .zip(&rows)
        .enumerate()
        .map(|(i, (v, (ts, key, _)))| {
            let partition = i32::from(i >= rows.len() / 2);
            (Some(partition), key.as_bytes(), v.as_bytes(), *ts)
        })
        .collect();
    records.sort_by_key(|r| std::cmp::Reverse(r.0));
    produce(&broker, "halves", &records);
    let addr = broker.addr();
    let mut args = kafka_args(&addr, "halves");
    args.extend_from_slice(AGG);
    let out = run_ok(&args);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&file_output(&file))
    );
    assert!(stderr(&out).contains(" 0 late"), "{}", stderr(&out));
}

#[test]
fn kafka_record_timestamps_are_event_time() {
    // Records hold only `key,value`; their Kafka timestamps are the times.
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = TempDir::new("kafka-timestamps");
    let rows = rows(5_000, 30, 3);
    let file = csv_file(&dir, "rows.csv", &rows);
    create_topic(&broker, "stamped", 3);
    let values: Vec<String> = rows.iter().map(|(_, k, v)| format!("{k},{v}")).collect();
    let records: Vec<_> = values
        .iter()
        .zip(&rows)
        .map(|(v, (ts, key, _))| (None, key.as_bytes(), v.as_bytes(), *ts))
        .collect();
    produce(&broker, "stamped", &records);
    let addr = broker.addr();
    let mut args = kafka_args(&addr, "stamped");
    args[7] = "key,value";
    args.extend_from_slice(AGG);
    args[10] = "@timestamp";
    let out = run_ok(&args);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&file_output(&file))
    );
}

/// A tiny seeded generator for kill times.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[test]
fn a_killed_checkpointed_kafka_job_resumes_to_byte_identical_output() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = TempDir::new("kafka-kill");
    let rows = rows(30_000, 500, 4);
    let file = csv_file(&dir, "rows.csv", &rows);
    create_topic(&broker, "killed", 4);
    produce_rows(&broker, "killed", &rows);
    let expected = file_output(&file);
    let addr = broker.addr();
    let out_file = dir.path("out.csv");
    let checkpoints = dir.path("ck");
    let mut args = kafka_args(&addr, "killed");
    args.extend_from_slice(AGG);
    args.extend_from_slice(&[
        "--output-file",
        p(&out_file),
        "--checkpoint",
        p(&checkpoints),
        "--checkpoint-every",
        "0s",
        "--threads",
        "2",
    ]);
    let mut rng = Lcg(12);
    let mut kills = 0;
    for attempt in 0.. {
        assert!(attempt < 60, "the job never finished between kills");
        let mut child = engine()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let wait = Duration::from_millis(100 + rng.below(700));
        let started = Instant::now();
        while started.elapsed() < wait && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            assert!(status.success(), "{err}");
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
    }
    assert!(
        kills >= 2,
        "only {kills} kills landed: the test proves little"
    );
    assert_eq!(
        String::from_utf8_lossy(&std::fs::read(&out_file).unwrap()),
        String::from_utf8_lossy(&expected),
        "after {kills} kills"
    );
}

#[test]
fn two_processes_in_one_group_write_the_one_process_result() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = TempDir::new("kafka-group");
    let rows = rows(20_000, 80, 5);
    let file = csv_file(&dir, "rows.csv", &rows);
    create_topic(&broker, "shared", 4);
    produce_rows(&broker, "shared", &rows);
    let addr = broker.addr();
    let mut args = kafka_args(&addr, "shared");
    args.extend_from_slice(AGG);
    args.extend_from_slice(&[
        "--kafka-group",
        "pair",
        // Room for heartbeats on a loaded machine (the processes leave the
        // group when they end; none dies here).
        "--kafka-option",
        "session.timeout.ms=10000",
    ]);
    let spawn = || {
        engine()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = spawn();
    // The second joins while the first is reading: a rebalance mid-job.
    std::thread::sleep(Duration::from_millis(300));
    let second = spawn();
    let (a, b) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));
    let body = |out: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(out)
            .lines()
            .skip(1)
            .map(str::to_owned)
            .collect()
    };
    let mut union = body(&a.stdout);
    union.extend(body(&b.stdout));
    union.sort();
    let mut expected = body(&file_output(&file));
    expected.sort();
    assert_eq!(union.len(), expected.len(), "every row once");
    assert_eq!(union, expected);
}

#[test]
fn a_broker_that_stops_answering_for_a_while_loses_nothing() {
    let Some(mut broker) = Broker::start() else {
        return;
    };
    let dir = TempDir::new("kafka-pause");
    let rows = rows(20_000, 50, 6);
    let file = csv_file(&dir, "rows.csv", &rows);
    create_topic(&broker, "paused", 2);
    produce_rows(&broker, "paused", &rows);
    let addr = broker.addr();
    let mut args = kafka_args(&addr, "paused");
    args.extend_from_slice(AGG);
    // The broker is frozen before the job starts and thawed 6 s later:
    // the job waits (and says so), then reads everything.
    broker.pause();
    let child = engine()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(6));
    broker.resume();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&file_output(&file))
    );
    assert!(
        stderr(&out).contains("waiting for it"),
        "the job says it waits: {}",
        stderr(&out)
    );
}

/// Runs `args` in `n` processes at once (the later ones joining a moment
/// after the first), each to its end; their outputs.
fn processes(args: &[&str], n: usize) -> Vec<std::process::Output> {
    let children: Vec<_> = (0..n)
        .map(|i| {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(300));
            }
            engine()
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            out
        })
        .collect()
}

/// The rows (header dropped) of CSV outputs, sorted.
fn sorted_rows(outputs: &[&[u8]]) -> Vec<String> {
    let mut rows: Vec<String> = outputs
        .iter()
        .flat_map(|out| {
            String::from_utf8_lossy(out)
                .lines()
                .skip(1)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    rows.sort();
    rows
}

/// Lines of 1 to 10 words, small word numbers frequent.
fn word_lines(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|_| {
            (0..=rng.below(10))
                .map(|_| {
                    let bound = 1 + rng.below(300);
                    format!("w{}", rng.below(bound))
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn a_two_stage_word_count_with_two_plus_two_processes_equals_one_process() {
    // Lines spread over 4 partitions with no regard for their words: a
    // word's counts are in every partition, so the job repartitions them.
    let Some(broker) = Broker::start() else {
        return;
    };
    create_topic(&broker, "lines", 4);
    create_topic(&broker, "partials", 4);
    let lines = word_lines(8_000, 9);
    let records: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let partition = (i % 4) as i32;
            (
                Some(partition),
                &b""[..],
                line.as_bytes(),
                10_000 + 7 * i as i64,
            )
        })
        .collect();
    produce(&broker, "lines", &records);
    let addr = broker.addr();
    let job = [
        "--job",
        "wordcount",
        "--time-col",
        "@timestamp",
        "--window",
        "4s",
        "--slide",
        "1s",
        "--kafka-until-end",
        "--kafka-option",
        "session.timeout.ms=10000",
    ];
    let mut one = vec![
        "--kafka-brokers",
        &addr,
        "--kafka-topic",
        "lines",
        "--output",
        "csv",
    ];
    one.extend_from_slice(&job);
    let single = run_ok(&one);
    let mut partial = vec![
        "--kafka-brokers",
        &addr,
        "--kafka-topic",
        "lines",
        "--kafka-group",
        "partial",
        "--stage",
        "partial",
        "--output",
        "kafka",
        "--kafka-output-topic",
        "partials",
        // One record per batch: tansu cannot read from the middle of one,
        // and a handover can start there.
        "--kafka-option",
        "batch.num.messages=1",
    ];
    partial.extend_from_slice(&job);
    let partials = processes(&partial, 2);
    assert!(partials.iter().all(|o| o.stdout.is_empty()));
    let mut merge = vec![
        "--kafka-brokers",
        &addr,
        "--kafka-topic",
        "partials",
        "--kafka-group",
        "final",
        "--stage",
        "final",
        "--output",
        "csv",
    ];
    merge.extend_from_slice(&job);
    let finals = processes(&merge, 2);
    for out in &finals {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.is_empty() || text.starts_with("window_end,key,count\n"),
            "the one-stage job's columns: {text:.80}"
        );
    }
    let expected = sorted_rows(&[&single.stdout]);
    assert!(expected.len() > 1_000, "a real word count");
    assert_eq!(
        sorted_rows(&[&finals[0].stdout, &finals[1].stdout]),
        expected
    );
}
