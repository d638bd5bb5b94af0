//! What a job is (its configuration, checked before any data is read), what
//! it reports, and the hooks it reports through.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::aggregate::{Agg, AggSet};
use crate::columnar::{ColumnNames, ColumnarProblem};
use crate::dictionary::Dictionary;
use crate::error::{ColumnRole, Error, Result};
use crate::ingest::{self, Extract, Field, Fields, Format, Parser, RecordError};
use crate::lookup::Lookup;
use crate::source;
use crate::window::{Retention, ValueType, WindowAggregator, WindowResult, WindowSpec};

/// Where records come from.
#[derive(Debug, Clone)]
pub enum Input {
    /// A file: memory-mapped when the job's [`MmapChoice`] allows it and the
    /// path is a regular file, read as a stream otherwise.
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
    /// A Kafka topic (a build with the `kafka` feature reads it).
    Kafka(source::kafka::KafkaOptions),
}

/// Whether a job may memory-map its input file.
///
/// Mapping is the fast path for files (parsed in parallel in place, pages
/// released behind), but it is only sound while no other process changes
/// the file: the parsers take `&str` slices of the mapped bytes, and bytes
/// that change under a `&str` are undefined behaviour (a truncation is a
/// `SIGBUS`). So, as in ripgrep, only the caller can vouch for it:
/// [`MmapChoice::auto`] is `unsafe`, and the default never maps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MmapChoice {
    enabled: bool,
}

impl MmapChoice {
    /// Map regular files (other paths, pipes and devices, are read).
    ///
    /// # Safety
    ///
    /// No other process may modify or truncate a file the job maps while the
    /// job runs: the mapped bytes are read as `&str` and must not change.
    #[must_use]
    pub unsafe fn auto() -> Self {
        Self { enabled: true }
    }

    /// Never map: files are read as streams, as pipes are.
    #[must_use]
    pub fn never() -> Self {
        Self { enabled: false }
    }

    /// Whether mapping is allowed.
    #[must_use]
    pub fn is_enabled(self) -> bool {
        self.enabled
    }
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
        /// The type of the values: [`ValueType::I64`] (exact) or
        /// [`ValueType::F64`]; only read with a value column.
        value_type: ValueType,
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
    /// Limits and timeouts of the socket sources ([`Input::Connect`],
    /// [`Input::Listen`]).
    pub socket: source::SocketOptions,
    /// Whether an input file may be memory-mapped (see [`MmapChoice`]).
    pub mmap: MmapChoice,
    /// Checkpoints: where and how often (see [`crate::checkpoint`]);
    /// `None` takes none.
    pub checkpoint: Option<crate::checkpoint::Checkpointing>,
    /// Live metrics the job publishes into as it goes (once per batch of
    /// input); `None` keeps none.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
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
    /// Records at or after [`JobConfig::until`]: in no window that is
    /// written, so not aggregated.
    pub after_until: u64,
    /// Well-formed records that yield no event: the filter rejected them,
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
    /// (A uniform sample of at most 100 000 of them on long runs, so that
    /// memory stays bounded.)
    pub batch_latencies: Vec<Duration>,
    /// The longest batch latency.
    pub max_batch_latency: Duration,
    /// Batches processed.
    pub batches: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// The longest a checkpoint held the job up (state copied, encoded,
    /// written and synced, output synced).
    pub checkpoint_max_pause: Duration,
    /// The time all checkpoints held the job up.
    pub checkpoint_total_pause: Duration,
    /// Size of the largest checkpoint, bytes.
    pub checkpoint_max_bytes: u64,
    /// Whether the job's last checkpoint says it finished: its output is
    /// complete (what a front end waits for before putting it in place).
    pub checkpoint_finished: bool,
}

/// Callbacks through which a job reports.
pub trait JobHooks {
    /// A window closed. Its key ids are valid during this call only: the
    /// job may release ids of keys that left every window once it returns
    /// (see [`Dictionary::retain`]), so turn them into strings here.
    fn window(&mut self, window: &WindowResult, dict: &Dictionary) -> Result<()>;
    /// A malformed record was skipped (the first few of each batch).
    fn bad_record(&mut self, origin: &str, line: u64, reason: &RecordError);
    /// Something worth telling (a reconnection, a producer, a filter that
    /// matched nothing).
    fn notice(&mut self, notice: &Notice<'_>);
    /// Bytes of a file processed so far, of `total`.
    fn progress(&mut self, _done: u64, _total: u64) {}
    /// A checkpoint is being taken: make every window delivered so far
    /// durable (flush, fsync) and say where the output stands, so that a
    /// resumed job can cut the output back to it; `finished` when every
    /// window has been delivered (complete the output first: a CSV header
    /// with no window under it). The default: output that cannot be cut
    /// back (a terminal, a pipe), `None`.
    ///
    /// # Errors
    ///
    /// The output could not be made durable; the checkpoint is not taken.
    fn commit_output(
        &mut self,
        _finished: bool,
    ) -> Result<Option<crate::checkpoint::OutputPosition>> {
        Ok(None)
    }
}

/// Something a job tells its hooks ([`JobHooks::notice`]) that is neither a
/// window nor an error.
#[derive(Debug)]
#[non_exhaustive]
pub enum Notice<'a> {
    /// The job listens for producers on this address ([`Input::Listen`]).
    Listening(std::net::SocketAddr),
    /// A producer's CSV header is unusable: the job goes on for the others,
    /// and counts that producer's records as malformed.
    ProducerIgnored {
        /// The producer.
        origin: &'a str,
        /// What is wrong with its header.
        error: &'a Error,
    },
    /// Records were read, but the filter let none through: a field name or
    /// text that is likely misspelt (NDJSON members are not declared, so it
    /// cannot be caught up front).
    FilterMatchedNothing {
        /// The filter's field.
        field: &'a str,
        /// The text it compares with.
        text: &'a str,
    },
    /// A result did not fit its type (an integer sum past 64 bits, a float
    /// sum past ±1.8e308, a sum of squares past `i128`): written as null.
    /// The first few are told one by one, then [`Notice::MoreOverflows`].
    Overflow {
        /// The aggregate.
        agg: Agg,
        /// The key, by name.
        key: &'a str,
        /// The end of its window, ms.
        window_end: i64,
    },
    /// More results overflowed; they are only counted
    /// ([`JobReport::overflowed`]).
    MoreOverflows,
    /// A source's message (a reconnection, a producer that came or went).
    Source(&'a crate::source::SourceNotice),
    /// The Kafka consumer's message (the broker is unreachable, or back).
    Kafka(&'a str),
}

impl std::fmt::Display for Notice<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Listening(addr) => write!(f, "listening on {addr}"),
            Notice::ProducerIgnored { origin, error } => write!(
                f,
                "ignoring {origin}: {}; its records are counted as malformed",
                crate::error::chain(error)
            ),
            Notice::FilterMatchedNothing { field, text } => write!(
                f,
                "no record has {field} = {text:?}: check the filter's field name and text"
            ),
            Notice::Overflow {
                agg,
                key,
                window_end,
            } => write!(
                f,
                "the {} of key {key:?} in the window ending at {window_end} ms overflowed its \
                 type; written as null",
                agg.name()
            ),
            Notice::MoreOverflows => {
                f.write_str("more overflowed results are written as null and counted silently")
            }
            Notice::Source(notice) => write!(f, "{notice}"),
            Notice::Kafka(text) => f.write_str(text),
        }
    }
}

impl JobConfig {
    /// The record field event times come from: `None` in virtual or
    /// processing time, and when they are Kafka record timestamps.
    #[must_use]
    pub fn time_field(&self) -> Option<&str> {
        match (&self.time, &self.input) {
            (TimeMode::Column(_), Input::Kafka(k)) if k.record_time => None,
            (TimeMode::Column(c), _) => Some(c),
            _ => None,
        }
    }

    /// What identifies the job for its checkpoints: the engine version and
    /// every setting that changes the results or the state's layout, by
    /// name. A checkpoint resumes only a job with the same fingerprint.
    #[must_use]
    pub fn fingerprint(&self) -> Vec<(&'static str, String)> {
        // A file is known by its full path, size and modification time: a
        // file rewritten in place (same size, other data) is another input.
        let (input, input_size) = match &self.input {
            Input::File(path) => (
                std::fs::canonicalize(path)
                    .map_or_else(|_| path.display().to_string(), |p| p.display().to_string()),
                std::fs::metadata(path).map_or_else(
                    |e| format!("unknown ({e})"),
                    |m| {
                        let modified = m
                            .modified()
                            .ok()
                            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                            .map_or_else(|| "unknown".into(), |d| format!("{d:?}"));
                        format!("{} bytes, modified {modified} after the epoch", m.len())
                    },
                ),
            ),
            other => (format!("{other:?}"), "a stream".into()),
        };
        let kind = match &self.kind {
            JobKind::Aggregate {
                key,
                value,
                aggs,
                value_type,
                filter,
                lookup,
            } => format!(
                "aggregate key {key:?} value {value:?} {aggs:?} {value_type:?} filter {filter:?} lookup {}",
                lookup.as_ref().map_or_else(|| "none".into(), |l| l.digest())
            ),
            other => format!("{other:?}"),
        };
        vec![
            ("engine version", crate::checkpoint::ENGINE_BUILD.into()),
            ("input", input),
            ("input size", input_size),
            ("format", format!("{:?}", self.effective_format())),
            ("time", format!("{:?}", self.time)),
            ("job", kind),
            ("window", format!("{:?}", self.spec)),
            ("until", format!("{:?}", self.until)),
            ("keep empty", self.keep_empty.to_string()),
            ("key ttl", format!("{:?}", self.key_ttl)),
            (
                "threads",
                if self.threads == 0 {
                    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
                } else {
                    self.threads
                }
                .to_string(),
            ),
            ("on error", format!("{:?}", self.on_error)),
            ("max line bytes", self.max_line_bytes.to_string()),
            (
                "output",
                self.checkpoint
                    .as_ref()
                    .map(|c| c.output.clone())
                    .unwrap_or_default(),
            ),
        ]
    }

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
        if format.is_columnar() {
            self.validate_columnar(format)?;
        }
        if let JobKind::Aggregate { aggs, value, .. } = &self.kind {
            if format == Format::Text {
                return Err(Error::FieldsNeedStructuredInput);
            }
            if aggs.needs_values() && value.is_none() {
                return Err(Error::MissingValueColumn { aggs: aggs.clone() });
            }
            if value.is_some() && self.value_type() == ValueType::None {
                return Err(Error::ValueType(
                    "a value column needs a value type, i64 or f64".into(),
                ));
            }
        }
        if let Some(column) = self.time_field() {
            if format == Format::Text || !matches!(self.kind, JobKind::Aggregate { .. }) {
                return Err(Error::TimeColumnNeedsFields {
                    column: column.to_owned(),
                });
            }
        }
        if let TimeMode::Rate(0) = self.time {
            return Err(Error::NonPositiveRate);
        }
        if self.until.is_some() && self.time == TimeMode::Processing {
            return Err(Error::UntilNeedsEventOrVirtualTime);
        }
        if let JobKind::Grep(p) = &self.kind {
            if p.is_empty() {
                return Err(Error::EmptyPattern);
            }
        }
        Ok(())
    }

    /// Columnar input: a build that reads the format, an aggregate job, a
    /// file or standard input (Parquet: a file).
    fn validate_columnar(&self, format: Format) -> Result<()> {
        if matches!(format, Format::Arrow | Format::Parquet) && !cfg!(feature = "columnar") {
            return Err(Error::FormatNeedsFeature {
                format,
                feature: "columnar",
            });
        }
        let origin = match &self.input {
            Input::File(path) => path.display().to_string(),
            Input::Stdin => "stdin".into(),
            Input::Connect(addr) | Input::Listen(addr) => addr.clone(),
            Input::Generate(generator) => generator.name().to_owned(),
            Input::Kafka(options) => options.topic.clone(),
        };
        let problem = match (&self.input, format) {
            (Input::Stdin, Format::Parquet) => Some(ColumnarProblem::UnsupportedSource {
                format: format.name(),
                from: "a file (its footer is read first), not standard input",
            }),
            (Input::File(_) | Input::Stdin, _) => None,
            _ => Some(ColumnarProblem::UnsupportedSource {
                format: format.name(),
                from: "a file or standard input",
            }),
        };
        let problem = problem.or_else(|| {
            self.column_names()
                .is_none()
                .then_some(ColumnarProblem::NeedsAggregateJob {
                    format: format.name(),
                })
        });
        match problem {
            Some(problem) => Err(Error::ColumnarInput { origin, problem }),
            None => Ok(()),
        }
    }

    /// The columns an aggregate job reads, by name (`None` for other jobs).
    #[must_use]
    pub fn column_names(&self) -> Option<ColumnNames> {
        let JobKind::Aggregate {
            key,
            value,
            value_type,
            filter,
            ..
        } = &self.kind
        else {
            return None;
        };
        Some(ColumnNames {
            key: key.clone(),
            time: self.time_field().map(str::to_owned),
            value: value.clone().map(|v| (v, *value_type)),
            filter: filter.clone(),
        })
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
                value_type,
                filter,
                ..
            } => {
                let time = self.time_field();
                let fields = match format {
                    Format::Csv => {
                        let names = ingest::csv_header_fields(header.unwrap_or(""));
                        ingest::check_csv_header(&names)?;
                        let column = |name: &str, role: ColumnRole| {
                            names
                                .iter()
                                .position(|n| n == name)
                                .map(Field::Column)
                                .ok_or_else(|| Error::UnknownColumn {
                                    role,
                                    name: name.to_owned(),
                                    available: names.clone(),
                                })
                        };
                        Fields {
                            key: column(key, ColumnRole::Key)?,
                            value: value
                                .as_deref()
                                .map(|v| column(v, ColumnRole::Value))
                                .transpose()?
                                .map(|f| (f, *value_type)),
                            time: time.map(|t| column(t, ColumnRole::Time)).transpose()?,
                            columns: names.len(),
                            filter: filter
                                .as_ref()
                                .map(|(f, v)| {
                                    Ok::<_, Error>((column(f, ColumnRole::Filter)?, v.clone()))
                                })
                                .transpose()?,
                        }
                    }
                    _ => Fields {
                        key: Field::Name(key.clone()),
                        value: value.clone().map(|v| (Field::Name(v), *value_type)),
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

    /// The type of the values the job aggregates ([`ValueType::None`]
    /// without a value column): it fixes the type of the sum, min and max
    /// output columns, whatever the data.
    #[must_use]
    pub fn value_type(&self) -> ValueType {
        match &self.kind {
            JobKind::Aggregate {
                value: Some(_),
                value_type,
                ..
            } => *value_type,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn aggregate_job(value: Option<&str>, aggs: &str) -> JobConfig {
        JobConfig {
            input: Input::File("events.csv".into()),
            format: None,
            time: TimeMode::Column("ts".into()),
            kind: JobKind::Aggregate {
                key: "key".into(),
                value: value.map(str::to_owned),
                aggs: aggs.parse().unwrap(),
                value_type: ValueType::I64,
                filter: Some(("kind".into(), "view".into())),
                lookup: None,
            },
            spec: WindowSpec::from_millis(1_000, 1_000, 1_000).unwrap(),
            until: None,
            keep_empty: false,
            threads: 1,
            on_error: OnError::Skip,
            max_line_bytes: 1 << 20,
            run_for: None,
            socket: source::SocketOptions::default(),
            key_ttl: None,
            mmap: MmapChoice::never(),
            checkpoint: None,
            metrics: None,
        }
    }

    #[test]
    fn configuration_errors_are_typed_and_worded_without_flags() {
        let err = aggregate_job(None, "count,sum").validate().unwrap_err();
        assert!(
            matches!(&err, Error::MissingValueColumn { aggs } if aggs.needs_values()),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the aggregates count,sum need a value column"
        );
        assert!(err.is_usage());
        let mut text = aggregate_job(Some("v"), "sum");
        text.format = Some(Format::Text);
        assert!(matches!(
            text.validate(),
            Err(Error::FieldsNeedStructuredInput)
        ));
        let mut until = aggregate_job(Some("v"), "sum");
        until.time = TimeMode::Processing;
        until.until = Some(5_000);
        assert!(matches!(
            until.validate(),
            Err(Error::UntilNeedsEventOrVirtualTime)
        ));
        let job = aggregate_job(Some("value"), "sum");
        let err = job.parser(Some("ts,key,v,kind")).unwrap_err();
        let Error::UnknownColumn {
            role,
            name,
            available,
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!((*role, name.as_str()), (ColumnRole::Value, "value"));
        assert_eq!(available, &["ts", "key", "v", "kind"]);
        assert!(!err.to_string().contains("--"), "{err}");
        let err = job.parser(Some("ts,key,value")).unwrap_err();
        assert!(matches!(
            err,
            Error::UnknownColumn {
                role: ColumnRole::Filter,
                ..
            }
        ));
    }

    #[test]
    fn io_errors_keep_their_source() {
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let err = Error::io("data.csv", missing);
        assert_eq!(err.to_string(), "data.csv");
        let source = std::error::Error::source(&err).expect("the io error");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert!(err.is_usage());
        // A borrowed OS error is copied with its code.
        let os = std::io::Error::from_raw_os_error(2);
        let Error::Io { source, .. } = Error::io("x", &os) else {
            unreachable!()
        };
        assert_eq!(source.raw_os_error(), Some(2));
    }
}
