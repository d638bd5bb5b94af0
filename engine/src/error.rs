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
    /// An invalid batch interval, window length or slide.
    #[error("invalid window: {0}")]
    InvalidWindow(String),
    /// An aggregate name that is not one of the built-in aggregates.
    #[error(
        "unknown aggregate `{0}` (expected one of count, sum, avg, min, max, variance, stddev)"
    )]
    UnknownAggregate(String),
    /// The aggregates need a value column of a different type.
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
    /// Another invalid configuration: a lookup table that cannot be used, a
    /// streaming context without a source, an output that cannot be written.
    #[error("{0}")]
    Config(String),
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
    /// The worker thread pool could not be built.
    #[error("could not start {threads} worker threads: {message}")]
    ThreadPool {
        /// Requested threads.
        threads: usize,
        /// What the OS said.
        message: String,
    },
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
            | Error::Config(_)
            | Error::InvalidWindow(_)
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
            | Error::InvalidParser(_) => true,
            Error::LengthMismatch { .. }
            | Error::KeyOutOfRange { .. }
            | Error::NonFiniteValue { .. }
            | Error::DictionaryFull(_)
            | Error::LateBatch { .. }
            | Error::Interrupted
            | Error::BadRecord { .. }
            | Error::ThreadPool { .. } => false,
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
