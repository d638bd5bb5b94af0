//! Columnar fast paths of the DStream API: tokenizing into dictionary ids and
//! windowed aggregation through [`WindowAggregator`], with no per-record
//! closure on the hot path.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::stream::DStream;
use crate::aggregate::{Agg, AggSet};
use crate::batch::{Batch, Column, Values};
use crate::dictionary::Dictionary;
use crate::error::Result;
use crate::window::{AggColumn, TimePolicy, ValueType, WindowAggregator, WindowResult};

/// A stream of words as dictionary ids: what [`DStream::words`] makes.
#[derive(Clone)]
pub struct WordStream {
    ids: DStream<u32>,
    dictionary: Dictionary,
}

impl DStream<String> {
    /// Splits every line on ASCII whitespace into dictionary-encoded words,
    /// the columnar start of a word count.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let ssc = engine::StreamingContext::new(Duration::from_secs(1))?;
    /// let lines = ssc.queue_stream(vec![vec!["a b a".to_string()], vec!["b".to_string()]]);
    /// let counts = lines
    ///     .words()
    ///     .count_by_value_and_window(Duration::from_secs(2), Duration::from_secs(1))?
    ///     .collect();
    /// ssc.run()?;
    /// let got = counts.take();
    /// assert_eq!(got[1], (2_000, vec![("a".to_string(), 2), ("b".to_string(), 2)]));
    /// # Ok::<(), engine::Error>(())
    /// ```
    #[must_use]
    pub fn words(&self) -> WordStream {
        let dictionary = Dictionary::new();
        let dict = dictionary.clone();
        let ids = self.derive(move |_, batch| {
            let Some(lines) = batch else {
                return Ok(None);
            };
            let mut ids = Vec::with_capacity(lines.len() * 8);
            dict.intern_all(
                lines.iter().flat_map(|line| line.split_ascii_whitespace()),
                &mut ids,
            )?;
            Ok(Some(ids))
        });
        WordStream { ids, dictionary }
    }
}

impl WordStream {
    /// The word ids, batch by batch.
    #[must_use]
    pub fn ids(&self) -> &DStream<u32> {
        &self.ids
    }

    /// The dictionary that turns ids back into words.
    #[must_use]
    pub fn dictionary(&self) -> &Dictionary {
        &self.dictionary
    }

    /// Word counts per batch, ordered by word.
    #[must_use]
    pub fn count_by_value(&self) -> DStream<(String, u64)> {
        let dict = self.dictionary.clone();
        self.ids.derive(move |_, batch| {
            Ok(batch.map(|ids| {
                let mut counts = vec![0_u64; dict.len()];
                for &id in ids.iter() {
                    counts[id as usize] += 1;
                }
                let reader = dict.read();
                let mut rows: Vec<(String, u64)> = counts
                    .iter()
                    .enumerate()
                    .filter(|(_, &n)| n > 0)
                    .map(|(id, &n)| (word(&reader, id as u32), n))
                    .collect();
                rows.sort_unstable();
                rows
            }))
        })
    }

    /// Word counts over a sliding window by inverse-reduce on dictionary ids,
    /// ordered by word; words whose count falls to zero drop out, as in
    /// Spark's `countByValueAndWindow`.
    pub fn count_by_value_and_window(
        &self,
        window: Duration,
        slide: Duration,
    ) -> Result<DStream<(String, u64)>> {
        let spec = self.ids.window_spec(window, slide)?;
        let mut op = WindowAggregator::builder(spec)
            .pool(self.ids.ctx.pool_arc())
            .build()?;
        let dict = self.dictionary.clone();
        let out = self.ids.derive(move |tick, batch| {
            let ids = batch.unwrap_or_default();
            let mut result = None;
            let mut sink = |w: WindowResult| result = Some(w);
            // Ids of the stream's own dictionary: handed over as they are,
            // not copied into a `Batch`.
            let policy = TimePolicy::MicroBatch(tick.index);
            op.push_columns(policy, &[], &ids, Values::None, &mut sink)?;
            op.advance_to(tick.time, &mut sink)?;
            Ok(result.map(|w| {
                let reader = dict.read();
                let counts = match w.column(Agg::Count) {
                    Some(AggColumn::U64(counts)) => counts.as_slice(),
                    _ => &[],
                };
                let mut rows: Vec<(String, u64)> = w
                    .keys()
                    .iter()
                    .zip(counts)
                    .map(|(&id, &n)| (word(&reader, id), n))
                    .collect();
                rows.sort_unstable();
                rows
            }))
        });
        Ok(out.delayed_by(spec))
    }
}

fn word(reader: &crate::DictionaryReader<'_>, id: u32) -> String {
    reader.get(id).unwrap_or_default().to_owned()
}

/// The aggregates of one key in one window, as produced by
/// [`DStream::aggregate_by_key_and_window`].
#[derive(Clone, PartialEq)]
pub struct AggRow {
    values: Arc<[Agg]>,
    data: Vec<Option<f64>>,
}

impl AggRow {
    /// The value of `agg`; `None` when null or not computed.
    #[must_use]
    pub fn get(&self, agg: Agg) -> Option<f64> {
        let i = self.values.iter().position(|&a| a == agg)?;
        self.data[i]
    }
}

impl fmt::Debug for AggRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (agg, value)) in self.values.iter().zip(&self.data).enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            match value {
                Some(v) => write!(f, "{sep}{agg}: {v}")?,
                None => write!(f, "{sep}{agg}: null")?,
            }
        }
        f.write_str("}")
    }
}

impl<K: super::Record + AsRef<str>> DStream<(K, f64)> {
    /// Built-in aggregates (count, sum, avg, min, max, variance, stddev) of
    /// each key's values over a sliding window, computed on columns: keys are
    /// dictionary-encoded, invertible aggregates slide by inverse-reduce and
    /// min/max in a two-stacks structure. Rows are ordered by key; keys without
    /// values in the window drop out. Values must be finite.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use engine::Agg;
    /// let ssc = engine::StreamingContext::new(Duration::from_secs(1))?;
    /// let readings = ssc.queue_stream(vec![vec![("t1", 20.0), ("t1", 22.0)], vec![("t1", 30.0)]]);
    /// let stats = readings
    ///     .aggregate_by_key_and_window("avg,max".parse()?, Duration::from_secs(2), Duration::from_secs(1))?
    ///     .collect();
    /// ssc.run()?;
    /// let (time, rows) = &stats.take()[1];
    /// assert_eq!((*time, rows[0].1.get(Agg::Avg), rows[0].1.get(Agg::Max)), (2_000, Some(24.0), Some(30.0)));
    /// # Ok::<(), engine::Error>(())
    /// ```
    pub fn aggregate_by_key_and_window(
        &self,
        aggs: AggSet,
        window: Duration,
        slide: Duration,
    ) -> Result<DStream<(String, AggRow)>> {
        let spec = self.window_spec(window, slide)?;
        let columns: Arc<[Agg]> = aggs.aggs().into();
        let mut op = WindowAggregator::builder(spec)
            .aggregates(aggs)
            .values(ValueType::F64)
            .pool(self.ctx.pool_arc())
            .build()?;
        let dict = Dictionary::new();
        let out = self.derive(move |tick, batch| {
            let records = batch.unwrap_or_default();
            let mut keys = Vec::with_capacity(records.len());
            dict.intern_all(records.iter().map(|(k, _)| k.as_ref()), &mut keys)?;
            let values: Vec<f64> = records.iter().map(|(_, v)| *v).collect();
            let batch = Batch::without_times(dict.clone(), keys, vec![Column::F64(values)])?;
            let mut result = None;
            let mut sink = |w: WindowResult| result = Some(w);
            op.push_with(&batch, TimePolicy::MicroBatch(tick.index), &mut sink)?;
            op.advance_to(tick.time, &mut sink)?;
            Ok(result.map(|w| {
                let reader = dict.read();
                let mut rows: Vec<(String, AggRow)> = (0..w.len())
                    .map(|i| {
                        let data = w.columns().iter().map(|(_, c)| c.get_f64(i)).collect();
                        let row = AggRow {
                            values: Arc::clone(&columns),
                            data,
                        };
                        (word(&reader, w.keys()[i]), row)
                    })
                    .collect();
                rows.sort_by(|a, b| a.0.cmp(&b.0));
                rows
            }))
        });
        Ok(out.delayed_by(spec))
    }
}
