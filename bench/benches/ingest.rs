//! Throughput of ingestion ([`engine::ingest::Parser`]) and of a whole
//! windowed job ([`engine::job::run`]), in bytes of input per second.
//!
//! The parsing groups feed about [`PARSE_BYTES`] (64 MiB) of
//! newline-terminated records, built once before timing, split with
//! [`engine::ingest::split_at_lines`] into pieces of [`PIECE_BYTES`] (1 MiB,
//! as the job does), and parse every piece in an iteration; each piece's
//! [`Parsed`](engine::ingest::Parsed) batch is dropped by the thread that
//! parsed it. `threads/1` parses the pieces in order on the bench thread;
//! `threads/2` parses them with rayon's `par_iter` inside a two-thread pool
//! built once outside the timing. Keys are interned into one [`Dictionary`]
//! that an untimed first parse of the input fills and that every iteration
//! reuses: steady state, the vocabulary is already known and interning adds
//! no key (but still looks up each piece's distinct keys in the shared
//! dictionary).
//!
//! Groups, one question each:
//!
//! - `ingest_tokenize`: splitting text into lines and whitespace-separated
//!   words (`--job wordcount`): [`datasets::WordLines`] lines, 10 words of a
//!   10 000-word Zipf(1.0) vocabulary each.
//! - `ingest_csv`: CSV `ts,key,value` rows as the `events` generator writes
//!   them (no header, 10 000 uniform keys `k0`…, integer values read as
//!   floats), key, value and time extracted.
//! - `ingest_ndjson`: Yahoo Streaming Benchmark NDJSON events from
//!   [`datasets::YsbStream`] (seven string members), extracting the key
//!   `ad_id` (1 000 distinct) and the time `event_time` (a quoted integer),
//!   no value; the other members are skipped.
//! - `wordcount_end_to_end`: the whole `--job wordcount` on a memory-mapped
//!   file of about [`FILE_BYTES`] (256 MiB) of the same text lines, with
//!   virtual time at 1 M lines/s (about 6 s of event time) and a 30 s window
//!   sliding by 1 s: mapping, parsing, windowed counting and emitting (about
//!   36 windows, which the hooks only count). The file is written once to the
//!   temporary directory (so it is read from the page cache) and removed at
//!   the end. 1 and 2 threads.
//!
//! Run with `cargo bench -p bench --bench ingest` (about three minutes on two
//! cores, 0.5 GB of memory and 256 MiB of temporary disk); one group with e.g.
//! `cargo bench -p bench --bench ingest -- ingest_csv`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Write as _;
use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use datasets::{EventConfig, WordLines};
use engine::ingest::{self, Extract, Field, Fields, Format, Parser};
use engine::job::{self, Input, JobConfig, JobHooks, JobKind, OnError, TimeMode};
use engine::ValueType;
use engine::{Dictionary, WindowResult, WindowSpec};
use rayon::prelude::*;

/// Bytes of input of the parsing groups (whole lines, at least this many).
const PARSE_BYTES: usize = 64 << 20;
/// Bytes of the end-to-end job's file (whole lines, at least this many).
const FILE_BYTES: usize = 256 << 20;
/// Bytes per parsed piece, as [`engine::job::PIECE_BYTES`].
const PIECE_BYTES: usize = 1 << 20;
/// Longest accepted line.
const MAX_LINE_BYTES: usize = 1 << 20;
/// Thread counts compared by every group.
const THREADS: [usize; 2] = [1, 2];

/// Text lines of `--job wordcount`, as the `words` generator makes them.
fn word_lines() -> WordLines {
    WordLines::new(42, 10_000, 1.0, 10)
}

/// At least `target` bytes of newline-terminated word lines.
fn text_input(target: usize) -> Vec<u8> {
    let mut words = word_lines();
    let mut out = Vec::with_capacity(target + 1024);
    while out.len() < target {
        out.extend_from_slice(words.line().as_bytes());
        out.push(b'\n');
    }
    out
}

/// At least `target` bytes of CSV `ts,key,value` data lines (no header), as
/// [`datasets::events`] would be written: 10 000 keys, 1 M events/s.
fn csv_input(target: usize) -> Vec<u8> {
    // About 16 bytes a line: one event per 14 bytes is more than enough.
    let events = datasets::events(&EventConfig {
        events: target / 14,
        keys: 10_000,
        ..EventConfig::default()
    });
    let mut out = String::with_capacity(target + 1024);
    for ((ts, key), value) in events.times.iter().zip(&events.keys).zip(&events.values) {
        if out.len() >= target {
            break;
        }
        writeln!(out, "{ts},k{key},{value}").expect("writing to a string");
    }
    assert!(out.len() >= target, "not enough events for {target} bytes");
    out.into_bytes()
}

/// At least `target` bytes of Yahoo Streaming Benchmark events, from the
/// `datasets` generator (1 000 ads in 100 campaigns).
fn ndjson_input(target: usize) -> Vec<u8> {
    use datasets::Generator;
    let mut ysb = datasets::YsbStream::new(&datasets::YsbConfig::default());
    let mut out = Vec::with_capacity(target + 1024);
    while out.len() < target {
        ysb.append_record(&mut out);
    }
    out
}

/// Parses one piece and drops the result, returning its events.
fn parse_piece(parser: &Parser, piece: &[u8], dict: &Dictionary) -> usize {
    let parsed = parser.parse(piece, dict).expect("the dictionary has room");
    black_box(&parsed).batch.len()
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, bytes: usize) {
    // An iteration takes a good part of a second: flat sampling needs only
    // one iteration per sample (linear sampling would need 55 at least).
    group
        .throughput(Throughput::Bytes(bytes as u64))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
}

/// One parsing group: `input` parsed by `parser`, on 1 and 2 threads.
fn parse_group(c: &mut Criterion, name: &str, parser: &Parser, input: &[u8]) {
    let pieces = ingest::split_at_lines(input, PIECE_BYTES);
    // The untimed first parse fills the dictionary and checks the input.
    let dict = Dictionary::new();
    let mut events = 0;
    for piece in &pieces {
        let parsed = parser.parse(piece, &dict).expect("the dictionary has room");
        assert_eq!(parsed.skipped, 0, "{name}: {:?}", parsed.errors);
        assert!(parsed.batch.times().is_empty() || parsed.batch.has_times());
        events += parsed.batch.len();
    }
    assert!(events > 0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a thread pool");
    let mut group = c.benchmark_group(name);
    configure(&mut group, input.len());
    for threads in THREADS {
        group.bench_with_input(
            BenchmarkId::new("threads", threads),
            &threads,
            |b, &threads| {
                b.iter(|| {
                    let parsed: usize = if threads == 1 {
                        pieces.iter().map(|p| parse_piece(parser, p, &dict)).sum()
                    } else {
                        pool.install(|| {
                            pieces
                                .par_iter()
                                .map(|p| parse_piece(parser, p, &dict))
                                .sum()
                        })
                    };
                    assert_eq!(parsed, events);
                    parsed
                });
            },
        );
    }
    group.finish();
}

fn ingest_tokenize(c: &mut Criterion) {
    let input = text_input(PARSE_BYTES);
    let parser = Parser::new(Format::Text, Extract::Words, MAX_LINE_BYTES);
    parse_group(c, "ingest_tokenize", &parser, &input);
}

fn ingest_csv(c: &mut Criterion) {
    let input = csv_input(PARSE_BYTES);
    let parser = Parser::new(
        Format::Csv,
        Extract::Fields(Fields {
            key: Field::Column(1),
            value: Some((Field::Column(2), ValueType::F64)),
            time: Some(Field::Column(0)),
            columns: 3,
            filter: None,
        }),
        MAX_LINE_BYTES,
    );
    parse_group(c, "ingest_csv", &parser, &input);
}

fn ingest_ndjson(c: &mut Criterion) {
    let input = ndjson_input(PARSE_BYTES);
    let parser = Parser::new(
        Format::Ndjson,
        Extract::Fields(Fields {
            key: Field::Name("ad_id".into()),
            value: None,
            time: Some(Field::Name("event_time".into())),
            columns: 0,
            filter: None,
        }),
        MAX_LINE_BYTES,
    );
    parse_group(c, "ingest_ndjson", &parser, &input);
}

/// A temporary file, removed when dropped (also on a panic).
struct TempFile(PathBuf);

impl TempFile {
    /// At least `target` bytes of word lines in the temporary directory.
    fn words(target: usize) -> Self {
        let path =
            std::env::temp_dir().join(format!("engine-bench-ingest-{}.txt", std::process::id()));
        let file = Self(path);
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&file.0).expect("create"));
        let mut words = word_lines();
        let mut written = 0;
        while written < target {
            let line = words.line();
            out.write_all(line.as_bytes()).expect("write");
            out.write_all(b"\n").expect("write");
            written += line.len() + 1;
        }
        out.into_inner().expect("flush").sync_all().expect("sync");
        file
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Hooks that only count what the job emits.
#[derive(Default)]
struct Counter {
    windows: u64,
    rows: u64,
    bad: u64,
}

impl JobHooks for Counter {
    fn window(&mut self, window: &WindowResult, _dict: &Dictionary) -> engine::Result<()> {
        self.windows += 1;
        self.rows += black_box(window).len() as u64;
        Ok(())
    }

    fn bad_record(&mut self, _origin: &str, _line: u64, _reason: &engine::ingest::RecordError) {
        self.bad += 1;
    }

    fn notice(&mut self, _notice: &engine::job::Notice<'_>) {}
}

fn wordcount_end_to_end(c: &mut Criterion) {
    let file = TempFile::words(FILE_BYTES);
    let len = std::fs::metadata(file.path()).expect("metadata").len();
    let stop = Arc::new(AtomicBool::new(false));
    let config = |threads: usize| JobConfig {
        input: Input::File(file.path().to_owned()),
        format: None,
        time: TimeMode::Rate(1_000_000),
        kind: JobKind::WordCount,
        spec: WindowSpec::from_millis(1_000, 30_000, 1_000).expect("a valid window"),
        until: None,
        keep_empty: false,
        key_ttl: None,
        threads,
        on_error: OnError::Skip,
        max_line_bytes: MAX_LINE_BYTES,
        run_for: None,
        socket: engine::source::SocketOptions::default(),
        // SAFETY: the benchmark's input files are written before the job and
        // not changed while it runs.
        mmap: unsafe { engine::job::MmapChoice::auto() },
        checkpoint: None,
        metrics: None,
    };
    let mut group = c.benchmark_group("wordcount_end_to_end");
    configure(&mut group, len as usize);
    group.measurement_time(Duration::from_secs(15));
    for threads in THREADS {
        let config = config(threads);
        group.bench_with_input(BenchmarkId::new("threads", threads), &threads, |b, _| {
            b.iter(|| {
                let mut hooks = Counter::default();
                let report = job::run(&config, &mut hooks, &stop).expect("the job runs");
                assert_eq!(report.bytes, len);
                assert_eq!(report.skipped + hooks.bad, 0);
                assert_eq!(report.windows, hooks.windows);
                assert!(hooks.rows > 0);
                hooks.rows
            });
        });
    }
    group.finish();
    drop(file);
}

fn benches(c: &mut Criterion) {
    ingest_tokenize(c);
    ingest_csv(c);
    ingest_ndjson(c);
    wordcount_end_to_end(c);
}

// What `criterion_group!` and `criterion_main!` expand to, without the public
// function they generate (which would need a doc comment).
fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
