//! Parquet (feature `parquet`): window rows gathered in columns and written
//! with polars as row groups of [`ROWS_PER_GROUP`] rows, so that memory
//! stays bounded however long the job runs.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use polars::io::parquet::write::BatchedWriter;
use polars::prelude::{Column, DataFrame, ParquetWriter};

use super::{OutputColumns, Sink};
use crate::aggregate::Agg;
use crate::dictionary::Dictionary;
use crate::window::{AggColumn, ValueType, WindowResult};

/// Rows buffered before they are written as one row group.
const ROWS_PER_GROUP: usize = 64 * 1024;

/// The buffered values of one aggregate column; its type follows from the
/// aggregate and the value type alone, so that the file's schema does not
/// depend on the data (a job without rows writes the same types as one
/// with).
enum Values {
    /// `UInt64`: counts.
    U64(Vec<u64>),
    /// `Int64`, nullable: sums, minima and maxima of integers (a sum that
    /// overflowed 64 bits is null).
    OptI64(Vec<Option<i64>>),
    /// `Float64`, nullable: everything else.
    OptF64(Vec<Option<f64>>),
}

impl Values {
    fn of(agg: Agg, values: ValueType) -> Self {
        match (agg, values) {
            (Agg::Count, _) => Values::U64(Vec::new()),
            (Agg::Sum | Agg::Min | Agg::Max, ValueType::I64) => Values::OptI64(Vec::new()),
            _ => Values::OptF64(Vec::new()),
        }
    }

    /// The buffered values as a column named `name`, leaving an empty
    /// buffer of the same type.
    fn take(&mut self, name: &str) -> Column {
        match self {
            Values::U64(v) => Column::new(name.into(), std::mem::take(v)),
            Values::OptI64(v) => Column::new(name.into(), std::mem::take(v)),
            Values::OptF64(v) => Column::new(name.into(), std::mem::take(v)),
        }
    }
}

/// Writes window rows, ordered by key, to a Parquet file: `window_end`
/// (`Int64`), `key` (`String`), then one column per aggregate. The file is
/// created with the first row group (or at [`finish`](Sink::finish)).
pub struct ParquetSink {
    path: PathBuf,
    ends: Vec<i64>,
    keys: Vec<String>,
    columns: Vec<(Agg, &'static str, Values)>,
    writer: Option<BatchedWriter<File>>,
}

impl ParquetSink {
    /// A sink of `columns` computed over values of type `values`, to be
    /// written to `path`.
    #[must_use]
    pub fn new(path: PathBuf, columns: &OutputColumns, values: ValueType) -> Self {
        Self {
            path,
            ends: Vec::new(),
            keys: Vec::new(),
            columns: columns
                .iter()
                .map(|&(agg, name)| (agg, name, Values::of(agg, values)))
                .collect(),
            writer: None,
        }
    }

    /// The buffered rows as a data frame, leaving the buffers empty.
    fn take_frame(&mut self) -> io::Result<DataFrame> {
        let height = self.ends.len();
        let mut columns = vec![
            Column::new("window_end".into(), std::mem::take(&mut self.ends)),
            Column::new("key".into(), std::mem::take(&mut self.keys)),
        ];
        columns.extend(
            self.columns
                .iter_mut()
                .map(|(_, name, values)| values.take(name)),
        );
        DataFrame::new(height, columns).map_err(io::Error::other)
    }

    /// Writes the buffered rows as one row group.
    fn write_group(&mut self) -> io::Result<()> {
        let frame = self.take_frame()?;
        if self.writer.is_none() {
            let file = File::create(&self.path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))?;
            let writer = ParquetWriter::new(file)
                .batched(frame.schema())
                .map_err(io::Error::other)?;
            self.writer = Some(writer);
        }
        if let Some(writer) = &mut self.writer {
            writer.write_batch(&frame).map_err(io::Error::other)?;
        }
        Ok(())
    }
}

impl Sink for ParquetSink {
    /// Appends a window's rows, ordered by key; a full row group is
    /// written.
    fn write_window(&mut self, window: &WindowResult, dict: &Dictionary) -> io::Result<()> {
        {
            let reader = dict.read();
            let key = |i: usize| reader.get(window.keys()[i]).unwrap_or("");
            let mut order: Vec<usize> = (0..window.len()).collect();
            order.sort_by(|&a, &b| key(a).cmp(key(b)));
            for &i in &order {
                self.ends.push(window.end());
                self.keys.push(key(i).to_owned());
            }
            for (agg, _, values) in &mut self.columns {
                // A column the window lacks is nulls, as in the text sinks;
                // counts are never null (and never missing).
                let column = window.column(*agg);
                match (values, column) {
                    (Values::U64(v), Some(AggColumn::U64(c))) => {
                        v.extend(order.iter().map(|&i| c[i]));
                    }
                    (Values::OptI64(v), Some(AggColumn::I64(c))) => {
                        v.extend(order.iter().map(|&i| Some(c[i])));
                    }
                    (Values::OptI64(v), Some(AggColumn::NullableI64(c))) => {
                        v.extend(order.iter().map(|&i| c[i]));
                    }
                    (Values::OptF64(v), Some(AggColumn::NullableF64(c))) => {
                        v.extend(order.iter().map(|&i| c[i]));
                    }
                    (Values::OptI64(v), None) => v.extend(order.iter().map(|_| None)),
                    (Values::OptF64(v), None) => v.extend(order.iter().map(|_| None)),
                    _ => {
                        return Err(io::Error::other(format!(
                            "the type of the {} column changed",
                            agg.name()
                        )))
                    }
                }
            }
        }
        if self.ends.len() >= ROWS_PER_GROUP {
            self.write_group()?;
        }
        Ok(())
    }

    /// Writes the last rows and the file's footer.
    fn finish(&mut self) -> io::Result<()> {
        if self.writer.is_none() || !self.ends.is_empty() {
            self.write_group()?;
        }
        if let Some(writer) = self.writer.take() {
            writer.finish().map_err(io::Error::other)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{window, write_all};
    use super::*;
    use polars::prelude::{DataType, ParquetReader, SerReader};

    fn read(path: &std::path::Path) -> DataFrame {
        ParquetReader::new(File::open(path).unwrap())
            .finish()
            .unwrap()
    }

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("engine-sink-{}-{name}.parquet", std::process::id()))
    }

    #[test]
    fn the_schema_does_not_depend_on_the_data() {
        let columns = vec![(Agg::Count, "count"), (Agg::Sum, "sum"), (Agg::Avg, "avg")];
        let full_path = temp("full");
        let mut full = ParquetSink::new(full_path.clone(), &columns, ValueType::I64);
        let rows = window(
            1_000,
            &["b", "a"],
            vec![
                (Agg::Count, AggColumn::U64(vec![2, 1])),
                (Agg::Sum, AggColumn::I64(vec![5, -3])),
                (Agg::Avg, AggColumn::NullableF64(vec![Some(2.5), None])),
            ],
        );
        write_all(&mut full, &[rows]);
        let empty_path = temp("empty");
        let mut empty = ParquetSink::new(empty_path.clone(), &columns, ValueType::I64);
        write_all(&mut empty, &[]);
        let (full, empty) = (read(&full_path), read(&empty_path));
        let _ = std::fs::remove_file(full_path);
        let _ = std::fs::remove_file(empty_path);
        assert_eq!(full.schema(), empty.schema());
        assert_eq!(empty.height(), 0);
        let types: Vec<DataType> = full.dtypes();
        assert_eq!(
            types,
            [
                DataType::Int64,
                DataType::String,
                DataType::UInt64,
                DataType::Int64,
                DataType::Float64
            ]
        );
        // Rows by key, nulls kept.
        let keys = full.column("key").unwrap().str().unwrap();
        assert_eq!((keys.get(0), keys.get(1)), (Some("a"), Some("b")));
        let avg = full.column("avg").unwrap().f64().unwrap();
        assert_eq!((avg.get(0), avg.get(1)), (None, Some(2.5)));
    }
}
