//! The windowed aggregation operator: columnar batches in, one result per
//! window end out. The pane clock is the shared [`super::core::WindowCore`];
//! this file adds numeric pre-aggregation on the worker pool.

use std::sync::{Arc, Mutex, PoisonError};

use rayon::prelude::*;

use super::builder::WindowAggregatorBuilder;
use super::core::{Staged, WindowCore, PARALLEL_THRESHOLD};
use super::partial::{DenseAcc, Layout, Partials};
use super::partition::{NumericConfig, OutputValue, Partition};
use super::result::WindowResult;
use super::spec::WindowSpec;
use crate::batch::{Batch, Values, MIN_PARALLEL_ROWS};
use crate::checkpoint::codec::{CodecError, Decoder, Encoder, Persist};
use crate::error::{Error, Result};

/// Windows produced on the worker pool that may wait for the caller's sink:
/// a long run of windows streams through, it is never gathered first.
const WINDOWS_IN_FLIGHT: usize = 4;

/// The type of the value column a job aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueType {
    /// No value column: only `count` can be computed.
    #[default]
    None,
    /// `i64` values; sums are exact.
    I64,
    /// `f64` values; sums are compensated.
    F64,
}

/// Counters of what an operator has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowStats {
    /// Events aggregated.
    pub events: u64,
    /// Events dropped because their pane had already been closed.
    pub late_events: u64,
    /// Windows emitted.
    pub windows: u64,
}

/// Where the times of a batch's rows come from: the one parameter that
/// distinguishes event-time, virtual-time, processing-time and micro-batch
/// streams at [`WindowAggregator::push_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimePolicy {
    /// Every row at its own time, the batch's time column (ms). Rows of a
    /// pane that has closed are dropped and counted as late.
    EventTime,
    /// All rows in one pane, the earliest at `first` and the latest at `last`
    /// (ms): no per-row times are needed, which is what virtual-time and
    /// processing-time jobs have. Rows of a pane that has closed are dropped
    /// and counted as late.
    Span {
        /// Time of the earliest row, ms.
        first: i64,
        /// Time of the latest row, ms.
        last: i64,
    },
    /// All rows at the time `index · B` of micro-batch `index`, as the
    /// DStream API's batches: a batch whose pane has closed is an error
    /// ([`Error::LateBatch`]); an empty one advances the clock to its time.
    MicroBatch(i64),
}

/// Incremental sliding-window aggregation over columnar batches, on all cores.
///
/// Events are pre-aggregated per key into the open pane (chunks of
/// [`crate::CHUNK_ROWS`] rows in parallel, merged per key partition); when a pane
/// closes it is added to the window state, panes that leave are subtracted
/// (inverse-reduce) and min/max slide in a monotonic [`super::Extremes`] per key. No
/// slide re-reads the window. See [`WindowSpec`] for the time semantics and
/// [`super::Retention`] for which keys are output.
///
/// Events whose pane has already been closed are late: [`push`](Self::push)
/// drops and counts them ([`WindowStats::late_events`]). Every stream feeds
/// the operator through [`push_with`](Self::push_with) and a [`TimePolicy`].
///
/// ```
/// use engine::{AggSet, Batch, Dictionary, WindowAggregator, WindowSpec, ValueType};
/// let dict = Dictionary::new();
/// let spec = WindowSpec::from_millis(1_000, 3_000, 1_000)?;
/// let mut op = WindowAggregator::builder(spec)
///     .aggregates("count,sum,max".parse()?)
///     .values(ValueType::F64)
///     .build()?;
/// let mut windows = Vec::new();
/// let batch = Batch::from_rows(&dict, [(0, "a", 1.0), (500, "b", 2.0), (1_500, "a", 4.0)])?;
/// op.push(&batch, &mut |w| windows.push(w))?;
/// op.finish(&mut |w| windows.push(w))?;
/// let ends: Vec<i64> = windows.iter().map(|w| w.end()).collect();
/// assert_eq!(ends, [1_000, 2_000, 3_000, 4_000]);
/// assert_eq!(windows[1].len(), 2); // [−1 s, 2 s) holds a and b
/// # Ok::<(), engine::Error>(())
/// ```
pub struct WindowAggregator {
    pub(crate) core: Cores,
    pub(crate) pool: Arc<rayon::ThreadPool>,
    pub(crate) values: ValueType,
    pub(crate) value_column: usize,
}

pub(crate) enum Cores {
    Int(Core<i64>),
    Float(Core<f64>),
}

/// Runs `$call` with `$c` bound to the typed core and `$v` to the typed
/// values (`None` for count-only jobs), or reports a value column of the
/// wrong type.
macro_rules! dispatch {
    ($core:expr, $expected:expr, $values:expr, $column:expr, |$c:ident, $v:ident| $call:expr) => {
        match ($core, $expected, $values) {
            (Cores::Int($c), ValueType::None, _) => {
                let $v = None;
                $call
            }
            (Cores::Int($c), ValueType::I64, Values::I64(values)) => {
                let $v = Some(values);
                $call
            }
            (Cores::Float($c), ValueType::F64, Values::F64(values)) => {
                let $v = Some(values);
                $call
            }
            (_, expected, found) => Err(value_mismatch(expected, found, $column)),
        }
    };
}

impl WindowAggregator {
    /// A builder for a job over `spec`.
    #[must_use]
    pub fn builder(spec: WindowSpec) -> WindowAggregatorBuilder {
        WindowAggregatorBuilder::new(spec)
    }

    /// Aggregates a batch of events by their own times
    /// ([`TimePolicy::EventTime`]); windows that close on the way are passed
    /// to `sink`, in order.
    pub fn push(&mut self, batch: &Batch, sink: &mut dyn FnMut(WindowResult)) -> Result<()> {
        self.push_with(batch, TimePolicy::EventTime, sink)
    }

    /// Aggregates a batch, its rows timed by `policy`; windows that close on
    /// the way are passed to `sink`, in order. A batch without a time column
    /// ([`Batch::without_times`]) needs a policy that supplies the time.
    pub fn push_with(
        &mut self,
        batch: &Batch,
        policy: TimePolicy,
        sink: &mut dyn FnMut(WindowResult),
    ) -> Result<()> {
        if policy == TimePolicy::EventTime && !batch.has_times() {
            return Err(Error::LengthMismatch {
                column: "times".into(),
                expected: batch.len(),
                actual: 0,
            });
        }
        let values = batch.values(self.value_column);
        self.push_columns(policy, batch.times(), batch.keys(), values, sink)
    }

    /// [`push_with`](Self::push_with) on bare columns, for the job runner,
    /// which hands its parsed columns over without building a [`Batch`]:
    /// `times` is read only with [`TimePolicy::EventTime`]; values must be
    /// finite.
    pub(crate) fn push_columns(
        &mut self,
        policy: TimePolicy,
        times: &[i64],
        keys: &[u32],
        values: Values<'_>,
        sink: &mut dyn FnMut(WindowResult),
    ) -> Result<()> {
        check_values(keys.len(), values)?;
        let (column, expected) = (self.value_column, self.values);
        match policy {
            TimePolicy::EventTime => {
                if keys.len() != times.len() {
                    return Err(Error::LengthMismatch {
                        column: "keys".into(),
                        expected: times.len(),
                        actual: keys.len(),
                    });
                }
                self.run(keys.len(), sink, |core, sink| {
                    dispatch!(core, expected, values, column, |c, v| c
                        .push(times, keys, v, sink))
                })
            }
            TimePolicy::Span { first, last } => {
                let spec = self.spec();
                check_time(first)?;
                check_time(last)?;
                if spec.pane_index(first) != spec.pane_index(last) || first > last {
                    return Err(Error::InvalidWindow(format!(
                        "a span of events must lie in one pane of {} ms: {first}..{last}",
                        spec.pane()
                    )));
                }
                self.run(keys.len(), sink, |core, sink| {
                    dispatch!(core, expected, values, column, |c, v| c
                        .push_span(first, last, keys, v, sink))
                })
            }
            TimePolicy::MicroBatch(index) => {
                check_time(index.saturating_mul(self.spec().batch()))?;
                self.run(keys.len(), sink, |core, sink| {
                    dispatch!(core, expected, values, column, |c, v| c
                        .push_batch_time(index, keys, v, sink))
                })
            }
        }
    }

    /// Closes every pane that ends at or before `time` and emits the windows
    /// that end there: the clock of processing-time streams.
    pub fn advance_to(&mut self, time: i64, sink: &mut dyn FnMut(WindowResult)) -> Result<()> {
        let time = time.clamp(-crate::ingest::MAX_TIME_MS, crate::ingest::MAX_TIME_MS);
        self.run(0, sink, |core, sink| match core {
            Cores::Int(core) => core.advance_to(time, sink),
            Cores::Float(core) => core.advance_to(time, sink),
        })
    }

    /// Calls `f` with the id of every key the operator still holds: keys
    /// with window state (also count-0 keys kept by Spark-compatible
    /// retention) and keys with events in the open pane. An id it does not
    /// visit is in no future window: its dictionary entry can be released
    /// (see [`Dictionary::retain`](crate::Dictionary::retain)).
    pub fn for_each_held_key(&mut self, f: &mut dyn FnMut(u32)) {
        match &mut self.core {
            Cores::Int(core) => core.for_each_held_key(f),
            Cores::Float(core) => core.for_each_held_key(f),
        }
    }

    /// Emits every remaining window that holds any event.
    pub fn finish(&mut self, sink: &mut dyn FnMut(WindowResult)) -> Result<()> {
        self.run(0, sink, |core, sink| match core {
            Cores::Int(core) => core.finish(sink),
            Cores::Float(core) => core.finish(sink),
        })
    }

    /// Runs `step` on the operator, inside the worker pool when there is
    /// enough work: one wake-up of the pool per call instead of one per
    /// parallel phase. Windows reach `sink` in order as they close (through a
    /// small bounded channel from the pool), also on error.
    fn run(
        &mut self,
        events: usize,
        sink: &mut dyn FnMut(WindowResult),
        step: impl FnOnce(&mut Cores, &mut dyn FnMut(WindowResult)) -> Result<()> + Send,
    ) -> Result<()> {
        let big = events > MIN_PARALLEL_ROWS || self.live_keys() >= PARALLEL_THRESHOLD;
        if !big || self.pool.current_num_threads() == 1 {
            return step(&mut self.core, sink);
        }
        let core = &mut self.core;
        let (tx, rx) = std::sync::mpsc::sync_channel::<WindowResult>(WINDOWS_IN_FLIGHT);
        let mut result = Ok(());
        let outcome = &mut result;
        self.pool.in_place_scope(|scope| {
            scope.spawn(move |_| {
                // The receiver lives until this task has ended: sends succeed.
                *outcome = step(core, &mut |w| {
                    let _ = tx.send(w);
                });
            });
            for window in rx {
                sink(window);
            }
        });
        result
    }

    /// What the operator has seen so far.
    #[must_use]
    pub fn stats(&self) -> WindowStats {
        match &self.core {
            Cores::Int(core) => core.window.stats,
            Cores::Float(core) => core.window.stats,
        }
    }

    /// Keys that currently hold window state.
    #[must_use]
    pub fn live_keys(&self) -> usize {
        match &self.core {
            Cores::Int(core) => core
                .window
                .partitions
                .iter()
                .map(Partition::live_keys)
                .sum(),
            Cores::Float(core) => core
                .window
                .partitions
                .iter()
                .map(Partition::live_keys)
                .sum(),
        }
    }

    /// The window specification.
    #[must_use]
    pub fn spec(&self) -> WindowSpec {
        match &self.core {
            Cores::Int(core) => core.window.spec,
            Cores::Float(core) => core.window.spec,
        }
    }
}

/// A value column must match the keys in length and hold finite floats.
fn check_values(rows: usize, values: Values<'_>) -> Result<()> {
    if let Some(len) = values.len().filter(|&len| len != rows) {
        return Err(Error::LengthMismatch {
            column: "values".into(),
            expected: rows,
            actual: len,
        });
    }
    if let Values::F64(v) = values {
        crate::batch::check_finite(v, 0)?;
    }
    Ok(())
}

/// Event times must lie within ±[`crate::ingest::MAX_TIME_MS`], so that
/// pane and window arithmetic cannot overflow.
fn check_time(t: i64) -> Result<()> {
    if crate::ingest::time_in_range(t) {
        Ok(())
    } else {
        Err(Error::InvalidWindow(format!(
            "event time {t} ms is out of range (within ±2^53 ms expected)"
        )))
    }
}

fn value_mismatch(expected: ValueType, found: Values<'_>, column: usize) -> Error {
    let found = match found {
        Values::None => "no column",
        Values::I64(_) => "an i64 column",
        Values::F64(_) => "an f64 column",
    };
    Error::ValueType(format!(
        "the job aggregates {expected:?} values but value column {column} is {found}"
    ))
}

/// Drains a scratch into one list of partials per key partition.
fn drain_by_partition<V: OutputValue>(
    scratch: &mut DenseAcc<V>,
    partitions: usize,
    layout: Layout,
) -> Vec<Partials<V>> {
    let per_partition = scratch.touched_len() / partitions + 1;
    let mut out: Vec<Partials<V>> = (0..partitions)
        .map(|_| Partials::with_capacity(per_partition, layout))
        .collect();
    scratch.drain(&mut out, |k| k as usize % partitions, |k| k);
    out
}

/// The per-worker pre-aggregation scratches of a numeric operator, indexed
/// by key id: a chunk's partials (floats), or the worker's share of the open
/// pane (integers, with several partitions) until the pane closes.
pub(crate) struct Scratches<V: OutputValue> {
    layout: Layout,
    workers: Vec<Mutex<DenseAcc<V>>>,
}

impl<V: OutputValue> Staged<Partition<V>> for Scratches<V> {
    /// Moves the workers' scratches (integer path) into the partitions.
    fn flush(&mut self, partitions: &mut [Partition<V>], pool: &rayon::ThreadPool) {
        if !V::EXACT || partitions.len() == 1 {
            return;
        }
        let (count, layout) = (partitions.len(), self.layout);
        let entries: usize = self.workers.iter_mut().map(|s| lock(s).touched_len()).sum();
        let drain = |s: &mut Mutex<DenseAcc<V>>| drain_by_partition(lock(s), count, layout);
        let parallel = entries >= PARALLEL_THRESHOLD;
        let partials: Vec<Vec<Partials<V>>> = if parallel {
            let workers = &mut self.workers;
            pool.install(|| workers.par_iter_mut().map(drain).collect())
        } else {
            self.workers.iter_mut().map(drain).collect()
        };
        merge_partials(partitions, pool, &partials, parallel);
    }

    fn is_empty(&mut self) -> bool {
        self.workers.iter_mut().all(|s| lock(s).is_empty())
    }
}

/// A scratch owned by the caller: a poisoned lock only means a worker
/// panicked, and the panic is reported on its own.
fn lock<V: OutputValue>(scratch: &mut Mutex<DenseAcc<V>>) -> &mut DenseAcc<V> {
    scratch.get_mut().unwrap_or_else(PoisonError::into_inner)
}

/// Merges per-partition partials, in order, into the partitions' open panes.
fn merge_partials<V: OutputValue>(
    partitions: &mut [Partition<V>],
    pool: &rayon::ThreadPool,
    partials: &[Vec<Partials<V>>],
    parallel: bool,
) {
    let divisor = partitions.len() as u32;
    let merge = |(p, partition): (usize, &mut Partition<V>)| {
        for chunk in partials {
            partition.acc.merge(&chunk[p], |k| (k / divisor) as usize);
        }
    };
    if parallel {
        pool.install(|| partitions.par_iter_mut().enumerate().for_each(merge));
    } else {
        partitions.iter_mut().enumerate().for_each(merge);
    }
}

/// The operator for one value type: the shared pane clock over numeric
/// partitions, plus the workers' scratches.
pub(crate) struct Core<V: OutputValue> {
    pub(crate) window: WindowCore<Partition<V>>,
    scratches: Scratches<V>,
    chunk_rows: usize,
}

/// The core's sink of partition rows, as one window result per window end.
fn concat(sink: &mut dyn FnMut(WindowResult)) -> impl FnMut(i64, Vec<WindowResult>) + '_ {
    move |end, parts| sink(WindowResult::concat(end, parts))
}

impl<V: OutputValue> Core<V> {
    pub(crate) fn new(
        config: &WindowAggregatorBuilder,
        layout: Layout,
        pool: Arc<rayon::ThreadPool>,
    ) -> Self {
        // At most MAX_THREADS (1024) partitions: one per worker.
        let partitions = pool.current_num_threads() as u32;
        let scratches = Scratches {
            layout,
            workers: (0..partitions)
                .map(|_| Mutex::new(DenseAcc::new(layout)))
                .collect(),
        };
        let numeric = NumericConfig {
            aggs: config.aggs.clone(),
            retention: config.retention.clone(),
            pane: config.spec.pane(),
            key_ttl: config.key_ttl,
        };
        let partitions = (0..partitions)
            .map(|p| Partition::new(p, partitions, layout))
            .collect();
        Self {
            window: WindowCore::new(
                config.spec,
                numeric,
                partitions,
                pool,
                config.interrupt.clone(),
            ),
            scratches,
            chunk_rows: config.chunk_rows,
        }
    }

    fn for_each_held_key(&mut self, f: &mut dyn FnMut(u32)) {
        for partition in &self.window.partitions {
            partition.for_each_held_key(f);
        }
        for scratch in &mut self.scratches.workers {
            lock(scratch).touched().iter().for_each(|&k| f(k));
        }
    }

    fn push(
        &mut self,
        times: &[i64],
        keys: &[u32],
        values: Option<&[V]>,
        sink: &mut dyn FnMut(WindowResult),
    ) -> Result<()> {
        let (Some(&t_min), Some(&t_max)) = (times.iter().min(), times.iter().max()) else {
            return Ok(());
        };
        // The batch's range, scanned once, is also what the range check needs.
        check_time(t_min)?;
        check_time(t_max)?;
        let spec = self.window.spec;
        let (first, last) = (spec.pane_index(t_min), spec.pane_index(t_max));
        let open = self.window.open_pane.unwrap_or(i64::MIN);
        if first == last && first >= open {
            return self.accept(first, keys, values, (t_min, t_max), sink);
        }
        if first >= open && times.is_sorted() {
            // In time order (a replay): one slice per pane, nothing copied.
            let mut start = 0;
            while start < times.len() {
                let pane = spec.pane_index(times[start]);
                let pane_end = (pane + 1) * spec.pane();
                let end = start + times[start..].partition_point(|&t| t < pane_end);
                let run_values = values.map(|v| &v[start..end]);
                let span = (times[start], times[end - 1]);
                self.accept(pane, &keys[start..end], run_values, span, sink)?;
                start = end;
            }
            return Ok(());
        }
        // Rows span several panes (or some are late): group them by pane, in
        // pane order, keeping arrival order within a pane.
        let panes: Vec<i64> = times.iter().map(|&t| spec.pane_index(t)).collect();
        let mut order: Vec<usize> = (0..times.len()).filter(|&i| panes[i] >= open).collect();
        self.window.stats.late_events += (times.len() - order.len()) as u64;
        order.sort_by_key(|&i| panes[i]);
        for run in order.chunk_by(|&a, &b| panes[a] == panes[b]) {
            let run_keys: Vec<u32> = run.iter().map(|&i| keys[i]).collect();
            let run_values: Option<Vec<V>> = values.map(|v| run.iter().map(|&i| v[i]).collect());
            let run_times = || run.iter().map(|&i| times[i]);
            let span = (
                run_times().min().expect("runs are non-empty"),
                run_times().max().expect("runs are non-empty"),
            );
            self.accept(panes[run[0]], &run_keys, run_values.as_deref(), span, sink)?;
        }
        Ok(())
    }

    fn push_span(
        &mut self,
        first: i64,
        last: i64,
        keys: &[u32],
        values: Option<&[V]>,
        sink: &mut dyn FnMut(WindowResult),
    ) -> Result<()> {
        let pane = self.window.spec.pane_index(first);
        if self.window.is_late(pane) {
            self.window.stats.late_events += keys.len() as u64;
            return Ok(());
        }
        if keys.is_empty() {
            return Ok(());
        }
        self.accept(pane, keys, values, (first, last), sink)
    }

    fn push_batch_time(
        &mut self,
        index: i64,
        keys: &[u32],
        values: Option<&[V]>,
        sink: &mut dyn FnMut(WindowResult),
    ) -> Result<()> {
        let pane = self.window.batch_pane(index)?;
        let time = index * self.window.spec.batch();
        if keys.is_empty() {
            return self.advance_to(time, sink);
        }
        self.accept(pane, keys, values, (time, time), sink)
    }

    /// Aggregates rows that all belong to pane `pane`, not before the open one.
    fn accept(
        &mut self,
        pane: i64,
        keys: &[u32],
        values: Option<&[V]>,
        span: (i64, i64),
        sink: &mut dyn FnMut(WindowResult),
    ) -> Result<()> {
        let (window, scratches) = (&mut self.window, &mut self.scratches);
        window.open(pane, span, keys.len(), scratches, &mut concat(sink))?;
        self.accumulate(keys, values);
        Ok(())
    }

    pub(crate) fn advance_to(
        &mut self,
        time: i64,
        sink: &mut dyn FnMut(WindowResult),
    ) -> Result<()> {
        (self.window).advance_to(time, &mut self.scratches, &mut concat(sink))
    }

    pub(crate) fn finish(&mut self, sink: &mut dyn FnMut(WindowResult)) -> Result<()> {
        (self.window).finish(&mut self.scratches, &mut concat(sink))
    }

    /// Adds events to the open pane.
    fn accumulate(&mut self, keys: &[u32], values: Option<&[V]>) {
        if V::EXACT {
            self.accumulate_exact(keys, values);
            return;
        }
        let window = &mut self.window;
        let partitions = window.partitions.len();
        // Floats: fixed-size chunks, each pre-aggregated from zero and merged
        // in chunk order, so the order of additions per key is the same for
        // any number of threads.
        let (layout, scratches) = (self.scratches.layout, &self.scratches.workers);
        let chunk_rows = self.chunk_rows;
        let pre_aggregate = |(c, chunk_keys): (usize, &[u32])| {
            let start = c * chunk_rows;
            let chunk_values = values.map(|v| &v[start..start + chunk_keys.len()]);
            let worker = rayon::current_thread_index().unwrap_or(0) % scratches.len();
            let mut scratch = scratches[worker]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            scratch.scatter(chunk_keys, chunk_values);
            drain_by_partition(&mut scratch, partitions, layout)
        };
        let chunk_partials: Vec<Vec<Partials<V>>> = if keys.len() <= chunk_rows {
            // One chunk: waking the pool would cost more than it saves.
            vec![pre_aggregate((0, keys))]
        } else {
            window.pool.install(|| {
                keys.par_chunks(chunk_rows)
                    .enumerate()
                    .map(pre_aggregate)
                    .collect()
            })
        };
        let parallel = keys.len() > chunk_rows;
        merge_partials(
            &mut window.partitions,
            &window.pool,
            &chunk_partials,
            parallel,
        );
    }

    /// Integers: sums are exact, so the order of additions does not matter.
    /// One partition scatters straight into its accumulator; several split
    /// the batch into one slice per worker, each added to the worker's own
    /// scratch, which holds the open pane until it closes.
    fn accumulate_exact(&mut self, keys: &[u32], values: Option<&[V]>) {
        if self.window.partitions.len() == 1 {
            self.window.partitions[0].acc.scatter(keys, values);
            return;
        }
        let workers = &mut self.scratches.workers;
        if keys.len() <= MIN_PARALLEL_ROWS {
            lock(&mut workers[0]).scatter(keys, values);
            return;
        }
        let slice = keys.len().div_ceil(workers.len());
        self.window.pool.install(|| {
            keys.par_chunks(slice)
                .zip(workers.par_iter_mut())
                .enumerate()
                .for_each(|(c, (slice_keys, scratch))| {
                    let start = c * slice;
                    let slice_values = values.map(|v| &v[start..start + slice_keys.len()]);
                    lock(scratch).scatter(slice_keys, slice_values);
                });
        });
    }
}

impl<V: OutputValue> Core<V> {
    fn save(&self, e: &mut Encoder) {
        self.window.save_clock(e);
        e.len(self.window.partitions.len());
        for partition in &self.window.partitions {
            partition.save(e);
        }
        e.len(self.scratches.workers.len());
        for worker in &self.scratches.workers {
            worker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .save(e);
        }
    }

    fn restore(&mut self, d: &mut Decoder<'_>) -> std::result::Result<(), CodecError> {
        self.window.restore_clock(d)?;
        let partitions = d.len(1)?;
        if partitions != self.window.partitions.len() {
            return Err(CodecError::Invalid(format!(
                "{partitions} partitions saved, {} here",
                self.window.partitions.len()
            )));
        }
        for partition in &mut self.window.partitions {
            partition.restore(d)?;
        }
        let workers = d.len(1)?;
        if workers != self.scratches.workers.len() {
            return Err(CodecError::Invalid(format!(
                "{workers} scratches saved, {} here",
                self.scratches.workers.len()
            )));
        }
        let layout = self.scratches.layout;
        for worker in &mut self.scratches.workers {
            *lock(worker) = DenseAcc::load(d, layout)?;
        }
        Ok(())
    }
}

impl WindowAggregator {
    /// The operator's whole state, for a checkpoint: the pane clock, every
    /// partition's panes and running aggregates (min/max structures too)
    /// and the workers' scratches.
    pub(crate) fn save_state(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        match &self.core {
            Cores::Int(core) => {
                0_u8.save(&mut e);
                core.save(&mut e);
            }
            Cores::Float(core) => {
                1_u8.save(&mut e);
                core.save(&mut e);
            }
        }
        e.into_bytes()
    }

    /// Replaces the state of this operator (built with the settings of the
    /// one that saved it) by a saved one.
    pub(crate) fn restore_state(&mut self, bytes: &[u8]) -> std::result::Result<(), CodecError> {
        let mut d = Decoder::new(bytes);
        match (u8::load(&mut d)?, &mut self.core) {
            (0, Cores::Int(core)) => core.restore(&mut d)?,
            (1, Cores::Float(core)) => core.restore(&mut d)?,
            (tag, _) => {
                return Err(CodecError::Invalid(format!(
                    "an operator of value kind {tag}, not this job's"
                )))
            }
        }
        if d.is_done() {
            Ok(())
        } else {
            Err(CodecError::Invalid("bytes after the operator state".into()))
        }
    }
}
