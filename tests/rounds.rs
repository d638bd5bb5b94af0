//! A mapped file is parsed in rounds of pieces, in parallel, and the rounds
//! are aggregated in order. Whatever the thread count, the windows, the
//! line numbers of bad records and the first error are those of one thread.

use crate::util::{p, run, stderr, stdout, TempDir};

/// About 6 MiB of word lines (several rounds of 256 KiB pieces at any
/// thread count), with invalid UTF-8 at the given 1-based lines.
fn words_with_bad_lines(bad: &[usize]) -> (Vec<u8>, usize) {
    let mut rng = datasets::Rng::new(41);
    let mut out = Vec::new();
    let mut line = 0;
    while out.len() < 6 << 20 {
        line += 1;
        if bad.contains(&line) {
            out.extend_from_slice(b"w1 \xff\xfe w2\n");
            continue;
        }
        for word in 0..=rng.below(12) {
            if word > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(format!("w{}", rng.below(3_000)).as_bytes());
        }
        out.push(b'\n');
    }
    (out, line)
}

fn wordcount(input: &str, threads: &str, on_error: &str) -> std::process::Output {
    run(&[
        "--input",
        input,
        "--job",
        "wordcount",
        "--window",
        "3s",
        "--slide",
        "1s",
        "--rate",
        "50000",
        "--output",
        "csv",
        "--threads",
        threads,
        "--on-error",
        on_error,
    ])
}

#[test]
fn parallel_rounds_give_one_threads_windows_and_bad_line_numbers() {
    let dir = TempDir::new("rounds-skip");
    let bad = [3, 20_000, 90_000, 150_000];
    let (bytes, lines) = words_with_bad_lines(&bad);
    assert!(lines > 160_000, "the last bad line is in a late round");
    let input = dir.file("words.txt", &bytes);
    let one = wordcount(p(&input), "1", "skip");
    assert!(one.status.success(), "{}", stderr(&one));
    for line in bad {
        assert!(
            stderr(&one).contains(&format!("line {line}: invalid UTF-8")),
            "line {line}: {}",
            stderr(&one)
        );
    }
    for threads in ["2", "3"] {
        let many = wordcount(p(&input), threads, "skip");
        assert!(many.status.success(), "{}", stderr(&many));
        assert_eq!(stdout(&many), stdout(&one), "{threads} threads");
        let skipped = |out: &std::process::Output| {
            stderr(out)
                .lines()
                .filter(|l| l.starts_with("engine: skipped"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(skipped(&many), skipped(&one), "{threads} threads");
        assert!(stderr(&many).contains("skipped 4 malformed records"));
    }
}

#[test]
fn parallel_rounds_stop_at_the_first_bad_line_whatever_the_threads() {
    let dir = TempDir::new("rounds-fail");
    // Both bad lines are past the first round, in different pieces.
    let (bytes, _) = words_with_bad_lines(&[100_000, 110_000]);
    let input = dir.file("words.txt", &bytes);
    for threads in ["1", "2", "3"] {
        let out = wordcount(p(&input), threads, "fail");
        assert_eq!(out.status.code(), Some(1), "{threads} threads");
        assert!(
            stderr(&out).contains("line 100000: invalid UTF-8"),
            "{threads} threads: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("line 110000"), "{}", stderr(&out));
    }
}
