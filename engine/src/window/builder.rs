//! Configuration of a [`WindowAggregator`]: the builder, thread counts and
//! the worker pool.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::aggregator::{Cores, WindowAggregator};
use super::partial::Layout;
use super::{Retention, ValueType, WindowSpec};
use crate::aggregate::AggSet;
use crate::error::{Error, Result};

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
            source: None,
        }),
        n => Ok(n),
    }
}

/// A worker pool of `threads` threads (0: one per core), named
/// `{name}-{i}`: built once per job or streaming context and shared by
/// every operator that runs in it.
pub fn build_pool(threads: usize, name: &'static str) -> Result<Arc<rayon::ThreadPool>> {
    let threads = resolve_threads(threads)?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| Error::ThreadPool {
            threads,
            source: Some(e),
        })
}

/// Builder of a [`WindowAggregator`].
#[derive(Debug, Clone)]
pub struct WindowAggregatorBuilder {
    pub(crate) spec: WindowSpec,
    pub(crate) aggs: AggSet,
    pub(crate) values: ValueType,
    pub(crate) value_column: usize,
    pub(crate) retention: Retention,
    pub(crate) threads: usize,
    pub(crate) pool: Option<Arc<rayon::ThreadPool>>,
    pub(crate) chunk_rows: usize,
    pub(crate) interrupt: Option<Arc<AtomicBool>>,
    pub(crate) key_ttl: Option<i64>,
}

impl WindowAggregatorBuilder {
    pub(crate) fn new(spec: WindowSpec) -> Self {
        Self {
            spec,
            aggs: AggSet::new([]),
            values: ValueType::None,
            value_column: 0,
            retention: Retention::Live,
            threads: 0,
            pool: None,
            chunk_rows: crate::batch::CHUNK_ROWS,
            interrupt: None,
            key_ttl: None,
        }
    }

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
    /// With a [`pool`](Self::pool), the partitions are the pool's threads.
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Runs the operator in `pool` (shared with the rest of a job or a
    /// streaming context) instead of a pool of its own; there is one key
    /// partition per thread of the pool.
    #[must_use]
    pub fn pool(mut self, pool: Arc<rayon::ThreadPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Rows per pre-aggregation chunk (default [`crate::CHUNK_ROWS`]): a
    /// tuning knob for benchmarks. Float results are identical across thread
    /// counts for one chunk size, not across chunk sizes.
    #[must_use]
    pub fn chunk_rows(mut self, rows: usize) -> Self {
        self.chunk_rows = rows.max(1);
        self
    }

    /// Builds the operator.
    pub fn build(self) -> Result<WindowAggregator> {
        if self.aggs.needs_values() && self.values == ValueType::None {
            return Err(Error::MissingValueColumn {
                aggs: self.aggs.clone(),
            });
        }
        let pool = match &self.pool {
            Some(pool) => Arc::clone(pool),
            None => build_pool(self.threads, "engine-window")?,
        };
        let layout = Layout {
            sum: self.aggs.needs_sum(),
            squares: self.aggs.needs_squares(),
            extremes: self.aggs.needs_extremes(),
        };
        let core = match self.values {
            ValueType::None | ValueType::I64 => Cores::Int(super::aggregator::Core::new(
                &self,
                layout,
                Arc::clone(&pool),
            )),
            ValueType::F64 => Cores::Float(super::aggregator::Core::new(
                &self,
                layout,
                Arc::clone(&pool),
            )),
        };
        Ok(WindowAggregator {
            core,
            pool,
            values: self.values,
            value_column: self.value_column,
        })
    }
}
