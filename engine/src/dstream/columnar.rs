//! Columnar fast paths of the DStream API: tokenizing into dictionary ids and
//! windowed aggregation through [`WindowAggregator`], with no per-record
//! closure on the hot path.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::stream::DStream;
use crate::aggregate::{Agg, AggSet};
use crate::batch::{Batch, Column, Values};
use crate::dictionary::{Dictionary, KeyReclaimer};
use crate::error::Result;
use crate::window::{AggColumn, TimePolicy, ValueType, WindowAggregator, WindowResult};

/// A stream of words as dictionary ids: what [`DStream::words`] makes.
///
/// # Ids are released
///
/// The dictionary forgets words that no window holds any more, and gives
/// their ids to new words, so that its memory follows the words live in the
/// windows, not every word ever seen. That is safe only while every holder
/// of an id is known: the windowed operators made from this stream register
/// themselves, and ids are released at the start of a micro-batch, before
/// its words are interned, when the previous batch's ids have all been
/// turned into strings. Ids handed to user code ([`ids`](Self::ids), or the
/// [`dictionary`](Self::dictionary) to read them back) may be kept across
/// micro-batches, so calling either turns the release off for the stream.
#[derive(Clone)]
pub struct WordStream {
    ids: DStream<u32>,
    dictionary: Dictionary,
    holders: Rc<RefCell<Holders>>,
}

/// Who holds ids of a [`WordStream`]'s dictionary across micro-batches.
struct Holders {
    /// The windowed operators made from the stream.
    operators: Vec<Rc<RefCell<WindowAggregator>>>,
    /// User code was given ids or the dictionary: nothing is released.
    exposed: bool,
    /// When to release.
    reclaimer: KeyReclaimer,
}

impl Holders {
    /// Releases the ids no operator holds, if the dictionary has grown
    /// enough and no id went to user code. Call it only where no id of an
    /// earlier micro-batch is in flight outside the operators.
    fn reclaim(&mut self, dict: &Dictionary) {
        if self.exposed {
            return;
        }
        let operators = &self.operators;
        self.reclaimer.maybe_reclaim(dict, |mark| {
            for op in operators {
                op.borrow_mut().for_each_held_key(mark);
            }
        });
    }
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
        let holders = Rc::new(RefCell::new(Holders {
            operators: Vec::new(),
            exposed: false,
            reclaimer: KeyReclaimer::new(),
        }));
        let reclaim = Rc::clone(&holders);
        // This step runs before every step made from the stream (steps run
        // in the order they were made), so at its start the previous
        // batch's ids have been counted and their rows turned into strings:
        // only the windowed operators still hold ids.
        let ids = self.derive(move |_, batch| {
            reclaim.borrow_mut().reclaim(&dict);
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
        WordStream {
            ids,
            dictionary,
            holders,
        }
    }
}

impl WordStream {
    /// The word ids, batch by batch. Ids are no longer released once this
    /// is called (see [`WordStream`]): code downstream may keep them.
    #[must_use]
    pub fn ids(&self) -> &DStream<u32> {
        self.holders.borrow_mut().exposed = true;
        &self.ids
    }

    /// The dictionary that turns ids back into words. Ids are no longer
    /// released once this is called (see [`WordStream`]).
    #[must_use]
    pub fn dictionary(&self) -> &Dictionary {
        self.holders.borrow_mut().exposed = true;
        &self.dictionary
    }

    /// Word counts per batch, ordered by word.
    #[must_use]
    pub fn count_by_value(&self) -> DStream<(String, u64)> {
        let dict = self.dictionary.clone();
        self.ids.derive(move |_, batch| {
            Ok(batch.map(|ids| {
                // Released ids leave holes: ids reach up to the bound, not
                // the number of live words.
                let mut counts = vec![0_u64; dict.id_bound()];
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
        let op = Rc::new(RefCell::new(
            WindowAggregator::builder(spec)
                .pool(self.ids.ctx.pool_arc())
                .build()?,
        ));
        // The operator holds ids across micro-batches: the words step asks
        // it which before releasing any.
        self.holders.borrow_mut().operators.push(Rc::clone(&op));
        let dict = self.dictionary.clone();
        let state = self
            .ids
            .ctx
            .register_unsaved("words().count_by_value_and_window");
        let mut out = self.ids.derive(move |tick, batch| {
            let mut op = op.borrow_mut();
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
        out.state = Some(state);
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
        self.aggregate_by_key_and_window_reclaiming(aggs, window, slide, KeyReclaimer::new())
    }

    /// [`aggregate_by_key_and_window`](Self::aggregate_by_key_and_window),
    /// releasing the keys that leave every window when `reclaimer` says.
    fn aggregate_by_key_and_window_reclaiming(
        &self,
        aggs: AggSet,
        window: Duration,
        slide: Duration,
        mut reclaimer: KeyReclaimer,
    ) -> Result<DStream<(String, AggRow)>> {
        let spec = self.window_spec(window, slide)?;
        let columns: Arc<[Agg]> = aggs.aggs().into();
        let mut op = WindowAggregator::builder(spec)
            .aggregates(aggs)
            .values(ValueType::F64)
            .pool(self.ctx.pool_arc())
            .build()?;
        let state = self.ctx.register_unsaved("aggregate_by_key_and_window");
        let dict = Dictionary::new();
        let mut out = self.derive(move |tick, batch| {
            let records = batch.unwrap_or_default();
            let mut keys = Vec::with_capacity(records.len());
            dict.intern_all(records.iter().map(|(k, _)| k.as_ref()), &mut keys)?;
            let values: Vec<f64> = records.iter().map(|(_, v)| *v).collect();
            let batch = Batch::without_times(dict.clone(), keys, vec![Column::F64(values)])?;
            let mut result = None;
            let mut sink = |w: WindowResult| result = Some(w);
            op.push_with(&batch, TimePolicy::MicroBatch(tick.index), &mut sink)?;
            op.advance_to(tick.time, &mut sink)?;
            let rows = result.map(|w| {
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
            });
            // The dictionary is this operator's alone and the window's rows
            // are strings now: the keys it no longer holds can go.
            reclaimer.maybe_reclaim(&dict, |mark| op.for_each_held_key(mark));
            Ok(rows)
        });
        out.state = Some(state);
        Ok(out.delayed_by(spec))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::StreamingContext;

    const TICKS: usize = 120;
    const NEW_WORDS_PER_TICK: usize = 100;

    /// Lines of tick `k`: words seen in this tick only, and one word seen in
    /// every tick.
    fn lines_of(k: usize) -> Vec<String> {
        (0..NEW_WORDS_PER_TICK)
            .map(|i| format!("w{k}_{i} always w{k}_{i}"))
            .collect()
    }

    /// Word counts of the ticks whose batches end in `(end - window, end]`,
    /// counted from the lines themselves.
    fn brute_force(end: i64, window_ticks: i64) -> Vec<(String, u64)> {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let last = end / 1_000 - 1;
        for k in (last - window_ticks + 1).max(0)..=last.min(TICKS as i64 - 1) {
            for line in lines_of(usize::try_from(k).unwrap()) {
                for word in line.split_ascii_whitespace() {
                    *counts.entry(word.to_owned()).or_default() += 1;
                }
            }
        }
        counts.into_iter().collect()
    }

    #[test]
    fn word_stream_releases_words_that_left_every_window_and_counts_stay_exact() {
        let ssc = StreamingContext::new(Duration::from_secs(1)).unwrap();
        let mut tick = 0;
        let lines = ssc.generator_stream(move |_| {
            tick += 1;
            (tick <= TICKS).then(|| lines_of(tick - 1))
        });
        let words = lines.words();
        words.holders.borrow_mut().reclaimer = KeyReclaimer::starting_at(64);
        // The field, not `dictionary()`: that would turn the release off.
        let dict = words.dictionary.clone();
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let per_batch = words.count_by_value().collect();
        let watch = (dict.clone(), Arc::clone(&peak));
        let windowed = words
            .count_by_value_and_window(Duration::from_secs(3), Duration::from_secs(1))
            .unwrap()
            .map(move |row| {
                watch
                    .1
                    .fetch_max(watch.0.len(), std::sync::atomic::Ordering::Relaxed);
                row
            })
            .collect();
        ssc.run().unwrap();

        let windows = windowed.take();
        assert!(windows.len() >= TICKS, "{} windows", windows.len());
        for (end, rows) in &windows {
            assert_eq!(rows, &brute_force(*end, 3), "window ending at {end}");
        }
        for (end, rows) in per_batch.take() {
            assert_eq!(rows, brute_force(end, 1), "batch ending at {end}");
        }
        // 3 ticks of 100 words and `always` are live at once; 12 000 words
        // went through. The reclaimer lets the dictionary grow to about
        // twice what is held before a pass.
        let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
        assert!(peak > 0);
        assert!(peak <= 1_000, "the dictionary grew to {peak} words");
        assert!(dict.id_bound() <= 1_000, "ids up to {}", dict.id_bound());
    }

    #[test]
    fn word_stream_keeps_every_word_once_its_ids_were_handed_out() {
        let ssc = StreamingContext::new(Duration::from_secs(1)).unwrap();
        let lines = ssc.queue_stream((0..20).map(lines_of));
        let words = lines.words();
        words.holders.borrow_mut().reclaimer = KeyReclaimer::starting_at(64);
        let kept = words.ids().collect();
        let counts = words
            .count_by_value_and_window(Duration::from_secs(2), Duration::from_secs(1))
            .unwrap()
            .collect();
        ssc.run().unwrap();
        assert!(!counts.take().is_empty());
        // Every id a user kept still names its word.
        let dict = words.dictionary();
        assert_eq!(dict.len(), 20 * NEW_WORDS_PER_TICK + 1);
        let reader = dict.read();
        let mut checked = 0;
        // Micro-batches after the queue's last have no ids.
        for (end, ids) in kept.take() {
            if let Some(&first) = ids.first() {
                let k = usize::try_from(end / 1_000 - 1).unwrap();
                assert_eq!(reader.get(first), Some(format!("w{k}_0").as_str()));
                checked += 1;
            }
        }
        assert_eq!(checked, 20);
    }

    #[test]
    fn aggregate_by_key_and_window_releases_keys_and_stays_exact() {
        let ssc = StreamingContext::new(Duration::from_secs(1)).unwrap();
        let batches: Vec<Vec<(String, f64)>> = (0..TICKS)
            .map(|k| {
                (0..NEW_WORDS_PER_TICK)
                    .map(|i| (format!("k{k}_{i}"), i as f64))
                    .chain([("steady".to_string(), k as f64)])
                    .collect()
            })
            .collect();
        let input = ssc.queue_stream(batches.clone());
        let got = input
            .aggregate_by_key_and_window_reclaiming(
                "count,sum".parse().unwrap(),
                Duration::from_secs(2),
                Duration::from_secs(1),
                KeyReclaimer::starting_at(64),
            )
            .unwrap()
            .collect();
        ssc.run().unwrap();
        let windows = got.take();
        assert!(windows.len() >= TICKS);
        for (end, rows) in windows {
            let last = end / 1_000 - 1;
            let mut want: BTreeMap<String, (f64, f64)> = BTreeMap::new();
            for k in (last - 1).max(0)..=last.min(TICKS as i64 - 1) {
                for (key, v) in &batches[usize::try_from(k).unwrap()] {
                    let e = want.entry(key.clone()).or_default();
                    e.0 += 1.0;
                    e.1 += v;
                }
            }
            let rows: Vec<(String, (f64, f64))> = rows
                .into_iter()
                .map(|(k, r)| (k, (r.get(Agg::Count).unwrap(), r.get(Agg::Sum).unwrap())))
                .collect();
            assert_eq!(
                rows,
                want.into_iter().collect::<Vec<_>>(),
                "window at {end}"
            );
        }
    }
}
