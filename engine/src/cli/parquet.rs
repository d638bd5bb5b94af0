//! `--output parquet`: window rows gathered in columns and written with
//! polars as row groups of [`ROWS_PER_GROUP`] rows (feature `parquet`), so
//! that memory stays bounded however long the job runs.

use std::fs::File;
use std::path::PathBuf;

use engine::{Agg, AggColumn, Dictionary, ValueType, WindowResult};
use polars::io::parquet::write::BatchedWriter;
use polars::prelude::{Column, DataFrame, ParquetWriter};

/// Rows buffered before they are written as one row group.
const ROWS_PER_GROUP: usize = 64 * 1024;

enum Values {
    U64(Vec<u64>),
    OptI64(Vec<Option<i64>>),
    OptF64(Vec<Option<f64>>),
}

impl Values {
    /// The empty buffer of an aggregate's output column: count is `UInt64`;
    /// sum, min and max have the value type (`Int64` for integers, nullable:
    /// an overflowed sum is null); avg, variance and stddev are `Float64`.
    fn of(agg: Agg, values: ValueType) -> Self {
        match (agg, values) {
            (Agg::Count, _) => Values::U64(Vec::new()),
            (Agg::Sum | Agg::Min | Agg::Max, ValueType::I64) => Values::OptI64(Vec::new()),
            _ => Values::OptF64(Vec::new()),
        }
    }

    /// The buffered values, leaving an empty buffer of the same type.
    fn take(&mut self) -> Self {
        match self {
            Values::U64(v) => Values::U64(std::mem::take(v)),
            Values::OptI64(v) => Values::OptI64(std::mem::take(v)),
            Values::OptF64(v) => Values::OptF64(std::mem::take(v)),
        }
    }
}

/// Window rows, buffered as columns and written a row group at a time.
///
/// Each column's type is fixed when the sink is made, from its aggregate and
/// the job's value type, never from the rows: an empty result, or one whose
/// values are all null, writes the same schema as a full one.
pub struct ParquetSink {
    path: PathBuf,
    ends: Vec<i64>,
    keys: Vec<String>,
    columns: Vec<(Agg, &'static str, Values)>,
    writer: Option<BatchedWriter<File>>,
}

impl ParquetSink {
    pub fn new(path: PathBuf, aggs: &[Agg], names: &[&'static str], values: ValueType) -> Self {
        Self {
            path,
            ends: Vec::new(),
            keys: Vec::new(),
            columns: aggs
                .iter()
                .zip(names)
                .map(|(&a, &n)| (a, n, Values::of(a, values)))
                .collect(),
            writer: None,
        }
    }

    /// Appends a window's rows, ordered by key; a full row group is written.
    pub fn push(&mut self, window: &WindowResult, dict: &Dictionary) -> anyhow::Result<()> {
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
                let Some(column) = window.column(*agg) else {
                    continue;
                };
                match (values, column) {
                    (Values::U64(v), AggColumn::U64(c)) => v.extend(order.iter().map(|&i| c[i])),
                    // Integer sums are nullable: a sum that overflowed 64 bits
                    // is null (and the column is Int64 either way).
                    (Values::OptI64(v), AggColumn::I64(c)) => {
                        v.extend(order.iter().map(|&i| Some(c[i])));
                    }
                    (Values::OptI64(v), AggColumn::NullableI64(c)) => {
                        v.extend(order.iter().map(|&i| c[i]));
                    }
                    (Values::OptF64(v), AggColumn::NullableF64(c)) => {
                        v.extend(order.iter().map(|&i| c[i]));
                    }
                    _ => anyhow::bail!("the type of the {} column changed", agg.name()),
                }
            }
        }
        if self.ends.len() >= ROWS_PER_GROUP {
            self.write_group()?;
        }
        Ok(())
    }

    /// The buffered rows as a data frame, leaving the buffers empty.
    fn take_frame(&mut self) -> anyhow::Result<DataFrame> {
        let height = self.ends.len();
        let mut columns = vec![
            Column::new("window_end".into(), std::mem::take(&mut self.ends)),
            Column::new("key".into(), std::mem::take(&mut self.keys)),
        ];
        for (_, name, values) in &mut self.columns {
            let name = *name;
            // Typed vectors: polars takes the column type from them, also
            // when they are empty or all null.
            let column = match values.take() {
                Values::U64(v) => Column::new(name.into(), v),
                Values::OptI64(v) => Column::new(name.into(), v),
                Values::OptF64(v) => Column::new(name.into(), v),
            };
            columns.push(column);
        }
        Ok(DataFrame::new(height, columns)?)
    }

    /// Writes the buffered rows as one row group.
    fn write_group(&mut self) -> anyhow::Result<()> {
        let frame = self.take_frame()?;
        if self.writer.is_none() {
            let file =
                File::create(&self.path).map_err(|e| engine::Error::io(self.path.display(), e))?;
            self.writer = Some(ParquetWriter::new(file).batched(frame.schema())?);
        }
        if let Some(writer) = &mut self.writer {
            writer.write_batch(&frame)?;
        }
        Ok(())
    }

    /// Writes the last rows and the file's footer.
    pub fn finish(mut self) -> anyhow::Result<()> {
        if self.writer.is_none() || !self.ends.is_empty() {
            self.write_group()?;
        }
        if let Some(writer) = &self.writer {
            writer.finish()?;
        }
        Ok(())
    }
}
