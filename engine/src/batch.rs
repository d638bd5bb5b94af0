//! The columnar micro-batch.

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

/// A columnar micro-batch of events: struct-of-arrays, one row per event.
///
/// # Invariants
///
/// Checked by [`Batch::try_new`] and kept by every method, since the fields are
/// private:
///
/// - `times`, `keys` and every value column have the same length;
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
/// use engine::{Batch, Column, Dictionary};
/// let dict = Dictionary::new();
/// let keys = vec![dict.intern("a")?, dict.intern("b")?, dict.intern("a")?];
/// let batch = Batch::try_new(dict, vec![0, 5, 9], keys, vec![Column::I64(vec![1, 2, 3])])?;
/// assert_eq!(batch.len(), 3);
/// # Ok::<(), engine::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Batch {
    dictionary: Dictionary,
    times: Vec<i64>,
    keys: Vec<u32>,
    columns: Vec<Column>,
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
        Ok(Self {
            dictionary,
            times,
            keys,
            columns,
        })
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
        Ok(Self {
            dictionary,
            times: Vec::new(),
            keys,
            columns,
        })
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
        self.keys.len()
    }

    /// Whether the batch has no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
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
        &self.times
    }

    /// Dictionary-encoded keys.
    #[must_use]
    pub fn keys(&self) -> &[u32] {
        &self.keys
    }

    /// The value columns.
    #[must_use]
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Value column `index`, or [`Values::None`] when there is none.
    #[must_use]
    pub fn values(&self, index: usize) -> Values<'_> {
        self.columns
            .get(index)
            .map_or(Values::None, Column::as_values)
    }

    /// The dictionary the key ids belong to.
    #[must_use]
    pub fn dictionary(&self) -> &Dictionary {
        &self.dictionary
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
