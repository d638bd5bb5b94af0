//! The generic accumulator: user reductions over values of any type, per key
//! of any hashable type, on the shared pane clock ([`WindowCore`]). The
//! DStream API's `reduce_by_key_and_window*`, `count_by_window` and
//! `count_by_value_and_window` run on it.
//!
//! With an inverse function a key keeps one running value (inverse-reduce on
//! eviction); without one, a [`TwoStacks`] of its pane values. Keys are
//! partitioned by a fixed hash over the pool's workers. A key's state, its
//! entries in the closed panes and in the open one are all dropped once it
//! has left every window (live retention): memory follows live keys.

use std::collections::VecDeque;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hash};
use std::sync::Arc;

use hashbrown::HashMap;
use rayon::prelude::*;

use super::core::{PartitionState, WindowCore};
use super::{Retention, TwoStacks, WindowSpec};
use crate::error::Result;

/// Below this many records a batch is reduced on the calling thread.
const PARALLEL_RECORDS: usize = 4 * 1024;

/// A user's reduce (or inverse-reduce) function.
pub(crate) type Reduce<V> = Arc<dyn Fn(V, V) -> V + Send + Sync>;

/// A predicate on a window's `(key, value)`: the filter of the generic
/// retention, `Retention<PairFilter<K, V>>`.
pub type PairFilter<K, V> = Arc<dyn Fn(&K, &V) -> bool + Send + Sync>;

/// Per-key `(reduced value, records)` of a batch or of the open pane.
pub(crate) type PaneMap<K, V> = HashMap<K, (V, u64)>;

/// What the partitions of one generic operator share.
pub(crate) struct Reducer<K, V> {
    reduce: Reduce<V>,
    inverse: Option<Reduce<V>>,
    retention: Retention<PairFilter<K, V>>,
}

impl<K, V: Clone> Reducer<K, V> {
    fn combine(&self) -> impl Fn(&V, &V) -> V + '_ {
        |a: &V, b: &V| (self.reduce)(a.clone(), b.clone())
    }
}

/// One key's window state.
struct KeyState<V> {
    /// Records of the key in the window.
    count: u64,
    /// First pane counted (a filtered-out key restarts here).
    since: i64,
    /// Running value, with an inverse function.
    running: Option<V>,
    /// Per-pane values, without one.
    panes: TwoStacks<V>,
}

/// A closed pane: its index and per-key `(key, value, records)`.
type ClosedPane<K, V> = (i64, Vec<(K, V, u64)>);

/// The window state of one hash partition of keys.
///
/// # Invariants
/// `open` holds the open pane's per-key `(reduced value, records)`; `ring`
/// holds closed panes still inside a future window, oldest first; a key's
/// state equals the reduction of its entries in `ring` from `since` on; with
/// live retention every key in `keys` has `count > 0`.
pub(crate) struct KeyedPartition<K, V> {
    open: PaneMap<K, V>,
    ring: VecDeque<ClosedPane<K, V>>,
    keys: HashMap<K, KeyState<V>>,
}

impl<K: Hash + Eq + Clone, V: Clone> KeyedPartition<K, V> {
    fn new() -> Self {
        Self {
            open: HashMap::new(),
            ring: VecDeque::new(),
            keys: HashMap::new(),
        }
    }

    /// Adds a batch's per-key reductions to the open pane.
    fn add(&mut self, batch: PaneMap<K, V>, reduce: &Reduce<V>) {
        for (k, (v, n)) in batch {
            match self.open.get_mut(&k) {
                Some((acc, count)) => {
                    replace_with(acc, |old| reduce(old, v));
                    *count += n;
                }
                None => {
                    self.open.insert(k, (v, n));
                }
            }
        }
    }
}

impl<K, V> PartitionState for KeyedPartition<K, V>
where
    K: Hash + Eq + Clone + Send + Sync,
    V: Clone + Send + Sync,
{
    type Config = Reducer<K, V>;
    type Rows = Vec<(K, V)>;

    fn close_pane(&mut self, pane: i64, ops: &Reducer<K, V>) {
        if self.open.is_empty() {
            return;
        }
        let combine = ops.combine();
        let mut entries = Vec::with_capacity(self.open.len());
        for (k, (v, n)) in self.open.drain() {
            let state = self.keys.entry(k.clone()).or_insert_with(|| KeyState {
                count: 0,
                since: pane,
                running: None,
                panes: TwoStacks::default(),
            });
            state.count += n;
            if ops.inverse.is_some() {
                state.running = Some(match state.running.take() {
                    Some(old) => (ops.reduce)(old, v.clone()),
                    None => v.clone(),
                });
            } else {
                state.panes.push(pane, v.clone(), &combine);
            }
            entries.push((k, v, n));
        }
        self.ring.push_back((pane, entries));
    }

    fn evict_before(&mut self, first_kept: i64, ops: &Reducer<K, V>) {
        let combine = ops.combine();
        while self
            .ring
            .front()
            .is_some_and(|(pane, _)| *pane < first_kept)
        {
            let (pane, entries) = self.ring.pop_front().expect("checked non-empty");
            for (k, v, n) in entries {
                let Some(state) = self.keys.get_mut(&k).filter(|s| s.since <= pane) else {
                    continue;
                };
                state.count -= n;
                match &ops.inverse {
                    Some(inv) => {
                        let running = state.running.take().expect("a counted key has a value");
                        state.running = Some(inv(running, v));
                    }
                    None => state.panes.evict_through(pane, &combine),
                }
                if state.count == 0 && ops.retention.is_live() {
                    self.keys.remove(&k);
                }
            }
        }
        // A map keeps its capacity when emptied: give back what a burst of
        // keys took once it has gone (memory follows live keys).
        if self.keys.len() * 4 < self.keys.capacity() {
            self.keys.shrink_to_fit();
        }
    }

    fn emit(&mut self, _: i64, ops: &Reducer<K, V>) -> Vec<(K, V)> {
        let combine = ops.combine();
        let mut rows: Vec<(K, V)> = self
            .keys
            .iter()
            .filter_map(|(k, state)| {
                let value = match &state.running {
                    Some(v) => Some(v.clone()),
                    None => state.panes.query(&combine),
                };
                value.map(|v| (k.clone(), v))
            })
            .collect();
        if let Retention::Filter(keep) = &ops.retention {
            rows.retain(|(k, v)| {
                let kept = keep(k, v);
                if !kept {
                    self.keys.remove(k);
                }
                kept
            });
        }
        rows
    }

    fn holds_nothing(&self) -> bool {
        self.keys.is_empty() && self.ring.is_empty() && self.open.is_empty()
    }

    fn pending_work(&self, first_kept: i64, emit: bool) -> usize {
        let evicting: usize = self
            .ring
            .iter()
            .take_while(|(pane, _)| *pane < first_kept)
            .map(|(_, entries)| entries.len())
            .sum();
        self.open.len() + evicting + if emit { self.keys.len() } else { 0 }
    }

    fn may_skip_idle(ops: &Reducer<K, V>) -> bool {
        ops.retention.is_live()
    }
}

/// A windowed reduction by key over micro-batches: the generic operator of
/// the DStream API.
pub(crate) struct GenericWindow<K, V>
where
    K: Hash + Eq + Clone + Send + Sync,
    V: Clone + Send + Sync,
{
    core: WindowCore<KeyedPartition<K, V>>,
}

impl<K, V> GenericWindow<K, V>
where
    K: Hash + Eq + Clone + Send + Sync,
    V: Clone + Send + Sync,
{
    /// A reduction by `reduce` (with `inverse`, by inverse-reduce), with one
    /// key partition per worker of `pool`. Without an inverse, retention is
    /// live whatever is asked, as Spark's recomputing reduction.
    pub fn new(
        spec: WindowSpec,
        reduce: Reduce<V>,
        inverse: Option<Reduce<V>>,
        retention: Retention<PairFilter<K, V>>,
        pool: Arc<rayon::ThreadPool>,
    ) -> Self {
        let retention = if inverse.is_some() {
            retention
        } else {
            Retention::Live
        };
        let partitions = (0..pool.current_num_threads())
            .map(|_| KeyedPartition::new())
            .collect();
        let ops = Reducer {
            reduce,
            inverse,
            retention,
        };
        Self {
            core: WindowCore::new(spec, ops, partitions, pool, None),
        }
    }

    /// Adds micro-batch `index`'s records (all at time `index · B`) and
    /// returns the window ending with the batch, when one is due.
    pub fn push_batch(&mut self, index: i64, records: &[(K, V)]) -> Result<Option<Vec<(K, V)>>> {
        let window = self.core.micro_batch(index, records.len(), |core| {
            let (pool, reduce) = (&core.pool, &core.config.reduce);
            let maps = reduce_partitioned(pool, records, core.partitions.len(), reduce);
            let add = |(partition, map): (&mut KeyedPartition<K, V>, PaneMap<K, V>)| {
                partition.add(map, reduce);
            };
            if records.len() < PARALLEL_RECORDS {
                core.partitions.iter_mut().zip(maps).for_each(add);
            } else {
                let partitions = &mut core.partitions;
                pool.install(|| partitions.par_iter_mut().zip(maps).for_each(add));
            }
        })?;
        Ok(window.map(|parts| parts.into_iter().flatten().collect()))
    }

    /// Keys with window state, plus the key entries of the open and closed
    /// panes: what the operator holds, which falls back to 0 once every key
    /// has left every window (live retention).
    #[cfg(test)]
    pub fn held_entries(&self) -> usize {
        self.core
            .partitions
            .iter()
            .map(|p| {
                p.keys.len() + p.open.len() + p.ring.iter().map(|(_, e)| e.len()).sum::<usize>()
            })
            .sum()
    }
}

/// Reduces a batch per key into one map per hash partition.
pub(crate) fn reduce_partitioned<K, V>(
    pool: &rayon::ThreadPool,
    records: &[(K, V)],
    partitions: usize,
    f: &Reduce<V>,
) -> Vec<PaneMap<K, V>>
where
    K: Hash + Eq + Clone + Send + Sync,
    V: Clone + Send + Sync,
{
    // A fixed hasher: a key must land in the same partition in every batch.
    let hasher = BuildHasherDefault::<DefaultHasher>::default();
    let reduce_into = |map: &mut PaneMap<K, V>, (k, v): &(K, V)| match map.get_mut(k) {
        Some((acc, n)) => {
            replace_with(acc, |old| f(old, v.clone()));
            *n += 1;
        }
        None => {
            map.insert(k.clone(), (v.clone(), 1));
        }
    };
    if partitions == 1 || records.len() < PARALLEL_RECORDS {
        let mut maps: Vec<PaneMap<K, V>> = (0..partitions).map(|_| HashMap::new()).collect();
        for record in records {
            let p = (hasher.hash_one(&record.0) % partitions as u64) as usize;
            reduce_into(&mut maps[p], record);
        }
        return maps;
    }
    // Each worker scans the batch and keeps its own partition's keys: no
    // shared map, no locks.
    pool.install(|| {
        (0..partitions)
            .into_par_iter()
            .map(|p| {
                let mut map = HashMap::new();
                for record in records {
                    if (hasher.hash_one(&record.0) % partitions as u64) as usize == p {
                        reduce_into(&mut map, record);
                    }
                }
                map
            })
            .collect()
    })
}

/// Replaces `*slot` by `f(old)` without requiring `V: Default`.
fn replace_with<V: Clone>(slot: &mut V, f: impl FnOnce(V) -> V) {
    let old = slot.clone();
    *slot = f(old);
}

/// The state of a keyed window as numbers and `(key, value)` records: what
/// a DStream checkpoint saves of `reduce_by_key_and_window` and its kin.
impl<K, V> super::StateOf<(K, V)> for GenericWindow<K, V>
where
    K: Hash + Eq + Clone + Send + Sync,
    V: Clone + Send + Sync,
{
    fn export(&self, numbers: &mut Vec<i64>, records: &mut Vec<(K, V)>) {
        self.core.export_clock(numbers);
        numbers.push(self.core.partitions.len() as i64);
        for partition in &self.core.partitions {
            numbers.push(partition.open.len() as i64);
            for (k, (v, n)) in &partition.open {
                numbers.push(*n as i64);
                records.push((k.clone(), v.clone()));
            }
            numbers.push(partition.ring.len() as i64);
            for (pane, entries) in &partition.ring {
                numbers.extend([*pane, entries.len() as i64]);
                for (k, v, n) in entries {
                    numbers.push(*n as i64);
                    records.push((k.clone(), v.clone()));
                }
            }
            numbers.push(partition.keys.len() as i64);
            for (k, state) in &partition.keys {
                numbers.extend([state.count as i64, state.since]);
                numbers.push(i64::from(state.running.is_some()));
                records.extend(state.running.iter().map(|v| (k.clone(), v.clone())));
                let mut values = Vec::new();
                state.panes.export(numbers, &mut values);
                records.extend(values.into_iter().map(|v| (k.clone(), v)));
            }
        }
    }

    fn import(&mut self, numbers: Vec<i64>, records: Vec<(K, V)>) -> Option<()> {
        let (mut numbers, mut records) = (numbers.into_iter(), records.into_iter());
        let len = |numbers: &mut std::vec::IntoIter<i64>| usize::try_from(numbers.next()?).ok();
        self.core.import_clock(&mut numbers)?;
        if len(&mut numbers)? != self.core.partitions.len() {
            return None;
        }
        for partition in &mut self.core.partitions {
            let mut restored = KeyedPartition::new();
            for _ in 0..len(&mut numbers)? {
                let n = numbers.next()? as u64;
                let (k, v) = records.next()?;
                restored.open.insert(k, (v, n));
            }
            for _ in 0..len(&mut numbers)? {
                let pane = numbers.next()?;
                let mut entries = Vec::new();
                for _ in 0..len(&mut numbers)? {
                    let n = numbers.next()? as u64;
                    let (k, v) = records.next()?;
                    entries.push((k, v, n));
                }
                restored.ring.push_back((pane, entries));
            }
            for _ in 0..len(&mut numbers)? {
                let (count, since) = (numbers.next()? as u64, numbers.next()?);
                let (key, running) = match numbers.next()? {
                    0 => (None, None),
                    1 => {
                        let (k, v) = records.next()?;
                        (Some(k), Some(v))
                    }
                    _ => return None,
                };
                let mut key = key;
                let mut values = std::iter::from_fn(|| {
                    let (k, v) = records.next()?;
                    key.get_or_insert(k);
                    Some(v)
                });
                let panes = TwoStacks::import(&mut numbers, &mut values)?;
                // A key without a running value or pane values has no
                // record to name it: it cannot have been exported.
                let key = key?;
                restored.keys.insert(
                    key,
                    KeyState {
                        count,
                        since,
                        running,
                        panes,
                    },
                );
            }
            *partition = restored;
        }
        (numbers.next().is_none() && records.next().is_none()).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(threads: usize) -> Arc<rayon::ThreadPool> {
        crate::window::build_pool(threads, "test").unwrap()
    }

    #[test]
    fn a_key_that_leaves_every_window_is_released() {
        for (threads, inverse) in [(1, true), (2, true), (1, false), (2, false)] {
            let spec = WindowSpec::from_millis(100, 300, 100).unwrap();
            let inv: Option<Reduce<i64>> = inverse.then(|| Arc::new(|a, b| a - b) as Reduce<i64>);
            let mut op: GenericWindow<String, i64> = GenericWindow::new(
                spec,
                Arc::new(|a, b| a + b),
                inv,
                Retention::Live,
                pool(threads),
            );
            let records: Vec<(String, i64)> = (0..50).map(|i| (format!("k{i}"), i)).collect();
            let first = op.push_batch(0, &records).unwrap();
            assert_eq!(first.map(|w| w.len()), Some(50));
            assert!(op.held_entries() >= 50);
            // Batches 1 and 2 still cover batch 0; from batch 3 on it is gone.
            for index in 1..3 {
                let window = op.push_batch(index, &[]).unwrap().unwrap();
                assert_eq!(window.len(), 50, "batch {index}");
            }
            let window = op.push_batch(3, &[]).unwrap().unwrap();
            assert!(window.is_empty());
            assert_eq!(op.held_entries(), 0, "{threads} threads, inverse {inverse}");
            // The key comes back, counted from its new batch only.
            let window = op.push_batch(4, &records[..1]).unwrap().unwrap();
            assert_eq!(window, [("k0".to_string(), 0)]);
            assert_eq!(op.held_entries(), 2);
        }
    }

    /// Spark's `filterFunc`: a key the filter drops is forgotten, and when
    /// it comes back its value is that of its new batches only, even while
    /// its old batches are still in the window (Spark reduces the new values
    /// when the previous window has no value for the key).
    #[test]
    fn filter_retention_forgets_a_dropped_key_and_restarts_it_when_it_returns() {
        let spec = WindowSpec::from_millis(100, 300, 100).unwrap();
        let keep: PairFilter<String, i64> = Arc::new(|_, v| *v > 1);
        let mut op: GenericWindow<String, i64> = GenericWindow::new(
            spec,
            Arc::new(|a, b| a + b),
            Some(Arc::new(|a, b| a - b)),
            Retention::Filter(keep),
            pool(2),
        );
        let a = |v: i64| vec![("a".to_string(), v)];
        let windows: Vec<Vec<(String, i64)>> = [a(1), a(5), vec![], vec![], vec![], a(3)]
            .iter()
            .enumerate()
            .map(|(i, batch)| op.push_batch(i as i64, batch).unwrap().unwrap())
            .collect();
        assert_eq!(
            windows,
            [
                vec![],
                // Batch 0's 1 is in the window, but the key was dropped.
                a(5),
                a(5),
                // Batch 0 leaves: it was not counted, nothing changes.
                a(5),
                // Batch 1 leaves: 0, dropped by the filter.
                vec![],
                a(3),
            ]
        );
        // Only the returned key's state and its one pane entry are left.
        assert_eq!(op.held_entries(), 2);
    }

    /// A pane of two batches whose first batch is empty, and a slide with
    /// no record at all, give the same windows as the records alone.
    #[test]
    fn an_empty_batch_between_two_slides_changes_nothing() {
        for inverse in [true, false] {
            // Panes and slides of two batches.
            let spec = WindowSpec::from_millis(100, 400, 200).unwrap();
            let inv: Option<Reduce<i64>> = inverse.then(|| Arc::new(|a, b| a - b) as Reduce<i64>);
            let mut op: GenericWindow<u8, i64> =
                GenericWindow::new(spec, Arc::new(|a, b| a + b), inv, Retention::Live, pool(1));
            let batches: [&[(u8, i64)]; 8] =
                [&[(1, 1)], &[], &[], &[(1, 2), (2, 7)], &[], &[], &[], &[]];
            let mut windows = Vec::new();
            for (i, batch) in batches.iter().enumerate() {
                if let Some(mut window) = op.push_batch(i as i64, batch).unwrap() {
                    window.sort_unstable();
                    windows.push((i, window));
                }
            }
            assert_eq!(
                windows,
                [
                    (1, vec![(1, 1)]),
                    (3, vec![(1, 3), (2, 7)]),
                    (5, vec![(1, 2), (2, 7)]),
                    (7, vec![]),
                ],
                "inverse {inverse}"
            );
            assert_eq!(op.held_entries(), 0);
        }
    }

    #[test]
    fn spark_retention_keeps_keys_with_the_inverse_result() {
        let spec = WindowSpec::from_millis(100, 200, 100).unwrap();
        let mut op: GenericWindow<u8, i64> = GenericWindow::new(
            spec,
            Arc::new(|a, b| a + b),
            Some(Arc::new(|a, b| a - b)),
            Retention::SparkCompatible,
            pool(1),
        );
        op.push_batch(0, &[(1, 5)]).unwrap();
        op.push_batch(1, &[]).unwrap();
        let window = op.push_batch(2, &[]).unwrap().unwrap();
        assert_eq!(window, [(1, 0)]);
    }
}
