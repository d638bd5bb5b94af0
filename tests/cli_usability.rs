//! The `engine` binary's usability: flags refused before any work, help,
//! version, completions and man page, the table's column names and `--top`,
//! and the examples of the README and of `engine run --help`, run as written
//! from the repository root.

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{stderr, stdout};

/// The repository root, where the README's examples run.
fn repo_root() -> PathBuf {
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
fn run_within(args: &[&str], limit: Duration) -> Output {
    run_child(args, false, limit)
}

fn run(args: &[&str]) -> Output {
    run_within(args, Duration::from_secs(60))
}

/// Runs `engine args…`; with `stdin_open`, its stdin is a pipe that stays
/// open (and unwritten) until it exits: a job that read its input before
/// checking its flags would wait forever.
fn run_child(args: &[&str], stdin_open: bool, limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_engine"))
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

#[test]
fn help_groups_flags_under_headings() {
    let out = run(&["run", "--help"]);
    assert!(out.status.success());
    let help = stdout(&out);
    let groups: [(&str, &[&str]); 8] = [
        (
            "Input",
            &[
                "--input",
                "--connect",
                "--listen",
                "--generate",
                "--records",
                "--no-mmap",
                "--max-connections",
                "--connect-timeout",
                "--idle-timeout",
            ],
        ),
        ("Format", &["--format", "--on-error", "--max-line-bytes"]),
        ("Time", &["--time-col", "--rate", "--until", "--run-for"]),
        (
            "Window",
            &["--batch", "--window", "--slide", "--keep-empty"],
        ),
        (
            "Aggregation",
            &[
                "--job",
                "--key-col",
                "--value-col",
                "--value-type",
                "--agg",
                "--pattern",
                "--where",
                "--lookup",
            ],
        ),
        (
            "Output",
            &["--output", "--output-file", "--print-rows", "--top"],
        ),
        ("Reporting", &["--quiet", "--stats-json"]),
        ("Execution", &["--threads"]),
    ];
    // Each heading's flags: the lines from it to the next heading.
    let mut section = String::new();
    let mut sections = std::collections::BTreeMap::new();
    for line in help.lines() {
        if line.starts_with("Examples") {
            break;
        }
        if !line.starts_with(' ') && line.ends_with(':') {
            section = line.trim_end_matches(':').to_owned();
        } else if let Some(flag) = line
            .trim_start()
            .split([' ', ','])
            .find(|w| w.starts_with("--"))
        {
            if line.starts_with("  ") && !line.starts_with("          ") {
                sections.insert(flag.to_owned(), section.clone());
            }
        }
    }
    for (heading, flags) in groups {
        assert!(
            help.contains(&format!("\n{heading}:\n")),
            "{heading}: {help}"
        );
        for flag in flags {
            assert_eq!(
                sections.get(*flag).map(String::as_str),
                Some(heading),
                "{flag} under {heading}"
            );
        }
    }
    // No flag is left under the catch-all heading but help and version.
    let ungrouped: Vec<_> = sections
        .iter()
        .filter(|(_, s)| s.as_str() == "Options")
        .map(|(f, _)| f.as_str())
        .collect();
    assert_eq!(ungrouped, ["--help", "--version"]);
    assert!(help.contains("Examples (from the repository root):"));
}

#[test]
fn version_shows_commit_and_features() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    let version = stdout(&out);
    let (commit, features) = version
        .strip_prefix(&format!("engine {} (commit ", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.trim_end().strip_suffix(')'))
        .and_then(|rest| rest.split_once(", features: "))
        .unwrap_or_else(|| panic!("unexpected version line: {version}"));
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{commit}"
    );
    // Built from this checkout: the commit is its HEAD when git can tell.
    if let Some(head) = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
    {
        assert_eq!(commit, String::from_utf8_lossy(&head.stdout).trim());
    }
    let features: Vec<&str> = features.split(',').collect();
    assert!(features.contains(&"cli"), "{features:?}");
    assert_eq!(features.contains(&"parquet"), cfg!(feature = "parquet"));
    // `run --version` says the same.
    assert!(stdout(&run(&["run", "--version"])).contains(&format!("(commit {commit}, ")));
}

#[test]
fn completions_and_man_page_are_generated() {
    for (shell, marker) in [
        ("bash", "_engine()"),
        ("zsh", "#compdef engine"),
        ("fish", "complete -c engine"),
        ("elvish", "edit:completion:arg-completer[engine]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("stats-json"), "{shell}: the run flags");
    }
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2));
    let man = stdout(&run(&["man"]));
    assert!(man.contains(".TH engine 1"), "{man}");
    assert!(man.contains("engine\\-run"), "the subcommands: {man}");
    let run_page = stdout(&run(&["man", "run"]));
    assert!(run_page.contains(".TH engine-run 1"), "{run_page}");
    for flag in ["\\-\\-threads", "\\-\\-stats\\-json", "\\-\\-top"] {
        assert!(run_page.contains(flag), "{flag}: {run_page}");
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

/// The `engine run …` commands of a text: lines (joined over trailing
/// backslashes, comments dropped) that start with `engine run`, or
/// `cargo run … -p engine -- run`, as the binary's arguments.
fn engine_commands(text: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut line = String::new();
    for raw in text.lines() {
        let raw = raw.split(" #").next().unwrap_or_default().trim();
        if raw.starts_with('#') {
            continue;
        }
        if let Some(part) = raw.strip_suffix('\\') {
            line.push_str(part);
            line.push(' ');
            continue;
        }
        line.push_str(raw);
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        line.clear();
        let is = |i: usize, word: &str| words.get(i).is_some_and(|w| w == word);
        let args = if is(0, "engine") && is(1, "run") {
            &words[1..]
        } else if is(0, "cargo") && words.iter().any(|w| w == "engine") {
            // `cargo run --release -p engine -- run …`
            match words.iter().position(|w| w == "--") {
                Some(i) if is(i + 1, "run") => &words[i + 1..],
                _ => continue,
            }
        } else {
            continue;
        };
        assert!(
            args.iter()
                .all(|a| !a.contains(['\'', '"', '$', '|', '>', '<'])),
            "a shell feature the test cannot run: {args:?}"
        );
        commands.push(args.to_vec());
    }
    commands
}

/// Runs every command that needs no server and no cargo feature from the
/// repository root: exit 0 and some output (stdout, or the --output-file).
fn run_examples(commands: &[Vec<String>], origin: &str) -> usize {
    let mut ran = 0;
    for args in commands {
        let needs = |flag: &str| args.iter().any(|a| a == flag);
        if needs("--connect") || needs("--listen") || args.iter().any(|a| a.contains("parquet")) {
            continue;
        }
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        if !needs("--quiet") && !needs("-q") {
            args.push("--quiet");
        }
        let started = Instant::now();
        let out = run_within(&args, Duration::from_secs(120));
        assert!(
            out.status.success(),
            "{origin}: engine {}: {}",
            args.join(" "),
            stderr(&out)
        );
        // The rows: on stdout, or in the --output-file.
        let wrote_rows = match args.iter().position(|a| *a == "--output-file") {
            Some(i) => std::fs::metadata(repo_root().join(args[i + 1])).is_ok_and(|m| m.len() > 0),
            None => !out.stdout.is_empty(),
        };
        assert!(
            wrote_rows,
            "{origin}: engine {} wrote nothing",
            args.join(" ")
        );
        eprintln!(
            "{origin}: {:?} engine {}",
            started.elapsed(),
            args.join(" ")
        );
        ran += 1;
    }
    ran
}

#[test]
fn readme_examples_run_from_repo_root() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let mut blocks = String::new();
    let mut in_sh = false;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            in_sh = line.trim() == "```sh";
        } else if in_sh {
            blocks.push_str(line);
            blocks.push('\n');
        }
    }
    let commands = engine_commands(&blocks);
    // Every file an example reads is in the repository.
    for args in &commands {
        for pair in args.windows(2) {
            if ["--input", "--lookup"].contains(&pair[0].as_str()) {
                assert!(
                    repo_root().join(&pair[1]).is_file(),
                    "{}: {args:?}",
                    pair[1]
                );
            }
        }
    }
    let ran = run_examples(&commands, "README.md");
    assert!(ran >= 4, "only {ran} README examples ran");
}

#[test]
fn help_examples_run_from_repo_root() {
    let help = stdout(&run(&["run", "--help"]));
    let examples = help
        .split("Examples (from the repository root):")
        .nth(1)
        .expect("examples in the help");
    let commands = engine_commands(examples);
    assert!(commands.len() >= 5, "{examples}");
    let ran = run_examples(&commands, "engine run --help");
    assert_eq!(ran, commands.len() - 1, "all but the socket example");
}
