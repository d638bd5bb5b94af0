//! Sliding and tumbling windows: specification, the incremental aggregation
//! operator, and the sliding structure for non-invertible aggregates.

mod aggregator;
mod extremes;
mod partial;
mod partition;
mod result;
mod spec;
mod two_stacks;

pub use aggregator::{
    resolve_threads, KeyFilter, Retention, ValueType, WindowAggregator, WindowAggregatorBuilder,
    WindowStats, MAX_THREADS,
};
pub use extremes::Extremes;
pub use result::{AggColumn, KeyRow, WindowResult};
pub use spec::WindowSpec;
pub use two_stacks::TwoStacks;
