//! Writing window results: Spark's `pprint` table, CSV (RFC 4180) and NDJSON.

use std::cmp::Ordering;
use std::io::{self, Write};

use crate::aggregate::Agg;
use crate::dictionary::Dictionary;
use crate::window::{AggColumn, WindowResult};

/// An output format of window rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// A `Time: <ms> ms` header per window and `(key,aggregates…)` rows, as
    /// Spark's `pprint`. With several aggregates a `(key,<names>)` line under
    /// each `Time:` block names the columns; floats are rounded to at most 6
    /// decimals (6 significant digits below 1) for reading, where CSV and
    /// NDJSON keep every digit.
    Table,
    /// `window_end,key,<aggregates>` with a header row.
    Csv,
    /// One JSON object per row.
    Ndjson,
}

/// Writes window results, rows ordered by key (or, with
/// [`WindowWriter::with_top`], the largest first).
pub struct WindowWriter<W: Write> {
    out: W,
    format: OutputFormat,
    columns: Vec<Agg>,
    names: Vec<&'static str>,
    table_rows: usize,
    top: Option<usize>,
    rows: u64,
    /// The CSV header is still to be written.
    header_pending: bool,
}

impl<W: Write> WindowWriter<W> {
    /// A writer of `columns` in `format`; the CSV header goes out with
    /// the first window (or at the end, when there is none).
    /// `names` rename the aggregate columns (e.g. `count` for a grep job's
    /// sum of matches). `table_rows` bounds the rows a table shows per
    /// window, as `pprint` does.
    pub fn new(
        out: W,
        format: OutputFormat,
        columns: Vec<Agg>,
        names: Vec<&'static str>,
        table_rows: usize,
    ) -> io::Result<Self> {
        Ok(Self {
            out,
            format,
            columns,
            names,
            table_rows,
            top: None,
            rows: 0,
            header_pending: format == OutputFormat::Csv,
        })
    }

    /// The CSV header, before the first window or at the end: a job that
    /// fails before it has started writes nothing at all.
    fn write_header(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.header_pending) {
            write!(self.out, "window_end,key")?;
            for name in &self.names {
                write!(self.out, ",{name}")?;
            }
            writeln!(self.out)?;
        }
        Ok(())
    }

    /// Only the `n` rows of each window with the largest value of the first
    /// column (a word count's `count`), largest first, ties by key; nulls
    /// rank last. `None`: every row, ordered by key. Applies to every format
    /// (a table still shows at most `table_rows` of them).
    #[must_use]
    pub fn with_top(mut self, n: Option<usize>) -> Self {
        self.top = n;
        self
    }

    /// Rows written so far.
    #[must_use]
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes one window (nothing for an empty one, but a table header) and
    /// flushes, so that a reader sees each window as it closes.
    pub fn write(&mut self, window: &WindowResult, dict: &Dictionary) -> io::Result<()> {
        self.write_header()?;
        let reader = dict.read();
        let key = |i: usize| reader.get(window.keys()[i]).unwrap_or("");
        // A column the window lacks would be a bug of the job's set-up; it
        // prints as nulls rather than bringing the job down.
        let columns: Vec<Option<&AggColumn>> =
            self.columns.iter().map(|&agg| window.column(agg)).collect();
        let mut order: Vec<usize> = (0..window.len()).collect();
        match self.top {
            None => order.sort_by(|&a, &b| key(a).cmp(key(b))),
            Some(n) => {
                let first = columns.first().copied().flatten();
                let by_rank = |&a: &usize, &b: &usize| {
                    descending(first, a, b).then_with(|| key(a).cmp(key(b)))
                };
                if n < order.len() {
                    if n > 0 {
                        order.select_nth_unstable_by(n - 1, by_rank);
                    }
                    order.truncate(n);
                }
                order.sort_by(by_rank);
            }
        }
        let end = window.end();
        match self.format {
            OutputFormat::Table => {
                let rule = "-------------------------------------------";
                writeln!(self.out, "{rule}\nTime: {end} ms\n{rule}")?;
                if self.names.len() > 1 && !order.is_empty() {
                    writeln!(self.out, "(key,{})", self.names.join(","))?;
                }
                for &i in order.iter().take(self.table_rows) {
                    write!(self.out, "({}", key(i))?;
                    for column in &columns {
                        write!(
                            self.out,
                            ",{}",
                            column
                                .and_then(|c| table_text(c, i))
                                .as_deref()
                                .unwrap_or("null")
                        )?;
                    }
                    writeln!(self.out, ")")?;
                }
                if order.len() > self.table_rows {
                    writeln!(self.out, "...")?;
                }
                writeln!(self.out)?;
            }
            OutputFormat::Csv => {
                for &i in &order {
                    write!(self.out, "{end},")?;
                    write_csv_field(&mut self.out, key(i))?;
                    for column in &columns {
                        write!(
                            self.out,
                            ",{}",
                            column.and_then(|c| text(c, i)).unwrap_or_default()
                        )?;
                    }
                    writeln!(self.out)?;
                }
            }
            OutputFormat::Ndjson => {
                for &i in &order {
                    write!(self.out, "{{\"window_end\":{end},\"key\":")?;
                    write_json_string(&mut self.out, key(i))?;
                    for (name, column) in self.names.iter().zip(&columns) {
                        write!(
                            self.out,
                            ",\"{name}\":{}",
                            column.and_then(|c| text(c, i)).as_deref().unwrap_or("null")
                        )?;
                    }
                    writeln!(self.out, "}}")?;
                }
            }
        }
        self.rows += order.len() as u64;
        self.out.flush()
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.write_header()?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Row `i` of a column as text, `None` for null.
fn text(column: &AggColumn, i: usize) -> Option<String> {
    match column {
        AggColumn::U64(v) => Some(v[i].to_string()),
        AggColumn::I64(v) => Some(v[i].to_string()),
        AggColumn::NullableI64(v) => v[i].map(|x| x.to_string()),
        AggColumn::NullableF64(v) => v[i].map(|x| x.to_string()),
    }
}

/// Row `i` of a column as a table shows it: floats rounded (see
/// [`OutputFormat::Table`]), `None` for null.
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

/// Rows `a` and `b` by `column`, largest first, nulls last.
fn descending(column: Option<&AggColumn>, a: usize, b: usize) -> Ordering {
    fn nulls_last<T>(a: Option<T>, b: Option<T>, cmp: impl Fn(T, T) -> Ordering) -> Ordering {
        match (a, b) {
            (Some(x), Some(y)) => cmp(y, x),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
    match column {
        Some(AggColumn::U64(v)) => v[b].cmp(&v[a]),
        Some(AggColumn::I64(v)) => v[b].cmp(&v[a]),
        Some(AggColumn::NullableI64(v)) => nulls_last(v[a], v[b], |x, y| x.cmp(&y)),
        Some(AggColumn::NullableF64(v)) => nulls_last(v[a], v[b], |x, y| x.total_cmp(&y)),
        None => Ordering::Equal,
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break
/// (RFC 4180: quotes doubled).
pub fn write_csv_field(out: &mut impl Write, field: &str) -> io::Result<()> {
    if field.contains([',', '"', '\n', '\r']) {
        write!(out, "\"{}\"", field.replace('"', "\"\""))
    } else {
        out.write_all(field.as_bytes())
    }
}

/// A JSON string literal.
pub fn write_json_string(out: &mut impl Write, s: &str) -> io::Result<()> {
    out.write_all(b"\"")?;
    for c in s.chars() {
        match c {
            '"' => out.write_all(b"\\\"")?,
            '\\' => out.write_all(b"\\\\")?,
            '\n' => out.write_all(b"\\n")?,
            '\r' => out.write_all(b"\\r")?,
            '\t' => out.write_all(b"\\t")?,
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32)?,
            c => write!(out, "{c}")?,
        }
    }
    out.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let mut out = Vec::new();
        for f in ["plain", "a,b", "say \"hi\"", "two\nlines"] {
            write_csv_field(&mut out, f).unwrap();
            out.push(b'|');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"|"
        );
    }

    /// One window ending at 1000 of `keys` with `columns`, written in
    /// `format` (top `top`, at most 10 table rows).
    fn written(
        format: OutputFormat,
        keys: &[&str],
        columns: Vec<(Agg, AggColumn)>,
        top: Option<usize>,
    ) -> String {
        let dict = Dictionary::new();
        let ids = keys.iter().map(|k| dict.intern(k).unwrap()).collect();
        let (aggs, names): (Vec<Agg>, Vec<&'static str>) =
            columns.iter().map(|(a, _)| (*a, a.name())).unzip();
        let window = WindowResult::new(1000, ids, columns);
        let mut writer = WindowWriter::new(Vec::new(), format, aggs, names, 10)
            .unwrap()
            .with_top(top);
        writer.write(&window, &dict).unwrap();
        String::from_utf8(writer.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn top_n_keeps_the_largest_first_ties_by_key_in_every_format() {
        let keys = ["a", "b", "c", "d", "e"];
        let counts = || vec![(Agg::Count, AggColumn::U64(vec![2, 5, 5, 1, 3]))];
        assert_eq!(
            written(OutputFormat::Csv, &keys, counts(), Some(3)),
            "window_end,key,count\n1000,b,5\n1000,c,5\n1000,e,3\n"
        );
        assert_eq!(
            written(OutputFormat::Ndjson, &keys, counts(), Some(2)),
            "{\"window_end\":1000,\"key\":\"b\",\"count\":5}\n\
             {\"window_end\":1000,\"key\":\"c\",\"count\":5}\n"
        );
        let table = written(OutputFormat::Table, &keys, counts(), Some(1));
        assert!(
            table
                .ends_with("Time: 1000 ms\n-------------------------------------------\n(b,5)\n\n"),
            "{table}"
        );
        // More than the window has: all of it, largest first; none: by key.
        assert_eq!(
            written(OutputFormat::Csv, &keys, counts(), Some(9)),
            "window_end,key,count\n1000,b,5\n1000,c,5\n1000,e,3\n1000,a,2\n1000,d,1\n"
        );
        assert_eq!(
            written(OutputFormat::Csv, &keys, counts(), None),
            "window_end,key,count\n1000,a,2\n1000,b,5\n1000,c,5\n1000,d,1\n1000,e,3\n"
        );
        // Floats rank by value, nulls last.
        let floats = vec![(
            Agg::Max,
            AggColumn::NullableF64(vec![None, Some(-1.0), Some(2.5)]),
        )];
        assert_eq!(
            written(OutputFormat::Csv, &["x", "y", "z"], floats, Some(3)),
            "window_end,key,max\n1000,z,2.5\n1000,y,-1\n1000,x,\n"
        );
    }

    #[test]
    fn a_table_names_several_columns_and_rounds_floats() {
        let columns = || {
            vec![
                (Agg::Count, AggColumn::U64(vec![3])),
                (Agg::Avg, AggColumn::NullableF64(vec![Some(0.1 + 0.2)])),
            ]
        };
        let table = written(OutputFormat::Table, &["k"], columns(), None);
        assert!(
            table.ends_with("---\n(key,count,avg)\n(k,3,0.3)\n\n"),
            "{table}"
        );
        // CSV keeps every digit.
        let csv = written(OutputFormat::Csv, &["k"], columns(), None);
        assert!(csv.ends_with("1000,k,3,0.30000000000000004\n"), "{csv}");
        // One column: Spark's rows, no header line.
        let one = written(
            OutputFormat::Table,
            &["k"],
            vec![(Agg::Count, AggColumn::U64(vec![3]))],
            None,
        );
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

    #[test]
    fn json_strings_are_escaped() {
        let mut out = Vec::new();
        write_json_string(&mut out, "a\"b\\c\u{1}é").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), r#""a\"b\\c\u0001é""#);
    }
}
