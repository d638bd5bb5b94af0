//! Regression tests of the hardening contract: bounded memory and prompt
//! stops, every record accounted for, flags and odd inputs that are clear,
//! producers on `--listen`. Each test is named after what it guards, and
//! drives the real binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::{
    engine_command, exits_within, p, peak_rss_mb, signal, stat, stderr_of, text, TempDir,
    TestCommand,
};

/// Runs a job for a while, checks its memory, stops it with `sig`, and
/// checks it exits promptly with 128 + the signal, saying it was interrupted.
fn runs_bounded_and_stops_on(args: &[&str], sig: &str, code: i32, max_mb: f64) -> String {
    let mut child = TestCommand::run(args).spawn();
    // Drain stdout so that a pipe never blocks the job.
    let mut stdout = child.stdout.take().unwrap();
    let drained = std::thread::spawn(move || {
        let mut buf = vec![0; 1 << 16];
        let mut total = 0_u64;
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        total
    });
    std::thread::sleep(Duration::from_millis(2_500));
    let rss = peak_rss_mb(child.id());
    assert!(child.try_wait().unwrap().is_none(), "the job ended early");
    let sent = Instant::now();
    signal(&child, sig);
    let status = exits_within(&mut child, Duration::from_secs(5));
    let took = sent.elapsed();
    let err = stderr_of(&mut child);
    let written = drained.join().unwrap();
    assert!(rss > 0.0 && rss < max_mb, "peak RSS {rss:.0} MB: {err}");
    assert!(took < Duration::from_secs(1), "stopped after {took:?}");
    assert_eq!(status.code(), Some(code), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(written > 0, "windows are written as they close");
    err
}

#[test]
fn keep_empty_over_an_event_time_gap_runs_in_bounded_memory_and_stops_on_sigint() {
    let dir = TempDir::new("gap");
    let input = dir.file("gap.csv", b"ts,key,value\n0,a,1\n9007199254740000,b,1\n");
    runs_bounded_and_stops_on(
        &[
            "--input",
            p(&input),
            "--time-col",
            "ts",
            "--key-col",
            "key",
            "--keep-empty",
            "--output",
            "csv",
        ],
        "INT",
        130,
        200.0,
    );
}

#[test]
fn one_record_in_millions_of_slides_is_written_as_it_goes_and_stops_on_sigterm() {
    let dir = TempDir::new("slides");
    let input = dir.file("one.csv", b"ts,key,value\n0,a,1\n");
    runs_bounded_and_stops_on(
        &[
            "--input",
            p(&input),
            "--time-col",
            "ts",
            "--key-col",
            "key",
            "--batch",
            "1ms",
            "--window",
            "397d",
            "--slide",
            "1ms",
            "--output",
            "csv",
        ],
        "TERM",
        143,
        200.0,
    );
}

#[test]
fn a_timestamp_at_i64_min_is_malformed_not_lost() {
    let dir = TempDir::new("i64min");
    let stats = dir.path("stats.json");
    let out = TestCommand::run(&[
        "--input",
        "-",
        "--format",
        "csv",
        "--time-col",
        "ts",
        "--key-col",
        "key",
        "--batch",
        "1ms",
        "--window",
        "3ms",
        "--slide",
        "1ms",
        "--output",
        "csv",
        "--stats-json",
        p(&stats),
    ])
    .stdin_bytes(b"ts,key,value\n-9223372036854775808,min,1\n5,ok,1\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json = std::fs::read_to_string(&stats).unwrap();
    assert_eq!(stat(&json, "records"), 2.0);
    assert_eq!(stat(&json, "skipped"), 1.0);
    assert!(!text(&out.stdout).contains("min"));
    assert!(
        text(&out.stderr).contains("out of range"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_run_where_every_record_is_malformed_exits_1_and_says_so() {
    // A misspelt --time-col member of NDJSON cannot be caught up front.
    let out = TestCommand::run(&[
        "--input",
        "-",
        "--format",
        "ndjson",
        "--time-col",
        "tss",
        "--key-col",
        "k",
        "--output",
        "csv",
    ])
    .stdin_bytes(b"{\"ts\":1,\"k\":\"a\"}\n{\"ts\":2,\"k\":\"b\"}\n");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("every one of the 2 records was malformed"),
        "{stderr}"
    );
}

#[test]
fn the_summary_adds_up_to_the_records_read() {
    let dir = TempDir::new("adds-up");
    let table = dir.file("table.csv", b"key,group\na,A\nb,B\n");
    let stats = dir.path("stats.json");
    let input = b"ts,key,kind,value\n\
        1000,a,view,1\n\
        1100,b,view,2\n\
        1200,zz,view,3\n\
        1300,a,click,4\n\
        oops\n\
        3500,b,view,5\n\
        1400,a,view,6\n\
        3600,a,view,x\n";
    let out = TestCommand::run(&[
        "--input",
        "-",
        "--format",
        "csv",
        "--time-col",
        "ts",
        "--key-col",
        "key",
        "--value-col",
        "value",
        "--agg",
        "count,sum",
        "--where",
        "kind=view",
        "--lookup",
        p(&table),
        "--output",
        "csv",
        "--stats-json",
        p(&stats),
    ])
    .stdin_bytes(input);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json = std::fs::read_to_string(&stats).unwrap();
    let [records, in_windows, skipped, late, unmatched, filtered] = [
        "records",
        "in_windows",
        "skipped",
        "late",
        "unmatched",
        "filtered",
    ]
    .map(|f| stat(&json, f));
    assert_eq!(records, 8.0, "{json}");
    assert_eq!(
        (skipped, late, unmatched, filtered),
        (2.0, 1.0, 1.0, 1.0),
        "{json}"
    );
    assert_eq!(in_windows, 3.0, "{json}");
    assert_eq!(stat(&json, "events"), 3.0, "{json}");
}

#[test]
fn every_job_kind_accounts_for_every_record() {
    // Word counts (lines without words), grep (lines without the pattern)
    // and --until in virtual time.
    let dir = TempDir::new("accounts");
    let stats = dir.path("stats.json");
    for (args, input, expect) in [
        (
            vec!["--job", "wordcount", "--rate", "1"],
            "foo bar\n\n  \nbaz\n",
            [4.0, 2.0, 2.0, 0.0],
        ),
        (
            vec!["--job", "grep", "--pattern", "foo", "--rate", "1"],
            "foo bar\nbaz\nfoo\n\n",
            [4.0, 2.0, 2.0, 0.0],
        ),
        (
            vec!["--job", "wordcount", "--rate", "1", "--until", "2s"],
            "a b\nc\nd e\nf\n",
            [4.0, 2.0, 0.0, 2.0],
        ),
    ] {
        let mut full = vec!["--input", "-", "--format", "text", "--output", "csv"];
        full.extend(&args);
        full.extend(["--stats-json", p(&stats)]);
        let out = TestCommand::run(&full).stdin_bytes(input.as_bytes());
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let json = std::fs::read_to_string(&stats).unwrap();
        let got = ["records", "in_windows", "filtered", "after_until"].map(|f| stat(&json, f));
        assert_eq!(got, expect, "{args:?}: {json}");
        if args.contains(&"--until") {
            // No window past --until is written.
            for row in text(&out.stdout).lines().skip(1) {
                let end: i64 = row.split(',').next().unwrap().parse().unwrap();
                assert!(end <= 2_000, "{row}");
            }
        }
    }
}

#[test]
fn a_byte_order_mark_is_skipped_for_every_format() {
    let bom = "\u{feff}";
    for (format, body, key_args) in [
        ("text", "hello world\n", vec!["--job", "wordcount"]),
        ("csv", "key,value\nhello,1\n", vec!["--key-col", "key"]),
        ("ndjson", "{\"key\":\"hello\"}\n", vec!["--key-col", "key"]),
    ] {
        let mut args = vec!["--input", "-", "--format", format, "--output", "csv"];
        args.extend(key_args);
        let out = TestCommand::run(&args).stdin_bytes(format!("{bom}{body}").as_bytes());
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{format}: {}",
            text(&out.stderr)
        );
        assert!(
            stdout.lines().any(|l| l.split(',').nth(1) == Some("hello")),
            "{format}: {stdout}"
        );
        assert!(!stdout.contains(bom), "{format}: {stdout}");
    }
}

/// `--listen`: the port from the engine's "listening on" notice.
fn listening_port(child: &mut Child) -> (u16, BufReader<std::process::ChildStderr>) {
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "no listening notice");
        if let Some(addr) = line.trim().strip_prefix("engine: listening on ") {
            let port = addr.rsplit(':').next().unwrap().parse().unwrap();
            return (port, err);
        }
    }
}

#[test]
fn a_listen_producer_whose_csv_header_lacks_the_key_counts_all_its_records_as_malformed() {
    let dir = TempDir::new("bad-header");
    let stats = dir.path("stats.json");
    let mut child = engine_command()
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--format",
            "csv",
            "--key-col",
            "key",
            "--batch",
            "100ms",
            "--output",
            "csv",
            "--run-for",
            "3s",
            "--stats-json",
            p(&stats),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (port, mut err) = listening_port(&mut child);
    let mut bad = TcpStream::connect(("127.0.0.1", port)).unwrap();
    bad.write_all(b"nokey,value\n").unwrap();
    // Ten records in five separate chunks of the same connection.
    for i in 0..5 {
        std::thread::sleep(Duration::from_millis(150));
        bad.write_all(format!("a{i},1\nb{i},2\n").as_bytes())
            .unwrap();
        bad.flush().unwrap();
    }
    let mut good = TcpStream::connect(("127.0.0.1", port)).unwrap();
    good.write_all(b"key\nx\ny\n").unwrap();
    drop(bad);
    drop(good);
    let exit = exits_within(&mut child, Duration::from_secs(10));
    let mut rest = String::new();
    let _ = err.read_to_string(&mut rest);
    assert_eq!(exit.code(), Some(0), "{rest}");
    let json = std::fs::read_to_string(&stats).unwrap();
    assert_eq!(stat(&json, "records"), 12.0, "{json}");
    assert_eq!(stat(&json, "skipped"), 10.0, "{json}");
    assert_eq!(stat(&json, "events"), 2.0, "{json}");
}

#[test]
fn sigint_on_listen_does_not_emit_the_open_window() {
    // Processing time with 10 s batches: the open window ends at the next
    // 10 s boundary, well after the signal.
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    while !(1_000..7_000).contains(&(now_ms() % 10_000)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut child = engine_command()
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--job",
            "wordcount",
            "--batch",
            "10s",
            "--output",
            "csv",
            "--run-for",
            "30s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (port, mut err) = listening_port(&mut child);
    let mut producer = TcpStream::connect(("127.0.0.1", port)).unwrap();
    producer.write_all(b"hello world\nhello\n").unwrap();
    producer.flush().unwrap();
    drop(producer);
    std::thread::sleep(Duration::from_millis(500));
    let sent = now_ms();
    signal(&child, "INT");
    let status = exits_within(&mut child, Duration::from_secs(5));
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut rest = String::new();
    let _ = err.read_to_string(&mut rest);
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    for row in out.lines().skip(1) {
        let end: u64 = row.split(',').next().unwrap().parse().unwrap();
        assert!(
            end <= sent + 200,
            "window ending {end} emitted, signal at {sent}: {out}"
        );
    }
}

#[test]
fn events_after_until_are_counted_not_silently_lost() {
    let dir = TempDir::new("until");
    let stats = dir.path("stats.json");
    let out = TestCommand::run(&[
        "--input",
        "-",
        "--format",
        "csv",
        "--time-col",
        "ts",
        "--key-col",
        "key",
        "--until",
        "2s",
        "--output",
        "csv",
        "--stats-json",
        p(&stats),
    ])
    .stdin_bytes(b"ts,key\n100,a\n1500,b\n2000,c\n2500,d\n9000,e\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json = std::fs::read_to_string(&stats).unwrap();
    assert_eq!(stat(&json, "after_until"), 3.0, "{json}");
    assert_eq!(stat(&json, "in_windows"), 2.0, "{json}");
    assert_eq!(
        text(&out.stdout),
        "window_end,key,count\n1000,a,1\n2000,b,1\n",
        "no window past --until"
    );
    assert!(text(&out.stderr).contains("at or after --until"));
}

#[test]
fn the_api_refuses_absurd_thread_counts_and_zero_means_all_cores_everywhere() {
    let spec = engine::WindowSpec::from_millis(1_000, 1_000, 1_000).unwrap();
    let too_many = engine::WindowAggregator::builder(spec)
        .threads(100_000_000)
        .build();
    assert!(matches!(too_many, Err(engine::Error::ThreadPool { .. })));
    let ctx = engine::StreamingContext::with_threads(Duration::from_secs(1), 100_000_000);
    assert!(ctx.is_err());
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let ctx = engine::StreamingContext::with_threads(Duration::from_secs(1), 0).unwrap();
    assert_eq!(ctx.threads(), cores);
    assert_eq!(engine::window::resolve_threads(0).unwrap(), cores);
}

#[test]
fn odd_inputs_and_flags_are_clear_not_silent() {
    let dir = TempDir::new("odd");
    // A CSV file that is only a byte-order mark is an empty file.
    let bom = dir.file("bom.csv", b"\xEF\xBB\xBF");
    let out = TestCommand::run(&[
        "--input",
        p(&bom),
        "--time-col",
        "ts",
        "--key-col",
        "key",
        "--output",
        "csv",
    ])
    .output();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A grep pattern with a line break could never match a line.
    let words = dir.file("w.txt", b"a\nb\n");
    let out = TestCommand::run(&[
        "--input",
        p(&words),
        "--job",
        "grep",
        "--pattern",
        "a\nb",
        "--rate",
        "1",
    ])
    .output();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--pattern"));
    // Aggregation flags with a word count would be silently ignored.
    for flag in [["--agg", "sum"], ["--value-type", "int"]] {
        let out = TestCommand::run(&[
            "--input",
            p(&words),
            "--job",
            "wordcount",
            "--rate",
            "1",
            flag[0],
            flag[1],
        ])
        .output();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(flag[0]), "{}", text(&out.stderr));
    }
    // A warning to a full stderr is dropped, never a panic.
    let input = dir.file("in.csv", b"ts,key\n0,a\n");
    let out = engine_command()
        .args([
            "run",
            "-q",
            "--input",
            p(&input),
            "--time-col",
            "ts",
            "--key-col",
            "key",
            "--window",
            "1s",
            "--slide",
            "2s",
            "--output",
            "csv",
        ])
        .stderr(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // --help to a full stdout is a failure.
    let out = engine_command()
        .args(["run", "--help"])
        .stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn lookup_tables_that_are_endless_or_have_empty_groups_are_refused() {
    let dir = TempDir::new("lookup-odd");
    let input = dir.file("in.csv", b"ts,key\n0,a\n0,b\n");
    let empty_group = dir.file("table.csv", b"k,g\na,A\nb,\n");
    for (table, needle) in [
        (p(&empty_group), "empty group"),
        ("/dev/zero", "larger than 256 MiB"),
    ] {
        let out = TestCommand::run(&[
            "--input",
            p(&input),
            "--time-col",
            "ts",
            "--key-col",
            "key",
            "--lookup",
            table,
            "--output",
            "csv",
        ])
        .output();
        assert_eq!(out.status.code(), Some(2), "{table}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(needle), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "");
    }
}
