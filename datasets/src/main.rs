//! `datasets NAME --out FILE [--records N | --bytes SIZE] [--seed S] ...`:
//! writes a generated data set (`words`, `events`, `ysb`, `nexmark`); see
//! `--help`. Errors are one line on stderr and exit code 2.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::Instant;

use datasets::{
    write_records, BidConfig, BidFormat, BidStream, EventConfig, EventFormat, EventStream,
    Generator, Limit, WordLines, Written, YsbConfig, YsbSpelling, YsbStream,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const USAGE: &str = "\
usage: datasets NAME --out FILE [--records N | --bytes SIZE] [--seed S] [OPTIONS]

Writes a deterministic data set: the same seed and options give the same bytes.

Data sets (NAME) and their options [default]:
  words     text lines of Zipf-distributed words w0, w1, ... (w0 the most frequent)
              --vocabulary N       distinct words [10000]
              --skew S             Zipf exponent, 0 = uniform [1.0]
              --words-per-line N   words a line [10]
              --record-bytes N     instead: records of exactly N bytes before the
                                   newline, whole words then space padding (100 for
                                   the D-Streams Grep/WordCount records) [off]
  events    events ts,key,value
              --format csv|binary  csv: header `ts,key,value`, lines `1500,k17,-42`;
                                   binary: 20 bytes an event, little-endian i64 ts (ms),
                                   u32 key, i64 value, no header [csv]
              --keys N             distinct keys [10000]
              --skew S             Zipf exponent of key popularity, 0 = uniform [0]
              --rate R             events per second of event time [1000000]
              --start-ms MS        time of the first event [0]
              --value-range V      values uniform in -V..=V [1000]
              --out-of-order F     fraction of events moved back in time [0]
              --max-lateness-ms MS by a uniform 1..=MS ms [1000]
  ysb       Yahoo Streaming Benchmark ad events, JSON lines with the members user_id,
            page_id, ad_id, ad_type, event_type, event_time, ip_address
              --rate R             events per second of event time [100000]
              --start-ms MS        time of the first event, epoch ms [1700000000000]
              --campaigns N        campaigns [100]
              --ads-per-campaign N ads of each campaign [10]
              --users N            distinct users [100]
              --pages N            distinct pages [100]
              --campaigns-out FILE also write the ad->campaign table, CSV
                                   `ad_id,campaign_id` [not written]
              --spelling compact|spaced
                                   compact: no space; spaced: a space after every colon
                                   and comma, as the original benchmark's generator
                                   writes (the same events either way) [compact]
  nexmark   Nexmark bids auction,bidder,price,date_time (price in cents, epoch ms)
              --format csv|ndjson  [csv]
              --auctions N         auctions, ids from 1000 [10000]
              --bidders N          bidders, ids from 1000 [10000]
              --skew S             Zipf exponent of auction popularity (hot items) [1.0]
              --rate R             bids per second of event time [10000]
              --start-ms MS        time of the first bid, epoch ms [1700000000000]

Common options:
  --out FILE     output file, `-` for stdout (required)
  --records N    records to write [1000000]
  --bytes SIZE   instead: stop at the first whole record reaching SIZE bytes,
                 e.g. 1G (10^9), 512MiB (2^29)
  --seed S       seed [42]
  -h, --help     this help

A progress bar is drawn on stderr when it is a terminal.";

const COMMON_FLAGS: [&str; 4] = ["--out", "--records", "--bytes", "--seed"];

/// The data sets and the options of each.
const DATA_SETS: [(&str, &[&str]); 4] = [
    (
        "words",
        &[
            "--vocabulary",
            "--skew",
            "--words-per-line",
            "--record-bytes",
        ],
    ),
    (
        "events",
        &[
            "--format",
            "--keys",
            "--skew",
            "--rate",
            "--start-ms",
            "--value-range",
            "--out-of-order",
            "--max-lateness-ms",
        ],
    ),
    (
        "ysb",
        &[
            "--rate",
            "--start-ms",
            "--campaigns",
            "--ads-per-campaign",
            "--users",
            "--pages",
            "--campaigns-out",
            "--spelling",
        ],
    ),
    (
        "nexmark",
        &[
            "--format",
            "--auctions",
            "--bidders",
            "--skew",
            "--rate",
            "--start-ms",
        ],
    ),
];

fn main() -> ExitCode {
    match run(&std::env::args().skip(1).collect::<Vec<_>>()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("datasets: error: {message}");
            ExitCode::from(2)
        }
    }
}

/// The flags given on the command line, checked against a data set's.
struct Options {
    given: Vec<(&'static str, String)>,
}

impl Options {
    fn parse(name: &str, args: &[String]) -> Result<Self, String> {
        let (_, own) = DATA_SETS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            format!("unknown data set `{name}` (expected words, events, ysb or nexmark)")
        })?;
        let mut given: Vec<(&'static str, String)> = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
                _ => (arg.as_str(), None),
            };
            let Some(known) = COMMON_FLAGS
                .iter()
                .chain(own.iter())
                .find(|&&known| known == flag)
            else {
                return Err(if flag.starts_with('-') {
                    format!("unknown flag `{flag}` for `{name}` (see --help)")
                } else {
                    format!("unexpected argument `{flag}` (see --help)")
                });
            };
            let value = match inline {
                Some(value) => value,
                None => args
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))?,
            };
            if given.iter().any(|(f, _)| f == known) {
                return Err(format!("{flag} given twice"));
            }
            given.push((known, value));
        }
        Ok(Self { given })
    }

    fn raw(&self, flag: &str) -> Option<&str> {
        self.given
            .iter()
            .find(|(f, _)| *f == flag)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `flag` parsed, or `default`.
    fn get<T: FromStr>(&self, flag: &str, default: T) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        match self.raw(flag) {
            None => Ok(default),
            Some(value) => value
                .replace('_', "")
                .parse()
                .map_err(|e| format!("{flag} {value}: {e}")),
        }
    }

    /// An integer of `flag` in `min..=max`, or `default`.
    fn int<T>(&self, flag: &str, default: T, min: T, max: T) -> Result<T, String>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
        T::Err: std::fmt::Display,
    {
        let value = self.get(flag, default)?;
        if value < min || value > max {
            return Err(format!("{flag} {value}: must be in {min}..={max}"));
        }
        Ok(value)
    }

    /// A finite float of `flag` in `min..=max`, or `default`.
    fn float(&self, flag: &str, default: f64, min: f64, max: f64) -> Result<f64, String> {
        let value: f64 = self.get(flag, default)?;
        if !value.is_finite() || value < min || value > max {
            return Err(format!("{flag} {value}: must be a number in {min}..={max}"));
        }
        Ok(value)
    }

    /// One of `choices` (the first is the default).
    fn choice<'a>(&self, flag: &str, choices: &[&'a str]) -> Result<&'a str, String> {
        match self.raw(flag) {
            None => Ok(choices[0]),
            Some(value) => choices
                .iter()
                .find(|&&c| c == value)
                .copied()
                .ok_or_else(|| format!("{flag} {value}: expected {}", choices.join(" or "))),
        }
    }
}

/// Writes on a thread of its own, so that generating the next chunk
/// overlaps writing the last one: `write` hands over a copy of its bytes
/// (buffers are recycled), [`finish`](Self::finish) waits for the end.
struct BackgroundWriter {
    full: Option<SyncSender<Vec<u8>>>,
    empty: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl BackgroundWriter {
    fn new(mut out: Box<dyn Write + Send>) -> Self {
        // Two chunks queued at most, a third one being written.
        let (full, queued) = mpsc::sync_channel::<Vec<u8>>(2);
        let (recycle, empty) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            for chunk in queued {
                out.write_all(&chunk)?;
                // The generating side may be gone already: nothing to do.
                let _ = recycle.send(chunk);
            }
            out.flush()
        });
        Self {
            full: Some(full),
            empty,
            thread: Some(thread),
        }
    }

    /// The writing thread's end: its error if it failed.
    fn join(&mut self) -> io::Result<()> {
        self.full = None;
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(io::Error::other("the writing thread panicked")),
        }
    }

    /// Waits until every byte is written and flushed.
    fn finish(mut self) -> io::Result<()> {
        self.join()
    }
}

impl Write for BackgroundWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut chunk = self
            .empty
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(data.len()));
        chunk.clear();
        chunk.extend_from_slice(data);
        let sent = self.full.as_ref().map(|full| full.send(chunk));
        if let Some(Ok(())) = sent {
            return Ok(data.len());
        }
        // The writing thread stopped: on an error, which it returns.
        self.join()?;
        Err(io::Error::new(io::ErrorKind::BrokenPipe, "output closed"))
    }

    /// Nothing to do: [`finish`](Self::finish) flushes.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `1000`, `1_000`, `64k`, `512M`, `1G`, `1GB` (powers of 1000) or `1KiB`,
/// `512MiB`, `1GiB` (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let clean = text.replace('_', "");
    let digits = clean.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &clean[digits.len()..];
    let multiplier: u64 = match unit.to_ascii_lowercase().trim_end_matches('b') {
        "" => 1,
        "k" => 1_000,
        "m" => 1_000_000,
        "g" => 1_000_000_000,
        "t" => 1_000_000_000_000,
        "ki" => 1 << 10,
        "mi" => 1 << 20,
        "gi" => 1 << 30,
        "ti" => 1 << 40,
        _ => return Err(format!("--bytes {text}: unknown unit `{unit}`")),
    };
    let number: u64 = digits.parse().map_err(|e| format!("--bytes {text}: {e}"))?;
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("--bytes {text}: too large"))
}

/// The generator of data set `name`, and the ad → campaign table to write
/// for `ysb`.
fn generator(
    name: &str,
    options: &Options,
    seed: u64,
) -> Result<(Box<dyn Generator>, Option<YsbStream>), String> {
    const MAX: u64 = 1 << 40;
    const MAX_TABLE: usize = 1 << 28;
    let rate = |default| options.int("--rate", default, 1, MAX);
    let start = |default| options.int("--start-ms", default, -(1 << 52), 1 << 52);
    Ok(match name {
        "words" => {
            let words = WordLines::new(
                seed,
                options.int("--vocabulary", 10_000, 1, MAX_TABLE)?,
                options.float("--skew", 1.0, 0.0, 100.0)?,
                options.int("--words-per-line", 10, 1, 1 << 20)?,
            );
            let words = match options.raw("--record-bytes") {
                None => words,
                Some(_) => {
                    words.with_record_bytes(options.int("--record-bytes", 100, 1, 1 << 24)?)
                }
            };
            (Box::new(words), None)
        }
        "events" => {
            let format = match options.choice("--format", &["csv", "binary"])? {
                "csv" => EventFormat::Csv,
                _ => EventFormat::Binary,
            };
            let config = EventConfig {
                seed,
                keys: options.int("--keys", 10_000, 1, MAX_TABLE)?,
                skew: options.float("--skew", 0.0, 0.0, 100.0)?,
                rate: rate(1_000_000)?,
                start_ms: start(0)?,
                value_range: options.int("--value-range", 1_000, 0, 1 << 62)?,
                out_of_order: options.float("--out-of-order", 0.0, 0.0, 1.0)?,
                max_lateness_ms: options.int("--max-lateness-ms", 1_000, 0, 1 << 40)?,
                ..EventConfig::default()
            };
            (
                Box::new(EventStream::new(&config).with_format(format)),
                None,
            )
        }
        "ysb" => {
            let config = YsbConfig {
                seed,
                rate: rate(100_000)?,
                start_ms: start(1_700_000_000_000)?,
                users: options.int("--users", 100, 1, MAX_TABLE)?,
                pages: options.int("--pages", 100, 1, MAX_TABLE)?,
                campaigns: options.int("--campaigns", 100, 1, 1 << 20)?,
                ads_per_campaign: options.int("--ads-per-campaign", 10, 1, 1 << 10)?,
            };
            let spelling = match options.choice("--spelling", &["compact", "spaced"])? {
                "compact" => YsbSpelling::Compact,
                _ => YsbSpelling::Spaced,
            };
            let stream = YsbStream::new(&config).with_spelling(spelling);
            let table = options
                .raw("--campaigns-out")
                .is_some()
                .then(|| stream.clone());
            (Box::new(stream), table)
        }
        "nexmark" => {
            let format = match options.choice("--format", &["csv", "ndjson"])? {
                "csv" => BidFormat::Csv,
                _ => BidFormat::Ndjson,
            };
            let config = BidConfig {
                seed,
                auctions: options.int("--auctions", 10_000, 1, MAX_TABLE)?,
                bidders: options.int("--bidders", 10_000, 1, 1 << 40)?,
                skew: options.float("--skew", 1.0, 0.0, 100.0)?,
                rate: rate(10_000)?,
                start_ms: start(1_700_000_000_000)?,
            };
            (Box::new(BidStream::new(&config).with_format(format)), None)
        }
        other => return Err(format!("unknown data set `{other}`")),
    })
}

fn run(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "-h" || a == "--help") || args.first().is_some_and(|a| a == "help")
    {
        println!("{USAGE}");
        return Ok(());
    }
    let Some((name, rest)) = args.split_first() else {
        return Err("missing data set name: words, events, ysb or nexmark (see --help)".into());
    };
    if name.starts_with('-') {
        return Err(format!(
            "expected a data set name (words, events, ysb or nexmark) before `{name}` (see --help)"
        ));
    }
    let options = Options::parse(name, rest)?;
    let out = options
        .raw("--out")
        .ok_or("--out FILE is required (`-` for stdout)")?
        .to_owned();
    let seed = options.get("--seed", 42_u64)?;
    let limit = match (options.raw("--records"), options.raw("--bytes")) {
        (Some(_), Some(_)) => return Err("give --records or --bytes, not both".into()),
        (_, Some(bytes)) => Limit::Bytes(parse_size(bytes)?),
        _ => Limit::Records(options.get("--records", 1_000_000_u64)?),
    };
    let (mut generator, table) = generator(name, &options, seed)?;

    if let (Some(table), Some(path)) = (&table, options.raw("--campaigns-out")) {
        let file = File::create(path).map_err(|e| format!("{path}: {e}"))?;
        table
            .write_campaigns_csv(io::BufWriter::new(file))
            .map_err(|e| format!("{path}: {e}"))?;
    }

    let mut sink = BackgroundWriter::new(if out == "-" {
        Box::new(io::stdout())
    } else {
        Box::new(File::create(&out).map_err(|e| format!("{out}: {e}"))?)
    });
    let terminal = io::stderr().is_terminal();
    let total = match limit {
        Limit::Records(n) | Limit::Bytes(n) => n,
    };
    let bar = if terminal {
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{wide_bar}] {percent:>3}% {msg} (eta {eta})",
        )
        .map_or_else(
            |_| ProgressStyle::default_bar(),
            |s| s.progress_chars("=> "),
        ),
    );
    let started = Instant::now();
    let mb_per_s =
        |written: &Written| written.bytes as f64 / 1e6 / started.elapsed().as_secs_f64().max(1e-9);
    let written = write_records(generator.as_mut(), limit, &mut sink, |written| {
        if terminal {
            bar.set_position(match limit {
                Limit::Records(_) => written.records,
                Limit::Bytes(_) => written.bytes,
            });
            bar.set_message(format!(
                "{} records, {:.1} MB, {:.0} MB/s",
                written.records,
                written.bytes as f64 / 1e6,
                mb_per_s(&written)
            ));
        }
    })
    .and_then(|written| sink.finish().map(|()| written));
    let written = match written {
        Ok(written) => written,
        // A closed pipe (`datasets ... --out - | head`): a quiet end.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            bar.finish_and_clear();
            return Ok(());
        }
        Err(e) => return Err(format!("{out}: {e}")),
    };
    bar.finish_and_clear();
    if terminal {
        eprintln!(
            "datasets: {name}: {} records, {} bytes to {out} in {:.2} s ({:.0} MB/s)",
            written.records,
            written.bytes,
            started.elapsed().as_secs_f64(),
            mb_per_s(&written)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000"), Ok(1_000));
        assert_eq!(parse_size("1G"), Ok(1_000_000_000));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert_eq!(parse_size("64k"), Ok(64_000));
        assert!(parse_size("1X").is_err());
        assert!(parse_size("G").is_err());
    }

    #[test]
    fn bad_command_lines_are_one_line_errors() {
        for (line, fragment) in [
            (&[][..], "missing data set"),
            (&["nope", "--out", "x"][..], "unknown data set `nope`"),
            (
                &["words", "--out", "x", "--keys", "3"][..],
                "unknown flag `--keys` for `words`",
            ),
            (&["events", "--out"][..], "--out needs a value"),
            (&["events", "--records", "5"][..], "--out FILE is required"),
            (
                &["events", "--out", "x", "--records", "many"][..],
                "--records many",
            ),
            (
                &["events", "--out", "x", "--format", "xml"][..],
                "expected csv or binary",
            ),
            (
                &["ysb", "--out", "x", "--spelling", "pretty"][..],
                "expected compact or spaced",
            ),
            (
                &["words", "--out", "x", "--spelling", "spaced"][..],
                "unknown flag `--spelling` for `words`",
            ),
            (
                &["events", "--out", "x", "--out-of-order", "1.5"][..],
                "--out-of-order 1.5",
            ),
            (
                &["words", "--out", "x", "--seed", "1", "--seed", "2"][..],
                "given twice",
            ),
            (
                &["words", "--out", "x", "--records", "1", "--bytes", "1"][..],
                "not both",
            ),
            (&["--out", "x"][..], "expected a data set name"),
            (&["words", "stray"][..], "unexpected argument `stray`"),
        ] {
            let error = run(&args(line)).expect_err(fragment);
            assert!(error.contains(fragment), "{line:?}: {error}");
            assert!(!error.contains('\n'), "{line:?}: {error}");
        }
    }

    #[test]
    fn ysb_spelling_spaced_writes_the_spaced_events_and_compact_is_the_default() {
        let dir = std::env::temp_dir().join(format!("datasets-spelling-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let written = |spelling: Option<&str>| {
            let out = dir.join(format!("{spelling:?}.ndjson"));
            let mut line = vec!["ysb", "--records", "50", "--out", out.to_str().unwrap()];
            if let Some(spelling) = spelling {
                line.extend(["--spelling", spelling]);
            }
            run(&args(&line)).unwrap();
            std::fs::read(&out).unwrap()
        };
        let library = |spelling| {
            let mut stream = YsbStream::new(&YsbConfig::default()).with_spelling(spelling);
            let mut out = Vec::new();
            write_records(&mut stream, Limit::Records(50), &mut out, |_| {}).unwrap();
            out
        };
        let default = written(None);
        assert_eq!(default, library(YsbSpelling::Compact));
        assert_eq!(written(Some("compact")), default);
        let spaced = written(Some("spaced"));
        assert_eq!(spaced, library(YsbSpelling::Spaced));
        assert!(spaced.starts_with(br#"{"user_id": ""#));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
