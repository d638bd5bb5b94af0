//! Sinks: where window results go. One writer per file — Spark's `pprint`
//! table ([`TableSink`]), CSV ([`CsvSink`]), NDJSON ([`NdjsonSink`]), with
//! the `parquet` feature Parquet (`ParquetSink`) and with the `kafka`
//! feature a Kafka topic (`KafkaSink`) — all behind the
//! [`Sink`] trait, so that a new output is one new file here and one line
//! where the binary picks it.
//!
//! Writers know nothing of the command line: they take the columns to
//! write, the order of the rows and (for a table) how many rows to show,
//! whatever flags those came from.

use std::cmp::Ordering;
use std::io::{self, Write};

use crate::aggregate::Agg;
use crate::dictionary::{Dictionary, DictionaryReader};
use crate::window::{AggColumn, WindowResult};

mod csv;
#[cfg(feature = "kafka")]
mod kafka;
mod ndjson;
#[cfg(feature = "parquet")]
mod parquet;
mod table;

pub use csv::CsvSink;
#[cfg(feature = "kafka")]
pub use kafka::{KafkaSettings, KafkaSink, Partials};
pub use ndjson::NdjsonSink;
#[cfg(feature = "parquet")]
pub use parquet::ParquetSink;
pub use table::TableSink;

/// A destination of window results.
///
/// A sink gets every window as it closes, then [`finish`](Sink::finish)
/// once: what a format writes only once (a CSV header when no window had
/// come, a Parquet footer) goes out there.
pub trait Sink {
    /// Writes the rows of one window. Text sinks flush after each window,
    /// so that a reader sees a window as soon as it closes.
    ///
    /// The window's key ids name their keys in `dict` only during this
    /// call: a job releases the ids of keys that left every window between
    /// batches, and gives them to other keys (see [`Dictionary::retain`]).
    /// A sink that keeps rows for later keeps their key strings, never the
    /// ids.
    ///
    /// # Errors
    /// The writer's error; the sink is then not to be used any more.
    fn write_window(&mut self, window: &WindowResult, dict: &Dictionary) -> io::Result<()>;

    /// Completes and flushes the output. No window is written after it.
    ///
    /// # Errors
    /// The writer's error.
    fn finish(&mut self) -> io::Result<()>;

    /// A checkpoint is being taken: every row written so far must be at
    /// its destination before the checkpoint says so. A sink whose
    /// destination acknowledges (Kafka: the broker's acknowledgements, a
    /// transaction's commit) waits for it here; the default does nothing
    /// (text sinks flush after each window, and their file is synced by
    /// whoever holds it).
    ///
    /// # Errors
    /// The rows could not be made durable: the checkpoint is not taken.
    fn commit(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// The output already holds what this sink wrote before a checkpoint
    /// (a resumed job): nothing that goes only at the start of an output (a
    /// CSV header) is to be written again.
    fn continue_output(&mut self) {}
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn write_window(&mut self, window: &WindowResult, dict: &Dictionary) -> io::Result<()> {
        (**self).write_window(window, dict)
    }

    fn finish(&mut self) -> io::Result<()> {
        (**self).finish()
    }

    fn commit(&mut self) -> io::Result<()> {
        (**self).commit()
    }

    fn continue_output(&mut self) {
        (**self).continue_output();
    }
}

/// The aggregate columns a sink writes after `window_end` and `key`: each
/// aggregate with the name of its column (a grep job's sum of matches is
/// called `count`, say).
pub type OutputColumns = Vec<(Agg, &'static str)>;

/// The order of a window's rows in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RowOrder {
    /// Every row, by key.
    #[default]
    ByKey,
    /// Only the `n` rows with the largest value of the first column (a word
    /// count's `count`), largest first, ties by key; nulls rank last.
    Top(usize),
}

/// A text output format of window rows.
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

impl OutputFormat {
    /// A sink writing this format to `out`, rows in `order`; a table shows
    /// at most `table_rows` rows per window (and `...` when there are more),
    /// as `pprint` does.
    pub fn sink<'w, W: Write + 'w>(
        self,
        out: W,
        columns: OutputColumns,
        order: RowOrder,
        table_rows: usize,
    ) -> Box<dyn Sink + 'w> {
        match self {
            OutputFormat::Table => {
                Box::new(TableSink::new(out, columns, table_rows).with_order(order))
            }
            OutputFormat::Csv => Box::new(CsvSink::new(out, columns).with_order(order)),
            OutputFormat::Ndjson => Box::new(NdjsonSink::new(out, columns).with_order(order)),
        }
    }
}

/// One window's rows as a writer sees them: keys resolved, the output
/// columns looked up, the rows to write in their order.
struct Rows<'a> {
    end: i64,
    /// Key of each row of the window (not in output order).
    keys: Vec<&'a str>,
    /// The output columns; a column the window lacks would be a bug of the
    /// job's set-up, and prints as nulls rather than bringing the job down.
    columns: Vec<Option<&'a AggColumn>>,
    /// Indices of the rows to write, in output order.
    order: Vec<usize>,
}

impl<'a> Rows<'a> {
    fn new(
        window: &'a WindowResult,
        reader: &'a DictionaryReader<'_>,
        columns: &[(Agg, &'static str)],
        order: RowOrder,
    ) -> Self {
        let keys: Vec<&str> = window
            .keys()
            .iter()
            .map(|&id| reader.get(id).unwrap_or(""))
            .collect();
        let columns: Vec<Option<&AggColumn>> =
            columns.iter().map(|&(agg, _)| window.column(agg)).collect();
        let mut rows: Vec<usize> = (0..window.len()).collect();
        match order {
            RowOrder::ByKey => rows.sort_by(|&a, &b| keys[a].cmp(keys[b])),
            RowOrder::Top(n) => {
                let first = columns.first().copied().flatten();
                let by_rank = |&a: &usize, &b: &usize| {
                    descending(first, a, b).then_with(|| keys[a].cmp(keys[b]))
                };
                // Selecting the top n first keeps a huge window's sort to n
                // rows.
                if n < rows.len() {
                    if n > 0 {
                        rows.select_nth_unstable_by(n - 1, by_rank);
                    }
                    rows.truncate(n);
                }
                rows.sort_by(by_rank);
            }
        }
        Self {
            end: window.end(),
            keys,
            columns,
            order: rows,
        }
    }
}

/// Row `i` of a column as text, `None` for null: every digit (CSV, NDJSON).
fn text(column: &AggColumn, i: usize) -> Option<String> {
    match column {
        AggColumn::U64(v) => Some(v[i].to_string()),
        AggColumn::I64(v) => Some(v[i].to_string()),
        AggColumn::NullableI64(v) => v[i].map(|x| x.to_string()),
        AggColumn::NullableF64(v) => v[i].map(|x| x.to_string()),
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
///
/// # Errors
/// The writer's error.
pub fn write_csv_field(out: &mut impl Write, field: &str) -> io::Result<()> {
    if field.contains([',', '"', '\n', '\r']) {
        write!(out, "\"{}\"", field.replace('"', "\"\""))
    } else {
        out.write_all(field.as_bytes())
    }
}

/// A JSON string literal.
///
/// # Errors
/// The writer's error.
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

/// Test helpers shared by the writers' tests.
#[cfg(test)]
mod testing {
    use super::{OutputColumns, Sink};
    use crate::aggregate::Agg;
    use crate::dictionary::Dictionary;
    use crate::window::{AggColumn, WindowResult};

    /// A dictionary holding `keys` and a window ending at `end` of them.
    pub fn window(
        end: i64,
        keys: &[&str],
        columns: Vec<(Agg, AggColumn)>,
    ) -> (Dictionary, WindowResult) {
        let dict = Dictionary::new();
        let ids = keys.iter().map(|k| dict.intern(k).unwrap()).collect();
        (dict, WindowResult::new(end, ids, columns))
    }

    /// The output columns of a window's columns, under their own names.
    pub fn columns_of(columns: &[(Agg, AggColumn)]) -> OutputColumns {
        columns.iter().map(|(a, _)| (*a, a.name())).collect()
    }

    /// Writes every window of `windows` to `sink`, then finishes it.
    pub fn write_all(sink: &mut dyn Sink, windows: &[(Dictionary, WindowResult)]) {
        for (dict, window) in windows {
            sink.write_window(window, dict).unwrap();
        }
        sink.finish().unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{columns_of, window};
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

    /// One window ending at 1000 of `keys` with `columns`, written in
    /// `format` (in `order`, at most 10 table rows).
    fn written(
        format: OutputFormat,
        keys: &[&str],
        columns: Vec<(Agg, AggColumn)>,
        order: RowOrder,
    ) -> String {
        let names = columns_of(&columns);
        let (dict, window) = window(1000, keys, columns);
        let mut out = Vec::new();
        {
            let mut sink = format.sink(&mut out, names, order, 10);
            sink.write_window(&window, &dict).unwrap();
            sink.finish().unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn top_n_keeps_the_largest_first_ties_by_key_in_every_format() {
        let keys = ["a", "b", "c", "d", "e"];
        let counts = || vec![(Agg::Count, AggColumn::U64(vec![2, 5, 5, 1, 3]))];
        assert_eq!(
            written(OutputFormat::Csv, &keys, counts(), RowOrder::Top(3)),
            "window_end,key,count\n1000,b,5\n1000,c,5\n1000,e,3\n"
        );
        assert_eq!(
            written(OutputFormat::Ndjson, &keys, counts(), RowOrder::Top(2)),
            "{\"window_end\":1000,\"key\":\"b\",\"count\":5}\n\
             {\"window_end\":1000,\"key\":\"c\",\"count\":5}\n"
        );
        let table = written(OutputFormat::Table, &keys, counts(), RowOrder::Top(1));
        assert!(
            table
                .ends_with("Time: 1000 ms\n-------------------------------------------\n(b,5)\n\n"),
            "{table}"
        );
        // More than the window has: all of it, largest first; none: by key.
        assert_eq!(
            written(OutputFormat::Csv, &keys, counts(), RowOrder::Top(9)),
            "window_end,key,count\n1000,b,5\n1000,c,5\n1000,e,3\n1000,a,2\n1000,d,1\n"
        );
        assert_eq!(
            written(OutputFormat::Csv, &keys, counts(), RowOrder::Top(0)),
            "window_end,key,count\n"
        );
        assert_eq!(
            written(OutputFormat::Csv, &keys, counts(), RowOrder::ByKey),
            "window_end,key,count\n1000,a,2\n1000,b,5\n1000,c,5\n1000,d,1\n1000,e,3\n"
        );
        // Floats rank by value, nulls last.
        let floats = vec![(
            Agg::Max,
            AggColumn::NullableF64(vec![None, Some(-1.0), Some(2.5)]),
        )];
        assert_eq!(
            written(
                OutputFormat::Csv,
                &["x", "y", "z"],
                floats,
                RowOrder::Top(3)
            ),
            "window_end,key,max\n1000,z,2.5\n1000,y,-1\n1000,x,\n"
        );
    }

    #[test]
    fn a_column_the_window_lacks_is_written_as_nulls() {
        let (dict, window) = window(5, &["k"], vec![(Agg::Count, AggColumn::U64(vec![1]))]);
        let columns = vec![(Agg::Count, "count"), (Agg::Max, "max")];
        let mut out = Vec::new();
        {
            let mut sink = OutputFormat::Ndjson.sink(&mut out, columns, RowOrder::ByKey, 10);
            sink.write_window(&window, &dict).unwrap();
            sink.finish().unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"window_end\":5,\"key\":\"k\",\"count\":1,\"max\":null}\n"
        );
    }
}
