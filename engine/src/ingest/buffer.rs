//! What a parser fills: plain buffers while it parses ([`ParseBuffer`]),
//! then a [`Batch`] and the piece's record counts ([`Parsed`]).

use super::{BadRecord, Extract, Fields, RecordError, REPORTED_PER_CHUNK};
use crate::batch::{Batch, Column};
use crate::dictionary::Dictionary;
use crate::window::ValueType;

/// The reusable buffers a parser fills with one piece's events, as plain
/// vectors (the parsers' hot loops push to them), and the piece's record
/// counts. [`ParseBuffer::take`] turns them into a [`Parsed`] (a [`Batch`]
/// and the counts) without copying; [`ParseBuffer::recycle`] takes the
/// batch's buffers back once it has been aggregated.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ParseBuffer {
    /// Key ids in the dictionary passed to [`Parser::parse`].
    pub keys: Vec<u32>,
    /// Values, when the job aggregates them.
    pub values: Option<Column>,
    /// Event times, when taken from the records.
    pub times: Vec<i64>,
    /// For each event, the index of its record among the chunk's records.
    pub record_of: Vec<u32>,
    /// Records in the chunk, good and bad (blank CSV/NDJSON lines are not
    /// records).
    pub records: u64,
    /// Lines in the chunk.
    pub lines: u64,
    /// Malformed records skipped.
    pub skipped: u64,
    /// The first few malformed records (8), with their reasons.
    pub errors: Vec<BadRecord>,
}

/// What a parser made of a piece of input: its events as a [`Batch`]
/// (times when the records carry them, keys, the value column, and each
/// row's record index), and how many records, lines and malformed records
/// it held.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The events.
    pub batch: Batch,
    /// Records in the piece, good and bad (blank CSV/NDJSON lines are not
    /// records).
    pub records: u64,
    /// Lines in the piece.
    pub lines: u64,
    /// Malformed records skipped.
    pub skipped: u64,
    /// The first few malformed records (8), with their reasons.
    pub errors: Vec<BadRecord>,
}

impl ParseBuffer {
    /// The events as a batch of `dict`, and the counts; the buffers move
    /// into the batch (nothing is copied) and the counts are reset.
    pub fn take(&mut self, dict: &Dictionary) -> Parsed {
        let columns = self.values.take().into_iter().collect();
        Parsed {
            batch: Batch::from_valid(
                dict.clone(),
                std::mem::take(&mut self.times),
                std::mem::take(&mut self.keys),
                columns,
                std::mem::take(&mut self.record_of),
            ),
            records: std::mem::take(&mut self.records),
            lines: std::mem::take(&mut self.lines),
            skipped: std::mem::take(&mut self.skipped),
            errors: std::mem::take(&mut self.errors),
        }
    }

    /// Takes back the buffers of a batch made by [`take`](Self::take) when
    /// nothing else holds them, so that a steady stream allocates nothing.
    pub fn recycle(&mut self, batch: Batch) {
        if let Some(parts) = batch.into_parts() {
            self.times = parts.times;
            self.keys = parts.keys;
            self.values = parts.values;
            self.record_of = parts.records;
        }
    }

    /// Empties the chunk for reuse, keeping its memory, with the value column
    /// `extract` needs.
    pub(super) fn reset(&mut self, extract: &Extract) {
        let values = match extract {
            Extract::Fields(Fields {
                value: Some((_, ValueType::I64)),
                ..
            }) => Some(Column::I64(Vec::new())),
            Extract::Fields(Fields {
                value: Some((_, ValueType::F64)),
                ..
            }) => Some(Column::F64(Vec::new())),
            _ => None,
        };
        self.values = match (self.values.take(), values) {
            (Some(Column::I64(mut v)), Some(Column::I64(_))) => {
                v.clear();
                Some(Column::I64(v))
            }
            (Some(Column::F64(mut v)), Some(Column::F64(_))) => {
                v.clear();
                Some(Column::F64(v))
            }
            (_, wanted) => wanted,
        };
        self.keys.clear();
        self.times.clear();
        self.record_of.clear();
        self.errors.clear();
        self.records = 0;
        self.lines = 0;
        self.skipped = 0;
    }

    /// Counts a malformed record; the first few keep their reason (built
    /// only for them).
    pub(crate) fn bad(&mut self, line: u64, reason: impl FnOnce() -> String) {
        self.bad_because(line, || RecordError::Invalid(reason()));
    }

    /// [`bad`](Self::bad) with a typed reason.
    pub(crate) fn bad_because(&mut self, line: u64, reason: impl FnOnce() -> RecordError) {
        self.skipped += 1;
        if self.errors.len() < REPORTED_PER_CHUNK {
            self.errors.push(BadRecord {
                line,
                reason: reason(),
            });
        }
    }
}
