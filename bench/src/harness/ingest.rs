//! The `ingest` suite (issue 10, the fast front end): whole jobs whose cost
//! is ingestion, beside the C reference programs of `bench/c/` on the same
//! files, and the parsers alone.
//!
//! Inputs, generated into the scratch directory (seeded, as `datasets`
//! writes them): word lines (`datasets words`: 10 Zipf words a line out of
//! 10 000), YSB events (`datasets ysb`, 20 000 events a second of event
//! time) in both spellings (`--spelling compact` and `spaced`), and their
//! ad → campaign table.
//!
//! Each iteration runs, one after the other (so that a burst of load on the
//! machine hits every case alike): the engine on all threads, the engine on
//! one thread, the C reference. Cases:
//!
//! | suite · case | what |
//! |---|---|
//! | `ingest` · `wordcount_10s` | [`Workload::WordCount10s`]: the mmap'd word lines, 10 s window sliding by 1 s, virtual time |
//! | `c` · `wordcount` | `bench/c/wordcount.c`, the naive word count (no windows), same file |
//! | `ingest` · `ysb`, `ysb_spaced` | [`Workload::Ysb`] on each spelling |
//! | `c` · `ysb`, `ysb_spaced` | `bench/c/ysb.c`, the careful C YSB, same files |
//! | `ingest` · `tokenize`, `parse_csv`, `parse_ndjson`, `parse_ndjson_spaced` | [`Parser`] alone, in memory, 1 MiB pieces, one thread: words (tokenize + intern), CSV `ts,key,value`, YSB's three members |
//!
//! Rows count records (lines); `ingest_bytes_per_record_<input>` facts turn
//! them into bytes. Outputs are checked on every iteration: the word count's
//! words equal the engine's events, YSB's CSV rows are equal.

use std::fmt::Write as _;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use datasets::{
    EventConfig, EventStream, Generator, Limit, WordLines, YsbConfig, YsbSpelling, YsbStream,
};
use engine::ingest::{split_at_lines, Extract, Field, Fields, Format, Parser};
use engine::sink::{CsvSink, Sink};
use engine::{Agg, Dictionary, ValueType};

use super::cref::{self, Programs};
use super::summary::{ms, ratio_spread, verdict_spread as verdict};
use super::{Options, Recorder, Row, Spread};
use crate::jobs::{self, Workload, YSB_RATE};

/// The files of the suite.
#[derive(Debug)]
pub struct Inputs {
    /// Word lines.
    pub words: PathBuf,
    /// YSB events, compact spelling.
    pub ysb: PathBuf,
    /// The same events, spaced spelling.
    pub ysb_spaced: PathBuf,
    /// The ad → campaign table.
    pub ads: PathBuf,
}

/// Writes `generator` to `path` up to `bytes`.
fn write(path: &Path, generator: &mut dyn Generator, bytes: usize) -> Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    datasets::write_records(generator, Limit::Bytes(bytes as u64), &mut out, |_| {})
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

impl Inputs {
    /// Generates about `bytes` of each input in `dir`.
    pub fn create(dir: &Path, bytes: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let this = Self {
            words: dir.join("words.txt"),
            ysb: dir.join("ysb.ndjson"),
            ysb_spaced: dir.join("ysb-spaced.ndjson"),
            ads: dir.join("ysb-campaigns.csv"),
        };
        write(&this.words, &mut WordLines::new(42, 10_000, 1.0, 10), bytes)?;
        let config = YsbConfig {
            rate: YSB_RATE,
            ..YsbConfig::default()
        };
        let ysb = YsbStream::new(&config);
        ysb.write_campaigns_csv(BufWriter::new(File::create(&this.ads)?))?;
        // The same events in both spellings (the spaced file is longer).
        write(&this.ysb, &mut ysb.clone(), bytes)?;
        let events = count_lines(&std::fs::read(&this.ysb)?);
        let mut spaced = ysb.with_spelling(YsbSpelling::Spaced);
        let file = File::create(&this.ysb_spaced)?;
        datasets::write_records(
            &mut spaced,
            Limit::Records(events),
            &mut BufWriter::with_capacity(1 << 20, file),
            |_| {},
        )?;
        Ok(this)
    }
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().map(|&b| u64::from(b == b'\n')).sum()
}

/// Runs the suite: see the module's documentation.
pub fn ingest(rec: &mut Recorder, options: &Options, scratch: &Path) -> Result<()> {
    let s = options.sizes;
    rec.say(&format!(
        "ingest: generating {} MiB of each input in {}",
        s.ingest_bytes >> 20,
        scratch.display()
    ));
    let inputs = Inputs::create(scratch, s.ingest_bytes)?;
    let programs = match cref::compile(&scratch.join("c"))? {
        Ok(programs) => {
            rec.setup
                .push(format!("C references (bench/c/): {}", programs.compiler));
            Some(programs)
        }
        Err(why) => {
            rec.say(&format!("ingest: C references skipped: {why}"));
            rec.notes
                .push(format!("C references (bench/c/) skipped: {why}."));
            None
        }
    };
    wordcount(rec, options, &inputs, programs.as_ref())?;
    for (case, file) in [("ysb", &inputs.ysb), ("ysb_spaced", &inputs.ysb_spaced)] {
        ysb(rec, options, case, file, &inputs.ads, programs.as_ref())?;
    }
    parsers(rec, options, &inputs)
}

/// The thread counts of the engine's cases: all, then 1.
fn engine_threads(options: &Options) -> Vec<usize> {
    let mut t = vec![options.threads.max(1), 1];
    t.dedup();
    t
}

/// One row of a case.
fn row(case: (&'static str, &str, usize), iteration: u64, elements: u64, seconds: f64) -> Row {
    Row {
        suite: case.0,
        case: case.1.into(),
        param: 0,
        threads: case.2,
        iteration,
        elements,
        seconds,
    }
}

/// Records bytes per record of `input`, for MB/s.
fn note_bytes(rec: &mut Recorder, input: &str, bytes: u64, records: u64) {
    rec.facts.insert(
        format!("ingest_bytes_per_record_{input}"),
        bytes as f64 / records.max(1) as f64,
    );
}

fn wordcount(
    rec: &mut Recorder,
    options: &Options,
    inputs: &Inputs,
    c: Option<&Programs>,
) -> Result<()> {
    let workload = Workload::WordCount10s;
    let configs = engine_threads(options)
        .into_iter()
        .map(|t| {
            Ok((
                t,
                jobs::config_for(workload, &inputs.words, &inputs.ads, t)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    for iteration in 0..options.sizes.ingest_iterations {
        let mut events = None;
        for (threads, config) in &configs {
            rec.say(&format!(
                "ingest: wordcount (10 s / 1 s) on {threads} thread(s), run {}",
                iteration + 1
            ));
            let o = jobs::run_config(workload, config, None)?;
            if *events.get_or_insert(o.events) != o.events {
                bail!(
                    "wordcount: {} words on one thread count, {} on another",
                    o.events,
                    events.unwrap_or(0)
                );
            }
            note_bytes(rec, "wordcount", o.bytes, o.records);
            rec.facts.insert(
                "ingest_words_per_line".into(),
                o.events as f64 / o.records as f64,
            );
            rec.push(row(
                ("ingest", workload.name(), *threads),
                iteration,
                o.records,
                o.seconds,
            ))?;
        }
        let Some(c) = c else { continue };
        rec.say(&format!(
            "ingest: the naive C word count, run {}",
            iteration + 1
        ));
        let wc = c.wordcount(&inputs.words)?;
        let events = events.unwrap_or(0);
        ensure!(
            wc.words == events,
            "wordcount: the C program counted {} words, the engine {events}",
            wc.words
        );
        rec.push(row(("c", "wordcount", 1), iteration, wc.lines, wc.seconds))?;
        if iteration == 0 {
            rec.notes.push(format!(
                "WordCount outputs agree: the C program and the engine counted {events} words ({} distinct in C; most frequent `{}`).",
                wc.distinct,
                wc.top.first().map_or("", |t| t.0.as_str())
            ));
        }
    }
    Ok(())
}

fn ysb(
    rec: &mut Recorder,
    options: &Options,
    case: &'static str,
    events: &Path,
    ads: &Path,
    c: Option<&Programs>,
) -> Result<()> {
    let configs = engine_threads(options)
        .into_iter()
        .map(|t| Ok((t, jobs::config_for(Workload::Ysb, events, ads, t)?)))
        .collect::<Result<Vec<_>>>()?;
    let mut rows = 0;
    for iteration in 0..options.sizes.ingest_iterations {
        let mut csv = None::<String>;
        for (threads, config) in &configs {
            rec.say(&format!(
                "ingest: {case} on {threads} thread(s), run {}",
                iteration + 1
            ));
            let mut sink = CsvSink::new(Vec::new(), vec![(Agg::Count, "count")]);
            let o = jobs::run_config(Workload::Ysb, config, Some(&mut sink as &mut dyn Sink))?;
            let text = String::from_utf8(sink.into_inner()?)?;
            if let Some(other) = &csv {
                if let Err(why) = cref::same_csv_rows(other, &text) {
                    bail!("{case}: the engine's rows differ between thread counts: {why}");
                }
            }
            csv = Some(text);
            note_bytes(rec, case, o.bytes, o.records);
            rec.push(row(
                ("ingest", case, *threads),
                iteration,
                o.records,
                o.seconds,
            ))?;
        }
        let Some(c) = c else { continue };
        rec.say(&format!(
            "ingest: the careful C YSB on {case}, run {}",
            iteration + 1
        ));
        let out = c.ysb(events, ads)?;
        rows = cref::same_csv_rows(csv.as_deref().unwrap_or(""), &out.csv).map_err(|why| {
            anyhow::anyhow!("{case}: the engine's and the C program's rows differ: {why}")
        })?;
        rec.push(row(("c", case, 1), iteration, out.records, out.seconds))?;
    }
    if c.is_some() {
        rec.notes.push(format!(
            "YSB outputs agree ({case}): the engine's CSV and the C program's have the same {rows} rows."
        ));
    }
    Ok(())
}

/// CSV `ts,key,value` data lines (no header) of about `bytes`, as
/// `datasets events` writes them.
fn csv_lines(bytes: usize) -> Vec<u8> {
    let mut events = EventStream::new(&EventConfig::default());
    let mut out = Vec::with_capacity(bytes + 4096);
    while out.len() < bytes {
        events.append_record(&mut out);
    }
    out
}

/// Each parser's rate on one thread: `(case, input, parser)`.
fn parsers(rec: &mut Recorder, options: &Options, inputs: &Inputs) -> Result<()> {
    let ysb_fields = Fields {
        key: Field::Name("ad_id".into()),
        value: None,
        time: Some(Field::Name("event_time".into())),
        columns: 0,
        filter: Some((Field::Name("event_type".into()), "view".into())),
    };
    let csv_fields = Fields {
        key: Field::Column(1),
        value: Some((Field::Column(2), ValueType::I64)),
        time: Some(Field::Column(0)),
        columns: 3,
        filter: None,
    };
    let cases: [(&str, Format, Extract); 4] = [
        ("tokenize", Format::Text, Extract::Words),
        ("parse_csv", Format::Csv, Extract::Fields(csv_fields)),
        (
            "parse_ndjson",
            Format::Ndjson,
            Extract::Fields(ysb_fields.clone()),
        ),
        (
            "parse_ndjson_spaced",
            Format::Ndjson,
            Extract::Fields(ysb_fields),
        ),
    ];
    for (case, format, extract) in cases {
        let input = match case {
            "tokenize" => std::fs::read(&inputs.words)?,
            "parse_csv" => csv_lines(options.sizes.ingest_bytes),
            "parse_ndjson" => std::fs::read(&inputs.ysb)?,
            _ => std::fs::read(&inputs.ysb_spaced)?,
        };
        let parser = Parser::try_new(format, extract, 1 << 20)?;
        let pieces = split_at_lines(&input, 1 << 20);
        let records = count_lines(&input);
        note_bytes(rec, case, input.len() as u64, records);
        rec.say(&format!("ingest: {case}, the parser alone on one thread"));
        // An untimed first pass fills the dictionary (steady state) and
        // checks the input.
        let dict = Dictionary::new();
        let first = parse_all(&parser, &pieces, &dict)?;
        ensure!(first.1 == 0, "{case}: {} malformed records", first.1);
        for iteration in 0..options.sizes.ingest_iterations {
            let started = Instant::now();
            let (events, _) = parse_all(&parser, &pieces, &dict)?;
            let seconds = started.elapsed().as_secs_f64();
            ensure!(
                events == first.0,
                "{case}: {events} events, then {}",
                first.0
            );
            rec.push(row(("ingest", case, 1), iteration, records, seconds))?;
        }
    }
    Ok(())
}

/// Parses every piece in order: events and malformed records.
fn parse_all(parser: &Parser, pieces: &[&[u8]], dict: &Dictionary) -> Result<(u64, u64)> {
    let (mut events, mut bad) = (0, 0);
    for piece in pieces {
        let parsed = parser.parse(piece, dict)?;
        events += parsed.batch.len() as u64;
        bad += parsed.skipped;
    }
    Ok((events, bad))
}

/// MB/s of a case of `input`, from its records per second.
fn mb(rec: &Recorder, input: &str, rate: Option<Spread>) -> Option<Spread> {
    let bytes = rec.facts.get(&format!("ingest_bytes_per_record_{input}"))?;
    rate.map(|r| r.scaled(bytes / 1e6))
}

/// The suite's section of `summary.md`.
pub fn summary(out: &mut String, rec: &Recorder, all: usize) {
    let _ = writeln!(
        out,
        "\n## Ingestion beside the C references (the `ingest` suite)\n"
    );
    if !rec.rows().iter().any(|r| r.suite == "ingest") {
        let _ = writeln!(out, "Not run in this run.");
        return;
    }
    let _ = writeln!(
        out,
        "Median (min–max) of the alternating runs; MB/s of input and M records (lines) per second. The C programs run on one thread; \
         engine ÷ C is taken run by run (each run of the engine with the C run just after it).\n"
    );
    let _ = writeln!(
        out,
        "| workload | engine, {all} threads, MB/s | engine, 1 thread, MB/s | engine, 1 thread, M records/s | C, MB/s | C, M records/s | engine {all} threads ÷ C | engine 1 thread ÷ C |\n|---|---|---|---|---|---|---|---|"
    );
    for (name, case, c_case) in [
        (
            "WordCount 10 s / 1 s, virtual time ↔ naive C word count",
            "wordcount_10s",
            "wordcount",
        ),
        ("YSB, compact JSON ↔ careful C (memmem)", "ysb", "ysb"),
        (
            "YSB, spaced JSON ↔ careful C (memmem)",
            "ysb_spaced",
            "ysb_spaced",
        ),
    ] {
        let input = c_case;
        let e_all = rec.spread("ingest", case, 0, all);
        let e_one = rec.spread("ingest", case, 0, 1);
        let c = rec.spread("c", c_case, 0, 1);
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            ms(mb(rec, input, e_all), 1.0),
            ms(mb(rec, input, e_one), 1.0),
            ms(e_one, 1e-6),
            ms(mb(rec, input, c), 1.0),
            ms(c, 1e-6),
            ratio_spread(rec.paired_ratio(("ingest", case, 0, all), ("c", c_case, 0, 1))),
            ratio_spread(rec.paired_ratio(("ingest", case, 0, 1), ("c", c_case, 0, 1))),
        );
    }
    if let Some(w) = rec.facts.get("ingest_words_per_line") {
        let _ = writeln!(out, "\nWordCount lines hold {w:.1} words on average.");
    }
    let _ = writeln!(
        out,
        "\n### The parsers alone (one thread, in memory, 1 MiB pieces, dictionary warm)\n\n| parser | GB/s per core | M records/s per core |\n|---|---|---|"
    );
    for (name, case) in [
        ("tokenize + intern (word lines)", "tokenize"),
        ("CSV `ts,key,value`", "parse_csv"),
        ("NDJSON, YSB's three members, compact", "parse_ndjson"),
        ("NDJSON, YSB's three members, spaced", "parse_ndjson_spaced"),
    ] {
        let rate = rec.spread("ingest", case, 0, 1);
        let _ = writeln!(
            out,
            "| {name} | {} | {} |",
            ms(mb(rec, case, rate), 1e-3),
            ms(rate, 1e-6)
        );
    }
    targets(out, rec, all);
}

/// Issue 10's targets of this suite.
fn targets(out: &mut String, rec: &Recorder, all: usize) {
    let _ = writeln!(
        out,
        "\n### Targets of issue 10 measured here\n\n| target | measured: median (min–max) | verdict |\n|---|---|---|"
    );
    let wc_ratio = rec.paired_ratio(
        ("ingest", "wordcount_10s", 0, all),
        ("c", "wordcount", 0, 1),
    );
    let wc_core = mb(
        rec,
        "wordcount",
        rec.spread("ingest", "wordcount_10s", 0, 1),
    );
    let ysb = rec.spread("ingest", "ysb", 0, 1);
    let spaced = rec.spread("ingest", "ysb_spaced", 0, 1);
    let tokenize = mb(rec, "tokenize", rec.spread("ingest", "tokenize", 0, 1));
    let csv = mb(rec, "parse_csv", rec.spread("ingest", "parse_csv", 0, 1));
    let lines: [(String, String, String); 6] = [
        (
            format!("WordCount end to end ≥ 4× the naive C word count, engine on {all} threads"),
            ratio_spread(wc_ratio),
            verdict(wc_ratio, 4.0),
        ),
        (
            "WordCount end to end ≥ 500 MB/s per core".into(),
            format!("{} MB/s", ms(wc_core, 1.0)),
            verdict(wc_core, 500.0),
        ),
        (
            "YSB from NDJSON ≥ 15 M events/s per core (compact)".into(),
            format!("{} M/s", ms(ysb, 1e-6)),
            verdict(ysb, 15e6),
        ),
        (
            "YSB from NDJSON ≥ 15 M events/s per core (spaced, as the original generator)".into(),
            format!("{} M/s", ms(spaced, 1e-6)),
            verdict(spaced, 15e6),
        ),
        (
            "tokenize + intern ≥ 1 GB/s per core".into(),
            format!("{} GB/s", ms(tokenize, 1e-3)),
            verdict(tokenize, 1e3),
        ),
        (
            "CSV `ts,key,value` parse ≥ 1 GB/s per core".into(),
            format!("{} GB/s", ms(csv, 1e-3)),
            verdict(csv, 1e3),
        ),
    ];
    for (target, measured, v) in lines {
        let _ = writeln!(out, "| {target} | {measured} | {v} |");
    }
    let per_core = rec.paired_ratio(("ingest", "ysb", 0, 1), ("c", "ysb", 0, 1));
    let _ = writeln!(
        out,
        "| YSB: the engine per core ÷ the careful C (reported, no target) | {} | – |",
        ratio_spread(per_core)
    );
}

#[cfg(test)]
mod tests {
    use super::super::Sizes;
    use super::*;

    #[test]
    fn the_suite_runs_checks_outputs_and_summarizes_on_small_inputs() {
        let dir = std::env::temp_dir().join(format!("bench-ingest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut rec = Recorder::create(&dir).unwrap();
        let options = Options {
            sizes: Sizes {
                ingest_bytes: 1 << 20,
                ingest_iterations: 2,
                ..Sizes::QUICK
            },
            out: dir.clone(),
            with_polars: false,
            with_spark: false,
            with_flink: false,
            only: Vec::new(),
            threads: 2,
            command: String::new(),
        };
        ingest(&mut rec, &options, &dir.join("scratch")).unwrap();
        let runs = |suite, case, threads| rec.spread(suite, case, 0, threads).map_or(0, |s| s.n);
        for case in ["wordcount_10s", "ysb", "ysb_spaced"] {
            assert_eq!(
                (runs("ingest", case, 2), runs("ingest", case, 1)),
                (2, 2),
                "{case}"
            );
        }
        for case in [
            "tokenize",
            "parse_csv",
            "parse_ndjson",
            "parse_ndjson_spaced",
        ] {
            assert_eq!(runs("ingest", case, 1), 2, "{case}");
            assert!(rec
                .facts
                .contains_key(&format!("ingest_bytes_per_record_{case}")));
        }
        let c_ran = !rec.notes.iter().any(|n| n.contains("skipped"));
        if c_ran {
            for case in ["wordcount", "ysb", "ysb_spaced"] {
                assert_eq!(runs("c", case, 1), 2, "{case}");
            }
            assert!(rec
                .notes
                .iter()
                .any(|n| n.starts_with("WordCount outputs agree")));
            assert_eq!(
                rec.notes
                    .iter()
                    .filter(|n| n.starts_with("YSB outputs agree"))
                    .count(),
                2
            );
            assert!(rec.setup.iter().any(|l| l.contains("-O2")));
        }
        let mut out = String::new();
        summary(&mut out, &rec, 2);
        assert!(out.contains("### Targets of issue 10"), "{out}");
        // Every engine figure is there, with its spread.
        let wordcount = out
            .lines()
            .find(|l| l.starts_with("| WordCount 10 s"))
            .unwrap();
        let cells: Vec<&str> = wordcount.split(" | ").collect();
        assert!(
            cells[1..4]
                .iter()
                .all(|c| c.contains('–') && c.contains('(')),
            "{wordcount}"
        );
        assert_eq!(cells[4].contains('('), c_ran, "{wordcount}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
