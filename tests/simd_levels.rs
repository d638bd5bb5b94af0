//! Every SIMD level gives the same output: the parsers' kernels are compiled
//! once per level (AVX-512, AVX2, portable) and `ENGINE_SIMD` lowers the
//! level the CPU has, so the portable fallback runs on every machine.

use std::path::Path;

use crate::util::{engine_command, stdout, TempDir};

/// The samples directory of the `datasets` crate.
fn sample(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../datasets/samples")
        .join(name)
        .display()
        .to_string()
}

/// The job's stdout at each level name, checked to succeed.
fn outputs_by_level(args: &[&str]) -> Vec<(&'static str, String)> {
    ["default", "portable", "avx2", "avx512"]
        .into_iter()
        .map(|level| {
            let mut cmd = engine_command();
            cmd.args(args);
            if level != "default" {
                cmd.env("ENGINE_SIMD", level);
            }
            let out = cmd.output().expect("the engine runs");
            assert!(
                out.status.success(),
                "{level}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            (level, stdout(&out))
        })
        .collect()
}

fn assert_all_equal(args: &[&str]) {
    let outputs = outputs_by_level(args);
    let (_, reference) = &outputs[0];
    assert!(!reference.is_empty(), "the job writes rows");
    for (level, out) in &outputs[1..] {
        assert_eq!(
            out, reference,
            "ENGINE_SIMD={level} differs from the default"
        );
    }
}

#[test]
fn wordcount_is_the_same_at_every_simd_level() {
    let scratch = TempDir::new("simd-words");
    // Words of every length, non-ASCII text, CRLF and a last line without
    // a newline: the whole-chunk fast path.
    let mut text = std::fs::read(sample("words.txt")).unwrap();
    text.extend_from_slice(b"caf\xc3\xa9 na\xc3\xafve \t a-rather-long-word-of-thirty-bytes\r\n");
    text.extend_from_slice(b"\nlast words");
    let clean = scratch.file("clean.txt", &text);
    // Invalid UTF-8 and a line over the limit: the line-by-line path.
    text.extend_from_slice(b"\n\xff\xfe bad\n");
    text.extend_from_slice(&b"x".repeat(5000));
    let dirty = scratch.file("dirty.txt", &text);
    for input in [clean, dirty] {
        assert_all_equal(&[
            "run",
            "--input",
            input.to_str().unwrap(),
            "--job",
            "wordcount",
            "--rate",
            "100",
            "--window",
            "2s",
            "--slide",
            "1s",
            "--max-line-bytes",
            "4096",
            "--output",
            "csv",
        ]);
    }
}

#[test]
fn csv_and_ndjson_jobs_are_the_same_at_every_simd_level() {
    assert_all_equal(&[
        "run",
        "--input",
        &sample("events.csv"),
        "--key-col",
        "key",
        "--value-col",
        "value",
        "--time-col",
        "ts",
        "--agg",
        "count,sum,min,max",
        "--window",
        "2s",
        "--slide",
        "1s",
        "--output",
        "csv",
    ]);
    assert_all_equal(&[
        "run",
        "--input",
        &sample("ysb.ndjson"),
        "--key-col",
        "ad_id",
        "--time-col",
        "event_time",
        "--where",
        "event_type=view",
        "--lookup",
        &sample("ysb-campaigns.csv"),
        "--batch",
        "10s",
        "--output",
        "csv",
    ]);
}
