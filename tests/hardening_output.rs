//! Regression tests of the hardening contract for what a job writes: output
//! files never destroyed, devices and FIFOs, closed and full streams.

use std::process::Command;
use std::time::Duration;

use crate::util::{engine_command, exits_within, p, signal, stderr_of, text, TempDir, TestCommand};

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
    let out = engine_command()
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
    let out = engine_command()
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
