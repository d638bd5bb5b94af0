//! What a job is (its configuration, checked before any data is read), what
//! it reports, and the hooks it reports through.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::aggregate::{Agg, AggSet};
use crate::dictionary::Dictionary;
use crate::error::{Error, Result};
use crate::ingest::{self, Extract, Field, Fields, Format, Parser, ValueKind};
use crate::lookup::Lookup;
use crate::source;
use crate::window::{Retention, ValueType, WindowAggregator, WindowResult, WindowSpec};

/// Where records come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file, memory-mapped.
    File(PathBuf),
    /// Standard input.
    Stdin,
    /// A TCP server to connect to (`host:port`), as Spark's
    /// `socketTextStream`.
    Connect(String),
    /// An address to listen on for producers.
    Listen(String),
    /// A generator of records, chosen by the caller.
    Generate(source::Generator),
}

/// Where event times come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeMode {
    /// A record field holding integer ms since the epoch.
    Column(String),
    /// Virtual time for replays: record `i` (0-based) has time
    /// `floor(i·1000/rate)` ms.
    Rate(u64),
    /// The wall clock when the record was received, as Spark Streaming.
    Processing,
}

/// What the job computes per key and window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    /// Aggregates of a value column per key.
    Aggregate {
        /// Key field name.
        key: String,
        /// Value field name (needed by all aggregates but count).
        value: Option<String>,
        /// The aggregates.
        aggs: AggSet,
        /// The value type.
        value_kind: ValueKind,
        /// Only records whose field (name) equals the text are events.
        filter: Option<(String, String)>,
        /// Keys are replaced by their group in this table; events whose key
        /// is not in it are dropped and counted ([`JobReport::unmatched`]).
        lookup: Option<Arc<Lookup>>,
    },
    /// Words (split on ASCII whitespace) counted per word.
    WordCount,
    /// Lines containing a pattern, counted.
    Grep(String),
}

/// What to do with a malformed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Count it, report the first few, go on.
    Skip,
    /// Stop the job at the first one.
    Fail,
}

/// A job.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// The source.
    pub input: Input,
    /// The record format; `None`: from the file extension (text otherwise).
    pub format: Option<Format>,
    /// Where event times come from.
    pub time: TimeMode,
    /// What to compute.
    pub kind: JobKind,
    /// Batch, window and slide.
    pub spec: WindowSpec,
    /// In event or virtual time: emit windows up to and including this end
    /// (ms), even past the last record.
    pub until: Option<i64>,
    /// Spark's inverse-without-filter output: keys stay, with 0.
    pub keep_empty: bool,
    /// With `keep_empty`: keys silent this long leave all the same (see
    /// [`crate::window::WindowAggregatorBuilder::key_ttl`]).
    pub key_ttl: Option<Duration>,
    /// Worker threads (0: all cores).
    pub threads: usize,
    /// Malformed records.
    pub on_error: OnError,
    /// Longer lines are malformed.
    pub max_line_bytes: usize,
    /// Stop after this much wall-clock time.
    pub run_for: Option<Duration>,
    /// Limits and timeouts of `--connect` and `--listen`.
    pub socket: source::SocketOptions,
}

/// What a job did.
#[derive(Debug, Clone, Default)]
pub struct JobReport {
    /// Records read (good and malformed).
    pub records: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Malformed records skipped.
    pub skipped: u64,
    /// Records dropped because their window had already closed.
    pub late: u64,
    /// Events dropped because their key is not in the lookup table.
    pub unmatched: u64,
    /// Events aggregated into windows (a word count's words, one per record
    /// otherwise).
    pub events: u64,
    /// Records whose events went into windows: with `skipped`, `filtered`,
    /// `late`, `unmatched` and `after_until`, every record read.
    pub in_windows: u64,
    /// Records at or after `--until`: in no window that is written, so not
    /// aggregated.
    pub after_until: u64,
    /// Well-formed records that yield no event: `--where` filtered them out,
    /// a grep line without the pattern, a line without words.
    pub filtered: u64,
    /// Window results that overflowed their type and were written as null
    /// (see [`WindowResult::overflows`]).
    pub overflowed: u64,
    /// Whether the job was stopped (Ctrl-C, SIGTERM) before its source ended:
    /// the windows that had closed are out, the open ones are not.
    pub interrupted: bool,
    /// Windows emitted.
    pub windows: u64,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// Processing time of each batch of input (parse, aggregate, emit).
    /// (A uniform sample of at most [`LATENCY_SAMPLES`](super::LATENCY_SAMPLES) of them on long
    /// runs, so that memory stays bounded.)
    pub batch_latencies: Vec<Duration>,
    /// The longest batch latency.
    pub max_batch_latency: Duration,
    /// Batches processed.
    pub batches: u64,
}

/// Callbacks through which a job reports.
pub trait JobHooks {
    /// A window closed.
    fn window(&mut self, window: &WindowResult, dict: &Dictionary) -> Result<()>;
    /// A malformed record was skipped (the first few of each batch).
    fn bad_record(&mut self, origin: &str, line: u64, reason: &str);
    /// Something worth telling (a reconnection, a producer, an overflow).
    fn notice(&mut self, message: &str);
    /// Bytes of a file processed so far, of `total`.
    fn progress(&mut self, _done: u64, _total: u64) {}
}

impl JobConfig {
    /// The record format the job reads.
    #[must_use]
    pub fn effective_format(&self) -> Format {
        self.format.unwrap_or_else(|| match &self.input {
            Input::File(path) => Format::from_path(&path.to_string_lossy()),
            Input::Generate(generator) => generator.format(),
            _ => Format::Text,
        })
    }

    /// The output columns: `(aggregate, column name)`.
    #[must_use]
    pub fn output_columns(&self) -> Vec<(Agg, &'static str)> {
        match &self.kind {
            JobKind::Aggregate { aggs, .. } => aggs.aggs().iter().map(|&a| (a, a.name())).collect(),
            JobKind::WordCount | JobKind::Grep(_) => vec![(Agg::Count, "count")],
        }
    }

    /// Checks the combination of options before any data is read.
    pub fn validate(&self) -> Result<()> {
        let format = self.effective_format();
        let config = |msg: String| Err(Error::Config(msg));
        if let JobKind::Aggregate { aggs, value, .. } = &self.kind {
            if format == Format::Text {
                return config(
                    "--job aggregate reads fields: the input must be csv or ndjson (--format)"
                        .into(),
                );
            }
            if aggs.needs_values() && value.is_none() {
                return config(format!(
                    "--agg {} needs a value column (--value-col)",
                    aggs.aggs()
                        .iter()
                        .map(|a| a.name())
                        .collect::<Vec<_>>()
                        .join(",")
                ));
            }
        }
        if let TimeMode::Column(col) = &self.time {
            if format == Format::Text || !matches!(self.kind, JobKind::Aggregate { .. }) {
                return config(format!(
                    "--time-col {col} reads a field: it needs --job aggregate (--key-col) on csv or ndjson input"
                ));
            }
        }
        if let TimeMode::Rate(0) = self.time {
            return config("--rate must be positive".into());
        }
        if self.until.is_some() && self.time == TimeMode::Processing {
            return config(
                "--until works in event time (--time-col) or virtual time (--rate)".into(),
            );
        }
        if let JobKind::Grep(p) = &self.kind {
            if p.is_empty() {
                return config("--pattern must not be empty".into());
            }
        }
        Ok(())
    }

    /// The parser of records, given the CSV header line when there is one.
    pub(super) fn parser(&self, header: Option<&str>) -> Result<Parser> {
        let format = self.effective_format();
        let extract = match &self.kind {
            JobKind::WordCount => Extract::Words,
            JobKind::Grep(p) => Extract::Grep(p.clone()),
            JobKind::Aggregate {
                key,
                value,
                value_kind,
                filter,
                ..
            } => {
                let time = match &self.time {
                    TimeMode::Column(c) => Some(c.as_str()),
                    _ => None,
                };
                let fields = match format {
                    Format::Csv => {
                        let names = ingest::csv_header_fields(header.unwrap_or(""));
                        ingest::check_csv_header(&names)?;
                        let column = |name: &str, flag: &str| {
                            names
                                .iter()
                                .position(|n| n == name)
                                .map(Field::Column)
                                .ok_or_else(|| {
                                    Error::Config(format!(
                                        "unknown column `{name}` ({flag}); the CSV header has: {}",
                                        names.join(", ")
                                    ))
                                })
                        };
                        Fields {
                            key: column(key, "--key-col")?,
                            value: value
                                .as_deref()
                                .map(|v| column(v, "--value-col"))
                                .transpose()?
                                .map(|f| (f, *value_kind)),
                            time: time.map(|t| column(t, "--time-col")).transpose()?,
                            columns: names.len(),
                            filter: filter
                                .as_ref()
                                .map(|(f, v)| Ok::<_, Error>((column(f, "--where")?, v.clone())))
                                .transpose()?,
                        }
                    }
                    _ => Fields {
                        key: Field::Name(key.clone()),
                        value: value.clone().map(|v| (Field::Name(v), *value_kind)),
                        time: time.map(|t| Field::Name(t.to_owned())),
                        columns: 0,
                        filter: filter
                            .as_ref()
                            .map(|(f, v)| (Field::Name(f.clone()), v.clone())),
                    },
                };
                Extract::Fields(fields)
            }
        };
        Parser::try_new(format, extract, self.max_line_bytes)
    }

    /// The type of the values aggregated (which, with the aggregate, fixes
    /// each output column's type).
    #[must_use]
    pub fn value_type(&self) -> ValueType {
        match &self.kind {
            JobKind::Aggregate {
                value: Some(_),
                value_kind: ValueKind::Int,
                ..
            } => ValueType::I64,
            JobKind::Aggregate {
                value: Some(_),
                value_kind: ValueKind::Float,
                ..
            } => ValueType::F64,
            _ => ValueType::None,
        }
    }

    pub(super) fn operator(
        &self,
        stop: &Arc<AtomicBool>,
        pool: &Arc<rayon::ThreadPool>,
    ) -> Result<WindowAggregator> {
        let aggs = match &self.kind {
            JobKind::Aggregate { aggs, .. } => aggs.clone(),
            _ => AggSet::new([Agg::Count]),
        };
        let builder = WindowAggregator::builder(self.spec)
            .aggregates(aggs)
            .values(self.value_type())
            .retention(if self.keep_empty {
                Retention::SparkCompatible
            } else {
                Retention::Live
            })
            .pool(Arc::clone(pool))
            .interrupt(Arc::clone(stop));
        match self.key_ttl {
            Some(ttl) => builder.key_ttl(ttl),
            None => builder,
        }
        .build()
    }
}
