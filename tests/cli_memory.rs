//! Peak memory of the binary stays bounded on inputs far larger than its
//! queue: a stream through stdin, and a mapped file.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;

use crate::util::{engine, p, run, stat, stderr, TempDir};

/// The word count the bounded-memory tests run (input and stats added).
const RSS_JOB: &[&str] = &[
    "--job",
    "wordcount",
    "--rate",
    "1000000",
    "--window",
    "10s",
    "--slide",
    "1s",
    "--output",
    "csv",
    "--quiet",
];

/// Peak resident memory of a finished child, from its stats.
fn peak_rss_mb(stats: &Path) -> f64 {
    stat(&std::fs::read_to_string(stats).unwrap(), "peak_rss_mb")
}

#[test]
fn memory_stays_bounded_on_input_larger_than_the_queue() {
    let dir = TempDir::new("rss");
    let stats = dir.0.join("stats.json");
    // 192 MiB of text through stdin: twelve times the queue.
    let mut child = engine()
        .args(["--input", "-"])
        .args(RSS_JOB)
        .args(["--stats-json", p(&stats)])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut words = datasets::WordLines::new(3, 1_000, 1.0, 10);
    let block: Vec<u8> = words.lines(20_000).join("\n").into_bytes();
    let mut written = 0;
    while written < 192 << 20 {
        stdin.write_all(&block).unwrap();
        stdin.write_all(b"\n").unwrap();
        written += block.len() + 1;
    }
    drop(stdin);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{err}");
    let peak = peak_rss_mb(&stats);
    assert!(peak < 160.0, "peak RSS {peak} MB for 192 MiB of input");
}

#[test]
fn memory_stays_bounded_on_a_mapped_file() {
    let dir = TempDir::new("mmap-rss");
    let stats = dir.0.join("stats.json");
    let mut words = datasets::WordLines::new(9, 1_000, 1.0, 10);
    let block = words.lines(20_000).join("\n") + "\n";
    let path = dir.0.join("big.txt");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut written = 0;
        while written < 256 << 20 {
            file.write_all(block.as_bytes()).unwrap();
            written += block.len();
        }
    }
    let out = run(&[
        &["--input", p(&path)],
        RSS_JOB,
        &["--stats-json", p(&stats)],
    ]
    .concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let peak = peak_rss_mb(&stats);
    // Pages behind each 16 MiB segment are released as the job goes.
    assert!(peak < 160.0, "peak RSS {peak} MB for a 256 MiB file");
}
