//! The windowed aggregation operator: columnar batches in, one result per
//! window end out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rayon::prelude::*;

use super::partial::{DenseAcc, Layout, Partials};
use super::partition::{OutputValue, Partition};
use super::result::{KeyRow, WindowResult};
use super::spec::WindowSpec;
use crate::aggregate::AggSet;
use crate::batch::{Batch, Values, CHUNK_ROWS, MIN_PARALLEL_ROWS};
use crate::error::{Error, Result};

/// Longest run of empty panes closed one by one when nothing is held;
/// longer idle stretches are skipped up to their last this-many panes.
const MAX_IDLE_PANES: i64 = 10_000;

/// Below this many entries to touch, a pane closes on the calling thread.
const PARALLEL_THRESHOLD: usize = 16 * 1024;

/// Windows produced on the worker pool that may wait for the caller's sink:
/// a long run of windows streams through, it is never gathered first.
const WINDOWS_IN_FLIGHT: usize = 4;

/// Which keys a window's output holds, and which keys its state keeps.
#[derive(Clone, Default)]
pub enum Retention {
    /// A key is in window `t`'s output iff it has an event in `[t − W, t)`;
    /// its state is freed when it leaves. Memory follows live keys.
    #[default]
    Live,
    /// Spark's `reduceByKeyAndWindow(func, invFunc, W, S)` without a filter: a
    /// key once seen stays, with the inverse result (count and sum 0; avg, min,
    /// max and variance null) once its events leave the window.
    SparkCompatible,
    /// Spark's `filterFunc`: like [`SparkCompatible`](Self::SparkCompatible),
    /// but a key whose window row the filter rejects is dropped from the output
    /// and from the state. A dropped key comes back with its next event,
    /// counting from that event's pane.
    Filter(KeyFilter),
}

/// A predicate on window rows; see [`Retention::Filter`].
pub type KeyFilter = Arc<dyn Fn(&KeyRow<'_>) -> bool + Send + Sync>;

impl std::fmt::Debug for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Retention::Live => "Live",
            Retention::SparkCompatible => "SparkCompatible",
            Retention::Filter(_) => "Filter(..)",
        })
    }
}

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

/// The most worker threads an operator, a job or a streaming context starts:
/// beyond this a typo (`--threads 100000000`) would spawn threads until the
/// machine chokes.
pub const MAX_THREADS: usize = 1024;

/// Worker threads for a requested count: 0 means one per core, the same for
/// the CLI's `--threads 0`, [`WindowAggregatorBuilder::threads`] and the
/// DStream API's `StreamingContext::with_threads` (not `RAYON_NUM_THREADS`).
/// More than [`MAX_THREADS`] is an error.
pub fn resolve_threads(requested: usize) -> Result<usize> {
    match requested {
        0 => Ok(std::thread::available_parallelism().map_or(1, std::num::NonZero::get)),
        n if n > MAX_THREADS => Err(Error::ThreadPool {
            threads: n,
            message: format!("at most {MAX_THREADS} worker threads are supported"),
        }),
        n => Ok(n),
    }
}

/// Builder of a [`WindowAggregator`].
#[derive(Debug, Clone)]
pub struct WindowAggregatorBuilder {
    spec: WindowSpec,
    aggs: AggSet,
    values: ValueType,
    value_column: usize,
    retention: Retention,
    threads: usize,
    chunk_rows: usize,
    interrupt: Option<Arc<AtomicBool>>,
    key_ttl: Option<i64>,
}

impl WindowAggregatorBuilder {
    /// With [`Retention::SparkCompatible`] or [`Retention::Filter`], a key
    /// stays in the output and the state (with count 0) after its events have
    /// left the window, forever by Spark's definition: memory then follows
    /// every key ever seen. With a TTL, a key that has had no event for
    /// `ttl` leaves: it is not in the window ending at `t` when it has no
    /// event in that window and its last event's pane ended at or before
    /// `t − ttl`. (A key that comes back is a new key, counted from its
    /// return.) [`Retention::Live`] needs no TTL: keys leave with their
    /// last event.
    #[must_use]
    pub fn key_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.key_ttl = Some(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1));
        self
    }

    /// A flag that stops the operator: once set, a call that is closing a
    /// long run of panes (an event-time jump, `--keep-empty` over a gap, a
    /// window of millions of slides) returns [`Error::Interrupted`] at the
    /// next pane instead of running on.
    #[must_use]
    pub fn interrupt(mut self, flag: Arc<AtomicBool>) -> Self {
        self.interrupt = Some(flag);
        self
    }

    /// The aggregates to compute (default: count).
    #[must_use]
    pub fn aggregates(mut self, aggs: AggSet) -> Self {
        self.aggs = aggs;
        self
    }

    /// The value column's type (default: none, for count-only jobs).
    #[must_use]
    pub fn values(mut self, values: ValueType) -> Self {
        self.values = values;
        self
    }

    /// Which of a batch's value columns to aggregate (default: 0).
    #[must_use]
    pub fn value_column(mut self, index: usize) -> Self {
        self.value_column = index;
        self
    }

    /// Which keys the output and the state keep (default: [`Retention::Live`]).
    #[must_use]
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Worker threads and key partitions; 0 (the default) means all cores.
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Rows per pre-aggregation chunk (default [`CHUNK_ROWS`]): a tuning knob
    /// for benchmarks. Float results are identical across thread counts for
    /// one chunk size, not across chunk sizes.
    #[must_use]
    pub fn chunk_rows(mut self, rows: usize) -> Self {
        self.chunk_rows = rows.max(1);
        self
    }

    /// Builds the operator.
    pub fn build(self) -> Result<WindowAggregator> {
        if self.aggs.needs_values() && self.values == ValueType::None {
            let names: Vec<&str> = self.aggs.aggs().iter().map(|a| a.name()).collect();
            return Err(Error::ValueType(format!(
                "the aggregates {} need a value column",
                names.join(",")
            )));
        }
        let threads = resolve_threads(self.threads)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("engine-window-{i}"))
            .build()
            .map_err(|e| Error::ThreadPool {
                threads,
                message: e.to_string(),
            })?;
        let layout = Layout {
            sum: self.aggs.needs_sum(),
            squares: self.aggs.needs_squares(),
            extremes: self.aggs.needs_extremes(),
        };
        let pool = Arc::new(pool);
        let core = match self.values {
            ValueType::None | ValueType::I64 => {
                Cores::Int(Core::new(&self, layout, Arc::clone(&pool), threads))
            }
            ValueType::F64 => Cores::Float(Core::new(&self, layout, Arc::clone(&pool), threads)),
        };
        Ok(WindowAggregator {
            core,
            pool,
            values: self.values,
            value_column: self.value_column,
        })
    }
}

/// Incremental sliding-window aggregation over columnar batches, on all cores.
///
/// Events are pre-aggregated per key into the open pane (chunks of
/// [`CHUNK_ROWS`] rows in parallel, merged per key partition); when a pane
/// closes it is added to the window state, panes that leave are subtracted
/// (inverse-reduce) and min/max slide in a monotonic [`super::Extremes`] per key. No
/// slide re-reads the window. See [`WindowSpec`] for the time semantics and
/// [`Retention`] for which keys are output.
///
/// Events whose pane has already been closed are late: [`push`](Self::push)
/// drops and counts them ([`WindowStats::late_events`]).
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
    core: Cores,
    pool: Arc<rayon::ThreadPool>,
    values: ValueType,
    value_column: usize,
}

enum Cores {
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
        WindowAggregatorBuilder {
            spec,
            aggs: AggSet::new([]),
            values: ValueType::None,
            value_column: 0,
            retention: Retention::Live,
            threads: 0,
            chunk_rows: CHUNK_ROWS,
            interrupt: None,
            key_ttl: None,
        }
    }

    /// Aggregates a batch of events by their own times; windows that close on
    /// the way are passed to `sink`, in order.
    pub fn push(&mut self, batch: &Batch, sink: &mut dyn FnMut(WindowResult)) -> Result<()> {
        self.push_events(
            batch.times(),
            batch.keys(),
            batch.values(self.value_column),
            sink,
        )
    }

    /// [`push`](Self::push) for bare columns of equal length: times (ms),
    /// key ids, and values (finite, when the job has a value column).
    pub fn push_events(
        &mut self,
        times: &[i64],
        keys: &[u32],
        values: Values<'_>,
        sink: &mut dyn FnMut(WindowResult),
    ) -> Result<()> {
        if keys.len() != times.len() {
            return Err(Error::LengthMismatch {
                column: "keys".into(),
                expected: times.len(),
                actual: keys.len(),
            });
        }
        check_values(keys.len(), values)?;
        let (column, expected) = (self.value_column, self.values);
        self.run(keys.len(), sink, |core, sink| {
            dispatch!(core, expected, values, column, |c, v| c
                .push(times, keys, v, sink))
        })
    }

    /// Aggregates events that all lie in one pane, the earliest at `first`
    /// and the latest at `last` (ms): no per-event times are needed, which is
    /// what virtual-time and processing-time jobs have. Events of a pane that
    /// has already closed are dropped and counted as late.
    pub fn push_span(
        &mut self,
        first: i64,
        last: i64,
        keys: &[u32],
        values: Values<'_>,
        sink: &mut dyn FnMut(WindowResult),
    ) -> Result<()> {
        let spec = self.spec();
        check_time(first)?;
        check_time(last)?;
        if spec.pane_index(first) != spec.pane_index(last) || first > last {
            return Err(Error::InvalidWindow(format!(
                "a span of events must lie in one pane of {} ms: {first}..{last}",
                spec.pane()
            )));
        }
        check_values(keys.len(), values)?;
        let expected = self.values;
        self.run(keys.len(), sink, |core, sink| {
            dispatch!(core, expected, values, 0, |c, v| c
                .push_span(first, last, keys, v, sink))
        })
    }

    /// Aggregates the events of micro-batch `index` (all at time `index · B`),
    /// given as bare columns: the entry point of the batch-time DStream API and
    /// of benchmarks. Values must be finite.
    pub fn push_micro_batch(
        &mut self,
        index: i64,
        keys: &[u32],
        values: Values<'_>,
        sink: &mut dyn FnMut(WindowResult),
    ) -> Result<()> {
        check_values(keys.len(), values)?;
        check_time(index.saturating_mul(self.spec().batch()))?;
        let expected = self.values;
        self.run(keys.len(), sink, |core, sink| {
            dispatch!(core, expected, values, 0, |c, v| c
                .push_batch_time(index, keys, v, sink))
        })
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
            Cores::Int(core) => core.stats,
            Cores::Float(core) => core.stats,
        }
    }

    /// Keys that currently hold window state.
    #[must_use]
    pub fn live_keys(&self) -> usize {
        match &self.core {
            Cores::Int(core) => core.partitions.iter().map(Partition::live_keys).sum(),
            Cores::Float(core) => core.partitions.iter().map(Partition::live_keys).sum(),
        }
    }

    /// The window specification.
    #[must_use]
    pub fn spec(&self) -> WindowSpec {
        match &self.core {
            Cores::Int(core) => core.spec,
            Cores::Float(core) => core.spec,
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

/// The operator for one value type.
struct Core<V: OutputValue> {
    spec: WindowSpec,
    aggs: AggSet,
    layout: Layout,
    retention: Retention,
    chunk_rows: usize,
    pool: Arc<rayon::ThreadPool>,
    /// One pre-aggregation scratch per worker thread, indexed by key id: a
    /// chunk's partials (floats), or the worker's share of the open pane
    /// (integers, with several partitions).
    scratches: Vec<Mutex<DenseAcc<V>>>,
    partitions: Vec<Partition<V>>,
    /// The pane events currently go to; `None` before the first event.
    open_pane: Option<i64>,
    first_event: Option<i64>,
    last_event: Option<i64>,
    stats: WindowStats,
    interrupt: Option<Arc<AtomicBool>>,
    key_ttl: Option<i64>,
}

impl<V: OutputValue> Core<V> {
    fn new(
        config: &WindowAggregatorBuilder,
        layout: Layout,
        pool: Arc<rayon::ThreadPool>,
        threads: usize,
    ) -> Self {
        // At most MAX_THREADS (1024) partitions.
        let partitions = threads as u32;
        Self {
            spec: config.spec,
            aggs: config.aggs.clone(),
            layout,
            retention: config.retention.clone(),
            chunk_rows: config.chunk_rows,
            scratches: (0..pool.current_num_threads())
                .map(|_| Mutex::new(DenseAcc::new(layout)))
                .collect(),
            pool,
            partitions: (0..partitions)
                .map(|p| Partition::new(p, partitions, layout))
                .collect(),
            open_pane: None,
            first_event: None,
            last_event: None,
            stats: WindowStats::default(),
            interrupt: config.interrupt.clone(),
            key_ttl: config.key_ttl,
        }
    }

    fn for_each_held_key(&mut self, f: &mut dyn FnMut(u32)) {
        for partition in &self.partitions {
            partition.for_each_held_key(f);
        }
        for scratch in &mut self.scratches {
            let scratch = scratch.get_mut().unwrap_or_else(PoisonError::into_inner);
            scratch.touched().iter().for_each(|&k| f(k));
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
        let (first, last) = (self.spec.pane_index(t_min), self.spec.pane_index(t_max));
        let open = self.open_pane.unwrap_or(i64::MIN);
        if first == last && first >= open {
            return self.accept(first, keys, values, t_min, t_max, sink);
        }
        if first >= open && times.is_sorted() {
            // In time order (a replay): one slice per pane, nothing copied.
            let mut start = 0;
            while start < times.len() {
                let pane = self.spec.pane_index(times[start]);
                let pane_end = (pane + 1) * self.spec.pane();
                let end = start + times[start..].partition_point(|&t| t < pane_end);
                let run_values = values.map(|v| &v[start..end]);
                let (t0, t1) = (times[start], times[end - 1]);
                self.accept(pane, &keys[start..end], run_values, t0, t1, sink)?;
                start = end;
            }
            return Ok(());
        }
        // Rows span several panes (or some are late): group them by pane, in
        // pane order, keeping arrival order within a pane.
        let panes: Vec<i64> = times.iter().map(|&t| self.spec.pane_index(t)).collect();
        let mut order: Vec<usize> = (0..times.len()).filter(|&i| panes[i] >= open).collect();
        self.stats.late_events += (times.len() - order.len()) as u64;
        order.sort_by_key(|&i| panes[i]);
        for run in order.chunk_by(|&a, &b| panes[a] == panes[b]) {
            let run_keys: Vec<u32> = run.iter().map(|&i| keys[i]).collect();
            let run_values: Option<Vec<V>> = values.map(|v| run.iter().map(|&i| v[i]).collect());
            let run_min = run
                .iter()
                .map(|&i| times[i])
                .min()
                .expect("runs are non-empty");
            let run_max = run
                .iter()
                .map(|&i| times[i])
                .max()
                .expect("runs are non-empty");
            self.accept(
                panes[run[0]],
                &run_keys,
                run_values.as_deref(),
                run_min,
                run_max,
                sink,
            )?;
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
        let pane = self.spec.pane_index(first);
        if self.open_pane.is_some_and(|open| pane < open) {
            self.stats.late_events += keys.len() as u64;
            return Ok(());
        }
        if keys.is_empty() {
            return Ok(());
        }
        self.accept(pane, keys, values, first, last, sink)
    }

    fn push_batch_time(
        &mut self,
        index: i64,
        keys: &[u32],
        values: Option<&[V]>,
        sink: &mut dyn FnMut(WindowResult),
    ) -> Result<()> {
        let time = index * self.spec.batch();
        let pane = self.spec.pane_index(time);
        if let Some(open) = self.open_pane.filter(|&open| pane < open) {
            return Err(Error::LateBatch {
                index,
                open: open * self.spec.pane() / self.spec.batch(),
            });
        }
        if keys.is_empty() {
            return self.advance_to(time, sink);
        }
        self.accept(pane, keys, values, time, time, sink)
    }

    /// Aggregates rows that all belong to pane `pane`, not before the open one.
    fn accept(
        &mut self,
        pane: i64,
        keys: &[u32],
        values: Option<&[V]>,
        t_min: i64,
        t_max: i64,
        sink: &mut dyn FnMut(WindowResult),
    ) -> Result<()> {
        self.advance_to(pane * self.spec.pane(), sink)?;
        if self.open_pane.is_none_or(|open| open < pane) {
            self.open_pane = Some(pane);
        }
        self.first_event = Some(self.first_event.map_or(t_min, |f| f.min(t_min)));
        self.last_event = Some(self.last_event.map_or(t_max, |l| l.max(t_max)));
        self.stats.events += keys.len() as u64;
        self.accumulate(keys, values);
        Ok(())
    }

    /// Adds events to the open pane.
    fn accumulate(&mut self, keys: &[u32], values: Option<&[V]>) {
        let partitions = self.partitions.len();
        if V::EXACT {
            self.accumulate_exact(keys, values);
            return;
        }
        // Floats: fixed-size chunks, each pre-aggregated from zero and merged
        // in chunk order, so the order of additions per key is the same for
        // any number of threads.
        let (layout, scratches, chunk_rows) = (self.layout, &self.scratches, self.chunk_rows);
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
            self.pool.install(|| {
                keys.par_chunks(chunk_rows)
                    .enumerate()
                    .map(pre_aggregate)
                    .collect()
            })
        };
        self.merge_partials(&chunk_partials, keys.len() > chunk_rows);
    }

    /// Integers: sums are exact, so the order of additions does not matter.
    /// One partition scatters straight into its accumulator; several split
    /// the batch into one slice per worker, each added to the worker's own
    /// scratch, which holds the open pane until it closes.
    fn accumulate_exact(&mut self, keys: &[u32], values: Option<&[V]>) {
        if self.partitions.len() == 1 {
            self.partitions[0].acc.scatter(keys, values);
            return;
        }
        let scratches = &mut self.scratches;
        if keys.len() <= MIN_PARALLEL_ROWS {
            let scratch = scratches[0]
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner);
            scratch.scatter(keys, values);
            return;
        }
        let slice = keys.len().div_ceil(scratches.len());
        self.pool.install(|| {
            keys.par_chunks(slice)
                .zip(scratches.par_iter_mut())
                .enumerate()
                .for_each(|(c, (slice_keys, scratch))| {
                    let start = c * slice;
                    let slice_values = values.map(|v| &v[start..start + slice_keys.len()]);
                    let scratch = scratch.get_mut().unwrap_or_else(PoisonError::into_inner);
                    scratch.scatter(slice_keys, slice_values);
                });
        });
    }

    /// Moves the workers' scratches (integer path) into the partitions.
    fn flush_scratches(&mut self) {
        let (partitions, layout) = (self.partitions.len(), self.layout);
        let entries: usize = self
            .scratches
            .iter_mut()
            .map(|s| {
                s.get_mut()
                    .unwrap_or_else(PoisonError::into_inner)
                    .touched_len()
            })
            .sum();
        let drain = |s: &mut Mutex<DenseAcc<V>>| {
            let s = s.get_mut().unwrap_or_else(PoisonError::into_inner);
            drain_by_partition(s, partitions, layout)
        };
        let parallel = entries >= PARALLEL_THRESHOLD;
        let partials: Vec<Vec<Partials<V>>> = if parallel {
            let scratches = &mut self.scratches;
            self.pool
                .install(|| scratches.par_iter_mut().map(drain).collect())
        } else {
            self.scratches.iter_mut().map(drain).collect()
        };
        self.merge_partials(&partials, parallel);
    }

    /// Merges per-partition partials, in order, into the partitions' open panes.
    fn merge_partials(&mut self, partials: &[Vec<Partials<V>>], parallel: bool) {
        let divisor = self.partitions.len() as u32;
        let merge = |(p, partition): (usize, &mut Partition<V>)| {
            for chunk in partials {
                partition.acc.merge(&chunk[p], |k| (k / divisor) as usize);
            }
        };
        if parallel {
            self.pool
                .install(|| self.partitions.par_iter_mut().enumerate().for_each(merge));
        } else {
            self.partitions.iter_mut().enumerate().for_each(merge);
        }
    }

    fn advance_to(&mut self, time: i64, sink: &mut dyn FnMut(WindowResult)) -> Result<()> {
        let Some(mut open) = self.open_pane else {
            return Ok(());
        };
        // Panes before `target` end at or before `time`.
        let target = time.div_euclid(self.spec.pane());
        while open < target {
            if self
                .interrupt
                .as_ref()
                .is_some_and(|flag| flag.load(Ordering::Relaxed))
            {
                return Err(Error::Interrupted);
            }
            if target - open > MAX_IDLE_PANES && self.holds_nothing() {
                // Every window of an idle stretch is empty: only the last
                // ones before `time` are reported, so that a jump in event
                // time costs neither hours nor gigabytes of empty windows.
                open = target - MAX_IDLE_PANES;
            }
            self.close_pane(open, sink);
            open += 1;
            self.open_pane = Some(open);
        }
        Ok(())
    }

    /// Whether no key is in any window and no event waits in a pane (so
    /// that every window until the next event is empty).
    fn holds_nothing(&mut self) -> bool {
        matches!(self.retention, Retention::Live)
            && self.partitions.iter().all(Partition::holds_nothing)
            && self.scratches.iter_mut().all(|s| {
                s.get_mut()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_empty()
            })
    }

    fn finish(&mut self, sink: &mut dyn FnMut(WindowResult)) -> Result<()> {
        match self.last_event {
            Some(last) => self.advance_to(self.spec.last_window_end(last), sink),
            None => Ok(()),
        }
    }

    /// Closes pane `pane`, evicts what leaves the window ending with it, and
    /// emits that window when it is due.
    fn close_pane(&mut self, pane: i64, sink: &mut dyn FnMut(WindowResult)) {
        if V::EXACT && self.partitions.len() > 1 {
            self.flush_scratches();
        }
        let end = (pane + 1) * self.spec.pane();
        let first_kept = pane + 1 - self.spec.panes_per_window();
        let emit = end % self.spec.slide() == 0 && self.first_event.is_some_and(|f| end > f);
        // Keys kept with count 0 whose last pane is before this one have
        // been silent for the TTL.
        let silent_before = match (&self.retention, self.key_ttl) {
            (Retention::Live, _) | (_, None) => None,
            (_, Some(ttl)) => Some(end.saturating_sub(ttl).div_euclid(self.spec.pane())),
        };
        let Self {
            pool,
            partitions,
            retention,
            aggs,
            ..
        } = self;
        let step = |partition: &mut Partition<V>| {
            partition.close_pane(pane);
            partition.evict_before(first_kept, retention);
            if let (true, Some(before)) = (emit, silent_before) {
                partition.expire_silent(before);
            }
            emit.then(|| partition.emit(end, aggs, retention))
        };
        let work: usize = partitions
            .iter()
            .map(|p| p.pending_work(first_kept, emit))
            .sum();
        // Waking the pool costs microseconds: not worth it for a few keys.
        let parts: Vec<Option<WindowResult>> = if work < PARALLEL_THRESHOLD {
            partitions.iter_mut().map(step).collect()
        } else {
            pool.install(|| partitions.par_iter_mut().map(step).collect())
        };
        if emit {
            self.stats.windows += 1;
            sink(WindowResult::concat(
                end,
                parts.into_iter().flatten().collect(),
            ));
        }
    }
}
