//! The `engine` binary's usability: flags refused before any work, the
//! table's column names and `--top` (help, version and the documented
//! examples are in `cli_help`).

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{engine_command, stderr, stdout};

/// The repository root, where the README's examples run.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the repository root")
}

fn sample(name: &str) -> String {
    repo_root()
        .join("datasets/samples")
        .join(name)
        .to_str()
        .expect("a UTF-8 path")
        .to_owned()
}

/// Runs `engine args…` from the repository root, stdin empty, killed (and
/// the test failed) after `limit`.
pub(crate) fn run_within(args: &[&str], limit: Duration) -> Output {
    run_child(args, false, limit)
}

pub(crate) fn run(args: &[&str]) -> Output {
    run_within(args, Duration::from_secs(60))
}

/// Runs `engine args…`; with `stdin_open`, its stdin is a pipe that stays
/// open (and unwritten) until it exits: a job that read its input before
/// checking its flags would wait forever.
fn run_child(args: &[&str], stdin_open: bool, limit: Duration) -> Output {
    let mut child = engine_command()
        .args(args)
        .current_dir(repo_root())
        .stdin(if stdin_open {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the engine binary runs");
    let stdin = child.stdin.take();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let start = Instant::now();
    let status: ExitStatus = loop {
        if let Some(status) = child.try_wait().expect("waiting for the engine") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("engine {args:?} still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(stdin);
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Asserts a usage error: exit status 2, nothing on stdout, one line on
/// stderr that contains `needle`.
#[track_caller]
fn assert_usage_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty(), "{}", stdout(out));
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(err.contains(needle), "`{needle}` expected in: {err}");
}

/// Refused while stdin stays open: the flags were checked before any input
/// was read.
#[track_caller]
fn assert_refused_before_reading_stdin(args: &[&str], needle: &str) {
    let out = run_child(args, true, Duration::from_secs(20));
    assert_usage_error(&out, needle);
}

/// A scratch directory removed at the end of the test.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("engine-usability-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Self(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().expect("a UTF-8 path").to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn threads_above_cap_is_refused_before_work() {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let cap = (4 * cores).clamp(64, 1024);
    for threads in ["100000000", &(cap + 1).to_string()] {
        assert_refused_before_reading_stdin(
            &["run", "--input", "-", "--threads", threads],
            &format!("--threads {threads} is above the cap of {cap}"),
        );
    }
    // The cap itself is fine.
    let out = run(&[
        "run",
        "--input",
        &sample("words.txt"),
        "--threads",
        &cap.to_string(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn threads_zero_means_all_cores() {
    let words = sample("words.txt");
    let job = ["run", "--input", &words, "--rate", "100", "--quiet"];
    let default = run(&job);
    assert!(default.status.success(), "{}", stderr(&default));
    for threads in ["0", "1", "3"] {
        let out = run(&[&job[..], &["--threads", threads]].concat());
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), stdout(&default), "--threads {threads}");
    }
    // The help says it once, without a contradicting `[default: 0]`.
    let help = stdout(&run(&["run", "--help"]));
    let threads_help: String = help
        .split("--threads <N>")
        .nth(1)
        .expect("--threads in the help")
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert!(threads_help.contains("0: all cores"), "{threads_help}");
    assert!(!threads_help.contains("[default:"), "{threads_help}");
}

#[test]
fn stats_json_bad_path_is_refused_before_reading_input() {
    let dir = TempDir::new("stats-path");
    let missing_dir = dir.path("missing/stats.json");
    let csv = ["run", "--input", "-", "--format", "csv", "--key-col", "key"];
    assert_refused_before_reading_stdin(
        &[&csv[..], &["--stats-json", &missing_dir]].concat(),
        "the directory",
    );
    assert_refused_before_reading_stdin(
        &[&csv[..], &["--stats-json", &dir.path("")]].concat(),
        "is a directory",
    );
    // Checked without leaving anything behind.
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0);
    // An existing file is not truncated by the check.
    let existing = dir.path("kept.json");
    std::fs::write(&existing, "old").unwrap();
    // (The job fails after the check, on the header: no summary is written.)
    let out = run(&[
        "run",
        "--input",
        &sample("events.csv"),
        "--key-col",
        "no_such_column",
        "--stats-json",
        &existing,
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no_such_column"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "old");
}

#[test]
fn stats_json_dash_writes_to_stdout() {
    let dir = TempDir::new("stats-dash");
    let rows = dir.path("rows.csv");
    let events = sample("events.csv");
    let job = ["run", "--input", &events, "--key-col", "key", "--quiet"];
    let out = run(&[&job[..], &["--stats-json", "-", "--output-file", &rows]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let json = stdout(&out);
    assert_eq!(json.lines().count(), 1, "{json}");
    assert!(
        json.starts_with("{\"records\":300,") && json.trim_end().ends_with('}'),
        "{json}"
    );
    let csv = std::fs::read_to_string(&rows).unwrap();
    assert!(csv.starts_with("window_end,key,count\n"), "{csv}");
    // Rows and JSON on one stdout would mix two formats: refused.
    let out = run(&[&job[..], &["--stats-json", "-"]].concat());
    assert_usage_error(&out, "--stats-json - writes the summary to stdout");
}

#[test]
fn csv_input_without_key_col_or_job_is_usage_error() {
    for (input, name) in [("events.csv", "csv"), ("ysb.ndjson", "ndjson")] {
        let out = run(&["run", "--input", &sample(input)]);
        assert_usage_error(
            &out,
            &format!(
                "{name} input needs --key-col (aggregate) or an explicit --job wordcount|grep"
            ),
        );
    }
    assert_refused_before_reading_stdin(
        &["run", "--input", "-", "--format", "csv"],
        "csv input needs --key-col",
    );
    assert_usage_error(
        &run(&["run", "--generate", "events", "--records", "10"]),
        "csv input needs --key-col",
    );
    // An explicit job is what the user asked for.
    let out = run(&[
        "run",
        "--input",
        &sample("events.csv"),
        "--job",
        "wordcount",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("window_end,key,count\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn window_shorter_than_slide_warns() {
    let words = sample("words.txt");
    let job = ["run", "--input", &words, "--rate", "100", "--quiet"];
    let out = run(&[&job[..], &["--window", "1s", "--slide", "2s"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: --window 1s is shorter than --slide 2s"),
        "{err}"
    );
    assert!(!stdout(&out).is_empty());
    let out = run(&[&job[..], &["--window", "2s", "--slide", "1s"]].concat());
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        stderr(&out)
    );
}

#[test]
fn output_file_same_as_input_is_usage_error() {
    let dir = TempDir::new("same-file");
    let input = dir.path("events.csv");
    let original = std::fs::read(sample("events.csv")).unwrap();
    std::fs::write(&input, &original).unwrap();
    let link = dir.path("link.csv");
    std::fs::hard_link(&input, &link).unwrap();
    let spelled_otherwise = format!("{}/./events.csv", dir.0.display());
    for output in [&input, &link, &spelled_otherwise] {
        for flag in ["--output-file", "--stats-json"] {
            let out = run(&[
                "run",
                "--input",
                &input,
                "--key-col",
                "key",
                "--quiet",
                flag,
                output,
            ]);
            assert_usage_error(&out, "is the same file as --input");
        }
    }
    assert_eq!(
        std::fs::read(&input).unwrap(),
        original,
        "the input was touched"
    );
    // The lookup table is an input too, and two outputs must differ.
    let out = run(&[
        "run",
        "--input",
        &sample("ysb.ndjson"),
        "--key-col",
        "ad_id",
        "--lookup",
        &input,
        "--output-file",
        &link,
    ]);
    assert_usage_error(&out, "is the same file as --lookup");
    let fresh = dir.path("new.csv");
    let out = run(&[
        "run",
        "--input",
        &input,
        "--key-col",
        "key",
        "--output-file",
        &fresh,
        "--stats-json",
        &fresh,
    ]);
    assert_usage_error(&out, "--stats-json");
    // A new file beside the input is fine.
    let out = run(&[
        "run",
        "--input",
        &input,
        "--key-col",
        "key",
        "--quiet",
        "--output-file",
        &fresh,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&fresh)
        .unwrap()
        .starts_with("window_end,key,count\n"));
}

#[test]
fn output_file_that_cannot_be_written_is_refused_before_reading_input() {
    let dir = TempDir::new("output-path");
    let csv = ["run", "--input", "-", "--format", "csv", "--key-col", "key"];
    assert_refused_before_reading_stdin(
        &[&csv[..], &["--output-file", &dir.path("")]].concat(),
        "--output-file",
    );
    assert_refused_before_reading_stdin(
        &[
            &csv[..],
            &["--output-file", &dir.path("no/such/dir/out.csv")],
        ]
        .concat(),
        "does not exist",
    );
    assert_refused_before_reading_stdin(
        &[&csv[..], &["--lookup", &dir.path("")]].concat(),
        "--lookup",
    );
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0);
}

/// The rest of the family: values no input could make right, each refused
/// naming its flag.
#[test]
fn flags_without_a_sane_value_are_refused_naming_the_flag() {
    let events = sample("events.csv");
    let agg = ["run", "--input", &events, "--key-col", "key"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["run", "--generate", "words", "--records", "0"],
            "--records must be at least 1",
        ),
        (
            vec![
                "run",
                "--input",
                &events,
                "--records",
                "5",
                "--job",
                "wordcount",
            ],
            "--records goes with --generate",
        ),
        ([&agg[..], &["--print-rows", "0"]].concat(), "--print-rows"),
        ([&agg[..], &["--top", "0"]].concat(), "--top"),
        (
            [&agg[..], &["--max-line-bytes", "2GiB"]].concat(),
            "--max-line-bytes 2GiB is above the cap of 1GiB",
        ),
        (
            [&agg[..], &["--rate", "18446744073709551615"]].concat(),
            "--rate",
        ),
        (
            [
                &agg[..],
                &["--rate", "10", "--slide", "2s", "--until", "1s"],
            ]
            .concat(),
            "--until 1s is before the first window end",
        ),
        ([&agg[..], &["--run-for", "0s"]].concat(), "--run-for"),
        (
            [&agg[..], &["--agg", "count,count"]].concat(),
            "`count` is given twice",
        ),
        (
            vec!["run", "--input", &events, "--key-col", ""],
            "--key-col must not be empty",
        ),
        ([&agg[..], &["--value-col", " "]].concat(), "--value-col"),
        ([&agg[..], &["--where", "=view"]].concat(), "--where"),
        ([&agg[..], &["--time-col", ""]].concat(), "--time-col"),
        (
            vec![
                "run",
                "--input",
                &events,
                "--job",
                "wordcount",
                "--key-col",
                "key",
            ],
            "--key-col",
        ),
    ];
    for (args, needle) in cases {
        assert_usage_error(&run(&args), needle);
    }
}

/// Window blocks of table output: `Time:` value → the lines under it.
fn table_blocks(text: &str) -> Vec<(String, Vec<String>)> {
    let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(time) = line.strip_prefix("Time: ") {
            blocks.push((time.to_owned(), Vec::new()));
        } else if let Some((_, lines)) = blocks.last_mut() {
            if !line.starts_with("---") && !line.is_empty() {
                lines.push(line.to_owned());
            }
        }
    }
    blocks
}

#[test]
fn table_names_columns_with_several_aggregates() {
    let events = sample("events.csv");
    let job = [
        "run",
        "--input",
        &events,
        "--time-col",
        "ts",
        "--key-col",
        "key",
        "--value-col",
        "value",
        "--quiet",
    ];
    let table = stdout(&run(&[
        &job[..],
        &["--agg", "count,sum,avg", "--output", "table"],
    ]
    .concat()));
    let blocks = table_blocks(&table);
    assert!(!blocks.is_empty(), "{table}");
    for (time, lines) in blocks.iter().filter(|(_, lines)| !lines.is_empty()) {
        assert_eq!(lines[0], "(key,count,sum,avg)", "window {time}");
        for row in &lines[1..] {
            // No float with more than 6 decimals (e.g. 0.30000000000000004).
            for field in row.trim_matches(['(', ')']).split(',').skip(1) {
                let decimals = field.split_once('.').map_or(0, |(_, d)| d.len());
                assert!(decimals <= 6, "{row}");
            }
        }
    }
    // CSV keeps every digit: some average there has more than 6 decimals.
    let csv = stdout(&run(&[
        &job[..],
        &["--agg", "count,sum,avg", "--output", "csv"],
    ]
    .concat()));
    assert!(
        csv.lines()
            .skip(1)
            .filter_map(|l| l.rsplit(',').next()?.split_once('.'))
            .any(|(_, d)| d.len() > 6),
        "{csv}"
    );
    // One aggregate: Spark's pprint rows, no header line.
    let single = stdout(&run(&[&job[..], &["--output", "table"]].concat()));
    let blocks = table_blocks(&single);
    assert!(!blocks.is_empty());
    assert!(blocks
        .iter()
        .all(|(_, lines)| lines.iter().all(|l| !l.starts_with("(key,"))));
}

/// Rows of CSV output per window: `window_end → [(key, count)]`.
fn counts_by_window(csv: &str) -> std::collections::BTreeMap<i64, Vec<(String, u64)>> {
    let mut windows = std::collections::BTreeMap::<i64, Vec<(String, u64)>>::new();
    for line in csv.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        windows
            .entry(fields[0].parse().expect("a window end"))
            .or_default()
            .push((fields[1].to_owned(), fields[2].parse().expect("a count")));
    }
    windows
}

#[test]
fn wordcount_top_n_prints_largest_counts() {
    let words = sample("words.txt");
    let job = [
        "run",
        "--input",
        &words,
        "--job",
        "wordcount",
        "--rate",
        "100",
        "--window",
        "2s",
        "--slide",
        "1s",
        "--quiet",
    ];
    let all = counts_by_window(&stdout(&run(&[&job[..], &["--output", "csv"]].concat())));
    let top = stdout(&run(
        &[&job[..], &["--output", "csv", "--top", "3"]].concat()
    ));
    let mut expected = String::from("window_end,key,count\n");
    for (end, rows) in &all {
        let mut rows = rows.clone();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (key, count) in rows.iter().take(3) {
            writeln!(expected, "{end},{key},{count}").unwrap();
        }
    }
    assert_eq!(top, expected);
    // NDJSON: the same rows; the table: 3 rows per window, largest first.
    let ndjson = stdout(&run(
        &[&job[..], &["--output", "ndjson", "--top", "3"]].concat()
    ));
    assert_eq!(ndjson.lines().count(), expected.lines().count() - 1);
    let table = stdout(&run(
        &[&job[..], &["--output", "table", "--top", "3"]].concat()
    ));
    for ((_, lines), (_, rows)) in table_blocks(&table).iter().zip(&all) {
        assert_eq!(lines.len(), rows.len().min(3), "{table}");
    }
}
