//! What can be wrong with a columnar input, in the library's words (the
//! `engine` binary adds its flag names).

use crate::error::ColumnRole;

/// The reader's own error (arrow-rs, parquet), kept as a source without
/// making its type part of the API.
pub type ReaderError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What is wrong with a columnar input ([`crate::Error::ColumnarInput`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ColumnarProblem {
    /// A binary events file whose length is not a whole number of events.
    #[error(
        "{len} bytes is not a whole number of {record}-byte events (binary events: i64 time, \
         u32 key, i64 value, little-endian, no header): the file is truncated or not binary events"
    )]
    TruncatedBinary {
        /// The file's length, bytes.
        len: u64,
        /// Bytes an event.
        record: usize,
    },
    /// A binary events stream that ended in the middle of an event.
    #[error(
        "the stream ended {left} bytes into a {record}-byte event: the last event is truncated"
    )]
    TruncatedBinaryStream {
        /// Bytes of the incomplete event.
        left: usize,
        /// Bytes an event.
        record: usize,
    },
    /// A column the job reads is not in the input's schema.
    #[error("no {role} column `{name}`; the input has: {}", available.join(", "))]
    MissingColumn {
        /// What the job reads it for.
        role: ColumnRole,
        /// The name asked for.
        name: String,
        /// The input's columns.
        available: Vec<String>,
    },
    /// A column whose type the job cannot read for its role.
    #[error("the {role} column `{name}` has type {found}; {expected} expected")]
    WrongType {
        /// What the job reads it for.
        role: ColumnRole,
        /// The column's name.
        name: String,
        /// Its type, as the reader names it.
        found: String,
        /// What the role takes.
        expected: &'static str,
    },
    /// A format that cannot come from this kind of input (Parquet from a
    /// pipe, any columnar format from a socket or a generator).
    #[error("{format} input is read from {from}")]
    UnsupportedSource {
        /// The format's name.
        format: &'static str,
        /// Where it can come from.
        from: &'static str,
    },
    /// The bytes are not what the format says (not Arrow IPC, not
    /// Parquet, a corrupt page), with the reader's error.
    #[error("cannot read it as {format}{}", if *.opening { "" } else { " (past its start)" })]
    Unreadable {
        /// The format's name.
        format: &'static str,
        /// Whether it failed at the start (the wrong format: a usage
        /// error) rather than part-way (corrupt data).
        opening: bool,
        /// The reader's error.
        #[source]
        source: ReaderError,
    },
    /// The job reads columns: an aggregate job with a key column.
    #[error("{format} input holds columns: it needs an aggregate job with a key column")]
    NeedsAggregateJob {
        /// The format's name.
        format: &'static str,
    },
}

impl ColumnarProblem {
    /// Whether the problem is the caller's choice of input or columns
    /// (reported as a usage error) rather than data that broke while it
    /// was read.
    #[must_use]
    pub fn is_usage(&self) -> bool {
        match self {
            ColumnarProblem::TruncatedBinaryStream { .. } => false,
            ColumnarProblem::Unreadable { opening, .. } => *opening,
            _ => true,
        }
    }
}
