//! The `engine` binary, driven as a user would: files, stdin, sockets, bad
//! input. Sockets are served by test servers on 127.0.0.1.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::oracle::{self, Event, Mode};
use crate::util::{engine, p, run, stderr, stdout, TempDir};

/// CSV output rows: `(window_end, key) → [aggregates as text]`.
pub(crate) type Rows = BTreeMap<(i64, String), Vec<String>>;

/// The header and rows of CSV output.
pub(crate) fn csv_rows(text: &str) -> (Vec<String>, Rows) {
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("a header")
        .split(',')
        .map(str::to_owned)
        .collect();
    let rows = lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            (
                (fields[0].parse().unwrap(), fields[1].to_owned()),
                fields[2..].iter().map(|s| (*s).to_owned()).collect(),
            )
        })
        .collect();
    (header, rows)
}

#[test]
fn csv_replay_equals_the_oracle() {
    let dir = TempDir::new("replay");
    let mut rng = datasets::Rng::new(11);
    let mut events = Vec::new();
    let mut csv = String::from("ts,key,value\n");
    let mut time = 5_000_i64;
    for _ in 0..3_000 {
        time += rng.below(40) as i64;
        let key = rng.below(30) as u32;
        let value = rng.below(2_001) as i64 - 1_000;
        writeln!(csv, "{time},k{key},{value}").unwrap();
        events.push(Event { time, key, value });
    }
    let input = dir.file("events.csv", csv.as_bytes());
    let out = run(&[
        "--input",
        p(&input),
        "--time-col",
        "ts",
        "--key-col",
        "key",
        "--value-col",
        "value",
        "--value-type",
        "int",
        "--batch",
        "100ms",
        "--window",
        "2s",
        "--slide",
        "500ms",
        "--agg",
        "count,sum,min,max",
        "--output",
        "csv",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (header, rows) = csv_rows(&stdout(&out));
    assert_eq!(header, ["window_end", "key", "count", "sum", "min", "max"]);
    let mut expected = BTreeMap::new();
    for (end, keys) in oracle::windows(&events, 2_000, 500, Mode::Live) {
        for (key, row) in keys {
            let values = vec![
                row.count.to_string(),
                row.int_sum.unwrap().to_string(),
                (row.min.unwrap() as i64).to_string(),
                (row.max.unwrap() as i64).to_string(),
            ];
            expected.insert((end, format!("k{key}")), values);
        }
    }
    assert_eq!(rows, expected);
    // Rows come ordered by window end, then key.
    let order: Vec<(i64, String)> = csv_rows(&stdout(&out)).1.into_keys().collect();
    let printed: Vec<(i64, String)> = stdout(&out)
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[1].to_owned())
        })
        .collect();
    assert_eq!(printed, order);
}

#[test]
fn ndjson_float_aggregates_and_keep_empty() {
    let dir = TempDir::new("ndjson");
    let input = dir.file(
        "e.ndjson",
        b"{\"t\":0,\"k\":\"a\",\"v\":1.5}\n{\"t\":100,\"k\":\"b\",\"v\":2}\n{\"t\":1500,\"k\":\"a\",\"v\":4.5}\n",
    );
    let out = run(&[
        "--input",
        p(&input),
        "--time-col",
        "t",
        "--key-col",
        "k",
        "--value-col",
        "v",
        "--window",
        "1s",
        "--agg",
        "count,sum,avg",
        "--keep-empty",
        "--output",
        "ndjson",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        concat!(
            "{\"window_end\":1000,\"key\":\"a\",\"count\":1,\"sum\":1.5,\"avg\":1.5}\n",
            "{\"window_end\":1000,\"key\":\"b\",\"count\":1,\"sum\":2,\"avg\":2}\n",
            "{\"window_end\":2000,\"key\":\"a\",\"count\":1,\"sum\":4.5,\"avg\":4.5}\n",
            "{\"window_end\":2000,\"key\":\"b\",\"count\":0,\"sum\":0,\"avg\":null}\n",
        )
    );
}

#[test]
fn stdin_wordcount_in_virtual_time() {
    let mut child = engine()
        .args([
            "--input",
            "-",
            "--job",
            "wordcount",
            "--rate",
            "2",
            "--window",
            "2s",
            "--slide",
            "1s",
            "--output",
            "csv",
            "--quiet",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a b\nb\nc a\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Records 0, 1, 2 at 0, 500 and 1000 ms.
    assert_eq!(
        stdout(&out),
        "window_end,key,count\n1000,a,1\n1000,b,2\n2000,a,2\n2000,b,2\n2000,c,1\n3000,a,1\n3000,c,1\n"
    );
}

#[test]
fn grep_counts_matching_lines_and_until_emits_past_the_data() {
    let dir = TempDir::new("grep");
    let input = dir.file("app.log", b"ERROR a\nok\nERROR b\nwarn\n");
    let out = run(&[
        "--input",
        p(&input),
        "--job",
        "grep",
        "--pattern",
        "ERROR",
        "--rate",
        "1000",
        "--window",
        "10ms",
        "--slide",
        "1ms",
        "--batch",
        "1ms",
        "--until",
        "5ms",
        "--output",
        "csv",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "window_end,key,count\n1,ERROR,1\n2,ERROR,1\n3,ERROR,2\n4,ERROR,2\n5,ERROR,2\n"
    );
}

#[test]
fn malformed_rows_are_skipped_counted_and_reported_with_line_numbers() {
    let dir = TempDir::new("bad");
    let mut csv =
        b"ts,key,value\n0,a,1\n10,a\n20,,3\nxx,a,1\n30,a,NaN\n40,a,\xff\xfe\n50,b,2\n".to_vec();
    csv.extend_from_slice(format!("60,{},1\n", "k".repeat(300)).as_bytes());
    csv.extend_from_slice(b"70,a,4\n");
    let input = dir.file("bad.csv", &csv);
    let args = [
        "--input",
        p(&input),
        "--time-col",
        "ts",
        "--key-col",
        "key",
        "--value-col",
        "value",
        "--window",
        "1s",
        "--agg",
        "count,sum",
        "--output",
        "csv",
        "--max-line-bytes",
        "100",
    ];
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "window_end,key,count,sum\n1000,a,2,5\n1000,b,1,2\n"
    );
    let err = stderr(&out);
    for expected in [
        "line 3: 2 columns, the header has 3",
        "line 4: empty key",
        "line 5: bad timestamp `xx`",
        "line 6: bad value `NaN`",
        "line 7: invalid UTF-8",
        "skipped 6 malformed records",
    ] {
        assert!(err.contains(expected), "`{expected}` missing from:\n{err}");
    }
    let mut fail = args.to_vec();
    fail.extend(["--on-error", "fail"]);
    let out = run(&fail);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("line 3: 2 columns"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn random_bytes_never_panic() {
    let dir = TempDir::new("random");
    let mut rng = datasets::Rng::new(5);
    let bytes: Vec<u8> = (0..200_000).map(|_| rng.below(256) as u8).collect();
    let input = dir.file("noise.csv", &bytes);
    for args in [
        vec![
            "--input",
            p(&input),
            "--format",
            "csv",
            "--key-col",
            "key",
            "--output",
            "csv",
            "--quiet",
        ],
        vec![
            "--input",
            p(&input),
            "--format",
            "ndjson",
            "--key-col",
            "k",
            "--time-col",
            "t",
            "--output",
            "csv",
            "--quiet",
        ],
        vec![
            "--input",
            p(&input),
            "--format",
            "text",
            "--job",
            "wordcount",
            "--rate",
            "100",
            "--output",
            "csv",
            "--quiet",
        ],
    ] {
        let out = run(&args);
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
        // 1 only when every record was malformed, and then it says so.
        assert!(
            matches!(out.status.code(), Some(0 | 2))
                || out.status.code() == Some(1)
                    && stderr(&out).contains("every one of the")
                    && stderr(&out).contains("records was malformed"),
            "{:?}: {}",
            out.status,
            stderr(&out)
        );
    }
}

/// Every usage mistake is one clear line and exit status 2.
/// Runs the engine with `args` and checks it fails as a usage mistake:
/// exit status 2, `needle` in the one-line message, no panic.
pub(crate) fn assert_usage_error(args: &[&str], needle: &str) {
    let out = run(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: `{needle}` missing from {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn usage_errors_name_the_culprit_and_exit_2() {
    let dir = TempDir::new("usage");
    let csv = dir.file("e.csv", b"ts,key,value\n1,a,2\n");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--input", "/no/such/file.csv", "--key-col", "key"],
            "/no/such/file.csv",
        ),
        (
            vec!["--input", p(&csv), "--key-col", "nope"],
            "unknown column `nope`",
        ),
        (
            vec!["--input", p(&csv), "--key-col", "key", "--agg", "sum"],
            "needs a value column",
        ),
        (
            vec!["--input", p(&csv), "--key-col", "key", "--window", "10q"],
            "invalid duration `10q` for --window",
        ),
        (
            vec!["--input", p(&csv), "--key-col", "key", "--window", "2500ms"],
            "2500 ms",
        ),
        (
            vec!["--input", p(&csv), "--key-col", "key", "--agg", "median"],
            "unknown aggregate `median`",
        ),
        (
            vec!["--connect", "127.0.0.1:1", "--connect-timeout", "300ms"],
            "cannot connect to 127.0.0.1:1",
        ),
        (vec!["--input", p(&csv), "--bogus"], "--bogus"),
        (
            vec!["--input", p(&csv), "--key-col", "key", "--until", "5s"],
            "--until",
        ),
    ];
    for (args, needle) in cases {
        assert_usage_error(&args, needle);
    }
}

/// `--no-mmap` reads a file through the streaming reader (as a pipe) instead
/// of mapping it: the output is byte for byte the same, for a CSV aggregate
/// (with out-of-order and late records, over many reader chunks) and for a
/// word count.
#[test]
fn no_mmap_gives_the_same_output_as_mapping() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/samples");
    let dir = TempDir::new("no-mmap");
    let mut big = String::from("ts,key,value\n");
    let mut rng = 3_u64;
    for i in 0..120_000_u64 {
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let ts = (i * 3).saturating_sub((rng >> 40) % 2_000);
        writeln!(big, "{ts},k{},{}", (rng >> 20) % 97, (rng >> 50) % 1_000).unwrap();
    }
    let big = dir.file("big.csv", big.as_bytes());
    let events = samples.join("events.csv");
    let words = samples.join("words.txt");
    let aggregate = |input: &Path| {
        vec![
            "--input".to_owned(),
            p(input).to_owned(),
            "--time-col".into(),
            "ts".into(),
            "--key-col".into(),
            "key".into(),
            "--value-col".into(),
            "value".into(),
            "--window".into(),
            "3s".into(),
            "--slide".into(),
            "1s".into(),
            "--agg".into(),
            "count,sum,avg,min,max,variance".into(),
        ]
    };
    let jobs = [
        aggregate(&big),
        aggregate(&events),
        [
            "--input",
            p(&words),
            "--job",
            "wordcount",
            "--rate",
            "100",
            "--window",
            "2s",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for job in jobs {
        let job: Vec<&str> = job.iter().map(String::as_str).collect();
        let mapped = run(&[&job[..], &["--output", "csv", "--quiet"]].concat());
        let read = run(&[&job[..], &["--output", "csv", "--quiet", "--no-mmap"]].concat());
        assert!(mapped.status.success(), "{}", stderr(&mapped));
        assert!(read.status.success(), "{}", stderr(&read));
        assert!(mapped.stdout.len() > 100, "{job:?}: {}", stdout(&mapped));
        assert!(mapped.stdout == read.stdout, "{job:?}: the outputs differ");
    }
}

#[test]
fn csv_output_starts_with_its_header_even_without_rows() {
    let dir = TempDir::new("empty");
    let empty = dir.file("empty.csv", b"");
    let header_only = dir.file("header.csv", b"ts,key,value\n");
    for input in [&empty, &header_only] {
        let out = run(&[
            "--input",
            p(input),
            "--time-col",
            "ts",
            "--key-col",
            "key",
            "--value-col",
            "value",
            "--agg",
            "count,max",
            "--output",
            "csv",
            "--quiet",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), "window_end,key,count,max\n");
    }
    // Keys that need quoting are quoted (RFC 4180).
    let quoted = dir.file("q.csv", b"ts,key\n0,\"a,b\"\n1,\"say \"\"hi\"\"\"\n");
    let out = run(&[
        "--input",
        p(&quoted),
        "--time-col",
        "ts",
        "--key-col",
        "key",
        "--output",
        "csv",
        "--quiet",
    ]);
    assert_eq!(
        stdout(&out),
        "window_end,key,count\n1000,\"a,b\",1\n1000,\"say \"\"hi\"\"\",1\n"
    );
}

/// Regression: one timestamp in the wrong unit (µs among ms) must neither
/// hang the job (10^12 empty panes) nor overflow; an absurd one is malformed.
#[test]
fn a_jump_in_event_time_is_skipped_quickly_and_absurd_times_are_malformed() {
    let dir = TempDir::new("jump");
    let input = dir.file(
        "jump.csv",
        b"ts,key\n1700000000000,a\n1700000000000000,b\n9223372036854775807,c\n",
    );
    let started = Instant::now();
    let out = run(&[
        "--input",
        p(&input),
        "--time-col",
        "ts",
        "--key-col",
        "key",
        "--output",
        "csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        stdout(&out),
        "window_end,key,count\n1700000001000,a,1\n1700000000001000,b,1\n"
    );
    assert!(
        stderr(&out).contains("line 4: timestamp `9223372036854775807` is out of range"),
        "{}",
        stderr(&out)
    );
}

/// Regression: a pipe given as --input is a stream, not an empty file.
#[test]
fn a_pipe_as_input_is_read_as_a_stream() {
    let mut child = engine()
        .args([
            "--input",
            "/dev/stdin",
            "--job",
            "wordcount",
            "--rate",
            "10",
            "--window",
            "1s",
            "--output",
            "csv",
            "--quiet",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"x y\nx\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "window_end,key,count\n1000,x,2\n1000,y,1\n");
}

/// Regression: `engine … | head` ends quietly with status 0.
#[test]
fn a_closed_output_pipe_ends_the_job_quietly() {
    let mut child = engine()
        .args([
            "--generate",
            "words",
            "--records",
            "3000000",
            "--rate",
            "100000",
            "--window",
            "1s",
            "--output",
            "csv",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "window_end,key,count\n");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("error"), "{}", stderr(&out));
}
