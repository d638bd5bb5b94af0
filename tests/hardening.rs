//! Regression tests of the hardening contract: nothing destroyed, memory
//! bounded and stops prompt, no silent wrong numbers or loss, signals and
//! closed pipes handled. Each test is named after what it guards, and drives
//! the real binary.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{p, peak_rss_mb, stat, TempDir};

/// `engine run` with `args`, as a user types it.
struct TestCommand {
    cmd: Command,
}

impl TestCommand {
    fn run(args: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_engine"));
        cmd.arg("run").args(args);
        Self { cmd }
    }

    fn stdin_bytes(mut self, input: &[u8]) -> Output {
        self.cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("the engine binary starts");
        let mut stdin = child.stdin.take().expect("piped");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("the engine runs");
        let _ = writer.join();
        out
    }

    fn output(mut self) -> Output {
        self.cmd.output().expect("the engine runs")
    }

    fn spawn(mut self) -> Child {
        self.cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the engine binary starts")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for `child` to exit, at most `limit`; kills it and fails otherwise.
fn exits_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the engine did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    err
}

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
fn float_variance_of_large_values_with_a_small_spread_is_exact() {
    // The same values as integers (exact in i128) and as floats.
    let mut input = String::from("ts,key,v\n");
    let mut rng = 11_u64;
    for i in 0..3_000 {
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        writeln!(
            input,
            "{},k{},{}",
            i * 2,
            i % 3,
            1_000_000_000 + (rng >> 33) % 11
        )
        .unwrap();
    }
    let run = |value_type: &str| {
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
            "v",
            "--value-type",
            value_type,
            "--agg",
            "variance",
            "--window",
            "5s",
            "--slide",
            "1s",
            "--output",
            "csv",
        ])
        .stdin_bytes(input.as_bytes());
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let (exact, float) = (run("int"), run("float"));
    let rows = |t: &str| -> Vec<f64> {
        t.lines()
            .skip(1)
            .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
            .collect()
    };
    let (exact, float) = (rows(&exact), rows(&float));
    assert_eq!(exact.len(), float.len());
    assert!(exact.iter().all(|&v| v > 5.0), "the spread is about 10");
    for (e, f) in exact.iter().zip(&float) {
        assert!((e - f).abs() <= 1e-9 * e, "float variance {f}, exact {e}");
    }
}

#[test]
fn float_sum_overflow_is_null_named_by_key_and_does_not_poison_later_windows() {
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
        "count,sum,avg",
        "--window",
        "2s",
        "--slide",
        "1s",
        "--output",
        "csv",
    ])
    .stdin_bytes(b"ts,key,value\n1,e,1e308\n2,e,1e308\n1500,e,1\n2500,e,1\n3000,f,2\n");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for bad in ["NaN", "inf", "nan"] {
        assert!(!stdout.contains(bad), "{stdout}");
    }
    let rows: Vec<&str> = stdout.lines().filter(|l| l.contains(",e,")).collect();
    assert_eq!(
        rows,
        ["1000,e,2,,", "2000,e,3,,", "3000,e,2,2,1", "4000,e,1,1,1"],
        "{stdout}"
    );
    assert!(stdout.contains("4000,f,1,2,2"), "{stdout}");
    assert!(
        stderr.contains("key \"e\""),
        "the key's name, not its id: {stderr}"
    );
    assert!(stderr.contains("overflowed"), "{stderr}");
}

#[test]
fn variance_overflow_is_flagged_never_a_wrong_zero() {
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
        "variance,stddev",
        "--window",
        "1s",
        "--output",
        "csv",
    ])
    .stdin_bytes(b"ts,key,value\n1,v,1e200\n2,v,-1e200\n3,w,1\n4,w,3\n");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("1000,v,,\n"), "{stdout}");
    assert!(stdout.contains("1000,w,2,1.4142135623730951\n"), "{stdout}");
    assert!(stderr.contains("variance of key \"v\""), "{stderr}");
}

#[test]
fn int_sum_overflow_of_one_key_does_not_stop_the_others() {
    let out = TestCommand::run(&[
        "--input", "-", "--format", "csv", "--time-col", "ts", "--key-col", "key",
        "--value-col", "value", "--value-type", "int", "--agg", "count,sum", "--window", "2s",
        "--slide", "1s", "--output", "csv",
    ])
    .stdin_bytes(
        b"ts,key,value\n1,big,9223372036854775807\n2,big,9223372036854775807\n3,small,5\n1500,big,-7\n",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("1000,big,2,\n"), "{stdout}");
    assert!(stdout.contains("1000,small,1,5\n"), "{stdout}");
    // Once the big values leave, the key's sum is exact again.
    assert!(stdout.contains("3000,big,1,-7\n"), "{stdout}");
    assert!(stderr.contains("sum of key \"big\""), "{stderr}");
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
fn output_file_is_left_alone_when_the_job_fails() {
    let dir = TempDir::new("untouched");
    let precious = dir.file("out.csv", b"precious results\n");
    let input = dir.file("in.csv", b"ts,key,value\n1,a,1\n");
    for args in [
        // The input is missing.
        vec!["--input", p(&dir.path("missing.csv")), "--key-col", "key"],
        // An unknown column, found once the header is read.
        vec!["--input", p(&input), "--key-col", "nope"],
        // A malformed record with --on-error fail, after the header.
        vec![
            "--input",
            "-",
            "--format",
            "csv",
            "--key-col",
            "key",
            "--on-error",
            "fail",
        ],
    ] {
        let mut full = args.clone();
        full.extend(["--output", "csv", "--output-file", p(&precious)]);
        let out = TestCommand::run(&full).stdin_bytes(b"key,value\na,1\n\"unterminated\n");
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert_eq!(
            std::fs::read(&precious).unwrap(),
            b"precious results\n",
            "{args:?}"
        );
        assert!(
            text(&out.stderr).contains("was left as it was"),
            "{}",
            text(&out.stderr)
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn output_file_is_replaced_on_success_and_keeps_its_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("replaced");
    let target = dir.file("out.csv", b"old\n");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    let input = dir.file("in.csv", b"ts,key,value\n1,a,1\n");
    let out = TestCommand::run(&[
        "--input",
        p(&input),
        "--key-col",
        "key",
        "--time-col",
        "ts",
        "--output",
        "csv",
        "--output-file",
        p(&target),
    ])
    .output();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "window_end,key,count\n1000,a,1\n"
    );
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}

#[test]
fn an_interrupted_job_renames_its_complete_windows_into_place() {
    let dir = TempDir::new("interrupted-file");
    let target = dir.file("out.csv", b"old\n");
    let input = dir.file("gap.csv", b"ts,key,value\n0,a,1\n9007199254740000,b,1\n");
    let mut child = TestCommand::run(&[
        "--input",
        p(&input),
        "--time-col",
        "ts",
        "--key-col",
        "key",
        "--keep-empty",
        "--output",
        "csv",
        "--output-file",
        p(&target),
    ])
    .spawn();
    std::thread::sleep(Duration::from_millis(1_500));
    signal(&child, "INT");
    let status = exits_within(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(130), "{}", stderr_of(&mut child));
    let written = std::fs::read_to_string(&target).unwrap();
    assert!(
        written.starts_with("window_end,key,count\n1000,a,1\n"),
        "{}",
        &written[..40.min(written.len())]
    );
    // Every line is whole: the file ends with a complete window row.
    assert!(written.ends_with('\n'));
}

#[test]
fn output_file_naming_a_device_is_written_in_place_not_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let dir = TempDir::new("device");
    let input = dir.file("in.csv", b"ts,key,value\n1,a,1\n");
    let out = TestCommand::run(&[
        "--input",
        p(&input),
        "--key-col",
        "key",
        "--output",
        "csv",
        "--output-file",
        "/dev/null",
    ])
    .output();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    // A full device is a clear failure, and stays a device.
    let out = TestCommand::run(&[
        "--input",
        p(&input),
        "--key-col",
        "key",
        "--output",
        "csv",
        "--output-file",
        "/dev/full",
    ])
    .output();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("No space left"),
        "{}",
        text(&out.stderr)
    );
    assert!(std::fs::metadata("/dev/full")
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn a_full_stderr_or_stdout_never_panics() {
    let dir = TempDir::new("full");
    let input = dir.file("in.csv", b"ts,key,value\n1,a,1\nbad\n");
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    // Diagnostics to a full stderr are lost, the job is not.
    let out = Command::new(env!("CARGO_BIN_EXE_engine"))
        .args([
            "run",
            "--input",
            p(&input),
            "--key-col",
            "key",
            "--output",
            "csv",
        ])
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("a,1"));
    // Rows to a full stdout: a clear error, exit 1.
    let out = Command::new(env!("CARGO_BIN_EXE_engine"))
        .args([
            "run",
            "--input",
            p(&input),
            "--key-col",
            "key",
            "--output",
            "csv",
        ])
        .stdout(full())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("panicked"));
    assert!(
        text(&out.stderr).contains("No space left"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_closed_pipe_on_stdout_and_stderr_ends_the_job_quietly() {
    // `engine … 2>&1 | head -3`: both streams are the same pipe, closed early.
    for _ in 0..5 {
        let out = Command::new("bash")
            .args([
                "-c",
                &format!(
                    "'{}' run --generate words --records 3000000 --rate 1000000 --job wordcount \
                     --window 2s --slide 1s --output csv 2>&1 | head -3 >/dev/null; \
                     echo \"${{PIPESTATUS[0]}}\"",
                    env!("CARGO_BIN_EXE_engine")
                ),
            ])
            .output()
            .unwrap();
        assert_eq!(text(&out.stdout).trim(), "0", "{}", text(&out.stderr));
    }
}

#[test]
fn lateness_does_not_depend_on_how_the_input_was_cut() {
    // Events out of order across panes, with late ones: the same bytes from
    // a file (one chunk) and from a pipe written a few bytes at a time.
    let mut input = String::from("ts,key,value\n");
    let mut rng = 7_u64;
    for i in 0..400_u64 {
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let jitter = (rng >> 33) % 2_500;
        let ts = (i * 20 + jitter).saturating_sub(1_000);
        writeln!(input, "{ts},k{},{}", (rng >> 20) % 5, i % 7).unwrap();
    }
    let dir = TempDir::new("chunking");
    let file = dir.file("in.csv", input.as_bytes());
    let args = |source: &str, stats: &Path| {
        vec![
            "--input".to_owned(),
            source.to_owned(),
            "--format".into(),
            "csv".into(),
            "--time-col".into(),
            "ts".into(),
            "--key-col".into(),
            "key".into(),
            "--value-col".into(),
            "value".into(),
            "--agg".into(),
            "count,sum".into(),
            "--window".into(),
            "2s".into(),
            "--slide".into(),
            "1s".into(),
            "--output".into(),
            "csv".into(),
            "--stats-json".into(),
            p(stats).to_owned(),
        ]
    };
    let from_file = Command::new(env!("CARGO_BIN_EXE_engine"))
        .arg("run")
        .args(args(p(&file), &dir.path("file.json")))
        .output()
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_engine"))
        .arg("run")
        .args(args("-", &dir.path("pipe.json")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let bytes = input.into_bytes();
    let writer = std::thread::spawn(move || {
        for piece in bytes.chunks(97) {
            stdin.write_all(piece).unwrap();
            stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let from_pipe = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(from_file.status.code(), Some(0));
    assert_eq!(from_pipe.status.code(), Some(0));
    let late = |name: &str| stat(&std::fs::read_to_string(dir.path(name)).unwrap(), "late");
    assert!(late("file.json") > 0.0, "the input has late records");
    assert_eq!(late("file.json"), late("pipe.json"));
    assert_eq!(text(&from_file.stdout), text(&from_pipe.stdout));
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_engine"))
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_engine"))
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
fn a_job_that_fails_on_its_header_writes_nothing_to_stdout() {
    let out = TestCommand::run(&[
        "--input",
        "-",
        "--format",
        "csv",
        "--key-col",
        "nope",
        "--output",
        "csv",
    ])
    .stdin_bytes(b"key,value\na,1\n");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("unknown column `nope`"));
    assert_eq!(text(&out.stdout), "", "no header of a job that never ran");
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
fn special_output_paths_are_appended_to_never_replaced_or_read_back() {
    let dir = TempDir::new("special");
    let input = dir.file("in.csv", b"ts,key\n0,a\n");
    // `--output-file /dev/stdout >> log`: the log keeps its history.
    let log = dir.file("log.txt", b"line1\n");
    let out = Command::new("sh")
        .args([
            "-c",
            &format!(
                "'{}' run -q --input '{}' --time-col ts --key-col key --output csv \
                 --output-file /dev/stdout >> '{}'",
                env!("CARGO_BIN_EXE_engine"),
                p(&input),
                p(&log)
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "line1\nwindow_end,key,count\n1000,a,1\n"
    );
    // Standard input redirected from a file cannot be an output.
    let victim = dir.file("victim.csv", b"ts,key\n0,a\n");
    for flag in ["--output-file", "--stats-json"] {
        let out = TestCommand::run(&[
            "--input",
            "-",
            "--format",
            "csv",
            "--time-col",
            "ts",
            "--key-col",
            "key",
            "--output-file",
            p(&dir.path("rows.csv")),
            flag,
            "/dev/stdin",
        ])
        .cmd_with_stdin_file(&victim);
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", text(&out.stderr));
        assert_eq!(std::fs::read(&victim).unwrap(), b"ts,key\n0,a\n");
    }
}

impl TestCommand {
    fn cmd_with_stdin_file(mut self, path: &Path) -> Output {
        self.cmd
            .stdin(std::fs::File::open(path).unwrap())
            .output()
            .unwrap()
    }
}

#[test]
fn a_dangling_symlink_output_stays_a_link_to_the_new_file() {
    let dir = TempDir::new("dangling");
    let input = dir.file("in.csv", b"ts,key\n0,a\n");
    let link = dir.path("link.csv");
    std::os::unix::fs::symlink("target.csv", &link).unwrap();
    let out = TestCommand::run(&[
        "--input",
        p(&input),
        "--time-col",
        "ts",
        "--key-col",
        "key",
        "--output",
        "csv",
        "--output-file",
        p(&link),
    ])
    .output();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_to_string(dir.path("target.csv")).unwrap(),
        "window_end,key,count\n1000,a,1\n"
    );
}

#[test]
fn a_closed_stdout_loses_only_the_summary_json_not_the_output_file() {
    let dir = TempDir::new("stats-pipe");
    let input = dir.file("in.csv", b"ts,key\n0,a\n");
    let target = dir.file("out.csv", b"old\n");
    let out = Command::new("bash")
        .args([
            "-c",
            &format!(
                "'{}' run -q --input '{}' --time-col ts --key-col key --output csv \
                 --output-file '{}' --stats-json - | true; echo \"${{PIPESTATUS[0]}}\"",
                env!("CARGO_BIN_EXE_engine"),
                p(&input),
                p(&target)
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout).trim(), "0", "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "window_end,key,count\n1000,a,1\n"
    );
    // A summary that cannot be written is a failure (1), not a usage error.
    let out = TestCommand::run(&[
        "--input",
        p(&input),
        "--time-col",
        "ts",
        "--key-col",
        "key",
        "--output",
        "csv",
        "--output-file",
        p(&target),
        "--stats-json",
        "/dev/full",
    ])
    .output();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
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
    let out = Command::new(env!("CARGO_BIN_EXE_engine"))
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
    let out = Command::new(env!("CARGO_BIN_EXE_engine"))
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
fn a_fifo_without_its_other_end_does_not_block_a_signal() {
    let dir = TempDir::new("fifo");
    let input = dir.file("in.csv", b"ts,key\n0,a\n");
    for (name, args) in [
        (
            "out.fifo",
            vec!["--input", p(&input), "--time-col", "ts", "--key-col", "key"],
        ),
        ("in.fifo", vec!["--job", "wordcount", "--rate", "10"]),
    ] {
        let fifo = dir.path(name);
        let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let mut full = args.clone();
        if name == "out.fifo" {
            full.extend(["--output", "csv", "--output-file", p(&fifo)]);
        } else {
            full.extend(["--input", p(&fifo), "--output", "csv"]);
        }
        let mut child = TestCommand::run(&full).spawn();
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            child.try_wait().unwrap().is_none(),
            "{name}: waits for the other end"
        );
        signal(&child, "INT");
        let status = exits_within(&mut child, Duration::from_secs(1));
        assert_eq!(
            status.code(),
            Some(130),
            "{name}: {}",
            stderr_of(&mut child)
        );
    }
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

/// A random stream in which one record in six goes back by up to 1.2 s: its
/// CSV, and the events that record-order lateness keeps with panes of
/// `pane` ms, and how many it drops.
fn disordered_stream(seed: u64, pane: i64) -> (String, Vec<crate::oracle::Event<i64>>, usize) {
    let mut rng = datasets::Rng::new(seed + 100);
    let mut csv = String::from("ts,key,value\n");
    let (mut kept, mut late) = (Vec::new(), 0);
    let mut max_pane = i64::MIN;
    let mut clock = 10_000_i64;
    for _ in 0..1_500 {
        clock += rng.below(30) as i64;
        let time = if rng.below(6) == 0 {
            clock - rng.below(1_200) as i64
        } else {
            clock
        };
        let key = rng.below(12) as u32;
        let value = rng.below(201) as i64 - 100;
        writeln!(csv, "{time},k{key},{value}").unwrap();
        if time.div_euclid(pane) >= max_pane {
            max_pane = time.div_euclid(pane);
            kept.push(crate::oracle::Event { time, key, value });
        } else {
            late += 1;
        }
    }
    (csv, kept, late)
}

/// Record-order lateness, checked against a brute-force oracle: a record is
/// late when its pane (gcd(W, S)) is before the latest pane of an earlier
/// record; the windows of the others are Spark's, in both retention modes.
#[test]
fn record_order_lateness_equals_an_oracle_on_random_disordered_streams() {
    use crate::oracle::{self, Mode};
    use std::collections::BTreeMap;
    let dir = TempDir::new("late-oracle");
    let cases = [
        (2_000_i64, 500_i64, 500_i64),
        (3_000, 1_000, 1_000),
        (1_000, 1_000, 1_000),
        (1_500, 600, 300),
    ];
    for (seed, (window, slide, pane)) in cases.into_iter().enumerate() {
        let (csv, kept, late) = disordered_stream(seed as u64, pane);
        assert!(late > 0, "seed {seed}: the stream has late records");
        let input = dir.file(&format!("in{seed}.csv"), csv.as_bytes());
        for (mode, flag) in [(Mode::Live, None), (Mode::Spark, Some("--keep-empty"))] {
            let stats = dir.path("stats.json");
            let (w, s_) = (format!("{window}ms"), format!("{slide}ms"));
            let mut args = vec![
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
                &w,
                "--slide",
                &s_,
                "--agg",
                "count,sum,min,max",
                "--output",
                "csv",
                "--quiet",
                "--stats-json",
                p(&stats),
            ];
            args.extend(flag);
            let out = TestCommand::run(&args).output();
            assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
            let json = std::fs::read_to_string(&stats).unwrap();
            assert_eq!(stat(&json, "late"), late as f64, "seed {seed}");
            let mut got = BTreeMap::new();
            for line in text(&out.stdout).lines().skip(1) {
                let f: Vec<&str> = line.split(',').collect();
                got.insert(
                    (f[0].parse::<i64>().unwrap(), f[1].to_owned()),
                    f[2..].join(","),
                );
            }
            let extreme = |x: Option<f64>| x.map(|v| (v as i64).to_string()).unwrap_or_default();
            let mut expected = BTreeMap::new();
            for (end, rows) in oracle::windows(&kept, window, slide, mode) {
                for (key, row) in rows {
                    let sum = row.int_sum.unwrap_or(0);
                    let (min, max) = (extreme(row.min), extreme(row.max));
                    expected.insert(
                        (end, format!("k{key}")),
                        format!("{},{sum},{min},{max}", row.count),
                    );
                }
            }
            assert!(expected.len() > 100, "seed {seed}: {} rows", expected.len());
            assert_eq!(got, expected, "seed {seed}, W {window} S {slide}, {flag:?}");
        }
    }
}
