//! The operator trait: what every stateful stage between a source and a
//! sink offers the job that drives it.
//!
//! A job owns one [`Operator`] and drives it with batches ([`Batch`], the
//! one batch type from parser to sink), the passing of time (processing
//! time, `--until`) and the end of the stream; the operator hands its
//! results to a sink closure as they are ready, in order. Between two calls
//! the job may release the dictionary ids the operator no longer holds
//! ([`Operator::for_each_held_key`], see [`crate::Dictionary::retain`]).
//!
//! Checkpoints (next) add `snapshot`/`restore` here: the operator's state
//! is its panes, its per-key window state and the dictionary entries of the
//! keys it holds — exactly what `for_each_held_key` already enumerates.
//!
//! ```
//! use engine::operator::Operator;
//! use engine::{Batch, Dictionary, TimePolicy, WindowAggregator, WindowSpec};
//!
//! fn run(op: &mut dyn Operator<Output = engine::WindowResult>, batch: &Batch) -> engine::Result<usize> {
//!     let mut windows = 0;
//!     op.push(batch, TimePolicy::EventTime, &mut |_| windows += 1)?;
//!     op.finish(&mut |_| windows += 1)?;
//!     Ok(windows)
//! }
//!
//! let dict = Dictionary::new();
//! let batch = Batch::from_rows(&dict, [(0, "a", 1.0), (1_500, "b", 2.0)])?;
//! let mut op = WindowAggregator::builder(WindowSpec::from_millis(1_000, 1_000, 1_000)?).build()?;
//! assert_eq!(run(&mut op, &batch)?, 2);
//! # Ok::<(), engine::Error>(())
//! ```

use crate::batch::Batch;
use crate::error::Result;
use crate::window::{TimePolicy, WindowAggregator, WindowResult};

/// A stateful streaming stage: batches in, results out, driven by time.
pub trait Operator: Send {
    /// What the operator emits (a window's rows for window operators).
    type Output;

    /// Takes in a batch whose rows get their times from `time`; results
    /// that become ready on the way go to `out`, in order.
    fn push(
        &mut self,
        batch: &Batch,
        time: TimePolicy,
        out: &mut dyn FnMut(Self::Output),
    ) -> Result<()>;

    /// Lets time pass up to `time` (ms) with no new rows: results due by
    /// then go to `out`.
    fn advance_to(&mut self, time: i64, out: &mut dyn FnMut(Self::Output)) -> Result<()>;

    /// The stream has ended: every remaining result that holds data goes to
    /// `out`.
    fn finish(&mut self, out: &mut dyn FnMut(Self::Output)) -> Result<()>;

    /// Calls `f` with every dictionary id the operator still holds; any
    /// other id may be released between two calls.
    fn for_each_held_key(&mut self, f: &mut dyn FnMut(u32));
}

impl Operator for WindowAggregator {
    type Output = WindowResult;

    fn push(
        &mut self,
        batch: &Batch,
        time: TimePolicy,
        out: &mut dyn FnMut(WindowResult),
    ) -> Result<()> {
        self.push_with(batch, time, out)
    }

    fn advance_to(&mut self, time: i64, out: &mut dyn FnMut(WindowResult)) -> Result<()> {
        WindowAggregator::advance_to(self, time, out)
    }

    fn finish(&mut self, out: &mut dyn FnMut(WindowResult)) -> Result<()> {
        WindowAggregator::finish(self, out)
    }

    fn for_each_held_key(&mut self, f: &mut dyn FnMut(u32)) {
        WindowAggregator::for_each_held_key(self, f);
    }
}
