//! Spark's `pprint` table: a `Time: <ms> ms` block per window, one
//! `(key,aggregates…)` line per row.

use std::io::{self, Write};

use super::{text, OutputColumns, RowOrder, Rows, Sink};
use crate::dictionary::Dictionary;
use crate::window::{AggColumn, WindowResult};

/// The rule above and below a window's `Time:` line, as Spark prints it.
const RULE: &str = "-------------------------------------------";

/// Writes windows as Spark's `pprint` does: a `Time: <ms> ms` header per
/// window (also for an empty one) and at most `max_rows` rows, `...` when
/// there are more. With several aggregates a `(key,<names>)` line names the
/// columns; floats are rounded to at most 6 decimals (6 significant digits
/// below 1) for reading.
pub struct TableSink<W: Write> {
    out: W,
    columns: OutputColumns,
    max_rows: usize,
    order: RowOrder,
}

impl<W: Write> TableSink<W> {
    /// A table of `columns` showing at most `max_rows` rows per window, by
    /// key.
    pub fn new(out: W, columns: OutputColumns, max_rows: usize) -> Self {
        Self {
            out,
            columns,
            max_rows,
            order: RowOrder::ByKey,
        }
    }

    /// The rows of each window in `order` (before `max_rows` applies).
    #[must_use]
    pub fn with_order(mut self, order: RowOrder) -> Self {
        self.order = order;
        self
    }

    /// Finishes the table and returns the writer.
    ///
    /// # Errors
    /// The writer's error.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.finish()?;
        Ok(self.out)
    }
}

impl<W: Write> Sink for TableSink<W> {
    fn write_window(&mut self, window: &WindowResult, dict: &Dictionary) -> io::Result<()> {
        let reader = dict.read();
        let rows = Rows::new(window, &reader, &self.columns, self.order);
        let out = &mut self.out;
        writeln!(out, "{RULE}\nTime: {} ms\n{RULE}", rows.end)?;
        if self.columns.len() > 1 && !rows.order.is_empty() {
            let names: Vec<&str> = self.columns.iter().map(|&(_, name)| name).collect();
            writeln!(out, "(key,{})", names.join(","))?;
        }
        for &i in rows.order.iter().take(self.max_rows) {
            write!(out, "({}", rows.keys[i])?;
            for column in &rows.columns {
                let cell = column.and_then(|c| table_text(c, i));
                write!(out, ",{}", cell.as_deref().unwrap_or("null"))?;
            }
            writeln!(out, ")")?;
        }
        if rows.order.len() > self.max_rows {
            writeln!(out, "...")?;
        }
        writeln!(out)?;
        out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Row `i` of a column as a table shows it: floats rounded (see
/// [`TableSink`]), `None` for null.
fn table_text(column: &AggColumn, i: usize) -> Option<String> {
    match column {
        AggColumn::NullableF64(v) => v[i].map(table_float),
        _ => text(column, i),
    }
}

/// A float for reading: at most 6 decimals, or 6 significant digits below 1
/// (scientific notation below 1e-9), trailing zeros dropped; `-0` is `0`.
fn table_float(x: f64) -> String {
    if !x.is_finite() || x == 0.0 {
        return if x == 0.0 {
            "0".to_owned()
        } else {
            x.to_string()
        };
    }
    let trim = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    // The decimal exponent after rounding to 6 significant digits.
    let scientific = format!("{x:.5e}");
    let exponent: i32 = scientific
        .split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    let text = if exponent < -9 {
        let (mantissa, _) = scientific.split_once('e').unwrap_or((&scientific, ""));
        format!("{}e{exponent}", trim(mantissa.to_owned()))
    } else {
        let decimals = if exponent < 0 {
            (5 - exponent) as usize
        } else {
            6
        };
        trim(format!("{x:.decimals$}"))
    };
    if text == "-0" {
        "0".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{columns_of, window, write_all};
    use super::*;
    use crate::aggregate::Agg;

    fn table(
        windows: &[(Dictionary, WindowResult)],
        columns: OutputColumns,
        rows: usize,
    ) -> String {
        let mut sink = TableSink::new(Vec::new(), columns, rows);
        write_all(&mut sink, windows);
        String::from_utf8(sink.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn exact_bytes_of_a_window_an_empty_one_and_nulls() {
        let columns = vec![
            (Agg::Count, AggColumn::U64(vec![3, 1])),
            (Agg::Max, AggColumn::NullableF64(vec![None, Some(2.5)])),
        ];
        let names = columns_of(&columns);
        let full = window(2_000, &["b", "a"], columns);
        let empty = window(
            3_000,
            &[],
            vec![
                (Agg::Count, AggColumn::U64(vec![])),
                (Agg::Max, AggColumn::NullableF64(vec![])),
            ],
        );
        assert_eq!(
            table(&[full, empty], names, 10),
            "-------------------------------------------\n\
             Time: 2000 ms\n\
             -------------------------------------------\n\
             (key,count,max)\n\
             (a,1,2.5)\n\
             (b,3,null)\n\
             \n\
             -------------------------------------------\n\
             Time: 3000 ms\n\
             -------------------------------------------\n\
             \n"
        );
    }

    #[test]
    fn rows_beyond_the_limit_are_an_ellipsis() {
        let columns = vec![(Agg::Count, AggColumn::U64(vec![1, 2, 3]))];
        let names = columns_of(&columns);
        let w = window(1, &["x", "y", "z"], columns);
        let shown = table(&[w], names, 2);
        assert!(shown.ends_with("---\n(x,1)\n(y,2)\n...\n\n"), "{shown}");
    }

    #[test]
    fn several_columns_are_named_and_floats_rounded() {
        let columns = vec![
            (Agg::Count, AggColumn::U64(vec![3])),
            (Agg::Avg, AggColumn::NullableF64(vec![Some(0.1 + 0.2)])),
        ];
        let names = columns_of(&columns);
        let shown = table(&[window(1000, &["k"], columns)], names, 10);
        assert!(
            shown.ends_with("---\n(key,count,avg)\n(k,3,0.3)\n\n"),
            "{shown}"
        );
        // One column: Spark's rows, no header line.
        let columns = vec![(Agg::Count, AggColumn::U64(vec![3]))];
        let names = columns_of(&columns);
        let one = table(&[window(1000, &["k"], columns)], names, 10);
        assert!(one.ends_with("---\n(k,3)\n\n"), "{one}");
    }

    #[test]
    fn table_floats_are_rounded_for_reading() {
        for (x, shown) in [
            (0.1 + 0.2, "0.3"),
            (2.5, "2.5"),
            (3.0, "3"),
            (-0.0, "0"),
            (1.0 / 3.0, "0.333333"),
            (-2.0 / 3.0, "-0.666667"),
            (1_234_567.891_234_5, "1234567.891235"),
            (0.000_123_456_789, "0.000123457"),
            (1e-7, "0.0000001"),
            (1.234_567e-12, "1.23457e-12"),
            (-1e-12, "-1e-12"),
            (-1e-15, "-1e-15"),
            (1e20, "100000000000000000000"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(table_float(x), shown, "{x:e}");
        }
    }
}
