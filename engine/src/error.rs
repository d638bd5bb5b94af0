//! The library's error type.
//!
//! Errors say what is wrong in the library's terms (a key column, the
//! aggregates, the longest line allowed); a front end that has other names
//! for these things (the `engine` binary's flags) matches on the variants
//! and words them its own way.

use std::fmt;

use crate::aggregate::AggSet;
use crate::ingest::RecordError;

/// Everything that can go wrong in the engine that is the caller's doing:
/// invalid batches, invalid window specifications, invalid jobs,
/// out-of-order input, unreadable sources.
///
/// Broken internal invariants panic instead; they are bugs, not errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two columns of one batch have different lengths.
    #[error("column `{column}` has {actual} rows, but the batch has {expected}")]
    LengthMismatch {
        /// The offending column.
        column: String,
        /// The batch's row count (length of the time column).
        expected: usize,
        /// The column's row count.
        actual: usize,
    },
    /// A key id does not belong to the batch's dictionary.
    #[error("key id {id} at row {row} is outside the dictionary of {len} keys")]
    KeyOutOfRange {
        /// Row of the offending key.
        row: usize,
        /// The key id.
        id: u32,
        /// Number of keys in the dictionary.
        len: usize,
    },
    /// A floating-point value is infinite or NaN. Such values would poison an
    /// inverse-reduced sum forever (`inf - inf = NaN`), so they are refused at
    /// the boundary.
    #[error("value {value} at row {row} of column {column} is not finite")]
    NonFiniteValue {
        /// Row of the offending value.
        row: usize,
        /// Index of the value column.
        column: usize,
        /// The value itself.
        value: f64,
    },
    /// The dictionary ran out of `u32` key ids.
    #[error("the key dictionary is full ({0} keys)")]
    DictionaryFull(usize),
    /// An invalid window for the batch path's own checks (an event span or
    /// time out of range).
    // Still built from text by `window/aggregator.rs`, which is being
    // rewritten with the batch path; it moves to typed variants there.
    #[error("invalid window: {0}")]
    InvalidWindow(String),
    /// A batch interval, window length or slide of zero or less.
    #[error("invalid window: the {part} must be positive, got {}", Millis(*.millis))]
    NonPositiveDuration {
        /// Which duration.
        part: WindowPart,
        /// Its value, ms.
        millis: i64,
    },
    /// A window length or slide that is not a whole number of batches.
    #[error(
        "invalid window: the {part} ({}) must be a multiple of the batch interval ({})",
        Millis(*.millis),
        Millis(*.batch)
    )]
    WindowNotMultipleOfBatch {
        /// The window length or the slide.
        part: WindowPart,
        /// Its value, ms.
        millis: i64,
        /// The batch interval, ms.
        batch: i64,
    },
    /// A window that would need more panes (window / gcd(window, slide))
    /// than the operator supports.
    #[error(
        "invalid window: a window of {} sliding by {} needs {panes} panes; at most {max} are \
         supported",
        Millis(*.window),
        Millis(*.slide)
    )]
    TooManyPanes {
        /// The window length, ms.
        window: i64,
        /// The slide, ms.
        slide: i64,
        /// The panes it would need.
        panes: i64,
        /// The most supported.
        max: i64,
    },
    /// A duration with a fraction of a millisecond, or too long for `i64`
    /// milliseconds.
    #[error(
        "invalid window: the {part} ({duration:?}) {}",
        if *.too_long { "is too long" } else { "must be a whole number of milliseconds" }
    )]
    UnrepresentableDuration {
        /// Which duration.
        part: WindowPart,
        /// The duration given.
        duration: std::time::Duration,
        /// Too long (else: not whole milliseconds).
        too_long: bool,
    },
    /// An aggregate name that is not one of the built-in aggregates.
    #[error(
        "unknown aggregate `{0}` (expected one of count, sum, avg, min, max, variance, stddev)"
    )]
    UnknownAggregate(String),
    /// The aggregates need a value column of a different type.
    // Still text: built by `window/aggregator.rs` and `job/config.rs`, which
    // are being rewritten with the batch path.
    #[error("value column mismatch: {0}")]
    ValueType(String),
    /// Aggregates other than count, but no value column to compute them of.
    #[error("the aggregates {} need a value column", agg_names(.aggs))]
    MissingValueColumn {
        /// The job's aggregates.
        aggs: AggSet,
    },
    /// An aggregate job (key and value fields) on text input, which has no
    /// fields.
    #[error("an aggregate job reads fields: the input must be CSV or NDJSON")]
    FieldsNeedStructuredInput,
    /// Event times from a field, but the job reads no fields (text input, or
    /// a word count or grep).
    #[error(
        "the time column `{column}` is a field: it needs an aggregate job on CSV or NDJSON input"
    )]
    TimeColumnNeedsFields {
        /// The time column's name.
        column: String,
    },
    /// Virtual time at zero records a second.
    #[error("the virtual-time rate must be positive")]
    NonPositiveRate,
    /// An end time for the windows in processing time, where windows close on
    /// the wall clock.
    #[error("an end time for the windows needs event time or virtual time")]
    UntilNeedsEventOrVirtualTime,
    /// A grep job with an empty pattern (every line would match).
    #[error("the grep pattern must not be empty")]
    EmptyPattern,
    /// A column the job reads is not in the CSV header.
    #[error("unknown {role} column `{name}`; the CSV header has: {}", available.join(", "))]
    UnknownColumn {
        /// What the job reads the column for.
        role: ColumnRole,
        /// The name it was asked for.
        name: String,
        /// The header's column names.
        available: Vec<String>,
    },
    /// A CSV header that names a column twice: fields by name would be
    /// ambiguous.
    #[error("the CSV header names column `{name}` twice (columns {first} and {second})")]
    DuplicateColumn {
        /// The column's name.
        name: String,
        /// 1-based position of its first occurrence.
        first: usize,
        /// 1-based position of its second occurrence.
        second: usize,
    },
    /// A CSV stream whose first line, the header, is not UTF-8.
    #[error("{origin}: the CSV header is not UTF-8")]
    CsvHeaderNotUtf8 {
        /// The stream (a path, `stdin`, a peer address).
        origin: String,
    },
    /// A CSV stream whose first line, the header, is empty.
    #[error("{origin}: the first line, the CSV header, is empty")]
    EmptyCsvHeader {
        /// The stream (a path, `stdin`, a peer address).
        origin: String,
    },
    /// A parser configuration that does not fit its format (a CSV field by
    /// name, an NDJSON field by index, fields on text).
    // Still text: built by `ingest/mod.rs`, which is being rewritten with the
    // batch path.
    #[error("{0}")]
    InvalidParser(String),
    /// Events were pushed for a micro-batch whose pane is already closed.
    #[error(
        "micro-batch {index} arrived after its pane was closed (the operator is at batch {open})"
    )]
    LateBatch {
        /// The micro-batch index that arrived.
        index: i64,
        /// The first micro-batch index still open.
        open: i64,
    },
    /// The operator was asked to stop (its interrupt flag was set) in the
    /// middle of a long run of windows.
    #[error("interrupted")]
    Interrupted,
    /// A file, stream or socket could not be opened, read or written. The
    /// operating system's error is the [`source`](std::error::Error::source),
    /// so that a chain of errors prints each once (`what: why`).
    #[error("{what}")]
    Io {
        /// What was being accessed (a path, an address).
        what: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A job's checkpoints cannot be read, used or written.
    #[error(transparent)]
    Checkpoint(Box<crate::checkpoint::CheckpointError>),
    /// A lookup table that cannot be used.
    #[error("{origin}{}: {problem}", .line.map(|l| format!(" line {l}")).unwrap_or_default())]
    LookupTable {
        /// The table (a path).
        origin: String,
        /// The 1-based line at fault, if one is.
        line: Option<usize>,
        /// What is wrong.
        problem: LookupProblem,
    },
    /// A streaming context run without any input stream.
    #[error("the streaming context has no source to run")]
    NoSource,
    /// A malformed record when malformed records are errors
    /// ([`OnError::Fail`](crate::job::OnError::Fail)).
    #[error("{origin} line {line}: {reason}")]
    BadRecord {
        /// Where the record came from (a path, `stdin`, a peer address).
        origin: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: RecordError,
    },
    /// A columnar input (Arrow IPC, Parquet, binary events) that cannot be
    /// read as the job asks: a missing column, a column of the wrong type,
    /// a truncated file. What is wrong is the
    /// [`source`](std::error::Error::source), with the reader's own error
    /// behind it when there is one.
    #[error("{origin}")]
    ColumnarInput {
        /// The input (a path, `stdin`).
        origin: String,
        /// What is wrong.
        #[source]
        problem: crate::columnar::ColumnarProblem,
    },
    /// A record format this build cannot read: it needs a cargo feature.
    #[error("{} input needs an engine built with the `{feature}` feature", .format.name())]
    FormatNeedsFeature {
        /// The format.
        format: crate::ingest::Format,
        /// The cargo feature that reads it.
        feature: &'static str,
    },
    /// Something this build cannot do: it needs a cargo feature.
    #[error("{what} needs an engine built with the `{feature}` feature")]
    NeedsFeature {
        /// What was asked for (`Kafka input`).
        what: &'static str,
        /// The cargo feature that does it.
        feature: &'static str,
    },
    /// The Kafka client failed: the broker refused a request, a topic does
    /// not exist, a commit or a delivery failed.
    #[error("Kafka: {what}")]
    Kafka {
        /// What was being done, with the topic or broker involved.
        what: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The worker thread pool could not be built: more threads than
    /// [`MAX_THREADS`](crate::window::MAX_THREADS) were asked for (no
    /// source), or the OS refused them (the source).
    #[error(
        "could not start {threads} worker threads{}",
        if .source.is_none() { too_many_threads() } else { String::new() }
    )]
    ThreadPool {
        /// Requested threads.
        threads: usize,
        /// Why rayon could not build the pool.
        #[source]
        source: Option<rayon::ThreadPoolBuildError>,
    },
}

/// The suffix of an [`Error::ThreadPool`] without a source: too many threads.
fn too_many_threads() -> String {
    format!(
        ": at most {} worker threads are supported",
        crate::window::MAX_THREADS
    )
}

/// Which duration of a window specification is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WindowPart {
    /// The batch interval.
    BatchInterval,
    /// The window length.
    WindowLength,
    /// The slide.
    Slide,
}

impl fmt::Display for WindowPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WindowPart::BatchInterval => "batch interval",
            WindowPart::WindowLength => "window length",
            WindowPart::Slide => "slide",
        })
    }
}

/// What is wrong with a lookup table ([`Error::LookupTable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LookupProblem {
    /// Larger than the limit, in MiB.
    TooLarge {
        /// The limit, MiB.
        mib: u64,
    },
    /// Not UTF-8.
    NotUtf8,
    /// No header (only blank lines).
    Empty,
    /// A header of fewer than two columns.
    NeedsTwoColumns {
        /// The header line.
        header: String,
    },
    /// A header that names a column twice.
    DuplicateColumn {
        /// The column's name.
        name: String,
        /// 1-based position of its first occurrence.
        first: usize,
        /// 1-based position of its second occurrence.
        second: usize,
    },
    /// A row with broken quoting.
    BrokenQuoting,
    /// A row of fewer than two columns.
    TwoColumnsExpected,
    /// A row with an empty key.
    EmptyKey,
    /// A row with an empty group.
    EmptyGroup,
    /// A key mapped to two groups.
    ConflictingGroups {
        /// The key.
        key: String,
        /// The group it was first mapped to.
        first: String,
        /// The other group.
        second: String,
    },
    /// A header and no rows.
    NoRows,
}

impl fmt::Display for LookupProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupProblem::TooLarge { mib } => {
                write!(f, "the lookup table is larger than {mib} MiB")
            }
            LookupProblem::NotUtf8 => f.write_str("the lookup table is not UTF-8"),
            LookupProblem::Empty => f.write_str("the lookup table is empty"),
            LookupProblem::NeedsTwoColumns { header } => write!(
                f,
                "the lookup table needs two columns, key and group (header `{header}`)"
            ),
            LookupProblem::DuplicateColumn {
                name,
                first,
                second,
            } => write!(
                f,
                "the CSV header names column `{name}` twice (columns {first} and {second})"
            ),
            LookupProblem::BrokenQuoting => f.write_str("broken quoting"),
            LookupProblem::TwoColumnsExpected => f.write_str("two columns expected"),
            LookupProblem::EmptyKey => f.write_str("empty key"),
            LookupProblem::EmptyGroup => f.write_str("empty group"),
            LookupProblem::ConflictingGroups { key, first, second } => {
                write!(f, "key `{key}` maps to both `{first}` and `{second}`")
            }
            LookupProblem::NoRows => f.write_str("the lookup table has a header but no rows"),
        }
    }
}

/// What a job reads a column for: named in [`Error::UnknownColumn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ColumnRole {
    /// The key the job groups by.
    Key,
    /// The values it aggregates.
    Value,
    /// Event times.
    Time,
    /// The field a record filter compares.
    Filter,
}

impl fmt::Display for ColumnRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ColumnRole::Key => "key",
            ColumnRole::Value => "value",
            ColumnRole::Time => "time",
            ColumnRole::Filter => "filter",
        })
    }
}

impl Error {
    /// An I/O error on `what`. Pass the error by value to keep it as the
    /// source; a borrowed one is copied (its kind, OS code and message).
    pub fn io(what: impl fmt::Display, err: impl Into<IoSource>) -> Self {
        Error::Io {
            what: what.to_string(),
            source: err.into().0,
        }
    }

    /// Whether the error is the caller's configuration or environment (an
    /// invalid window, job or column, a file that cannot be opened, an
    /// unreachable address) rather than the data or a failure while running:
    /// what a command line reports as a usage error.
    #[must_use]
    pub fn is_usage(&self) -> bool {
        match self {
            Error::Io { .. }
            | Error::LookupTable { .. }
            | Error::NoSource
            | Error::InvalidWindow(_)
            | Error::NonPositiveDuration { .. }
            | Error::WindowNotMultipleOfBatch { .. }
            | Error::TooManyPanes { .. }
            | Error::UnrepresentableDuration { .. }
            | Error::UnknownAggregate(_)
            | Error::ValueType(_)
            | Error::MissingValueColumn { .. }
            | Error::FieldsNeedStructuredInput
            | Error::TimeColumnNeedsFields { .. }
            | Error::NonPositiveRate
            | Error::UntilNeedsEventOrVirtualTime
            | Error::EmptyPattern
            | Error::UnknownColumn { .. }
            | Error::DuplicateColumn { .. }
            | Error::CsvHeaderNotUtf8 { .. }
            | Error::EmptyCsvHeader { .. }
            | Error::InvalidParser(_)
            | Error::FormatNeedsFeature { .. }
            | Error::NeedsFeature { .. } => true,
            // A checkpoint that cannot be used is the caller's to fix; one
            // that cannot be written (a full disk) is a failure of the run.
            Error::Checkpoint(e) => !matches!(**e, crate::checkpoint::CheckpointError::Io { .. }),
            Error::ColumnarInput { problem, .. } => problem.is_usage(),
            Error::LengthMismatch { .. }
            | Error::KeyOutOfRange { .. }
            | Error::NonFiniteValue { .. }
            | Error::DictionaryFull(_)
            | Error::LateBatch { .. }
            | Error::Interrupted
            | Error::BadRecord { .. }
            | Error::ThreadPool { .. }
            | Error::Kafka { .. } => false,
        }
    }
}

/// The operating system's error behind an [`Error::Io`]: an owned
/// [`std::io::Error`], or a copy of a borrowed one.
#[derive(Debug)]
pub struct IoSource(std::io::Error);

impl From<std::io::Error> for IoSource {
    fn from(err: std::io::Error) -> Self {
        IoSource(err)
    }
}

impl From<&std::io::Error> for IoSource {
    fn from(err: &std::io::Error) -> Self {
        // `io::Error` is not `Clone`: an OS error is rebuilt from its code
        // (the same kind and message), any other from its kind and text.
        IoSource(match err.raw_os_error() {
            Some(code) => std::io::Error::from_raw_os_error(code),
            None => std::io::Error::new(err.kind(), err.to_string()),
        })
    }
}

/// An error and its sources on one line, `what: why: …`: for messages the
/// library composes itself (a [`Notice`](crate::job::Notice)).
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

/// `count,sum`: the names of a set of aggregates.
fn agg_names(aggs: &AggSet) -> String {
    aggs.aggs()
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(",")
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A duration in milliseconds that prints itself like `1500 ms`.
pub(crate) struct Millis(pub i64);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms", self.0)
    }
}
