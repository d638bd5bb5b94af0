//! CSV (RFC 4180): `window_end,key,<aggregates>` under a header row; every
//! digit of a float, an empty field for null.

use std::io::{self, Write};

use super::{text, write_csv_field, OutputColumns, RowOrder, Rows, Sink};
use crate::dictionary::Dictionary;
use crate::window::WindowResult;

/// Writes window rows as CSV. The header goes out with the first window,
/// or at [`finish`](Sink::finish) when there was none: a job that fails
/// before it has started writes nothing at all, and one without rows still
/// writes a well-formed file.
pub struct CsvSink<W: Write> {
    out: W,
    columns: OutputColumns,
    order: RowOrder,
    /// The header is still to be written.
    header_pending: bool,
}

impl<W: Write> CsvSink<W> {
    /// CSV of `columns`, rows by key.
    pub fn new(out: W, columns: OutputColumns) -> Self {
        Self {
            out,
            columns,
            order: RowOrder::ByKey,
            header_pending: true,
        }
    }

    /// The rows of each window in `order`.
    #[must_use]
    pub fn with_order(mut self, order: RowOrder) -> Self {
        self.order = order;
        self
    }

    /// Finishes the file (the header, if no window came) and returns the
    /// writer.
    ///
    /// # Errors
    /// The writer's error.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.finish()?;
        Ok(self.out)
    }

    fn write_header(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.header_pending) {
            write!(self.out, "window_end,key")?;
            for (_, name) in &self.columns {
                write!(self.out, ",{name}")?;
            }
            writeln!(self.out)?;
        }
        Ok(())
    }
}

impl<W: Write> Sink for CsvSink<W> {
    fn write_window(&mut self, window: &WindowResult, dict: &Dictionary) -> io::Result<()> {
        self.write_header()?;
        let reader = dict.read();
        let rows = Rows::new(window, &reader, &self.columns, self.order);
        let out = &mut self.out;
        for &i in &rows.order {
            write!(out, "{},", rows.end)?;
            write_csv_field(out, rows.keys[i])?;
            for column in &rows.columns {
                write!(
                    out,
                    ",{}",
                    column.and_then(|c| text(c, i)).unwrap_or_default()
                )?;
            }
            writeln!(out)?;
        }
        out.flush()
    }

    fn continue_output(&mut self) {
        self.header_pending = false;
    }

    fn finish(&mut self) -> io::Result<()> {
        self.write_header()?;
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
            (Agg::Sum, AggColumn::NullableI64(vec![Some(-4), None])),
            (
                Agg::Avg,
                AggColumn::NullableF64(vec![Some(0.1 + 0.2), None]),
            ),
        ];
        let names = columns_of(&columns);
        let full = window(2_000, &["b,c", "a"], columns);
        let empty = window(3_000, &[], vec![(Agg::Count, AggColumn::U64(vec![]))]);
        let mut sink = CsvSink::new(Vec::new(), names);
        write_all(&mut sink, &[full, empty]);
        assert_eq!(
            String::from_utf8(sink.into_inner().unwrap()).unwrap(),
            "window_end,key,count,sum,avg\n\
             2000,a,1,,\n\
             2000,\"b,c\",3,-4,0.30000000000000004\n"
        );
    }

    #[test]
    fn the_header_goes_out_even_without_a_window_but_not_twice() {
        let mut sink = CsvSink::new(Vec::new(), vec![(Agg::Count, "count")]);
        sink.finish().unwrap();
        assert_eq!(sink.into_inner().unwrap(), b"window_end,key,count\n");
    }
}
