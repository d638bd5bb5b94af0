//! What a window emits: one columnar result per window end.

use crate::aggregate::Agg;

/// One output column of a window result.
#[derive(Debug, Clone, PartialEq)]
pub enum AggColumn {
    /// Counts.
    U64(Vec<u64>),
    /// Exact integer sums.
    I64(Vec<i64>),
    /// Integer min/max; null for a key whose window is empty (Spark mode).
    NullableI64(Vec<Option<i64>>),
    /// Float results; null where undefined (empty window, variance of one).
    NullableF64(Vec<Option<f64>>),
}

impl AggColumn {
    /// Number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            AggColumn::U64(v) => v.len(),
            AggColumn::I64(v) => v.len(),
            AggColumn::NullableI64(v) => v.len(),
            AggColumn::NullableF64(v) => v.len(),
        }
    }

    /// Whether the column has no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i` as `f64` (`None` for null), whatever the column's type.
    #[must_use]
    pub fn get_f64(&self, i: usize) -> Option<f64> {
        match self {
            AggColumn::U64(v) => Some(v[i] as f64),
            AggColumn::I64(v) => Some(v[i] as f64),
            AggColumn::NullableI64(v) => v[i].map(|x| x as f64),
            AggColumn::NullableF64(v) => v[i],
        }
    }

    fn append(&mut self, other: &mut AggColumn) {
        match (self, other) {
            (AggColumn::U64(a), AggColumn::U64(b)) => a.append(b),
            (AggColumn::I64(a), AggColumn::I64(b)) => a.append(b),
            (AggColumn::NullableI64(a), AggColumn::NullableI64(b)) => a.append(b),
            (AggColumn::NullableF64(a), AggColumn::NullableF64(b)) => a.append(b),
            // An integer sum column is nullable in the partitions where a
            // sum overflowed.
            (AggColumn::NullableI64(a), AggColumn::I64(b)) => a.extend(b.drain(..).map(Some)),
            (this @ AggColumn::I64(_), AggColumn::NullableI64(b)) => {
                let AggColumn::I64(a) = std::mem::replace(this, AggColumn::U64(Vec::new())) else {
                    unreachable!("matched above")
                };
                let mut merged: Vec<Option<i64>> = a.into_iter().map(Some).collect();
                merged.append(b);
                *this = AggColumn::NullableI64(merged);
            }
            _ => unreachable!("partitions emit the same column types"),
        }
    }

    fn permute(&mut self, order: &[usize]) {
        fn apply<T: Copy>(v: &mut Vec<T>, order: &[usize]) {
            *v = order.iter().map(|&i| v[i]).collect();
        }
        match self {
            AggColumn::U64(v) => apply(v, order),
            AggColumn::I64(v) => apply(v, order),
            AggColumn::NullableI64(v) => apply(v, order),
            AggColumn::NullableF64(v) => apply(v, order),
        }
    }
}

/// The rows of one window: `(window_end, key, aggregates…)`, columnar.
///
/// Rows come in partition order; [`sort_by_key_id`](Self::sort_by_key_id)
/// orders them by key id, and [`crate::Dictionary`] turns ids into strings.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowResult {
    end: i64,
    keys: Vec<u32>,
    columns: Vec<(Agg, AggColumn)>,
    /// Results that overflowed their type and are null: `(key id, aggregate)`.
    overflows: Vec<(u32, Agg)>,
}

impl WindowResult {
    pub(crate) fn new(end: i64, keys: Vec<u32>, columns: Vec<(Agg, AggColumn)>) -> Self {
        debug_assert!(columns.iter().all(|(_, c)| c.len() == keys.len()));
        Self {
            end,
            keys,
            columns,
            overflows: Vec::new(),
        }
    }

    pub(crate) fn set_overflows(&mut self, overflows: Vec<(u32, Agg)>) {
        self.overflows = overflows;
    }

    /// The results that overflowed their type (a float sum past ±1.8e308, an
    /// integer sum past 64 bits, a variance past the float range): each is
    /// null in its column, never `inf`, `NaN` or a wrapped number. Listed as
    /// `(key id, aggregate)`.
    #[must_use]
    pub fn overflows(&self) -> &[(u32, Agg)] {
        &self.overflows
    }

    /// Concatenates per-partition results of the same window.
    pub(crate) fn concat(end: i64, mut parts: Vec<WindowResult>) -> Self {
        let Some(mut first) = (!parts.is_empty()).then(|| parts.remove(0)) else {
            return Self::new(end, Vec::new(), Vec::new());
        };
        for mut part in parts {
            first.keys.append(&mut part.keys);
            first.overflows.append(&mut part.overflows);
            for ((_, a), (_, b)) in first.columns.iter_mut().zip(part.columns.iter_mut()) {
                a.append(b);
            }
        }
        first.end = end;
        first
    }

    /// The window's end `t`: it covers `[t − W, t)`.
    #[must_use]
    pub fn end(&self) -> i64 {
        self.end
    }

    /// Key ids, one per row.
    #[must_use]
    pub fn keys(&self) -> &[u32] {
        &self.keys
    }

    /// Number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the window has no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The aggregate columns, in the order the job asked for them.
    #[must_use]
    pub fn columns(&self) -> &[(Agg, AggColumn)] {
        &self.columns
    }

    /// The column of `agg`, if the job asked for it.
    #[must_use]
    pub fn column(&self, agg: Agg) -> Option<&AggColumn> {
        self.columns.iter().find(|(a, _)| *a == agg).map(|(_, c)| c)
    }

    /// Orders the rows by key id (output order then no longer depends on the
    /// number of partitions).
    pub fn sort_by_key_id(&mut self) {
        self.sort_by(|a, b| a.cmp(&b));
    }

    /// Orders the rows by a comparison of key ids.
    pub fn sort_by(&mut self, mut compare: impl FnMut(u32, u32) -> std::cmp::Ordering) {
        let mut order: Vec<usize> = (0..self.keys.len()).collect();
        order.sort_by(|&a, &b| compare(self.keys[a], self.keys[b]));
        self.keys = order.iter().map(|&i| self.keys[i]).collect();
        for (_, column) in &mut self.columns {
            column.permute(&order);
        }
    }
}

impl WindowResult {
    /// Keeps the rows whose flag is set.
    pub(crate) fn retain_rows(&mut self, keep: &[bool]) {
        let order: Vec<usize> = (0..keep.len()).filter(|&i| keep[i]).collect();
        if order.len() == keep.len() {
            return;
        }
        self.keys = order.iter().map(|&i| self.keys[i]).collect();
        for (_, column) in &mut self.columns {
            column.permute(&order);
        }
    }
}

/// One row of a window result, as a key filter sees it.
#[derive(Debug, Clone, Copy)]
pub struct KeyRow<'a> {
    result: &'a WindowResult,
    row: usize,
}

impl<'a> KeyRow<'a> {
    /// Row `row` of `result`.
    #[must_use]
    pub fn of(result: &'a WindowResult, row: usize) -> Self {
        Self { result, row }
    }

    /// The key id.
    #[must_use]
    pub fn key(&self) -> u32 {
        self.result.keys()[self.row]
    }

    /// The value of `agg` as `f64`, `None` when null or not computed.
    #[must_use]
    pub fn get(&self, agg: Agg) -> Option<f64> {
        self.result.column(agg).and_then(|c| c.get_f64(self.row))
    }

    /// The event count, when the job computes it.
    #[must_use]
    pub fn count(&self) -> Option<u64> {
        match self.result.column(Agg::Count)? {
            AggColumn::U64(v) => Some(v[self.row]),
            _ => None,
        }
    }
}
