//! Sliding and tumbling windows: specification, the one windowing core (pane
//! clock and schedule, [`core`]), the numeric aggregation operator on it, the
//! generic accumulators of the DStream API, and the sliding structures for
//! non-invertible aggregates.

mod aggregator;
mod builder;
mod core;
mod extremes;
mod generic;
mod partial;
mod partition;
mod records;
mod result;
mod retention;
mod spec;
mod two_stacks;

pub use aggregator::{TimePolicy, ValueType, WindowAggregator, WindowStats};
pub use builder::{build_pool, resolve_threads, WindowAggregatorBuilder, MAX_THREADS};
pub use extremes::Extremes;
pub use generic::PairFilter;
pub(crate) use generic::{reduce_partitioned, GenericWindow, Reduce};
pub(crate) use records::RecordWindow;
pub use result::{AggColumn, KeyRow, WindowResult};
pub use retention::{KeyFilter, Retention};
pub use spec::WindowSpec;
pub use two_stacks::TwoStacks;

/// A windowed operator's state as plain numbers and records of its
/// stream's type `T`, so that a DStream checkpoint can save it whenever `T`
/// can be saved, whatever the operator's inner types.
pub(crate) trait StateOf<T> {
    /// Appends the state: its numbers and its records, in an order
    /// [`import`](Self::import) reads back.
    fn export(&self, numbers: &mut Vec<i64>, records: &mut Vec<T>);
    /// Replaces the state by an exported one (of an operator with the same
    /// settings); `None` when the parts do not fit together.
    fn import(&mut self, numbers: Vec<i64>, records: Vec<T>) -> Option<()>;
}
