//! The window state of one key partition, owned by one worker.

use std::collections::VecDeque;

use super::core::PartitionState;
use super::extremes::Extremes;
use super::partial::{DenseAcc, Layout, Partials};
use super::result::{AggColumn, WindowResult};
use super::{KeyRow, Retention};
use crate::aggregate::{Agg, AggSet, Numeric};
use crate::checkpoint::codec::{CodecError, Decoder, Encoder, Persist};

const NO_SLOT: u32 = u32::MAX;

/// What the numeric partitions of one operator share.
pub(crate) struct NumericConfig {
    pub aggs: AggSet,
    pub retention: Retention,
    /// Pane length, ms: where the key TTL's bound falls.
    pub pane: i64,
    /// With Spark-compatible retention or a filter: keys silent this long
    /// (ms) leave (see [`super::WindowAggregatorBuilder::key_ttl`]).
    pub key_ttl: Option<i64>,
}

impl<V: OutputValue> PartitionState for Partition<V> {
    type Config = NumericConfig;
    type Rows = WindowResult;

    fn close_pane(&mut self, pane: i64, _: &NumericConfig) {
        Partition::close_pane(self, pane);
    }

    fn evict_before(&mut self, first_kept: i64, config: &NumericConfig) {
        Partition::evict_before(self, first_kept, &config.retention);
    }

    fn emit(&mut self, end: i64, config: &NumericConfig) -> WindowResult {
        // Keys kept with count 0 whose last pane is before this bound have
        // been silent for the TTL: they leave before the window is written.
        if let (false, Some(ttl)) = (config.retention.is_live(), config.key_ttl) {
            self.expire_silent(end.saturating_sub(ttl).div_euclid(config.pane));
        }
        Partition::emit(self, end, &config.aggs, &config.retention)
    }

    fn holds_nothing(&self) -> bool {
        Partition::holds_nothing(self)
    }

    fn pending_work(&self, first_kept: i64, emit: bool) -> usize {
        Partition::pending_work(self, first_kept, emit)
    }

    fn may_skip_idle(config: &NumericConfig) -> bool {
        config.retention.is_live()
    }
}

/// A closed pane's partial aggregates, kept until the pane leaves every window
/// so that its contribution can be subtracted (inverse-reduce).
#[derive(Debug)]
struct ClosedPane<V: Numeric> {
    index: i64,
    partials: Partials<V>,
}

/// Running window aggregates of the live keys, one slot per key, as struct of
/// arrays. Slots are dense: removing a key moves the last slot into its place.
#[derive(Debug)]
struct Slots<V: Numeric> {
    keys: Vec<u32>,
    counts: Vec<u64>,
    sums: Vec<V::Sum>,
    squares: Vec<V::Sum>,
    extremes: Vec<Extremes<V>>,
    /// First pane whose contribution the slot holds: a key a filter dropped and
    /// that came back must not have its older panes subtracted.
    since: Vec<i64>,
    /// Last pane with events of the key: how long a key kept with count 0
    /// (Spark-compatible retention) has been silent, for the key TTL.
    last_pane: Vec<i64>,
}

/// The state of one partition: the keys `k` with `k % partitions == index`.
///
/// # Invariants
///
/// - `acc` holds the open pane's aggregates by local id `k / partitions`;
/// - `ring` holds the closed, non-empty panes that some future window still
///   covers, oldest first, with increasing indices;
/// - for every slot `s`: `slot_of[keys[s] / partitions] == s`, and its
///   running aggregates equal the sum of its entries in the panes of `ring`
///   with index `>= since[s]`; its `extremes` hold the sliding (min, max) of those panes;
/// - with [`Retention::Live`], every slot has `counts[s] > 0`.
pub(crate) struct Partition<V: Numeric> {
    index: u32,
    partitions: u32,
    layout: Layout,
    pub(crate) acc: DenseAcc<V>,
    ring: VecDeque<ClosedPane<V>>,
    slot_of: Vec<u32>,
    slots: Slots<V>,
    /// The lists of the last evicted pane, reused by the next closing one:
    /// fresh allocations of this size cost page faults on every pane.
    spare: Option<Partials<V>>,
    /// The min/max lists of the last closed pane, likewise: stored panes do
    /// not keep them (the sliding extremes do).
    spare_extremes: (Vec<V>, Vec<V>),
}

impl<V: Numeric> Partition<V> {
    pub fn new(index: u32, partitions: u32, layout: Layout) -> Self {
        Self {
            index,
            partitions,
            layout,
            acc: DenseAcc::new(layout),
            ring: VecDeque::new(),
            slot_of: Vec::new(),
            slots: Slots {
                keys: Vec::new(),
                counts: Vec::new(),
                sums: Vec::new(),
                squares: Vec::new(),
                extremes: Vec::new(),
                since: Vec::new(),
                last_pane: Vec::new(),
            },
            spare: None,
            spare_extremes: (Vec::new(), Vec::new()),
        }
    }

    /// Local index of a key of this partition.
    pub fn local(&self, key: u32) -> usize {
        (key / self.partitions) as usize
    }

    /// Whether the partition holds no key, no closed pane and no open one.
    pub fn holds_nothing(&self) -> bool {
        self.slots.keys.is_empty() && self.ring.is_empty() && self.acc.is_empty()
    }

    /// Number of live key slots.
    pub fn live_keys(&self) -> usize {
        self.slots.keys.len()
    }

    /// A rough count of the entries that closing a pane, evicting before
    /// `first_kept` and maybe emitting would touch: small jobs skip the
    /// thread pool.
    pub fn pending_work(&self, first_kept: i64, emit: bool) -> usize {
        let evicting: usize = self
            .ring
            .iter()
            .take_while(|p| p.index < first_kept)
            .map(|p| p.partials.len())
            .sum();
        self.acc.touched_len() + evicting + if emit { self.live_keys() } else { 0 }
    }

    /// Closes the open pane `pane`: its aggregates join the window state and
    /// the ring.
    pub fn close_pane(&mut self, pane: i64) {
        if self.acc.is_empty() {
            return;
        }
        let mut partials = [self
            .spare
            .take()
            .unwrap_or_else(|| Partials::with_capacity(self.acc.touched_len(), self.layout))];
        (partials[0].mins, partials[0].maxs) = std::mem::take(&mut self.spare_extremes);
        let (index, partitions) = (self.index, self.partitions);
        self.acc
            .drain(&mut partials, |_| 0, |local| local * partitions + index);
        let [mut partials] = partials;
        for j in 0..partials.len() {
            let slot = self.slot_or_insert(partials.keys[j], pane);
            self.slots.counts[slot] += partials.counts[j];
            self.slots.last_pane[slot] = pane;
            if self.layout.sum {
                V::merge(&mut self.slots.sums[slot], partials.sums[j]);
            }
            if self.layout.squares {
                V::merge(&mut self.slots.squares[slot], partials.squares[j]);
            }
            if self.layout.extremes {
                self.slots.extremes[slot].push(pane, partials.mins[j], partials.maxs[j]);
            }
        }
        let (mut mins, mut maxs) = partials.take_extremes();
        mins.clear();
        maxs.clear();
        self.spare_extremes = (mins, maxs);
        self.ring.push_back(ClosedPane {
            index: pane,
            partials,
        });
    }

    /// Subtracts every pane with index `< first_kept` from the window state.
    pub fn evict_before(&mut self, first_kept: i64, retention: &Retention) {
        // Keys whose running float sums overflowed: inf − x stays inf and
        // inf − inf is NaN, so their state is recomputed from the panes left.
        let mut poisoned: Vec<u32> = Vec::new();
        while self.ring.front().is_some_and(|p| p.index < first_kept) {
            let pane = self.ring.pop_front().expect("checked non-empty");
            let p = &pane.partials;
            for j in 0..p.len() {
                let local = self.local(p.keys[j]);
                let slot = self.slot_of.get(local).copied().unwrap_or(NO_SLOT);
                if slot == NO_SLOT || self.slots.since[slot as usize] > pane.index {
                    continue;
                }
                let slot = slot as usize;
                let count = &mut self.slots.counts[slot];
                *count -= p.counts[j];
                let empty = *count == 0;
                if self.layout.sum {
                    if empty {
                        // Exactly zero, not the rounding residue of add-then-subtract.
                        self.slots.sums[slot] = V::Sum::default();
                    } else {
                        V::unmerge(&mut self.slots.sums[slot], p.sums[j]);
                    }
                }
                if self.layout.squares {
                    if empty {
                        self.slots.squares[slot] = V::Sum::default();
                    } else {
                        V::unmerge(&mut self.slots.squares[slot], p.squares[j]);
                    }
                }
                if self.layout.extremes {
                    self.slots.extremes[slot].evict_through(pane.index);
                }
                let finite = |sums: &[V::Sum]| sums.get(slot).copied().is_none_or(V::sum_is_finite);
                let poisoned_sums = !(finite(&self.slots.sums) && finite(&self.slots.squares));
                if !empty && poisoned_sums {
                    poisoned.push(self.slots.keys[slot]);
                }
                if empty && matches!(retention, Retention::Live) {
                    self.remove_slot(slot);
                }
            }
            let mut spare = pane.partials;
            spare.clear();
            self.spare = Some(spare);
        }
        poisoned.sort_unstable();
        poisoned.dedup();
        for key in poisoned {
            self.recompute_sums(key);
        }
    }

    /// Sets a key's running sums to the sum of its entries in the panes it
    /// still covers: the rare path after a float overflow.
    fn recompute_sums(&mut self, key: u32) {
        let Some(&slot) = self.slot_of.get(self.local(key)) else {
            return;
        };
        if slot == NO_SLOT {
            return;
        }
        let slot = slot as usize;
        let since = self.slots.since[slot];
        let (mut sum, mut squares) = (V::Sum::default(), V::Sum::default());
        for pane in self.ring.iter().filter(|p| p.index >= since) {
            let p = &pane.partials;
            if let Some(j) = p.keys.iter().position(|&k| k == key) {
                if self.layout.sum {
                    V::merge(&mut sum, p.sums[j]);
                }
                if self.layout.squares {
                    V::merge(&mut squares, p.squares[j]);
                }
            }
        }
        if self.layout.sum {
            self.slots.sums[slot] = sum;
        }
        if self.layout.squares {
            self.slots.squares[slot] = squares;
        }
    }

    /// Removes the keys kept with no event in the window (Spark-compatible
    /// retention) whose last event is in a pane before `silent_before`.
    pub fn expire_silent(&mut self, silent_before: i64) {
        // From the back, so that swap-removal never moves a slot that is
        // still to be visited.
        for slot in (0..self.slots.keys.len()).rev() {
            if self.slots.counts[slot] == 0 && self.slots.last_pane[slot] < silent_before {
                self.remove_slot(slot);
            }
        }
    }

    /// Calls `f` with every key id this partition holds: keys with window
    /// state and keys with events in the open pane.
    pub fn for_each_held_key(&self, f: &mut dyn FnMut(u32)) {
        self.slots.keys.iter().for_each(|&k| f(k));
        let (index, partitions) = (self.index, self.partitions);
        self.acc
            .touched()
            .iter()
            .for_each(|&local| f(local * partitions + index));
    }

    /// This partition's rows of the window ending at `end`. With a filter,
    /// keys it rejects leave the state.
    pub fn emit(&mut self, end: i64, aggs: &AggSet, retention: &Retention) -> WindowResult
    where
        V: OutputValue,
    {
        let mut overflows = Vec::new();
        let columns = aggs
            .aggs()
            .iter()
            .map(|&agg| (agg, self.column(agg, &mut overflows)))
            .collect::<Vec<_>>();
        let mut result = WindowResult::new(end, self.slots.keys.clone(), columns);
        result.set_overflows(overflows);
        if let Retention::Filter(keep) = retention {
            let kept: Vec<bool> = (0..result.len())
                .map(|row| keep(&KeyRow::of(&result, row)))
                .collect();
            result.retain_rows(&kept);
            // Remove from the back so that swap-removal never moves a slot
            // that is still to be visited.
            for slot in (0..kept.len()).rev() {
                if !kept[slot] {
                    self.remove_slot(slot);
                }
            }
        }
        result
    }

    /// One output column. A result that does not fit its type (a float sum
    /// past ±1.8e308, an integer sum past 64 bits) is null, and its key and
    /// aggregate go to `overflows`: never an `inf`, a `NaN` or a wrapped
    /// number.
    fn column(&self, agg: Agg, overflows: &mut Vec<(u32, Agg)>) -> AggColumn
    where
        V: OutputValue,
    {
        let s = &self.slots;
        let counts = &s.counts;
        let mean = |i: usize| V::sum_to_f64(s.sums[i]) / counts[i] as f64;
        let variance = |i: usize| V::variance(counts[i], s.sums[i], s.squares[i]);
        let mut finite = |i: usize, x: f64| {
            if x.is_finite() {
                Some(x)
            } else {
                overflows.push((s.keys[i], agg));
                None
            }
        };
        match agg {
            Agg::Count => AggColumn::U64(counts.clone()),
            Agg::Sum => V::sum_column(&s.sums, &s.keys, overflows),
            Agg::Avg => AggColumn::NullableF64(
                (0..counts.len())
                    .map(|i| (counts[i] > 0).then(|| finite(i, mean(i))).flatten())
                    .collect(),
            ),
            Agg::Variance => AggColumn::NullableF64(
                (0..counts.len())
                    .map(|i| (counts[i] > 1).then(|| finite(i, variance(i))).flatten())
                    .collect(),
            ),
            Agg::Stddev => AggColumn::NullableF64(
                (0..counts.len())
                    .map(|i| {
                        (counts[i] > 1)
                            .then(|| finite(i, variance(i).sqrt()))
                            .flatten()
                    })
                    .collect(),
            ),
            Agg::Min | Agg::Max => V::extreme_column(
                s.extremes
                    .iter()
                    .map(|w| {
                        w.query()
                            .map(|(min, max)| if agg == Agg::Min { min } else { max })
                    })
                    .collect(),
            ),
        }
    }

    fn slot_or_insert(&mut self, key: u32, pane: i64) -> usize {
        let local = self.local(key);
        if local >= self.slot_of.len() {
            let len = (local + 1).max(self.slot_of.len() * 3 / 2);
            self.slot_of.resize(len, NO_SLOT);
        }
        let slot = self.slot_of[local];
        if slot != NO_SLOT {
            return slot as usize;
        }
        let s = &mut self.slots;
        let slot = s.keys.len();
        self.slot_of[local] = u32::try_from(slot).expect("fewer than 2^32 live keys per partition");
        s.keys.push(key);
        s.counts.push(0);
        s.since.push(pane);
        s.last_pane.push(pane);
        if self.layout.sum {
            s.sums.push(V::Sum::default());
        }
        if self.layout.squares {
            s.squares.push(V::Sum::default());
        }
        if self.layout.extremes {
            s.extremes.push(Extremes::default());
        }
        slot
    }

    fn remove_slot(&mut self, slot: usize) {
        let s = &mut self.slots;
        let key = s.keys.swap_remove(slot);
        s.counts.swap_remove(slot);
        s.since.swap_remove(slot);
        s.last_pane.swap_remove(slot);
        if self.layout.sum {
            s.sums.swap_remove(slot);
        }
        if self.layout.squares {
            s.squares.swap_remove(slot);
        }
        if self.layout.extremes {
            s.extremes.swap_remove(slot);
        }
        let local = (key / self.partitions) as usize;
        self.slot_of[local] = NO_SLOT;
        if let Some(&moved) = s.keys.get(slot) {
            let moved_local = (moved / self.partitions) as usize;
            self.slot_of[moved_local] = slot as u32;
        }
    }
}

/// How a value type turns into output columns.
pub(crate) trait OutputValue: Numeric {
    /// The sums of `keys`; one that does not fit the output type is null
    /// and listed in `overflows`.
    fn sum_column(sums: &[Self::Sum], keys: &[u32], overflows: &mut Vec<(u32, Agg)>) -> AggColumn;
    fn extreme_column(values: Vec<Option<Self>>) -> AggColumn;
}

impl OutputValue for i64 {
    fn sum_column(sums: &[i128], keys: &[u32], overflows: &mut Vec<(u32, Agg)>) -> AggColumn {
        if let Some(exact) = sums
            .iter()
            .map(|&s| i64::try_from(s).ok())
            .collect::<Option<Vec<i64>>>()
        {
            return AggColumn::I64(exact);
        }
        AggColumn::NullableI64(
            sums.iter()
                .zip(keys)
                .map(|(&s, &key)| {
                    let fits = i64::try_from(s).ok();
                    if fits.is_none() {
                        overflows.push((key, Agg::Sum));
                    }
                    fits
                })
                .collect(),
        )
    }

    fn extreme_column(values: Vec<Option<i64>>) -> AggColumn {
        AggColumn::NullableI64(values)
    }
}

impl OutputValue for f64 {
    fn sum_column(
        sums: &[crate::aggregate::CompensatedSum],
        keys: &[u32],
        overflows: &mut Vec<(u32, Agg)>,
    ) -> AggColumn {
        AggColumn::NullableF64(
            sums.iter()
                .zip(keys)
                .map(|(s, &key)| {
                    let v = s.value();
                    if v.is_finite() {
                        Some(v)
                    } else {
                        overflows.push((key, Agg::Sum));
                        None
                    }
                })
                .collect(),
        )
    }

    fn extreme_column(values: Vec<Option<f64>>) -> AggColumn {
        AggColumn::NullableF64(values)
    }
}

impl<V: Numeric> Partition<V> {
    /// Appends the partition's state to a checkpoint: the open pane, the
    /// closed panes still in some window, and the running aggregates of its
    /// keys (spare buffers are not state).
    pub fn save(&self, e: &mut Encoder) {
        self.acc.save(e);
        e.len(self.ring.len());
        for pane in &self.ring {
            pane.index.save(e);
            pane.partials.save(e);
        }
        self.slot_of.save(e);
        let slots = &self.slots;
        slots.keys.save(e);
        slots.counts.save(e);
        slots.sums.save(e);
        slots.squares.save(e);
        Extremes::save_all(&slots.extremes, e);
        slots.since.save(e);
        slots.last_pane.save(e);
    }

    /// Replaces the partition's state by one [`save`](Self::save)d by the
    /// same partition of an operator with the same settings.
    pub fn restore(&mut self, d: &mut Decoder<'_>) -> Result<(), CodecError> {
        let layout = self.layout;
        let acc = DenseAcc::load(d, layout)?;
        let panes = d.len(8)?;
        let mut ring = VecDeque::with_capacity(panes);
        for _ in 0..panes {
            let index = i64::load(d)?;
            ring.push_back(ClosedPane {
                index,
                partials: Partials::load(d, layout)?,
            });
        }
        let slot_of = Vec::<u32>::load(d)?;
        let slots = Slots {
            keys: Vec::load(d)?,
            counts: Vec::load(d)?,
            sums: Vec::load(d)?,
            squares: Vec::load(d)?,
            extremes: Extremes::load_all(d)?,
            since: Vec::load(d)?,
            last_pane: Vec::load(d)?,
        };
        let n = slots.keys.len();
        let kept = |len: usize, needed: bool| len == if needed { n } else { 0 };
        let consistent = kept(slots.counts.len(), true)
            && kept(slots.sums.len(), layout.sum)
            && kept(slots.squares.len(), layout.squares)
            && kept(slots.extremes.len(), layout.extremes)
            && kept(slots.since.len(), true)
            && kept(slots.last_pane.len(), true)
            && slot_of.iter().all(|&s| s == NO_SLOT || (s as usize) < n)
            && slots.keys.iter().enumerate().all(|(s, &key)| {
                key % self.partitions == self.index
                    && slot_of.get(self.local(key)) == Some(&(s as u32))
            });
        if !consistent {
            return Err(CodecError::Invalid(format!(
                "the slots of partition {} do not match its keys",
                self.index
            )));
        }
        (self.acc, self.ring, self.slot_of, self.slots) = (acc, ring, slot_of, slots);
        Ok(())
    }
}
