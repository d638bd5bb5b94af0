//! `DStream`: a stream of record batches, and its per-batch transformations.

use std::cell::RefCell;
use std::fmt::Debug;
use std::io::Write;
use std::rc::Rc;
use std::sync::Arc;

use rayon::prelude::*;

use super::context::{StreamingContext, Tick};
use super::Record;
use crate::error::Result;

/// Below this many records a batch is transformed on the calling thread.
const PARALLEL_RECORDS: usize = 4 * 1024;

/// A stream's output for the current micro-batch: `None` when the stream has
/// no batch at this time (a window between two slides), as Spark's
/// `DStream.getOrCompute` returns `None`.
pub(crate) struct Slot<T>(Rc<RefCell<Option<Arc<Vec<T>>>>>);

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Self(Rc::clone(&self.0))
    }
}

impl<T> Slot<T> {
    pub fn new() -> Self {
        Self(Rc::new(RefCell::new(None)))
    }

    pub fn set(&self, batch: Option<Arc<Vec<T>>>) {
        *self.0.borrow_mut() = batch;
    }

    pub fn get(&self) -> Option<Arc<Vec<T>>> {
        self.0.borrow().clone()
    }
}

/// A discretized stream: one batch of records per micro-batch, as Spark
/// Streaming's `DStream`.
///
/// Transformations return new streams and run when the context runs. Closures
/// run on all cores for large batches, so they must be `Send + Sync`.
pub struct DStream<T> {
    pub(crate) ctx: StreamingContext,
    pub(crate) slot: Slot<T>,
    /// How far this stream's records lag the sources' (sum of the window
    /// lengths on the way), ms.
    pub(crate) delay: i64,
    /// The graph's entry of this stream's window state, if it has one.
    pub(crate) state: Option<usize>,
}

impl<T> Clone for DStream<T> {
    fn clone(&self) -> Self {
        Self {
            ctx: self.ctx.clone(),
            slot: self.slot.clone(),
            delay: self.delay,
            state: self.state,
        }
    }
}

impl<T: Record> DStream<T> {
    pub(crate) fn new(ctx: StreamingContext, slot: Slot<T>) -> Self {
        Self {
            ctx,
            slot,
            delay: 0,
            state: None,
        }
    }

    /// The spec of a window over this stream (see
    /// [`StreamingContext::window_spec`]).
    pub(crate) fn window_spec(
        &self,
        window: std::time::Duration,
        slide: std::time::Duration,
    ) -> Result<crate::WindowSpec> {
        self.ctx.window_spec(self.delay, window, slide)
    }

    /// This stream, marked as lagging by one more window of `spec`.
    pub(crate) fn delayed_by(mut self, spec: crate::WindowSpec) -> Self {
        self.delay += spec.window();
        self
    }

    /// The context this stream belongs to.
    #[must_use]
    pub fn context(&self) -> &StreamingContext {
        &self.ctx
    }

    /// A stream whose batches are computed from this one's by `f`; `f` sees
    /// the tick and this stream's batch (when it has one).
    pub(crate) fn derive<U: Record>(
        &self,
        mut f: impl FnMut(Tick, Option<Arc<Vec<T>>>) -> Result<Option<Vec<U>>> + 'static,
    ) -> DStream<U> {
        let input = self.slot.clone();
        let out = Slot::new();
        let slot = out.clone();
        self.ctx.add_step(move |tick| {
            let batch = f(tick, input.get())?;
            slot.set(batch.map(Arc::new));
            Ok(())
        });
        DStream {
            ctx: self.ctx.clone(),
            slot: out,
            delay: self.delay,
            state: None,
        }
    }

    /// Applies `f` to every record.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let ssc = engine::StreamingContext::new(Duration::from_secs(1))?;
    /// let seen = ssc.queue_stream(vec![vec![1, 2, 3]]).map(|x| x * 2).collect();
    /// ssc.run()?;
    /// assert_eq!(seen.take()[0], (1_000, vec![2, 4, 6]));
    /// # Ok::<(), engine::Error>(())
    /// ```
    pub fn map<U, F>(&self, f: F) -> DStream<U>
    where
        U: Record,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        let ctx = self.ctx.pool_arc();
        self.derive(move |_, batch| {
            Ok(batch.map(|records| {
                if records.len() < PARALLEL_RECORDS {
                    records.iter().cloned().map(&f).collect()
                } else {
                    ctx.install(|| records.par_iter().cloned().map(&f).collect())
                }
            }))
        })
    }

    /// Applies `f` to every record and flattens the results.
    pub fn flat_map<U, I, F>(&self, f: F) -> DStream<U>
    where
        U: Record,
        I: IntoIterator<Item = U>,
        F: Fn(T) -> I + Send + Sync + 'static,
    {
        let ctx = self.ctx.pool_arc();
        self.derive(move |_, batch| {
            Ok(batch.map(|records| {
                if records.len() < PARALLEL_RECORDS {
                    records.iter().cloned().flat_map(&f).collect()
                } else {
                    ctx.install(|| records.par_iter().cloned().flat_map_iter(&f).collect())
                }
            }))
        })
    }

    /// Keeps the records for which `f` is true.
    #[must_use]
    pub fn filter<F>(&self, f: F) -> DStream<T>
    where
        F: Fn(&T) -> bool + Send + Sync + 'static,
    {
        let ctx = self.ctx.pool_arc();
        self.derive(move |_, batch| {
            Ok(batch.map(|records| {
                if records.len() < PARALLEL_RECORDS {
                    records.iter().filter(|r| f(r)).cloned().collect()
                } else {
                    ctx.install(|| records.par_iter().filter(|r| f(r)).cloned().collect())
                }
            }))
        })
    }

    /// The records of both streams, batch by batch.
    #[must_use]
    pub fn union(&self, other: &DStream<T>) -> DStream<T> {
        let delay = self.delay.max(other.delay);
        let other = other.slot.clone();
        let mut out = self.derive(move |_, mine| {
            Ok(match (mine, other.get()) {
                (None, None) => None,
                (a, b) => Some(
                    a.iter()
                        .chain(b.iter())
                        .flat_map(|batch| batch.iter().cloned())
                        .collect(),
                ),
            })
        });
        out.delay = delay;
        out
    }

    /// Calls `f` with every batch's time (ms) and records: the general output
    /// operation, as Spark's `foreachRDD`.
    pub fn foreach_batch(&self, mut f: impl FnMut(i64, &[T]) + 'static) {
        let input = self.slot.clone();
        self.ctx.add_step(move |tick| {
            if let Some(batch) = input.get() {
                f(tick.time, &batch);
            }
            Ok(())
        });
    }

    /// Collects every batch as `(time, records)`, for tests and examples.
    #[must_use]
    pub fn collect(&self) -> Collected<T> {
        let collected = Collected(Rc::new(RefCell::new(Vec::new())));
        let sink = collected.clone();
        self.foreach_batch(move |time, records| {
            sink.0.borrow_mut().push((time, records.to_vec()));
        });
        collected
    }
}

impl<T: Record + Debug> DStream<T> {
    /// Prints the first 10 records of every batch under a `Time: <ms> ms`
    /// header, as Spark's `pprint`.
    pub fn print(&self) {
        self.print_n(10);
    }

    /// Prints the first `n` records of every batch.
    pub fn print_n(&self, n: usize) {
        self.foreach_batch(move |time, records| {
            let mut out = std::io::stdout().lock();
            // A closed stdout (`| head`) is not worth a panic: stop printing.
            let _ = write_batch(&mut out, time, records, n);
        });
    }
}

/// Writes one batch the way Spark's `pprint` does.
pub fn write_batch<T: Debug>(
    out: &mut impl Write,
    time: i64,
    records: &[T],
    n: usize,
) -> std::io::Result<()> {
    let rule = "-------------------------------------------";
    writeln!(out, "{rule}\nTime: {time} ms\n{rule}")?;
    for record in records.iter().take(n) {
        writeln!(out, "{record:?}")?;
    }
    if records.len() > n {
        writeln!(out, "...")?;
    }
    writeln!(out)
}

/// Batches gathered by [`DStream::collect`].
pub struct Collected<T>(Rc<RefCell<Vec<TimedBatch<T>>>>);

/// A batch's time (ms) and records.
pub type TimedBatch<T> = (i64, Vec<T>);

impl<T> Clone for Collected<T> {
    fn clone(&self) -> Self {
        Self(Rc::clone(&self.0))
    }
}

impl<T> Collected<T> {
    /// Takes the batches gathered so far.
    #[must_use]
    pub fn take(&self) -> Vec<TimedBatch<T>> {
        std::mem::take(&mut self.0.borrow_mut())
    }
}
