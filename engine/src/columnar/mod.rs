//! Pre-parsed columnar input: Arrow IPC files and streams, Parquet files
//! (feature `columnar`, arrow-rs) and the `datasets events --format binary`
//! layout (always), turned into [`Batch`]es column by column, with no
//! allocation per row.
//!
//! A [`Decoder`] appends the rows of a binary block or an Arrow record
//! batch to its buffers — times converted to ms, keys to dictionary ids,
//! values to the job's value type — and hands them over as one [`Piece`]
//! (a [`Batch`] and its record counts) that the job pushes through the
//! same [`crate::operator::Operator`] path as the parsers' batches. A row
//! with a null key, time or value, a time outside ±2^53 ms or a value that
//! does not fit the job's value type is a malformed record: counted and
//! reported like a parse error, never a panic.
//!
//! Keys: text keys go through the parsers' per-thread key cache; the
//! values of a dictionary-encoded column are mapped once per record batch
//! and its indices gathered; integer keys (and the binary layout's `u32`
//! key, written `k17` as the CSV output of the same generator) through a
//! dense array indexed by the key ([`keys`]).
//!
//! Reader choice (issue 10), measured on this project's 2-core machines:
//! see `ARCHITECTURE.md` ("Columnar input") for the build times and
//! reading speeds of arrow-rs and polars' readers.

#[cfg(feature = "columnar")]
mod arrow;
mod binary;
mod keys;
mod problem;
mod read;

pub use binary::RECORD_BYTES;
pub use problem::{ColumnarProblem, ReaderError};
pub(crate) use read::{open, origin, Block, Opened, Place};

use crate::batch::{Batch, Column};
use crate::dictionary::Dictionary;
use crate::error::{ColumnRole, Error};
use crate::ingest::{BadRecord, RecordError, REPORTED_PER_CHUNK};
use crate::window::ValueType;

/// The columns a job reads, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnNames {
    /// The key column.
    pub key: String,
    /// The event-time column, if the job takes times from the records.
    pub time: Option<String>,
    /// The value column and the type the job aggregates, if any.
    pub value: Option<(String, ValueType)>,
    /// Only rows whose column (by name) reads as this text are events.
    pub filter: Option<(String, String)>,
}

/// Rows decoded into one batch, and what became of the others.
#[derive(Debug)]
pub(crate) struct Piece {
    /// The events.
    pub batch: Batch,
    /// Records (rows) read, good and bad.
    pub records: u64,
    /// Well-formed rows the filter rejected.
    pub filtered: u64,
    /// Malformed rows skipped.
    pub skipped: u64,
    /// The first few malformed rows, `line` their 0-based row in the piece.
    pub errors: Vec<BadRecord>,
}

/// Fills a batch's buffers from columnar blocks.
pub(crate) struct Decoder {
    origin: String,
    names: ColumnNames,
    /// Virtual time: each row's record index is needed (rows are dropped).
    with_records: bool,
    /// Binary events: keys written `k{n}`; Arrow integer keys: `{n}`.
    binary_keys: keys::IntKeys,
    #[cfg(feature = "columnar")]
    int_keys: keys::IntKeys,
    times: Vec<i64>,
    keys: Vec<u32>,
    values: Option<Column>,
    records: Vec<u32>,
    /// Rows read into this piece (good and bad).
    rows: u64,
    filtered: u64,
    skipped: u64,
    errors: Vec<BadRecord>,
    /// Rows of the current block to drop, by block row: filtered or bad.
    drops: Vec<(u32, Drop)>,
    /// The reasons of the first few rows of the current block marked bad.
    pending: Vec<(u32, String)>,
    #[cfg(feature = "columnar")]
    plan: Option<arrow::Plan>,
}

/// Why a row of a block is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drop {
    Filtered,
    Bad,
}

impl Decoder {
    /// A decoder of the columns `names` of the input `origin`; with
    /// `with_records`, batches carry each row's record index (virtual
    /// time).
    pub fn new(origin: &str, names: ColumnNames, with_records: bool) -> Self {
        let mut decoder = Self {
            origin: origin.to_owned(),
            names,
            with_records,
            binary_keys: keys::IntKeys::new("k"),
            #[cfg(feature = "columnar")]
            int_keys: keys::IntKeys::new(""),
            times: Vec::new(),
            keys: Vec::new(),
            values: None,
            records: Vec::new(),
            rows: 0,
            filtered: 0,
            skipped: 0,
            errors: Vec::new(),
            drops: Vec::new(),
            pending: Vec::new(),
            #[cfg(feature = "columnar")]
            plan: None,
        };
        decoder.reset_values();
        decoder
    }

    /// Rows buffered for the next piece (good ones).
    pub fn buffered(&self) -> usize {
        self.keys.len()
    }

    /// Records read into the next piece, good and bad.
    pub fn records(&self) -> u64 {
        self.rows
    }

    /// The rows decoded so far as a piece; the buffers move into its batch.
    pub fn take(&mut self, dict: &Dictionary) -> Piece {
        let columns = self.values.take().into_iter().collect();
        let times = if self.names.time.is_some() {
            std::mem::take(&mut self.times)
        } else {
            self.times.clear();
            Vec::new()
        };
        let batch = Batch::from_valid(
            dict.clone(),
            times,
            std::mem::take(&mut self.keys),
            columns,
            std::mem::take(&mut self.records),
        );
        self.reset_values();
        let mut errors = std::mem::take(&mut self.errors);
        errors.sort_by_key(|e| e.line);
        Piece {
            batch,
            records: std::mem::take(&mut self.rows),
            filtered: std::mem::take(&mut self.filtered),
            skipped: std::mem::take(&mut self.skipped),
            errors,
        }
    }

    /// Takes back the buffers of a piece's batch once it is aggregated,
    /// when nothing else holds them.
    pub fn recycle(&mut self, batch: Batch) {
        if !self.keys.is_empty() {
            return;
        }
        if let Some(mut parts) = batch.into_parts() {
            parts.times.clear();
            parts.keys.clear();
            parts.records.clear();
            if parts.times.capacity() > self.times.capacity() {
                self.times = parts.times;
            }
            self.keys = parts.keys;
            self.records = parts.records;
            match (parts.values, &mut self.values) {
                (Some(Column::I64(mut v)), Some(Column::I64(mine))) => {
                    v.clear();
                    *mine = v;
                }
                (Some(Column::F64(mut v)), Some(Column::F64(mine))) => {
                    v.clear();
                    *mine = v;
                }
                _ => {}
            }
        }
    }

    fn reset_values(&mut self) {
        self.values = match self.names.value {
            Some((_, ValueType::I64)) => Some(Column::I64(Vec::new())),
            Some((_, ValueType::F64)) => Some(Column::F64(Vec::new())),
            _ => None,
        };
    }

    /// A row of the current block is malformed (the first reason kept for
    /// a row counts; the first few per piece are reported).
    fn bad(&mut self, row: usize, reason: impl FnOnce() -> String) {
        if self.errors.len() + self.pending.len() < REPORTED_PER_CHUNK {
            self.pending.push((row as u32, reason()));
        }
        self.drops.push((row as u32, Drop::Bad));
    }

    /// A row of the current block that the filter rejects.
    fn filter_out(&mut self, row: usize) {
        self.drops.push((row as u32, Drop::Filtered));
    }

    /// Ends a block of `n` rows appended from buffer row `base` on: drops
    /// the rows marked on the way (each counted once, as what it was marked
    /// first), adds the record column, counts the rows.
    fn end_block(&mut self, base: usize, n: usize) {
        if self.with_records {
            let first = self.rows as u32;
            self.records
                .extend((0..n as u32).map(|i| first.wrapping_add(i)));
        }
        if !self.drops.is_empty() {
            // Stable: a row's first mark wins.
            self.drops.sort_by_key(|&(row, _)| row);
            self.drops.dedup_by_key(|&mut (row, _)| row);
            for &(_, why) in &self.drops {
                match why {
                    Drop::Filtered => self.filtered += 1,
                    Drop::Bad => self.skipped += 1,
                }
            }
            // Rows marked bad that the filter had rejected first are not
            // reported; nor is a second reason for one row.
            let mut pending = std::mem::take(&mut self.pending);
            pending.sort_by_key(|&(row, _)| row);
            let mut reported = u32::MAX;
            for (row, reason) in pending {
                let i = self.drops.partition_point(|&(r, _)| r < row);
                if row != reported && self.drops[i].1 == Drop::Bad {
                    reported = row;
                    self.errors.push(BadRecord {
                        line: self.rows + u64::from(row),
                        reason: RecordError::Invalid(reason),
                    });
                }
            }
            let rows: Vec<u32> = self.drops.iter().map(|&(r, _)| r).collect();
            remove_rows(&mut self.keys, base, &rows);
            if self.times.len() > base {
                remove_rows(&mut self.times, base, &rows);
            }
            if self.with_records {
                remove_rows(&mut self.records, base, &rows);
            }
            match &mut self.values {
                Some(Column::I64(v)) => remove_rows(v, base, &rows),
                Some(Column::F64(v)) => remove_rows(v, base, &rows),
                None => {}
            }
            self.drops.clear();
        }
        self.rows += n as u64;
    }

    fn problem(&self, problem: ColumnarProblem) -> Error {
        Error::ColumnarInput {
            origin: self.origin.clone(),
            problem,
        }
    }

    /// A column the job names but the input lacks.
    fn missing(&self, role: ColumnRole, name: &str, available: Vec<String>) -> Error {
        self.problem(ColumnarProblem::MissingColumn {
            role,
            name: name.to_owned(),
            available,
        })
    }
}

/// Removes rows `base + r` for each `r` of `rows` (sorted, distinct) from
/// `v`, keeping the others in order.
fn remove_rows<T: Copy>(v: &mut Vec<T>, base: usize, rows: &[u32]) {
    let Some(&first) = rows.first() else {
        return;
    };
    let mut write = base + first as usize;
    for (i, &row) in rows.iter().enumerate() {
        let from = base + row as usize + 1;
        let to = rows
            .get(i + 1)
            .map_or(v.len(), |&next| base + next as usize);
        v.copy_within(from..to, write);
        write += to - from;
    }
    v.truncate(write);
}

/// The integer a filter text stands for, when it is an integer written as
/// the engine writes integers (`7`, not `07` or `+7`): a filter compares
/// text, and an integer column's text is its canonical decimal.
fn canonical_integer(text: &str) -> Option<i64> {
    let n: i64 = text.parse().ok()?;
    (n.to_string() == text).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_removed_in_place_keeping_order() {
        let mut v: Vec<u32> = (0..10).collect();
        remove_rows(&mut v, 2, &[0, 3, 4, 7]);
        assert_eq!(v, [0, 1, 3, 4, 7, 8]);
        let mut w = vec![1, 2, 3];
        remove_rows(&mut w, 0, &[]);
        assert_eq!(w, [1, 2, 3]);
        remove_rows(&mut w, 0, &[0, 1, 2]);
        assert!(w.is_empty());
    }

    #[test]
    fn filter_texts_stand_for_integers_only_when_canonical() {
        assert_eq!(canonical_integer("7"), Some(7));
        assert_eq!(canonical_integer("-12"), Some(-12));
        assert_eq!(canonical_integer("07"), None);
        assert_eq!(canonical_integer("+7"), None);
        assert_eq!(canonical_integer("k7"), None);
    }
}
