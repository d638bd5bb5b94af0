//! Flags of `engine run`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use engine::ingest::{Format, ValueKind};
use engine::job::{Input, JobConfig, JobKind, OnError, TimeMode};
use engine::lookup::Lookup;
use engine::output::OutputFormat;
use engine::{AggSet, WindowSpec};

/// A mistake on the command line (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// Windowed aggregation of files, sockets and generated streams, with Spark
/// Streaming's window semantics.
#[derive(Debug, Parser)]
#[command(name = "engine", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a windowed job.
    Run(Box<RunArgs>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Text,
    Csv,
    Ndjson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobArg {
    /// Aggregates of --value-col per --key-col (the default with --key-col).
    Aggregate,
    /// Words counted per word (the default otherwise).
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

#[derive(Debug, Args)]
#[group(id = "source", required = true, multiple = false)]
pub struct SourceArgs {
    /// Read a file (memory-mapped), or standard input with `-`.
    #[arg(long, value_name = "PATH")]
    pub input: Option<PathBuf>,
    /// Read lines from a TCP server, reconnecting when it goes away.
    #[arg(long, value_name = "HOST:PORT")]
    pub connect: Option<String>,
    /// Listen for producers that push lines (bind address defaults to 127.0.0.1).
    #[arg(long, value_name = "[ADDR]:PORT")]
    pub listen: Option<String>,
    /// Stream a built-in generator: `words` (text) or `events` (CSV ts,key,value).
    #[arg(long, value_name = "NAME")]
    pub generate: Option<String>,
}

/// `engine run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Records a generator produces.
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    pub records: u64,
    /// --listen: producers connected at once; more are refused (closed at once, logged).
    #[arg(long, default_value_t = engine::source::MAX_CONNECTIONS, value_name = "N")]
    pub max_connections: usize,
    /// --connect: give up (exit status 2) after trying this long without a
    /// connection, at the start or after the server went away (default: try
    /// until the job ends).
    #[arg(long, value_name = "DURATION")]
    pub connect_timeout: Option<String>,
    /// --connect, --listen: close a connection that sends nothing for this
    /// long (--connect then reconnects). Default: none (TCP keepalive still
    /// notices a host that is gone).
    #[arg(long, value_name = "DURATION")]
    pub idle_timeout: Option<String>,
    /// Record format (default: from the file extension, text otherwise).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// The job.
    #[arg(long, value_enum)]
    pub job: Option<JobArg>,
    /// Key column (csv) or member (ndjson).
    #[arg(long, value_name = "C")]
    pub key_col: Option<String>,
    /// Value column (csv) or member (ndjson).
    #[arg(long, value_name = "C")]
    pub value_col: Option<String>,
    /// Value type: exact integers or floats.
    #[arg(long, value_enum, default_value = "float")]
    pub value_type: ValueTypeArg,
    /// Aggregates: count,sum,avg,min,max,variance,stddev.
    #[arg(long, default_value = "count", value_name = "LIST")]
    pub agg: String,
    /// Pattern of --job grep (plain text).
    #[arg(long, value_name = "P")]
    pub pattern: Option<String>,
    /// Only records whose field equals the text are events, e.g. `--where
    /// event_type=view` (aggregate jobs).
    #[arg(long = "where", value_name = "FIELD=TEXT")]
    pub where_: Option<String>,
    /// Replace each key by its group from a CSV table `key,group` (with a
    /// header); events whose key is not in it are dropped and counted, e.g.
    /// YSB's ad → campaign table (aggregate jobs).
    #[arg(long, value_name = "PATH")]
    pub lookup: Option<PathBuf>,
    /// Event time from this column: integer ms since the epoch.
    #[arg(long, value_name = "C", conflicts_with = "rate")]
    pub time_col: Option<String>,
    /// Virtual time for replays: record i has time floor(i·1000/R) ms.
    #[arg(long, value_name = "R")]
    pub rate: Option<u64>,
    /// Batch interval (250ms, 1s, 2m, …).
    #[arg(long, default_value = "1s", value_name = "DURATION")]
    pub batch: String,
    /// Window length (default: the batch interval).
    #[arg(long, value_name = "DURATION")]
    pub window: Option<String>,
    /// Slide (default: the batch interval).
    #[arg(long, value_name = "DURATION")]
    pub slide: Option<String>,
    /// In event or virtual time: emit windows up to and including this end.
    #[arg(long, value_name = "DURATION")]
    pub until: Option<String>,
    /// Spark's inverse-reduce output: keys stay once seen, with 0.
    #[arg(long)]
    pub keep_empty: bool,
    /// Worker threads (default: all cores).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
    /// Output format.
    #[arg(long, value_enum)]
    pub output: Option<OutputArg>,
    /// Write the output to a file instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub output_file: Option<PathBuf>,
    /// Rows a table shows per window, as Spark's pprint.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub print_rows: usize,
    /// No progress bar, no summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Write the closing summary as JSON.
    #[arg(long, value_name = "PATH")]
    pub stats_json: Option<PathBuf>,
    /// Malformed records: skip (count, report the first few) or fail.
    #[arg(long, value_enum, default_value = "skip")]
    pub on_error: OnErrorArg,
    /// Lines longer than this are malformed (bytes; K, M, KiB, MiB accepted).
    #[arg(long, default_value = "1MiB", value_name = "BYTES")]
    pub max_line_bytes: String,
    /// Stop after this much wall-clock time.
    #[arg(long, value_name = "DURATION")]
    pub run_for: Option<String>,
}

/// Where and how the output goes.
#[derive(Debug, Clone)]
pub struct OutputOptions {
    pub format: OutputFormat,
    pub parquet: bool,
    pub file: Option<PathBuf>,
    pub table_rows: usize,
    pub quiet: bool,
    pub stats_json: Option<PathBuf>,
}

/// Parses `250ms`, `1s`, `1.5s`, `2m`, `1h` into whole milliseconds
/// (exactly: decimals are read as integers, not floats).
pub fn parse_duration(text: &str, flag: &str) -> Result<i64> {
    let bad = || {
        usage(format!(
            "invalid duration `{text}` for {flag} (expected e.g. 250ms, 1s, 2m, 1h)"
        ))
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (number, unit) = t.split_at(split);
    let scale: u128 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') || fraction.len() > 18 {
        return Err(bad());
    }
    let digits = |s: &str| -> Result<u128> {
        if s.is_empty() {
            Ok(0)
        } else {
            s.parse::<u128>().map_err(|_| bad())
        }
    };
    let denominator = 10_u128.pow(fraction.len() as u32);
    let numerator = digits(whole)?
        .checked_mul(denominator)
        .and_then(|n| n.checked_add(digits(fraction).ok()?))
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(bad)?;
    if numerator == 0 || numerator % denominator != 0 {
        return Err(bad());
    }
    i64::try_from(numerator / denominator)
        .ok()
        .filter(|&ms| ms <= 1_000_000_000_000_000)
        .ok_or_else(bad)
}

fn parse_bytes(text: &str) -> Result<usize> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => 0,
    };
    match number.parse::<usize>() {
        Ok(n) if n > 0 && scale > 0 => Ok(n.saturating_mul(scale)),
        _ => Err(usage(format!(
            "invalid size `{text}` for --max-line-bytes (expected e.g. 4096, 64KiB, 1MiB)"
        ))),
    }
}

impl RunArgs {
    /// The job and its output options, or a usage error naming the culprit.
    pub fn into_job(self) -> Result<(JobConfig, OutputOptions)> {
        let spec = self.window_spec()?;
        let until = self
            .until
            .as_deref()
            .map(|u| parse_duration(u, "--until"))
            .transpose()?;
        let run_for = self
            .run_for
            .as_deref()
            .map(|r| parse_duration(r, "--run-for"))
            .transpose()?
            .map(|ms| Duration::from_millis(ms as u64));
        let time = match (&self.time_col, self.rate) {
            (Some(col), _) => TimeMode::Column(col.clone()),
            (None, Some(rate)) => TimeMode::Rate(rate),
            (None, None) => TimeMode::Processing,
        };
        let config = JobConfig {
            input: self.input()?,
            format: self.format.map(|f| match f {
                FormatArg::Text => Format::Text,
                FormatArg::Csv => Format::Csv,
                FormatArg::Ndjson => Format::Ndjson,
            }),
            time,
            kind: self.kind()?,
            spec,
            until,
            keep_empty: self.keep_empty,
            threads: self.threads,
            on_error: match self.on_error {
                OnErrorArg::Skip => OnError::Skip,
                OnErrorArg::Fail => OnError::Fail,
            },
            max_line_bytes: parse_bytes(&self.max_line_bytes)?,
            run_for,
            socket: self.socket_options()?,
        };
        config.validate()?;
        Ok((config, self.output_options()?))
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
        let s = &self.source;
        Ok(match (&s.input, &s.connect, &s.listen, &s.generate) {
            (Some(path), ..) if path.as_os_str() == "-" => Input::Stdin,
            (Some(path), ..) => Input::File(path.clone()),
            (_, Some(addr), ..) => Input::Connect(addr.clone()),
            (_, _, Some(addr), _) => Input::Listen(listen_address(addr)),
            (.., Some(name)) => Input::Generate {
                name: name.clone(),
                records: self.records,
            },
            _ => bail!(usage(
                "one of --input, --connect, --listen or --generate is required"
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
        Ok(match job {
            JobArg::Aggregate => {
                let Some(key) = self.key_col.clone() else {
                    bail!(usage("--job aggregate needs --key-col"));
                };
                JobKind::Aggregate {
                    key,
                    value: self.value_col.clone(),
                    aggs: self.agg.parse::<AggSet>()?,
                    value_kind: match self.value_type {
                        ValueTypeArg::Int => ValueKind::Int,
                        ValueTypeArg::Float => ValueKind::Float,
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
                Some(p) => JobKind::Grep(p.clone()),
                None => bail!(usage("--job grep needs --pattern")),
            },
        })
    }

    fn output_options(self) -> Result<OutputOptions> {
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
        }
        Ok(OutputOptions {
            format: match output {
                OutputArg::Table => OutputFormat::Table,
                OutputArg::Ndjson => OutputFormat::Ndjson,
                OutputArg::Csv | OutputArg::Parquet => OutputFormat::Csv,
            },
            parquet: output == OutputArg::Parquet,
            file: self.output_file,
            table_rows: self.print_rows,
            quiet: self.quiet,
            stats_json: self.stats_json,
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
    fn durations_parse_and_bad_ones_name_the_value() {
        assert_eq!(parse_duration("250ms", "--batch").unwrap(), 250);
        assert_eq!(parse_duration("1.5s", "--batch").unwrap(), 1_500);
        assert_eq!(parse_duration("2m", "--batch").unwrap(), 120_000);
        assert_eq!(parse_duration("1.005s", "--batch").unwrap(), 1_005);
        assert_eq!(parse_duration("0.25s", "--batch").unwrap(), 250);
        for bad in [
            "",
            "1",
            "s",
            "-1s",
            "0s",
            "1.0001ms",
            "1x",
            ".s",
            "1..2s",
            "99999999999999999999999h",
        ] {
            let err = parse_duration(bad, "--window").unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}` for --window")), "{err}");
        }
    }

    #[test]
    fn sizes_and_listen_addresses() {
        assert_eq!(parse_bytes("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("lots").is_err());
        assert_eq!(listen_address(":9999"), "127.0.0.1:9999");
        assert_eq!(listen_address("0.0.0.0:1"), "0.0.0.0:1");
    }
}
