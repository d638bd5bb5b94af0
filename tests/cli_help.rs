//! The `engine` binary's help, version, completions and man page, and the
//! examples of the README and of `engine run --help`, run as written from
//! the repository root.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::cli_usability::{repo_root, run, run_within};
use crate::util::{stderr, stdout};

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
        let feature = |name: &str| args.iter().any(|a| a.contains(name));
        if needs("--connect") || needs("--listen") || feature("parquet") || feature("kafka") {
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
