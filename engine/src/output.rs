//! Writing window results: Spark's `pprint` table, CSV (RFC 4180) and NDJSON.

use std::io::{self, Write};

use crate::aggregate::Agg;
use crate::dictionary::Dictionary;
use crate::window::{AggColumn, WindowResult};

/// An output format of window rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// A `Time: <ms> ms` header per window and `(key,aggregates…)` rows, as
    /// Spark's `pprint`.
    Table,
    /// `window_end,key,<aggregates>` with a header row.
    Csv,
    /// One JSON object per row.
    Ndjson,
}

/// Writes window results, rows ordered by key.
pub struct WindowWriter<W: Write> {
    out: W,
    format: OutputFormat,
    columns: Vec<Agg>,
    names: Vec<&'static str>,
    table_rows: usize,
    rows: u64,
}

impl<W: Write> WindowWriter<W> {
    /// A writer of `columns` in `format`; the CSV header is written at once.
    /// `names` rename the aggregate columns (e.g. `count` for a grep job's
    /// sum of matches). `table_rows` bounds the rows a table shows per
    /// window, as `pprint` does.
    pub fn new(
        mut out: W,
        format: OutputFormat,
        columns: Vec<Agg>,
        names: Vec<&'static str>,
        table_rows: usize,
    ) -> io::Result<Self> {
        if format == OutputFormat::Csv {
            write!(out, "window_end,key")?;
            for name in &names {
                write!(out, ",{name}")?;
            }
            writeln!(out)?;
            out.flush()?;
        }
        Ok(Self {
            out,
            format,
            columns,
            names,
            table_rows,
            rows: 0,
        })
    }

    /// Rows written so far.
    #[must_use]
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes one window (nothing for an empty one, but a table header) and
    /// flushes, so that a reader sees each window as it closes.
    pub fn write(&mut self, window: &WindowResult, dict: &Dictionary) -> io::Result<()> {
        let reader = dict.read();
        let key = |i: usize| reader.get(window.keys()[i]).unwrap_or("");
        let mut order: Vec<usize> = (0..window.len()).collect();
        order.sort_by(|&a, &b| key(a).cmp(key(b)));
        // A column the window lacks would be a bug of the job's set-up; it
        // prints as nulls rather than bringing the job down.
        let columns: Vec<Option<&AggColumn>> =
            self.columns.iter().map(|&agg| window.column(agg)).collect();
        let end = window.end();
        match self.format {
            OutputFormat::Table => {
                let rule = "-------------------------------------------";
                writeln!(self.out, "{rule}\nTime: {end} ms\n{rule}")?;
                for &i in order.iter().take(self.table_rows) {
                    write!(self.out, "({}", key(i))?;
                    for column in &columns {
                        write!(
                            self.out,
                            ",{}",
                            column.and_then(|c| text(c, i)).as_deref().unwrap_or("null")
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
        self.rows += window.len() as u64;
        self.out.flush()
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
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

    #[test]
    fn json_strings_are_escaped() {
        let mut out = Vec::new();
        write_json_string(&mut out, "a\"b\\c\u{1}é").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), r#""a\"b\\c\u0001é""#);
    }
}
