//! `--format binary|arrow|parquet`: pre-parsed columns give exactly the
//! output of the CSV run of the same events (lateness, virtual time,
//! filters and lookups included), and malformed inputs (truncated files,
//! missing columns, wrong types, nulls) give one clear line or counted
//! skips, never a panic. Arrow and Parquet need the `columnar` feature;
//! without it `--format arrow` names the feature.

use std::path::{Path, PathBuf};

use datasets::{EventConfig, EventFormat, EventStream, Limit};

use crate::util::{p, run, stat, stderr, stdout, TempDir, TestCommand};

/// Out-of-order events over 200 Zipf keys, 10 000 a second: late events
/// are dropped the same way whatever the format.
fn config() -> EventConfig {
    EventConfig {
        seed: 7,
        keys: 200,
        skew: 1.0,
        rate: 10_000,
        out_of_order: 0.05,
        max_lateness_ms: 300,
        ..EventConfig::default()
    }
}

/// The first `n` events of [`config`] written by the generator as CSV and
/// as binary events.
fn generated(dir: &TempDir, n: u64) -> (PathBuf, PathBuf) {
    let mut csv = Vec::new();
    datasets::write_records(
        &mut EventStream::new(&config()),
        Limit::Records(n),
        &mut csv,
        |_| {},
    )
    .unwrap();
    let mut binary = Vec::new();
    datasets::write_records(
        &mut EventStream::new(&config()).with_format(EventFormat::Binary),
        Limit::Records(n),
        &mut binary,
        |_| {},
    )
    .unwrap();
    (
        dir.file("events.csv", &csv),
        dir.file("events.bin", &binary),
    )
}

/// An aggregate job over `ts,key,value` with every aggregate, as CSV rows.
const JOB: [&str; 18] = [
    "--time-col",
    "ts",
    "--key-col",
    "key",
    "--value-col",
    "value",
    "--value-type",
    "int",
    "--agg",
    "count,sum,avg,min,max",
    "--batch",
    "100ms",
    "--window",
    "500ms",
    "--slide",
    "200ms",
    "--output",
    "csv",
];

/// The job's CSV output on `input` read as `format`, after checking that it
/// succeeded.
#[track_caller]
fn output(input: &Path, format: &str, extra: &[&str]) -> String {
    let out = run(&[&["--input", p(input), "--format", format], &JOB[..], extra].concat());
    assert!(out.status.success(), "{format}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn binary_events_give_byte_identical_output_to_the_csv_of_the_same_seed() {
    let dir = TempDir::new("columnar-binary");
    let (csv, binary) = generated(&dir, 50_000);
    let expected = output(&csv, "csv", &["--quiet"]);
    assert!(expected.lines().count() > 1_000, "{expected}");
    assert_eq!(output(&binary, "binary", &["--quiet"]), expected, "mapped");
    assert_eq!(
        output(&binary, "binary", &["--quiet", "--no-mmap"]),
        expected
    );
    let piped =
        TestCommand::run(&[&["--input", "-", "--format", "binary", "--quiet"], &JOB[..]].concat())
            .cmd_with_stdin_file(&binary);
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert_eq!(stdout(&piped), expected, "stdin");
    // The same counts: records, late (dropped in record order), events.
    let stats = |input: &Path, format: &str| {
        let out = run(&[
            &[
                "--input",
                p(input),
                "--format",
                format,
                "--stats-json",
                "-",
                "--output-file",
                "/dev/null",
            ],
            &JOB[..16],
        ]
        .concat());
        assert!(out.status.success(), "{}", stderr(&out));
        let json = stdout(&out);
        ["records", "late", "events", "skipped"].map(|m| stat(&json, m))
    };
    let counts = stats(&csv, "csv");
    assert!(counts[1] > 0.0, "some events are late: {counts:?}");
    assert_eq!(stats(&binary, "binary"), counts);
}

#[test]
fn binary_virtual_time_filters_and_lookups_match_the_csv_run() {
    let dir = TempDir::new("columnar-binary-rate");
    let (csv, binary) = generated(&dir, 20_000);
    let table: String = std::iter::once("key,group\n".to_owned())
        .chain((0..150).map(|k| format!("k{k},g{}\n", k % 7)))
        .collect();
    let lookup = dir.file("groups.csv", table.as_bytes());
    for extra in [
        &["--rate", "3000"][..],
        &["--where", "key=k3"],
        &["--where", "value=7", "--rate", "5000"],
        &["--lookup", p(&lookup)],
    ] {
        let job = |input: &Path, format: &str| {
            let time = if extra.contains(&"--rate") {
                &[][..]
            } else {
                &JOB[..2]
            };
            let out = run(&[
                &["--input", p(input), "--format", format, "--quiet"],
                time,
                &JOB[2..],
                extra,
            ]
            .concat());
            assert!(out.status.success(), "{extra:?}: {}", stderr(&out));
            stdout(&out)
        };
        let expected = job(&csv, "csv");
        assert!(expected.lines().count() > 10, "{extra:?}: {expected}");
        assert_eq!(job(&binary, "binary"), expected, "{extra:?}");
    }
}

fn event(t: i64, k: u32, v: i64) -> Vec<u8> {
    [&t.to_le_bytes()[..], &k.to_le_bytes(), &v.to_le_bytes()].concat()
}

#[test]
fn a_binary_file_of_partial_events_is_refused_before_any_output() {
    let dir = TempDir::new("columnar-truncated");
    let mut bytes = [event(0, 1, 1), event(5, 2, 2)].concat();
    bytes.truncate(33);
    let path = dir.file("cut.bin", &bytes);
    let out = run(&[
        "--input",
        p(&path),
        "--format",
        "binary",
        "--key-col",
        "key",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("33 bytes is not a whole number of 20-byte events"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn a_binary_stream_ending_mid_event_keeps_the_events_before_and_fails() {
    let mut bytes = [event(0, 1, 1), event(1_500, 2, 2)].concat();
    bytes.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7]);
    let out = TestCommand::run(&[
        "--input",
        "-",
        "--format",
        "binary",
        "--key-col",
        "key",
        "--time-col",
        "ts",
        "--output",
        "csv",
        "--quiet",
    ])
    .stdin_bytes(&bytes);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the stream ended 7 bytes into a 20-byte event"),
        "{err}"
    );
    // The first event's window closed before the end was reached.
    assert!(stdout(&out).contains("1000,k1,1"), "{}", stdout(&out));
}

#[test]
fn binary_times_out_of_range_are_counted_and_reported_as_malformed() {
    let dir = TempDir::new("columnar-bad-times");
    let bytes = [event(0, 1, 1), event(i64::MAX, 2, 2), event(10, 1, 3)].concat();
    let path = dir.file("e.bin", &bytes);
    let out = run(&[
        "--input",
        p(&path),
        "--format",
        "binary",
        "--key-col",
        "key",
        "--time-col",
        "ts",
        "--value-col",
        "value",
        "--agg",
        "sum",
        "--output",
        "csv",
        "--stats-json",
        "-",
        "--output-file",
        "/dev/null",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json = stdout(&out);
    assert_eq!((stat(&json, "records"), stat(&json, "skipped")), (3.0, 1.0));
    assert!(
        stderr(&out).contains("line 2: timestamp 9223372036854775807 is out of range"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn binary_columns_are_ts_key_and_value_by_name() {
    let dir = TempDir::new("columnar-names");
    let path = dir.file("e.bin", &event(0, 1, 1));
    let out = run(&[
        "--input",
        p(&path),
        "--format",
        "binary",
        "--key-col",
        "key",
        "--value-col",
        "price",
        "--agg",
        "sum",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("no column `price` (--value-col); the input has: ts, key, value"),
        "{err}"
    );
    let out = run(&[
        "--input",
        p(&path),
        "--format",
        "binary",
        "--job",
        "wordcount",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("binary input holds columns: it needs --key-col"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "--generate",
        "events",
        "--format",
        "binary",
        "--key-col",
        "key",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("binary input is read from a file or standard input"),
        "{}",
        stderr(&out)
    );
}

#[cfg(not(feature = "columnar"))]
#[test]
fn arrow_and_parquet_without_the_feature_name_it_in_one_line() {
    for (format, file) in [("arrow", "e.arrow"), ("parquet", "e.parquet")] {
        let out = run(&["--input", file, "--format", format, "--key-col", "key"]);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "--format {format} needs an engine built with the `columnar` feature"
            )),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // From the extension too.
    let out = run(&["--input", "e.arrow", "--key-col", "key"]);
    assert!(
        stderr(&out).contains("`columnar` feature"),
        "{}",
        stderr(&out)
    );
}

#[cfg(feature = "columnar")]
#[path = "cli_columnar_arrow.rs"]
mod arrow;
