//! `--output parquet`: window rows gathered in columns and written with
//! polars when the job ends (feature `parquet`).

use std::path::PathBuf;

use engine::{Agg, AggColumn, Dictionary, WindowResult};
use polars::prelude::{Column, DataFrame, ParquetWriter};

enum Values {
    U64(Vec<u64>),
    OptI64(Vec<Option<i64>>),
    OptF64(Vec<Option<f64>>),
}

/// Rows of every window, as columns.
pub struct ParquetSink {
    path: PathBuf,
    ends: Vec<i64>,
    keys: Vec<String>,
    columns: Vec<(Agg, &'static str, Option<Values>)>,
}

impl ParquetSink {
    pub fn new(path: PathBuf, aggs: &[Agg], names: &[&'static str]) -> Self {
        Self {
            path,
            ends: Vec::new(),
            keys: Vec::new(),
            columns: aggs
                .iter()
                .zip(names)
                .map(|(&a, &n)| (a, n, None))
                .collect(),
        }
    }

    /// Appends a window's rows, ordered by key.
    pub fn push(&mut self, window: &WindowResult, dict: &Dictionary) {
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
            match (values.get_or_insert_with(|| empty_like(column)), column) {
                (Values::U64(v), AggColumn::U64(c)) => v.extend(order.iter().map(|&i| c[i])),
                // Integer sums are nullable: a sum that overflowed 64 bits
                // is null (and the column is Int64 either way).
                (Values::OptI64(v), AggColumn::I64(c)) => {
                    v.extend(order.iter().map(|&i| Some(c[i])));
                }
                (Values::OptI64(v), AggColumn::NullableI64(c)) => {
                    v.extend(order.iter().map(|&i| c[i]))
                }
                (Values::OptF64(v), AggColumn::NullableF64(c)) => {
                    v.extend(order.iter().map(|&i| c[i]))
                }
                _ => unreachable!("a column keeps its type"),
            }
        }
    }

    /// Writes the file.
    pub fn finish(self) -> anyhow::Result<()> {
        let height = self.ends.len();
        let mut columns = vec![
            Column::new("window_end".into(), self.ends),
            Column::new("key".into(), self.keys),
        ];
        for (agg, name, values) in self.columns {
            let column = match values {
                Some(Values::U64(v)) => Column::new(name.into(), v),
                Some(Values::OptI64(v)) => Column::new(name.into(), v),
                Some(Values::OptF64(v)) => Column::new(name.into(), v),
                // No window had rows: the column's type follows its aggregate.
                None if agg == Agg::Count => Column::new(name.into(), Vec::<u64>::new()),
                None => Column::new(name.into(), Vec::<Option<f64>>::new()),
            };
            columns.push(column);
        }
        let mut frame = DataFrame::new(height, columns)?;
        let file = std::fs::File::create(&self.path)
            .map_err(|e| engine::Error::io(self.path.display(), &e))?;
        ParquetWriter::new(file).finish(&mut frame)?;
        Ok(())
    }
}

fn empty_like(column: &AggColumn) -> Values {
    match column {
        AggColumn::U64(_) => Values::U64(Vec::new()),
        AggColumn::I64(_) | AggColumn::NullableI64(_) => Values::OptI64(Vec::new()),
        AggColumn::NullableF64(_) => Values::OptF64(Vec::new()),
    }
}
