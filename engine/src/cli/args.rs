//! Flags of `engine run`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use engine::checkpoint::Checkpointing;
use engine::ingest::Format;
use engine::job::{Input, JobConfig, JobKind, MmapChoice, OnError, TimeMode};
use engine::lookup::Lookup;
use engine::sink::OutputFormat;
use engine::{AggSet, ValueType, WindowSpec};

use super::values::{parse_bytes, parse_duration, parse_duration_or_zero};

/// A mistake on the command line (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub(super) fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// What `engine --version` shows: the version, the git commit it was built
/// from and the enabled cargo features.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ENGINE_GIT_COMMIT"),
    ", features: ",
    env!("ENGINE_FEATURES"),
    ")"
);

/// Examples of `engine run --help`: each runs as written from the
/// repository root (a test runs every line that starts with `engine run`).
const RUN_EXAMPLES: &str = "\
Examples (from the repository root):
  # Count, sum and average per key, 10 s windows sliding by 1 s, in event time
  engine run --input datasets/samples/events.csv --time-col ts --key-col key --value-col value --window 10s --slide 1s --agg count,sum,avg --output table
  # The 3 most frequent words per 1 s window, in virtual time (100 lines a second)
  engine run --input datasets/samples/words.txt --job wordcount --rate 100 --window 1s --top 3
  # Lines containing `w0`, counted per second
  engine run --input datasets/samples/words.txt --job grep --pattern w0 --rate 100
  # The Yahoo Streaming Benchmark: views per campaign per 10 s window, as NDJSON
  engine run --input datasets/samples/ysb.ndjson --key-col ad_id --time-col event_time --where event_type=view --lookup datasets/samples/ysb-campaigns.csv --batch 10s --output ndjson
  # Generated events, the summary as JSON on stdout, the rows in a file
  engine run --generate events --records 100000 --key-col key --value-col value --time-col ts --agg max --output-file /tmp/engine-max.csv --stats-json -
  # A socket, as Spark's socketTextStream (start `nc -lk 9999` first)
  engine run --connect 127.0.0.1:9999 --job wordcount --window 30s --slide 1s";

/// Windowed aggregation of files, sockets and generated streams, with Spark
/// Streaming's window semantics.
#[derive(Debug, Parser)]
#[command(name = "engine", version = VERSION, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a windowed job.
    #[command(after_help = RUN_EXAMPLES)]
    Run(Box<RunArgs>),
    /// Print a shell completion script, e.g. `engine completions bash >
    /// ~/.local/share/bash-completion/completions/engine`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `engine man | man -l -`.
    Man {
        /// A subcommand's page (`engine man run`: every flag of `engine
        /// run`) instead of the overview.
        #[arg(value_parser = ["run", "completions", "man"])]
        command: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Text,
    Csv,
    Ndjson,
    /// Arrow IPC, a file or a stream (needs a build with the `columnar` feature).
    Arrow,
    /// Parquet, a file (needs a build with the `columnar` feature).
    Parquet,
    /// `datasets events --format binary`: 20-byte events, columns ts, key, value.
    Binary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobArg {
    /// Aggregates of --value-col per --key-col (the default with --key-col).
    Aggregate,
    /// Words counted per word (the default on text input).
    Wordcount,
    /// Lines containing --pattern, counted.
    Grep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputArg {
    /// Spark's pprint: a `Time: <ms> ms` header per window (default on a terminal).
    Table,
    /// `window_end,key,aggregates…` with a header (default otherwise).
    Csv,
    /// One JSON object per row.
    Ndjson,
    /// Apache Parquet (needs a build with the `parquet` feature and --output-file).
    Parquet,
    /// A Kafka topic, a record per row (needs the `kafka` feature, --kafka-output-topic).
    Kafka,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnErrorArg {
    /// Count malformed records, report the first few, go on.
    Skip,
    /// Stop at the first malformed record.
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValueTypeArg {
    Int,
    Float,
}

const INPUT: &str = "Input";
const FORMAT: &str = "Format";
const TIME: &str = "Time";
const WINDOW: &str = "Window";
const AGGREGATION: &str = "Aggregation";
const OUTPUT: &str = "Output";
const REPORTING: &str = "Reporting";
const EXECUTION: &str = "Execution";

#[derive(Debug, Args)]
#[group(id = "source", required = true, multiple = false)]
pub struct SourceArgs {
    /// Read a file (memory-mapped unless --no-mmap), or standard input with `-`.
    #[arg(long, value_name = "PATH", help_heading = INPUT)]
    pub input: Option<PathBuf>,
    /// Read lines from a TCP server, reconnecting when it goes away.
    #[arg(long, value_name = "HOST:PORT", help_heading = INPUT)]
    pub connect: Option<String>,
    /// Listen for producers that push lines (bind address defaults to 127.0.0.1).
    #[arg(long, value_name = "[ADDR]:PORT", help_heading = INPUT)]
    pub listen: Option<String>,
    /// Stream a built-in generator: `words` (text) or `events` (CSV ts,key,value).
    #[arg(long, value_name = "NAME", help_heading = INPUT)]
    pub generate: Option<String>,
}

/// `engine run`.
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // Flags: each bool is a switch the user types.
pub struct RunArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub kafka: super::kafka_args::KafkaArgs,
    /// Records a generator produces (default: 1000000).
    #[arg(long, value_name = "N", help_heading = INPUT)]
    pub records: Option<u64>,
    /// Read --input files instead of memory-mapping them: for a file that
    /// another process may change or truncate while the job runs.
    #[arg(long, help_heading = INPUT)]
    pub no_mmap: bool,
    /// --listen: producers connected at once; more are refused (closed at once, logged).
    #[arg(long, default_value_t = engine::source::MAX_CONNECTIONS, value_name = "N", help_heading = INPUT)]
    pub max_connections: usize,
    /// --connect: give up (exit status 2) after trying this long without a
    /// connection, at the start or after the server went away (default: try
    /// until the job ends).
    #[arg(long, value_name = "DURATION", help_heading = INPUT)]
    pub connect_timeout: Option<String>,
    /// --connect, --listen: close a connection that sends nothing for this
    /// long (--connect then reconnects). Default: none (TCP keepalive still
    /// notices a host that is gone).
    #[arg(long, value_name = "DURATION", help_heading = INPUT)]
    pub idle_timeout: Option<String>,
    /// Record format (default: from the file extension, .csv, .ndjson/.jsonl/.json,
    /// .arrow/.arrows/.ipc/.feather, .parquet; text otherwise). CSV and NDJSON
    /// need --key-col or an explicit --job; arrow, parquet and binary --key-col.
    #[arg(long, value_enum, help_heading = FORMAT)]
    pub format: Option<FormatArg>,
    /// Malformed records: skip (count, report the first few) or fail.
    #[arg(long, value_enum, default_value = "skip", help_heading = FORMAT)]
    pub on_error: OnErrorArg,
    /// Lines longer than this are malformed (bytes; K, M, KiB, MiB accepted; at most 1GiB).
    #[arg(long, default_value = "1MiB", value_name = "BYTES", help_heading = FORMAT)]
    pub max_line_bytes: String,
    /// Event time from this column: integer ms since the epoch.
    #[arg(long, value_name = "C", conflicts_with = "rate", help_heading = TIME)]
    pub time_col: Option<String>,
    /// Virtual time for replays: record i has time floor(i·1000/R) ms.
    #[arg(long, value_name = "R", help_heading = TIME)]
    pub rate: Option<u64>,
    /// In event or virtual time: emit windows up to and including this end.
    #[arg(long, value_name = "DURATION", help_heading = TIME)]
    pub until: Option<String>,
    /// Stop after this much wall-clock time.
    #[arg(long, value_name = "DURATION", help_heading = TIME)]
    pub run_for: Option<String>,
    /// Batch interval (250ms, 1s, 2m, …).
    #[arg(long, default_value = "1s", value_name = "DURATION", help_heading = WINDOW)]
    pub batch: String,
    /// Window length (default: the batch interval).
    #[arg(long, value_name = "DURATION", help_heading = WINDOW)]
    pub window: Option<String>,
    /// Slide (default: the batch interval).
    #[arg(long, value_name = "DURATION", help_heading = WINDOW)]
    pub slide: Option<String>,
    /// Spark's inverse-reduce output: keys stay once seen, with 0 (memory
    /// then follows every key ever seen; see --key-ttl).
    #[arg(long, help_heading = WINDOW)]
    pub keep_empty: bool,
    /// With --keep-empty: a key with no event for this long leaves the
    /// output and the state (memory follows recent keys).
    #[arg(long, value_name = "DURATION", help_heading = WINDOW)]
    pub key_ttl: Option<String>,
    /// The job (default: aggregate with --key-col, wordcount otherwise).
    #[arg(long, value_enum, help_heading = AGGREGATION)]
    pub job: Option<JobArg>,
    /// Key column (csv, arrow, parquet, binary) or member (ndjson).
    #[arg(long, value_name = "C", help_heading = AGGREGATION)]
    pub key_col: Option<String>,
    /// Value column (csv, arrow, parquet, binary) or member (ndjson).
    #[arg(long, value_name = "C", help_heading = AGGREGATION)]
    pub value_col: Option<String>,
    /// Value type: exact integers or floats [default: float].
    #[arg(long, value_enum, help_heading = AGGREGATION)]
    pub value_type: Option<ValueTypeArg>,
    /// Aggregates: count,sum,avg,min,max,variance,stddev (each once) [default: count].
    #[arg(long, value_name = "LIST", help_heading = AGGREGATION)]
    pub agg: Option<String>,
    /// Pattern of --job grep (plain text).
    #[arg(long, value_name = "P", help_heading = AGGREGATION)]
    pub pattern: Option<String>,
    /// Only records whose field equals the text are events, e.g. `--where
    /// event_type=view` (aggregate jobs).
    #[arg(long = "where", value_name = "FIELD=TEXT", help_heading = AGGREGATION)]
    pub where_: Option<String>,
    /// Replace each key by its group from a CSV table `key,group` (with a
    /// header); events whose key is not in it are dropped and counted, e.g.
    /// YSB's ad → campaign table (aggregate jobs).
    #[arg(long, value_name = "PATH", help_heading = AGGREGATION)]
    pub lookup: Option<PathBuf>,
    /// Output format (default: table on a terminal, csv otherwise).
    #[arg(long, value_enum, help_heading = OUTPUT)]
    pub output: Option<OutputArg>,
    /// Write the output to a file instead of stdout.
    #[arg(long, value_name = "PATH", help_heading = OUTPUT)]
    pub output_file: Option<PathBuf>,
    /// Rows a table shows per window, as Spark's pprint (default: 10, or
    /// --top's N).
    #[arg(long, value_name = "N", help_heading = OUTPUT)]
    pub print_rows: Option<usize>,
    /// Only the N rows with the largest value per window, largest first, ties
    /// by key (wordcount and grep: the count; aggregate: the first of --agg).
    #[arg(long, value_name = "N", help_heading = OUTPUT)]
    pub top: Option<usize>,
    #[command(flatten)]
    pub kafka_output: super::kafka_output::KafkaOutputArgs,
    /// No progress bar, no summary.
    #[arg(long, short, help_heading = REPORTING)]
    pub quiet: bool,
    /// Write the closing summary as JSON to a file, or to stdout with `-`
    /// (then the window output needs --output-file).
    #[arg(long, value_name = "PATH", help_heading = REPORTING)]
    pub stats_json: Option<PathBuf>,
    #[command(flatten)]
    pub observe: super::observe::ObserveArgs,
    /// Worker threads (default, and 0: all cores; at most max(4 × cores,
    /// 64), and never above 1024).
    #[arg(long, value_name = "N", help_heading = EXECUTION)]
    pub threads: Option<usize>,
    /// Take checkpoints in this directory, and resume from its last one:
    /// the same command after a crash or kill continues where the
    /// checkpoint left off (a file input from its offset, --output-file cut
    /// back to what was committed: the output is byte for byte that of an
    /// uninterrupted run). Records in flight from stdin or a socket are lost.
    #[arg(long, value_name = "DIR", help_heading = EXECUTION)]
    pub checkpoint: Option<PathBuf>,
    /// Wall time between checkpoints (0: at every piece of input) [default: 10s].
    #[arg(long, value_name = "DURATION", help_heading = EXECUTION)]
    pub checkpoint_every: Option<String>,
    /// With --checkpoint: ignore (and remove) the directory's checkpoints
    /// and run the job from its start.
    #[arg(long, help_heading = EXECUTION)]
    pub from_scratch: bool,
}

/// Where and how the output goes.
#[derive(Debug, Clone)]
pub struct OutputOptions {
    pub format: OutputFormat,
    pub parquet: bool,
    pub file: Option<PathBuf>,
    pub table_rows: usize,
    /// `--top N`: the N largest rows per window (`engine::sink::RowOrder::Top`).
    pub top: Option<usize>,
    pub quiet: bool,
    /// Where the summary JSON is written, `-` for stdout (then the rows go
    /// to `file`).
    pub stats_json: Option<PathBuf>,
    /// `--output kafka`: the rows go to a topic (`file` is `None`).
    pub kafka: Option<super::kafka_output::KafkaOutput>,
    /// The output's columns when they are not the job's own (a two-stage
    /// job's final stage names its merged sums as the job's counts).
    pub columns: Option<Vec<(engine::Agg, &'static str)>>,
}

impl OutputOptions {
    /// `config` with this output in its checkpoints' fingerprint: a resumed
    /// job must write what the interrupted one wrote.
    fn fingerprinted(&self, mut config: JobConfig) -> JobConfig {
        if let Some(checkpoint) = &mut config.checkpoint {
            let file = super::kafka_output::destination(self.file.as_deref(), self.kafka.as_ref());
            checkpoint.output = format!(
                "{:?} to {file}, top {:?}, {} table rows",
                self.format, self.top, self.table_rows
            );
        }
        config
    }
}

fn format_of(f: FormatArg) -> Format {
    match f {
        FormatArg::Text => Format::Text,
        FormatArg::Csv => Format::Csv,
        FormatArg::Ndjson => Format::Ndjson,
        FormatArg::Arrow => Format::Arrow,
        FormatArg::Parquet => Format::Parquet,
        FormatArg::Binary => Format::Binary,
    }
}

/// The most worker threads `--threads` takes: 4 per core, at least 64, at
/// most 1024.
pub(super) fn thread_cap() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    cores
        .saturating_mul(4)
        .clamp(64, engine::window::MAX_THREADS)
}

/// The longest line `--max-line-bytes` takes.
pub(super) const MAX_LINE_BYTES_CAP: usize = 1 << 30;

/// The fastest virtual time `--rate` takes, records per second: one record
/// a nanosecond (beyond it every record of any input shares one millisecond).
pub(super) const MAX_RATE: u64 = 1_000_000_000;

impl RunArgs {
    /// The job and its output options, or a usage error naming the culprit.
    /// Every flag is checked here, before any input is read; warnings (a
    /// window shorter than its slide) go to stderr.
    pub fn into_job(mut self) -> Result<(JobConfig, OutputOptions)> {
        // One --kafka-brokers for the Kafka input and output.
        self.kafka_output
            .kafka_brokers
            .clone_from(&self.kafka.kafka_brokers);
        self.check_values()?;
        let spec = self.window_spec()?;
        let until = self
            .until
            .as_deref()
            .map(|u| parse_duration(u, "--until"))
            .transpose()?;
        if let Some(until) = until {
            if until < spec.slide() {
                bail!(usage(format!(
                    "--until {} is before the first window end (--slide {}): no window would be emitted",
                    self.until.as_deref().unwrap_or_default(),
                    self.slide.as_deref().unwrap_or(&self.batch),
                )));
            }
        }
        let run_for = self
            .run_for
            .as_deref()
            .map(|r| parse_duration(r, "--run-for"))
            .transpose()?
            .map(|ms| Duration::from_millis(ms as u64));
        let max_line_bytes = parse_bytes(&self.max_line_bytes)?;
        let key_ttl = self
            .key_ttl
            .as_deref()
            .map(|t| parse_duration(t, "--key-ttl"))
            .transpose()?;
        if key_ttl.is_some() && !self.keep_empty {
            bail!(usage(
                "--key-ttl applies to --keep-empty: without it a key leaves as soon as it has no event in the window"
            ));
        }
        let key_ttl = key_ttl.map(|ms| Duration::from_millis(ms as u64));
        let checkpoint = self.checkpointing()?;
        self.check_paths()?;
        let time = match (&self.time_col, self.rate) {
            (Some(col), _) => TimeMode::Column(col.clone()),
            (None, Some(rate)) => TimeMode::Rate(rate),
            (None, None) => TimeMode::Processing,
        };
        let mut config = JobConfig {
            input: self.input()?,
            format: self.format.map(format_of),
            time,
            kind: self.kind()?,
            spec,
            until,
            keep_empty: self.keep_empty,
            key_ttl,
            threads: self.threads.unwrap_or(0),
            on_error: match self.on_error {
                OnErrorArg::Skip => OnError::Skip,
                OnErrorArg::Fail => OnError::Fail,
            },
            max_line_bytes,
            run_for,
            socket: self.socket_options()?,
            mmap: if self.no_mmap {
                MmapChoice::never()
            } else {
                // SAFETY: mapping a file that another process modifies or
                // truncates while the job reads it is undefined behaviour
                // (the parsers take `&str` slices of the mapped bytes; a
                // truncation is a SIGBUS). As ripgrep does, the binary maps
                // by default, because input files are nearly always at rest
                // and mapping is the fast path; `--no-mmap` (in `--help`)
                // reads the file instead when it may change.
                unsafe { MmapChoice::auto() }
            },
            checkpoint,
            metrics: None,
        };
        let format = config.effective_format();
        if format.is_columnar() && self.key_col.is_none() {
            bail!(usage(format!(
                "{} input holds columns: it needs --key-col (aggregate)",
                format.name()
            )));
        }
        if format != Format::Text && self.job.is_none() && self.key_col.is_none() {
            bail!(usage(format!(
                "{} input needs --key-col (aggregate) or an explicit --job wordcount|grep",
                format.name()
            )));
        }
        let mut output = self.output_options()?;
        self.kafka.finish(&mut config, &mut output)?;
        config.validate()?;
        let config = output.fingerprinted(config);
        let (window, slide) = (config.spec.window(), config.spec.slide());
        if window < slide {
            super::diag(&format!(
                "engine: warning: --window {} is shorter than --slide {}: records in the {} ms \
                 between one window's end and the next one's start are in no window",
                self.window.as_deref().unwrap_or(&self.batch),
                self.slide.as_deref().unwrap_or(&self.batch),
                slide - window
            ));
        }
        Ok((config, output))
    }

    /// `--checkpoint`, `--checkpoint-every`, `--from-scratch`.
    fn checkpointing(&self) -> Result<Option<Checkpointing>> {
        let Some(dir) = &self.checkpoint else {
            if self.checkpoint_every.is_some() || self.from_scratch {
                bail!(usage(format!(
                    "{} needs --checkpoint DIR",
                    if self.from_scratch {
                        "--from-scratch"
                    } else {
                        "--checkpoint-every"
                    }
                )));
            }
            return Ok(None);
        };
        if dir.as_os_str().is_empty() {
            bail!(usage("--checkpoint needs a directory"));
        }
        if self.output == Some(OutputArg::Parquet) {
            bail!(usage(
                "--checkpoint cannot resume --output parquet (its rows are written at the end): use csv or ndjson"
            ));
        }
        let every = match self.checkpoint_every.as_deref() {
            None => Checkpointing::DEFAULT_EVERY,
            Some(text) => {
                let ms = parse_duration_or_zero(text, "--checkpoint-every")?;
                Duration::from_millis(ms)
            }
        };
        Ok(Some(Checkpointing {
            dir: dir.clone(),
            every,
            output: String::new(),
        }))
    }

    fn socket_options(&self) -> Result<engine::source::SocketOptions> {
        let duration = |value: &Option<String>, flag: &str| {
            value
                .as_deref()
                .map(|v| parse_duration(v, flag).map(|ms| Duration::from_millis(ms as u64)))
                .transpose()
        };
        if self.max_connections == 0 {
            bail!(usage("--max-connections must be at least 1"));
        }
        Ok(engine::source::SocketOptions {
            max_connections: self.max_connections,
            connect_timeout: duration(&self.connect_timeout, "--connect-timeout")?,
            idle_timeout: duration(&self.idle_timeout, "--idle-timeout")?,
        })
    }

    fn window_spec(&self) -> Result<WindowSpec> {
        let batch = parse_duration(&self.batch, "--batch")?;
        let or_batch = |value: &Option<String>, flag: &str| {
            value
                .as_deref()
                .map_or(Ok(batch), |v| parse_duration(v, flag))
        };
        let window = or_batch(&self.window, "--window")?;
        let slide = or_batch(&self.slide, "--slide")?;
        Ok(WindowSpec::from_millis(batch, window, slide)?)
    }

    fn input(&self) -> Result<Input> {
        let format = self.format.map(format_of).or(Some(Format::Text));
        if let Some(kafka) = self.kafka.options(format, self.time_col.as_deref())? {
            return Ok(Input::Kafka(kafka));
        }
        let s = &self.source;
        Ok(match (&s.input, &s.connect, &s.listen, &s.generate) {
            (Some(path), ..) if path.as_os_str() == "-" => Input::Stdin,
            (Some(path), ..) => Input::File(path.clone()),
            (_, Some(addr), ..) => Input::Connect(addr.clone()),
            (_, _, Some(addr), _) => Input::Listen(listen_address(addr)),
            (.., Some(name)) => {
                let records = self.records.unwrap_or(1_000_000);
                match super::generate::by_name(name, records) {
                    Some(generator) => Input::Generate(generator),
                    None => bail!(usage(format!(
                        "unknown generator `{name}` (expected words or events)"
                    ))),
                }
            }
            _ => bail!(usage(
                "one of --input, --connect, --listen, --generate or --kafka-topic is required"
            )),
        })
    }

    fn kind(&self) -> Result<JobKind> {
        let job = self.job.unwrap_or(if self.key_col.is_some() {
            JobArg::Aggregate
        } else {
            JobArg::Wordcount
        });
        if self.pattern.is_some() && job != JobArg::Grep {
            bail!(usage("--pattern goes with --job grep"));
        }
        if job != JobArg::Aggregate && (self.where_.is_some() || self.lookup.is_some()) {
            bail!(usage(
                "--where and --lookup read fields: they go with --job aggregate (--key-col)"
            ));
        }
        if job != JobArg::Aggregate && (self.key_col.is_some() || self.value_col.is_some()) {
            bail!(usage(
                "--key-col and --value-col go with --job aggregate (the default with --key-col)"
            ));
        }
        if job != JobArg::Aggregate && (self.agg.is_some() || self.value_type.is_some()) {
            bail!(usage(
                "--agg and --value-type go with --job aggregate: a word count or grep counts"
            ));
        }
        Ok(match job {
            JobArg::Aggregate => {
                let Some(key) = self.key_col.clone() else {
                    bail!(usage("--job aggregate needs --key-col"));
                };
                JobKind::Aggregate {
                    key,
                    value: self.value_col.clone(),
                    aggs: self.agg.as_deref().unwrap_or("count").parse::<AggSet>()?,
                    value_type: match self.value_type.unwrap_or(ValueTypeArg::Float) {
                        ValueTypeArg::Int => ValueType::I64,
                        ValueTypeArg::Float => ValueType::F64,
                    },
                    filter: self
                        .where_
                        .as_deref()
                        .map(|w| match w.split_once('=') {
                            Some((field, text)) if !field.is_empty() => {
                                Ok((field.to_owned(), text.to_owned()))
                            }
                            _ => Err(usage(format!(
                                "--where {w}: FIELD=TEXT expected, e.g. --where event_type=view"
                            ))),
                        })
                        .transpose()?,
                    lookup: self
                        .lookup
                        .as_deref()
                        .map(|p| Lookup::from_csv_file(p).map(Arc::new))
                        .transpose()?,
                }
            }
            JobArg::Wordcount => JobKind::WordCount,
            JobArg::Grep => match &self.pattern {
                Some(p) if p.contains(['\n', '\r']) => bail!(usage(
                    "--pattern cannot hold a line break: records are lines, so it would never match"
                )),
                Some(p) => JobKind::Grep(p.clone()),
                None => bail!(usage("--job grep needs --pattern")),
            },
        })
    }

    fn output_options(&self) -> Result<OutputOptions> {
        let output = match self.output {
            Some(o) => o,
            None if self.output_file.is_none() && std::io::stdout().is_terminal() => {
                OutputArg::Table
            }
            None => OutputArg::Csv,
        };
        if output == OutputArg::Parquet {
            if !cfg!(feature = "parquet") {
                bail!(usage(
                    "--output parquet needs an engine built with the `parquet` feature \
                     (cargo build --release -p engine --features parquet)"
                ));
            }
            if self.output_file.is_none() {
                bail!(usage("--output parquet needs --output-file"));
            }
            if self.top.is_some() {
                bail!(usage(
                    "--top goes with --output table, csv or ndjson (parquet keeps every row)"
                ));
            }
        }
        let kafka =
            (self.kafka_output).options(output == OutputArg::Kafka, self.output_file.is_some())?;
        if self.kafka.kafka_brokers.is_some()
            && self.kafka.kafka_topic.is_none()
            && output != OutputArg::Kafka
        {
            bail!(usage(
                "--kafka-brokers goes with --kafka-topic or --output kafka"
            ));
        }
        // `-`: the summary goes to stdout once the job is done, alone: window
        // rows there too would mix two formats in one stream.
        let stats_to_stdout = self
            .stats_json
            .as_deref()
            .is_some_and(|p| p.as_os_str() == "-");
        if stats_to_stdout && self.output_file.is_none() && kafka.is_none() {
            bail!(usage(
                "--stats-json - writes the summary to stdout: it needs --output-file for the \
                 window output"
            ));
        }
        Ok(OutputOptions {
            format: match output {
                OutputArg::Table => OutputFormat::Table,
                OutputArg::Ndjson | OutputArg::Kafka => OutputFormat::Ndjson,
                OutputArg::Csv | OutputArg::Parquet => OutputFormat::Csv,
            },
            parquet: output == OutputArg::Parquet,
            file: self.output_file.clone(),
            table_rows: self.print_rows.or(self.top).unwrap_or(10),
            top: self.top,
            quiet: self.quiet,
            stats_json: self.stats_json.clone(),
            kafka,
            columns: None,
        })
    }
}

/// `9999` and `:9999` listen on loopback.
fn listen_address(addr: &str) -> String {
    let port_only = addr.strip_prefix(':').unwrap_or(addr);
    if port_only.chars().all(|c| c.is_ascii_digit()) {
        format!("127.0.0.1:{port_only}")
    } else {
        addr.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_listen_addresses() {
        assert_eq!(parse_bytes("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("lots").is_err());
        assert_eq!(parse_bytes("1GiB").unwrap(), MAX_LINE_BYTES_CAP);
        let err = parse_bytes("1025MiB").unwrap_err().to_string();
        assert!(err.contains("above the cap of 1GiB"), "{err}");
        assert_eq!(listen_address(":9999"), "127.0.0.1:9999");
        assert_eq!(listen_address("0.0.0.0:1"), "0.0.0.0:1");
    }
}
