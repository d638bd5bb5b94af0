//! Per-key operations on streams of pairs: `reduce_by_key` and the windowed
//! reductions, with or without an inverse function.

use std::collections::VecDeque;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hash};
use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashMap;
use rayon::prelude::*;

use super::clock::WindowClock;
use super::stream::DStream;
use super::Record;
use crate::error::Result;
use crate::window::TwoStacks;

/// Below this many records a batch is reduced on the calling thread.
const PARALLEL_RECORDS: usize = 4 * 1024;

type Reduce<V> = Arc<dyn Fn(V, V) -> V + Send + Sync>;

/// A predicate on a window's `(key, value)`; see [`KeyRetention::Filter`].
pub type PairFilter<K, V> = Arc<dyn Fn(&K, &V) -> bool + Send + Sync>;

/// One partition's per-key `(reduced value, records)` of a batch or pane.
type PaneMap<K, V> = HashMap<K, (V, u64)>;

/// Which keys a windowed reduction outputs and keeps; the generic
/// counterpart of [`crate::Retention`].
pub enum KeyRetention<K, V> {
    /// Keys with at least one record in the window (the default).
    Live,
    /// Spark's `reduceByKeyAndWindow(func, invFunc, …)` without a filter: a key
    /// once seen stays, with the inverse result. Needs an inverse function.
    SparkCompatible,
    /// Spark's `filterFunc`: keys whose `(key, value)` it rejects are dropped
    /// from the output and the state. Needs an inverse function.
    Filter(PairFilter<K, V>),
}

impl<K, V> Clone for KeyRetention<K, V> {
    fn clone(&self) -> Self {
        match self {
            KeyRetention::Live => KeyRetention::Live,
            KeyRetention::SparkCompatible => KeyRetention::SparkCompatible,
            KeyRetention::Filter(f) => KeyRetention::Filter(Arc::clone(f)),
        }
    }
}

impl<K, V> DStream<(K, V)>
where
    K: Record + Hash + Eq,
    V: Record,
{
    /// Reduces the values of each key within every batch, as Spark's
    /// `reduceByKey`. `f` must be associative and commutative.
    #[must_use]
    pub fn reduce_by_key<F>(&self, f: F) -> DStream<(K, V)>
    where
        F: Fn(V, V) -> V + Send + Sync + 'static,
    {
        let partitions = self.ctx.threads();
        let ctx = self.ctx.pool_arc();
        let f: Reduce<V> = Arc::new(f);
        self.derive(move |_, batch| {
            Ok(batch.map(|records| {
                let maps = reduce_partitioned(&ctx, &records, partitions, &f);
                maps.into_iter()
                    .flat_map(|map| map.into_iter().map(|(k, (v, _))| (k, v)))
                    .collect()
            }))
        })
    }

    /// Reduces each key's values over a sliding window, recombining per-pane
    /// partial results in an O(1)-amortized sliding structure: no inverse
    /// needed, and keys without records in the window drop out.
    pub fn reduce_by_key_and_window<F>(
        &self,
        f: F,
        window: Duration,
        slide: Duration,
    ) -> Result<DStream<(K, V)>>
    where
        F: Fn(V, V) -> V + Send + Sync + 'static,
    {
        self.windowed(Arc::new(f), None, window, slide, KeyRetention::Live)
    }

    /// Reduces each key's values over a sliding window by inverse-reduce: each
    /// slide adds the entering panes with `f` and removes the leaving ones with
    /// `inv`, as Spark's `reduceByKeyAndWindow(func, invFunc, …)`. Keys without
    /// records in the window drop out (see
    /// [`reduce_by_key_and_window_with`](Self::reduce_by_key_and_window_with)
    /// for Spark's keep-with-zero behaviour).
    pub fn reduce_by_key_and_window_inv<F, G>(
        &self,
        f: F,
        inv: G,
        window: Duration,
        slide: Duration,
    ) -> Result<DStream<(K, V)>>
    where
        F: Fn(V, V) -> V + Send + Sync + 'static,
        G: Fn(V, V) -> V + Send + Sync + 'static,
    {
        self.windowed(
            Arc::new(f),
            Some(Arc::new(inv)),
            window,
            slide,
            KeyRetention::Live,
        )
    }

    /// The general windowed reduction: optional inverse, and a choice of which
    /// keys to keep. [`KeyRetention::SparkCompatible`] and
    /// [`KeyRetention::Filter`] need an inverse; without one they act as
    /// [`KeyRetention::Live`], as Spark's recomputing reduction does.
    pub fn reduce_by_key_and_window_with<F, G>(
        &self,
        f: F,
        inv: Option<G>,
        window: Duration,
        slide: Duration,
        retention: KeyRetention<K, V>,
    ) -> Result<DStream<(K, V)>>
    where
        F: Fn(V, V) -> V + Send + Sync + 'static,
        G: Fn(V, V) -> V + Send + Sync + 'static,
    {
        let inv = inv.map(|g| Arc::new(g) as Reduce<V>);
        self.windowed(Arc::new(f), inv, window, slide, retention)
    }

    fn windowed(
        &self,
        f: Reduce<V>,
        inv: Option<Reduce<V>>,
        window: Duration,
        slide: Duration,
        retention: KeyRetention<K, V>,
    ) -> Result<DStream<(K, V)>> {
        let spec = self.window_spec(window, slide)?;
        let ctx = self.ctx.pool_arc();
        let partitions = ctx.current_num_threads();
        let retention = if inv.is_some() {
            retention
        } else {
            KeyRetention::Live
        };
        let mut clock = WindowClock::new(spec);
        let mut states: Vec<KeyedWindow<K, V>> =
            (0..partitions).map(|_| KeyedWindow::new()).collect();
        let out = self.derive(move |tick, batch| {
            let records = batch.unwrap_or_default();
            let step = clock.step(tick, !records.is_empty());
            let maps = reduce_partitioned(&ctx, &records, partitions, &f);
            let ops = WindowOps {
                reduce: &f,
                inverse: inv.as_ref(),
                retention: &retention,
            };
            let run = |(state, map): (&mut KeyedWindow<K, V>, PaneMap<K, V>)| {
                state.add(map, &ops);
                if let Some(pane) = step.closes {
                    state.close_pane(pane, &ops);
                }
                state.evict_before(step.first_kept, &ops);
                step.emits.then(|| state.emit(&ops))
            };
            let parts: Vec<Option<Vec<(K, V)>>> = if records.len() < PARALLEL_RECORDS {
                states.iter_mut().zip(maps).map(run).collect()
            } else {
                ctx.install(|| states.par_iter_mut().zip(maps).map(run).collect())
            };
            Ok(step
                .emits
                .then(|| parts.into_iter().flatten().flatten().collect()))
        });
        Ok(out.delayed_by(spec))
    }
}

/// Reduces a batch per key into one map per hash partition.
fn reduce_partitioned<K, V>(
    ctx: &rayon::ThreadPool,
    records: &[(K, V)],
    partitions: usize,
    f: &Reduce<V>,
) -> Vec<PaneMap<K, V>>
where
    K: Record + Hash + Eq,
    V: Record,
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
    ctx.install(|| {
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

struct WindowOps<'a, K, V> {
    reduce: &'a Reduce<V>,
    inverse: Option<&'a Reduce<V>>,
    retention: &'a KeyRetention<K, V>,
}

/// A closed pane: its index and per-key `(key, value, records)`.
type ClosedPane<K, V> = (i64, Vec<(K, V, u64)>);

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

/// The window state of one hash partition of keys.
///
/// # Invariants
/// `open` holds the open pane's per-key `(reduced value, records)`; `ring`
/// holds closed panes still inside a future window, oldest first; a key's
/// state equals the reduction of its entries in `ring` from `since` on.
struct KeyedWindow<K, V> {
    open: PaneMap<K, V>,
    ring: VecDeque<ClosedPane<K, V>>,
    keys: HashMap<K, KeyState<V>>,
}

impl<K: Record + Hash + Eq, V: Record> KeyedWindow<K, V> {
    fn new() -> Self {
        Self {
            open: HashMap::new(),
            ring: VecDeque::new(),
            keys: HashMap::new(),
        }
    }

    fn add(&mut self, batch: PaneMap<K, V>, ops: &WindowOps<'_, K, V>) {
        for (k, (v, n)) in batch {
            match self.open.get_mut(&k) {
                Some((acc, count)) => {
                    replace_with(acc, |old| (ops.reduce)(old, v));
                    *count += n;
                }
                None => {
                    self.open.insert(k, (v, n));
                }
            }
        }
    }

    fn close_pane(&mut self, pane: i64, ops: &WindowOps<'_, K, V>) {
        if self.open.is_empty() {
            return;
        }
        let combine = |a: &V, b: &V| (ops.reduce)(a.clone(), b.clone());
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
                state.panes.push(pane, v.clone(), combine);
            }
            entries.push((k, v, n));
        }
        self.ring.push_back((pane, entries));
    }

    fn evict_before(&mut self, first_kept: i64, ops: &WindowOps<'_, K, V>) {
        let combine = |a: &V, b: &V| (ops.reduce)(a.clone(), b.clone());
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
                match ops.inverse {
                    Some(inv) => {
                        let running = state.running.take().expect("a counted key has a value");
                        state.running = Some(inv(running, v));
                    }
                    None => state.panes.evict_through(pane, combine),
                }
                if state.count == 0 && matches!(ops.retention, KeyRetention::Live) {
                    self.keys.remove(&k);
                }
            }
        }
    }

    fn emit(&mut self, ops: &WindowOps<'_, K, V>) -> Vec<(K, V)> {
        let combine = |a: &V, b: &V| (ops.reduce)(a.clone(), b.clone());
        let mut rows: Vec<(K, V)> = self
            .keys
            .iter()
            .filter_map(|(k, state)| {
                let value = match &state.running {
                    Some(v) => Some(v.clone()),
                    None => state.panes.query(combine),
                };
                value.map(|v| (k.clone(), v))
            })
            .collect();
        if let KeyRetention::Filter(keep) = ops.retention {
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
}
