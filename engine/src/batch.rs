//! The columnar micro-batch.

use std::ops::Range;
use std::sync::Arc;

use crate::dictionary::Dictionary;
use crate::error::{Error, Result};

/// Rows per chunk when float values are pre-aggregated in parallel.
///
/// Each chunk is pre-aggregated by one worker into a dense scratch array
/// indexed by key id (the chunk's random-access working set, which must stay
/// in L2: 10 000 keys take about 250 KiB of the 2 MiB L2 of one core here),
/// then drained into sparse per-partition partials, which costs one entry per
/// distinct key of the chunk. Larger chunks amortize that drain; smaller ones
/// split a batch more evenly over the workers. Measured with
/// `cargo bench -p bench --bench window -- chunk_rows` (count and sum of
/// `f64`, 10 000 keys, 1 M-event batches, 2 threads; Xeon, Sapphire Rapids
/// class, 2 cores), in M events/s over two runs: 8 Ki rows 72 and 69,
/// 32 Ki 96 and 111, 64 Ki 146 and 148, 128 Ki 179 and 181, 256 Ki 226 and
/// 171, 1 Mi (one chunk, no parallelism) 170 and 147. 128 Ki is as fast as
/// any and the steadiest. Chunk boundaries are fixed, not derived from the
/// thread count: that is what makes float results identical for any number
/// of threads.
pub const CHUNK_ROWS: usize = 128 * 1024;

/// Below this many rows, a batch is aggregated on the calling thread: waking
/// the worker pool costs more than it saves.
pub const MIN_PARALLEL_ROWS: usize = 32 * 1024;

/// A numeric value column.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Signed 64-bit integers: sums over them are exact.
    I64(Vec<i64>),
    /// Finite 64-bit floats: sums over them are compensated.
    F64(Vec<f64>),
}

impl Column {
    /// Number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Column::I64(v) => v.len(),
            Column::F64(v) => v.len(),
        }
    }

    /// Whether the column has no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A borrowed view of the column.
    #[must_use]
    pub fn as_values(&self) -> Values<'_> {
        match self {
            Column::I64(v) => Values::I64(v),
            Column::F64(v) => Values::F64(v),
        }
    }
}

/// A borrowed value column, or none for jobs that only count.
#[derive(Debug, Clone, Copy)]
pub enum Values<'a> {
    /// No values: count-only aggregation.
    None,
    /// Integer values.
    I64(&'a [i64]),
    /// Float values (must be finite).
    F64(&'a [f64]),
}

impl Values<'_> {
    /// Number of rows, or `None` when there is no column.
    #[must_use]
    pub fn len(&self) -> Option<usize> {
        match self {
            Values::None => None,
            Values::I64(v) => Some(v.len()),
            Values::F64(v) => Some(v.len()),
        }
    }

    /// Whether there is a column and it has no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

/// A columnar micro-batch of events: struct-of-arrays, one row per event,
/// from the parser to the operator (arrow's `RecordBatch` in miniature).
///
/// Named columns: `times` (event time, ms; absent when the rows take their
/// time from a [`crate::TimePolicy`]), `keys` (dictionary ids), the value
/// columns, and `records` (for parsed input: the index of the record each
/// row came from, within the parsed piece; a record can yield several rows,
/// a word count's line one per word). Buffers are shared, so
/// [`slice`](Self::slice) and `clone` copy no rows.
///
/// # Invariants
///
/// Checked by [`Batch::try_new`] and kept by every method, since the fields are
/// private:
///
/// - `keys`, every value column, `times` (unless absent) and `records`
///   (unless absent) have the same number of rows;
/// - every key id is `< dictionary.id_bound()` at construction: it names a
///   key of the dictionary for the dictionary's current epoch (see
///   [`Dictionary`] for when ids are released and reused);
/// - every `f64` value is finite (no NaN, no ±∞), so inverse-reduced sums stay
///   finite.
///
/// Times are milliseconds since the epoch; they need not be sorted. A batch
/// made by [`Batch::without_times`] has no time column: its rows are timed
/// by the [`crate::window::TimePolicy`] it is pushed with.
///
/// ```
/// use engine::{Batch, Column, Dictionary, Values};
/// let dict = Dictionary::new();
/// let keys = vec![dict.intern("a")?, dict.intern("b")?, dict.intern("a")?];
/// let batch = Batch::try_new(dict, vec![0, 5, 9], keys, vec![Column::I64(vec![1, 2, 3])])?;
/// assert_eq!(batch.len(), 3);
/// let tail = batch.slice(1..3);
/// assert_eq!((tail.times(), tail.keys()), (&[5, 9][..], &[1, 0][..]));
/// assert!(matches!(tail.values(0), Values::I64(&[2, 3])));
/// # Ok::<(), engine::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Batch {
    dictionary: Dictionary,
    times: Arc<Vec<i64>>,
    keys: Arc<Vec<u32>>,
    columns: Vec<Arc<Column>>,
    records: Arc<Vec<u32>>,
    /// The rows of the buffers this batch covers.
    rows: Range<usize>,
}

/// The buffers of a batch taken apart (for reuse by the parser that made
/// them): only when the batch was their only user.
pub(crate) struct BatchParts {
    pub times: Vec<i64>,
    pub keys: Vec<u32>,
    pub values: Option<Column>,
    pub records: Vec<u32>,
}

/// What [`Batch::retain`] dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Rows (events) dropped.
    pub events: u64,
    /// Records whose rows were dropped (runs of one record's rows).
    pub records: u64,
}

impl Batch {
    /// Builds a batch, checking the invariants above.
    pub fn try_new(
        dictionary: Dictionary,
        times: Vec<i64>,
        keys: Vec<u32>,
        columns: Vec<Column>,
    ) -> Result<Self> {
        validate(times.len(), &dictionary, &keys, &columns)?;
        Ok(Self::from_valid(
            dictionary,
            times,
            keys,
            columns,
            Vec::new(),
        ))
    }

    /// Builds a batch without a time column (its rows all take the time a
    /// [`crate::window::TimePolicy`] gives them: a micro-batch's time, a
    /// span of virtual or processing time), checking the other invariants.
    ///
    /// ```
    /// use engine::{Batch, Dictionary, TimePolicy, WindowAggregator, WindowSpec};
    /// let dict = Dictionary::new();
    /// let keys = vec![dict.intern("a")?, dict.intern("b")?];
    /// let batch = Batch::without_times(dict, keys, vec![])?;
    /// assert!(!batch.has_times());
    /// let mut op = WindowAggregator::builder(WindowSpec::from_millis(1_000, 1_000, 1_000)?).build()?;
    /// let mut windows = Vec::new();
    /// op.push_with(&batch, TimePolicy::MicroBatch(0), &mut |w| windows.push(w))?;
    /// op.finish(&mut |w| windows.push(w))?;
    /// assert_eq!(windows[0].len(), 2);
    /// # Ok::<(), engine::Error>(())
    /// ```
    pub fn without_times(
        dictionary: Dictionary,
        keys: Vec<u32>,
        columns: Vec<Column>,
    ) -> Result<Self> {
        validate(keys.len(), &dictionary, &keys, &columns)?;
        Ok(Self::from_valid(
            dictionary,
            Vec::new(),
            keys,
            columns,
            Vec::new(),
        ))
    }

    /// A batch of buffers the caller has checked: the parsers, which only
    /// produce ids of `dictionary` and finite floats. The invariants are
    /// checked again in debug builds.
    pub(crate) fn from_valid(
        dictionary: Dictionary,
        times: Vec<i64>,
        keys: Vec<u32>,
        columns: Vec<Column>,
        records: Vec<u32>,
    ) -> Self {
        let rows = keys.len();
        debug_assert!(times.is_empty() || times.len() == rows);
        debug_assert!(records.is_empty() || records.len() == rows);
        debug_assert!(validate(rows, &dictionary, &keys, &columns).is_ok());
        Self {
            dictionary,
            times: Arc::new(times),
            keys: Arc::new(keys),
            columns: columns.into_iter().map(Arc::new).collect(),
            records: Arc::new(records),
            rows: 0..rows,
        }
    }

    /// Builds a batch from `(time, key, value)` rows, interning the keys.
    ///
    /// ```
    /// let dict = engine::Dictionary::new();
    /// let batch = engine::Batch::from_rows(&dict, [(0, "a", 1.5), (10, "b", 2.0)])?;
    /// assert_eq!(batch.keys(), &[0, 1]);
    /// # Ok::<(), engine::Error>(())
    /// ```
    pub fn from_rows<'a>(
        dictionary: &Dictionary,
        rows: impl IntoIterator<Item = (i64, &'a str, f64)>,
    ) -> Result<Self> {
        let (mut times, mut keys, mut values) = (Vec::new(), Vec::new(), Vec::new());
        for (time, key, value) in rows {
            times.push(time);
            keys.push(dictionary.intern(key)?);
            values.push(value);
        }
        Self::try_new(dictionary.clone(), times, keys, vec![Column::F64(values)])
    }

    /// Number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the batch has no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rows `range` of this batch, sharing its buffers (no row is copied).
    ///
    /// # Panics
    ///
    /// If `range` is not within `0..len()`, as slicing a slice does.
    #[must_use]
    pub fn slice(&self, range: Range<usize>) -> Self {
        assert!(
            range.start <= range.end && range.end <= self.len(),
            "rows {range:?} of a batch of {} rows",
            self.len()
        );
        let start = self.rows.start;
        Self {
            rows: start + range.start..start + range.end,
            ..self.clone()
        }
    }

    /// Whether the rows carry their own times (every batch but those made by
    /// [`Batch::without_times`], and empty ones).
    #[must_use]
    pub fn has_times(&self) -> bool {
        self.times.len() == self.keys.len()
    }

    /// Event times, milliseconds since the epoch; empty for a batch
    /// [`without_times`](Self::without_times).
    #[must_use]
    pub fn times(&self) -> &[i64] {
        self.times.get(self.rows.clone()).unwrap_or_default()
    }

    /// Dictionary-encoded keys.
    #[must_use]
    pub fn keys(&self) -> &[u32] {
        &self.keys[self.rows.clone()]
    }

    /// For parsed batches, the index of the record each row came from
    /// (within the parsed piece); empty otherwise.
    #[must_use]
    pub fn records(&self) -> &[u32] {
        self.records.get(self.rows.clone()).unwrap_or_default()
    }

    /// Number of value columns.
    #[must_use]
    pub fn value_columns(&self) -> usize {
        self.columns.len()
    }

    /// Value column `index`, or [`Values::None`] when there is none.
    #[must_use]
    pub fn values(&self, index: usize) -> Values<'_> {
        let rows = self.rows.clone();
        match self.columns.get(index).map(|c| &**c) {
            None => Values::None,
            Some(Column::I64(v)) => Values::I64(&v[rows]),
            Some(Column::F64(v)) => Values::F64(&v[rows]),
        }
    }

    /// The dictionary the key ids belong to.
    #[must_use]
    pub fn dictionary(&self) -> &Dictionary {
        &self.dictionary
    }

    /// Keeps, in place and in order, the rows for which
    /// `keep(time, key, record)` holds (`time` is 0 without a time column,
    /// `record` the row's index without a record column); every column
    /// stays aligned. A record's rows are adjacent, so the records dropped
    /// are counted as runs. Buffers shared with another batch are copied
    /// first.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(i64, u32, u32) -> bool) -> Dropped {
        let n = self.len();
        let record = |b: &Self, i: usize| b.records().get(i).copied().unwrap_or(i as u32);
        let time = |b: &Self, i: usize| b.times().get(i).copied().unwrap_or(0);
        let Some(first) = (0..n).find(|&i| !keep(time(self, i), self.keys()[i], record(self, i)))
        else {
            return Dropped::default();
        };
        self.own_rows();
        let has_times = !self.times.is_empty();
        let has_records = !self.records.is_empty();
        let mut dropped = Dropped {
            events: 1,
            records: 1,
        };
        let mut last_dropped = record(self, first);
        let mut kept = first;
        let times = Arc::make_mut(&mut self.times);
        let keys = Arc::make_mut(&mut self.keys);
        let records = Arc::make_mut(&mut self.records);
        let mut columns: Vec<&mut Column> = self.columns.iter_mut().map(Arc::make_mut).collect();
        for i in first + 1..n {
            let t = if has_times { times[i] } else { 0 };
            let r = if has_records { records[i] } else { i as u32 };
            if keep(t, keys[i], r) {
                if has_times {
                    times[kept] = times[i];
                }
                if has_records {
                    records[kept] = records[i];
                }
                keys[kept] = keys[i];
                for column in &mut columns {
                    match column {
                        Column::I64(v) => v[kept] = v[i],
                        Column::F64(v) => v[kept] = v[i],
                    }
                }
                kept += 1;
            } else {
                dropped.events += 1;
                if r != last_dropped {
                    dropped.records += 1;
                    last_dropped = r;
                }
            }
        }
        if has_times {
            times.truncate(kept);
        }
        if has_records {
            records.truncate(kept);
        }
        keys.truncate(kept);
        for column in &mut columns {
            match column {
                Column::I64(v) => v.truncate(kept),
                Column::F64(v) => v.truncate(kept),
            }
        }
        self.rows = 0..kept;
        dropped
    }

    /// Gives the rows times of their own (a batch parsed without a time
    /// column whose times come from elsewhere: Kafka record timestamps).
    pub(crate) fn set_times(&mut self, times: Vec<i64>) {
        debug_assert_eq!(times.len(), self.len());
        self.own_rows();
        self.times = Arc::new(times);
    }

    /// The rows `range` of each part, one after the other, in one batch of
    /// `dictionary` (no record column). Every part has the same value
    /// columns and times; its keys are ids of `dictionary`.
    pub(crate) fn gather(dictionary: &Dictionary, parts: &[(&Batch, Range<usize>)]) -> Batch {
        let rows: usize = parts.iter().map(|(_, r)| r.len()).sum();
        let (mut times, mut keys) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
        let mut columns: Vec<Column> = parts.first().map_or_else(Vec::new, |(b, _)| {
            b.columns
                .iter()
                .map(|c| match **c {
                    Column::I64(_) => Column::I64(Vec::with_capacity(rows)),
                    Column::F64(_) => Column::F64(Vec::with_capacity(rows)),
                })
                .collect()
        });
        for (batch, range) in parts {
            times.extend_from_slice(&batch.times()[range.clone()]);
            keys.extend_from_slice(&batch.keys()[range.clone()]);
            for (out, column) in columns.iter_mut().zip(&batch.columns) {
                let start = batch.rows.start;
                let within = start + range.start..start + range.end;
                match (out, &**column) {
                    (Column::I64(o), Column::I64(v)) => o.extend_from_slice(&v[within]),
                    (Column::F64(o), Column::F64(v)) => o.extend_from_slice(&v[within]),
                    _ => unreachable!("the parts of a gather have the same columns"),
                }
            }
        }
        Self::from_valid(dictionary.clone(), times, keys, columns, Vec::new())
    }

    /// Replaces every key id by `map(id)`: ids of the same dictionary (a
    /// lookup table's re-keying), so the invariants hold if `map` keeps ids
    /// below the dictionary's bound.
    pub(crate) fn map_keys(&mut self, mut map: impl FnMut(u32) -> u32) {
        self.own_rows();
        for key in Arc::make_mut(&mut self.keys).iter_mut() {
            *key = map(*key);
        }
    }

    /// Makes the buffers hold exactly this batch's rows (a slice's other
    /// rows are dropped), so that they can be changed in place.
    fn own_rows(&mut self) {
        if self.rows == (0..self.keys.len()) {
            return;
        }
        // The accessors already give this batch's rows: copy them out
        // before any buffer is replaced.
        let times = self.times().to_vec();
        let records = self.records().to_vec();
        let keys = self.keys().to_vec();
        let columns: Vec<Arc<Column>> = (0..self.columns.len())
            .map(|i| {
                Arc::new(match self.values(i) {
                    Values::I64(v) => Column::I64(v.to_vec()),
                    Values::F64(v) => Column::F64(v.to_vec()),
                    Values::None => unreachable!("column {i} exists"),
                })
            })
            .collect();
        (self.times, self.records, self.keys) =
            (Arc::new(times), Arc::new(records), Arc::new(keys));
        self.columns = columns;
        self.rows = 0..self.keys.len();
    }

    /// The buffers back, for reuse, when no other batch shares them (and
    /// this is not a slice); `None` otherwise.
    pub(crate) fn into_parts(self) -> Option<BatchParts> {
        if self.rows != (0..self.keys.len()) || self.columns.len() > 1 {
            return None;
        }
        let values = match self.columns.into_iter().next() {
            Some(column) => Some(Arc::try_unwrap(column).ok()?),
            None => None,
        };
        Some(BatchParts {
            times: Arc::try_unwrap(self.times).ok()?,
            keys: Arc::try_unwrap(self.keys).ok()?,
            values,
            records: Arc::try_unwrap(self.records).ok()?,
        })
    }
}

/// The invariants of a [`Batch`] of `rows` rows, but for the time column.
fn validate(rows: usize, dictionary: &Dictionary, keys: &[u32], columns: &[Column]) -> Result<()> {
    if keys.len() != rows {
        return Err(Error::LengthMismatch {
            column: "keys".into(),
            expected: rows,
            actual: keys.len(),
        });
    }
    let dict_len = dictionary.id_bound();
    if let Some(row) = keys.iter().position(|&k| k as usize >= dict_len) {
        return Err(Error::KeyOutOfRange {
            row,
            id: keys[row],
            len: dict_len,
        });
    }
    for (index, column) in columns.iter().enumerate() {
        if column.len() != rows {
            return Err(Error::LengthMismatch {
                column: format!("value column {index}"),
                expected: rows,
                actual: column.len(),
            });
        }
        if let Column::F64(values) = column {
            check_finite(values, index)?;
        }
    }
    Ok(())
}

/// Refuses NaN and infinities, naming the first offending row.
pub(crate) fn check_finite(values: &[f64], column: usize) -> Result<()> {
    // A branch-free scan first: the common case is a clean column.
    if values.iter().all(|v| v.is_finite()) {
        return Ok(());
    }
    let row = values.iter().position(|v| !v.is_finite()).unwrap_or(0);
    Err(Error::NonFiniteValue {
        row,
        column,
        value: values[row],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Batch {
        let dict = Dictionary::new();
        let keys: Vec<u32> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|k| dict.intern(k).unwrap())
            .collect();
        Batch::from_valid(
            dict,
            vec![10, 20, 30, 40, 50],
            keys,
            vec![Column::F64(vec![1.0, 2.0, 3.0, 4.0, 5.0])],
            vec![0, 0, 1, 2, 2],
        )
    }

    #[test]
    fn a_slice_shares_the_buffers_and_sees_only_its_rows() {
        let batch = sample();
        let slice = batch.slice(1..4);
        assert_eq!(slice.len(), 3);
        assert_eq!(slice.times(), [20, 30, 40]);
        assert_eq!(slice.keys(), [1, 2, 3]);
        assert_eq!(slice.records(), [0, 1, 2]);
        assert!(matches!(slice.values(0), Values::F64(&[2.0, 3.0, 4.0])));
        assert!(Arc::ptr_eq(&batch.keys, &slice.keys), "no row is copied");
        let inner = slice.slice(1..2);
        assert_eq!((inner.times(), inner.keys()), (&[30][..], &[2][..]));
        assert!(slice.slice(3..3).is_empty());
    }

    #[test]
    #[should_panic(expected = "rows 2..6 of a batch of 5 rows")]
    fn a_slice_past_the_end_panics_like_a_slice_of_a_slice() {
        let _ = sample().slice(2..6);
    }

    #[test]
    fn retain_keeps_columns_aligned_counts_record_runs_and_spares_shared_buffers() {
        let batch = sample();
        let mut slice = batch.slice(1..5);
        // Drop keys 2 and 3 (rows 30 and 40): records 1 and 2.
        let dropped = slice.retain(|_, key, _| key != 2 && key != 3);
        assert_eq!(
            dropped,
            Dropped {
                events: 2,
                records: 2
            }
        );
        assert_eq!(slice.times(), [20, 50]);
        assert_eq!(slice.keys(), [1, 4]);
        assert_eq!(slice.records(), [0, 2]);
        assert!(matches!(slice.values(0), Values::F64(&[2.0, 5.0])));
        // The batch it was sliced from is untouched.
        assert_eq!(batch.keys(), [0, 1, 2, 3, 4]);
        assert_eq!(batch.times(), [10, 20, 30, 40, 50]);
    }

    #[test]
    fn buffers_come_back_only_when_nothing_else_holds_them() {
        let batch = sample();
        let copy = batch.clone();
        assert!(batch.into_parts().is_none(), "shared with a clone");
        assert!(copy.slice(0..2).into_parts().is_none(), "a slice");
        let parts = copy.into_parts().expect("the only holder");
        assert_eq!(parts.keys, [0, 1, 2, 3, 4]);
        assert_eq!(parts.records, [0, 0, 1, 2, 2]);
    }

    #[test]
    fn try_new_refuses_misaligned_columns_unknown_ids_and_non_finite_values() {
        let dict = Dictionary::new();
        let a = dict.intern("a").unwrap();
        assert!(matches!(
            Batch::try_new(dict.clone(), vec![1, 2], vec![a], vec![]),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            Batch::try_new(dict.clone(), vec![1], vec![a + 1], vec![]),
            Err(Error::KeyOutOfRange { row: 0, .. })
        ));
        assert!(matches!(
            Batch::try_new(dict, vec![1], vec![a], vec![Column::F64(vec![f64::NAN])]),
            Err(Error::NonFiniteValue { row: 0, .. })
        ));
    }
}
