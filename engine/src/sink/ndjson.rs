//! NDJSON: one JSON object per row, `null` for null; every digit of a
//! float.

use std::io::{self, Write};

use super::{text, write_json_string, OutputColumns, RowOrder, Rows, Sink};
use crate::dictionary::Dictionary;
use crate::window::WindowResult;

/// Writes window rows as `{"window_end":…,"key":…,<aggregates>}` lines.
pub struct NdjsonSink<W: Write> {
    out: W,
    columns: OutputColumns,
    order: RowOrder,
}

impl<W: Write> NdjsonSink<W> {
    /// NDJSON of `columns`, rows by key.
    pub fn new(out: W, columns: OutputColumns) -> Self {
        Self {
            out,
            columns,
            order: RowOrder::ByKey,
        }
    }

    /// The rows of each window in `order`.
    #[must_use]
    pub fn with_order(mut self, order: RowOrder) -> Self {
        self.order = order;
        self
    }

    /// Flushes and returns the writer.
    ///
    /// # Errors
    /// The writer's error.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.finish()?;
        Ok(self.out)
    }
}

/// Row `i` of `rows` as one JSON object, without a line break: what a
/// line of NDJSON holds, and the value of a Kafka record (`--output kafka`).
pub(super) fn write_row(
    out: &mut impl Write,
    rows: &Rows<'_>,
    columns: &OutputColumns,
    i: usize,
) -> io::Result<()> {
    write!(out, "{{\"window_end\":{},\"key\":", rows.end)?;
    write_json_string(out, rows.keys[i])?;
    for ((_, name), column) in columns.iter().zip(&rows.columns) {
        let value = column.and_then(|c| text(c, i));
        write!(out, ",\"{name}\":{}", value.as_deref().unwrap_or("null"))?;
    }
    out.write_all(b"}")
}

impl<W: Write> Sink for NdjsonSink<W> {
    fn write_window(&mut self, window: &WindowResult, dict: &Dictionary) -> io::Result<()> {
        let reader = dict.read();
        let rows = Rows::new(window, &reader, &self.columns, self.order);
        let out = &mut self.out;
        for &i in &rows.order {
            write_row(out, &rows, &self.columns, i)?;
            writeln!(out)?;
        }
        out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{columns_of, window, write_all};
    use super::*;
    use crate::aggregate::Agg;
    use crate::window::AggColumn;

    #[test]
    fn exact_bytes_of_a_window_an_empty_one_and_nulls() {
        let columns = vec![
            (Agg::Count, AggColumn::U64(vec![3, 1])),
            (Agg::Min, AggColumn::NullableF64(vec![Some(-0.5), None])),
        ];
        let names = columns_of(&columns);
        let full = window(2_000, &["b\"", "a"], columns);
        let empty = window(3_000, &[], vec![(Agg::Count, AggColumn::U64(vec![]))]);
        let mut sink = NdjsonSink::new(Vec::new(), names);
        write_all(&mut sink, &[full, empty]);
        assert_eq!(
            String::from_utf8(sink.into_inner().unwrap()).unwrap(),
            "{\"window_end\":2000,\"key\":\"a\",\"count\":1,\"min\":null}\n\
             {\"window_end\":2000,\"key\":\"b\\\"\",\"count\":3,\"min\":-0.5}\n"
        );
    }
}
