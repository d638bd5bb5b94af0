//! Hostile input through the parsers: the fuzz targets' committed corpus
//! replayed through their checks, and the `engine` binary given byte-order
//! marks, strict-JSON violations, duplicate CSV header names and odd lookup
//! tables. The test marked `needs job.rs wiring` passes once `job.rs`
//! calls `ingest::check_csv_header` on each CSV header.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use engine::ingest::fuzz_check;

use crate::util::{engine, run, stderr, stdout};

/// Every file of the fuzz corpus of `target` (`fuzz/corpus/<target>/`)
/// through `check`; returns how many there were.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
            std::panic::resume_unwind(Box::new(format!(
                "{}: {}",
                file.display(),
                panic
                    .downcast_ref::<String>()
                    .map_or("(a panic)", String::as_str)
            )));
        }
    }
    files.len()
}

#[test]
fn fuzz_corpus_replays_through_the_fuzz_checks() {
    for (target, check) in [
        ("text", fuzz_check::check_text as fn(&[u8])),
        ("csv", fuzz_check::check_csv),
        ("ndjson", fuzz_check::check_ndjson),
        ("lookup", fuzz_check::check_lookup),
    ] {
        let files = replay(target, check);
        assert!(files >= 10, "{target}: only {files} corpus files");
    }
}

/// A scratch file removed at the end of the test.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!(
            "engine-hardening-parse-{}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const BOM: &str = "\u{feff}";

/// An NDJSON count of `k` per 1 s window of `t`, as CSV.
fn ndjson_count(input: &str) -> Output {
    run(&[
        "--input",
        input,
        "--format",
        "ndjson",
        "--time-col",
        "t",
        "--key-col",
        "k",
        "--window",
        "1s",
        "--output",
        "csv",
    ])
}

#[test]
fn ndjson_hostile_lines_are_skipped_with_their_reasons() {
    let lines = [
        r#"{"t":0,"k":"a"}"#,
        r#"{"t":1,"k":"\u12"}"#,
        r#"{"t":2,"k":hello}"#,
        "{\"t\":3,\"k\":\"a\u{1}b\"}",
        r#"{"t":4,"k":"\ud800"}"#,
        r#"{"t":5,"k":"\x"}"#,
        r#"{"t":6,"k":"a","k":"b"}"#,
        r#"{"t":7,"k":01}"#,
        r#"{"t":8,"k":"a"} trailing"#,
        r#"{"t":9,"k":"a","x":[1,}"#,
        r#"{"t":10,"k":"a","x":NaN}"#,
        r#"{"t":11,"k":"b"}"#,
    ];
    let file = TempFile::new("hostile.ndjson", lines.join("\n").as_bytes());
    let out = ndjson_count(file.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "window_end,key,count\n1000,a,1\n1000,b,1\n");
    let err = stderr(&out);
    // The engine words the first five.
    for expected in [
        "line 2: invalid JSON at byte 13: `\\u` needs exactly four hex digits",
        "line 3: invalid JSON at byte 12: `hello` is not a JSON value",
        "line 4: invalid JSON at byte 14: raw control character U+0001",
        "line 5: invalid JSON at byte 13: lone surrogate `\\ud800`",
        "line 6: invalid JSON at byte 13: invalid escape `\\x`",
        "skipped 10 malformed records",
    ] {
        assert!(err.contains(expected), "`{expected}` missing from:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bom_is_skipped_at_the_start_of_an_ndjson_file() {
    let file = TempFile::new(
        "bom.ndjson",
        format!("{BOM}{{\"t\":0,\"k\":\"a\"}}\n{{\"t\":1,\"k\":\"a\"}}\n").as_bytes(),
    );
    let out = ndjson_count(file.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "window_end,key,count\n1000,a,2\n");
    assert!(
        stderr(&out).contains("skipped 0 malformed"),
        "{}",
        stderr(&out)
    );
}

fn wordcount(input: &str, stdin: &[u8]) -> Output {
    let mut child = engine()
        .args([
            "--input",
            input,
            "--job",
            "wordcount",
            "--rate",
            "1000",
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
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn bom_is_skipped_at_the_start_of_a_text_file_and_of_stdin() {
    let text = format!("{BOM}to be\nto\n");
    let file = TempFile::new("bom.txt", text.as_bytes());
    for out in [wordcount(file.path(), b""), wordcount("-", text.as_bytes())] {
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), "window_end,key,count\n1000,be,1\n1000,to,2\n");
    }
}

#[test]
fn bom_before_a_csv_header_is_skipped() {
    let file = TempFile::new("bom.csv", format!("{BOM}ts,key\n0,a\n1,a\n").as_bytes());
    let out = run(&[
        "--input",
        file.path(),
        "--time-col",
        "ts",
        "--key-col",
        "ts",
        "--window",
        "1s",
        "--output",
        "csv",
    ]);
    // `ts` is found: the mark is not part of the first column's name.
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&[
        "--input",
        file.path(),
        "--time-col",
        "ts",
        "--key-col",
        "key",
        "--window",
        "1s",
        "--output",
        "csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "window_end,key,count\n1000,a,2\n");
}

#[test]
fn duplicate_csv_header_is_an_error() {
    let file = TempFile::new("dup.csv", b"ts,key,key\n0,a,b\n");
    let out = run(&[
        "--input",
        file.path(),
        "--time-col",
        "ts",
        "--key-col",
        "key",
        "--window",
        "1s",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the CSV header names column `key` twice"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn lookup_tables_with_a_bom_work_and_empty_ones_are_usage_errors() {
    let events = TempFile::new("lk.csv", b"ts,ad\n0,a1\n1,a2\n2,zz\n");
    let lookup = |table: &TempFile| {
        run(&[
            "--input",
            events.path(),
            "--time-col",
            "ts",
            "--key-col",
            "ad",
            "--lookup",
            table.path(),
            "--window",
            "1s",
            "--output",
            "csv",
            "--quiet",
        ])
    };
    let table = TempFile::new(
        "lk-bom.csv",
        format!("{BOM}ad,campaign\na1,c1\na2,c1\n").as_bytes(),
    );
    let out = lookup(&table);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "window_end,key,count\n1000,c1,2\n");
    for (name, text, needle) in [
        (
            "lk-empty.csv",
            &b"ad,campaign\n"[..],
            "has a header but no rows",
        ),
        ("lk-dup.csv", b"ad,ad\na1,c1\n", "names column `ad` twice"),
        (
            "lk-quote.csv",
            b"ad,campaign\n\"a1,c1\n",
            "line 2: broken quoting",
        ),
        (
            "lk-utf8.csv",
            b"ad,campaign\na1,c1\na2,\xff\n",
            "line 3: the lookup table is not UTF-8",
        ),
    ] {
        let table = TempFile::new(name, text);
        let out = lookup(&table);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{name}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
}
