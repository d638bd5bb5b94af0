//! The library's error type.

use std::fmt;

/// Everything that can go wrong in the engine that is the caller's doing:
/// invalid batches, invalid window specifications, out-of-order input.
///
/// Broken internal invariants panic instead; they are bugs, not errors.
#[derive(Debug, thiserror::Error, PartialEq)]
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
    /// The aggregates need a value column of a different type, or one is missing.
    #[error("value column mismatch: {0}")]
    ValueType(String),
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
    /// A file, stream or socket could not be opened, read or written.
    #[error("{what}: {message}")]
    Io {
        /// What was being accessed (a path, an address).
        what: String,
        /// What the OS said.
        message: String,
    },
    /// An invalid job: unknown column, missing option, impossible pairing.
    #[error("{0}")]
    Config(String),
    /// A malformed record with `--on-error fail`.
    #[error("{origin} line {line}: {reason}")]
    BadRecord {
        /// Where the record came from (a path, `stdin`, a peer address).
        origin: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
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

impl Error {
    /// An I/O error on `what`.
    pub fn io(what: impl fmt::Display, err: &std::io::Error) -> Self {
        Error::Io {
            what: what.to_string(),
            message: err.to_string(),
        }
    }
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
