//! A single-node, vectorized stream-processing engine with Spark Streaming's
//! window semantics.
//!
//! Events travel in columnar micro-batches ([`Batch`]: times, dictionary-encoded
//! keys, numeric values). Windowed aggregation ([`WindowAggregator`]) is
//! incremental: each slide adds the panes that enter and subtracts the panes
//! that leave for count, sum, avg and variance, and slides min and max in
//! O(1)-amortized monotonic deques ([`window::Extremes`]; user reductions
//! without an inverse use [`window::TwoStacks`]); keys are partitioned over all
//! cores. On top sits a DStream API in the shape of Spark Streaming's
//! ([`StreamingContext`], [`DStream`]).
//!
//! ```
//! use engine::{StreamingContext, WindowSpec};
//! use std::time::Duration;
//!
//! let ssc = StreamingContext::new(Duration::from_secs(1))?;
//! let lines = ssc.queue_stream(vec![
//!     vec!["to be or not".to_string()],
//!     vec!["to be".to_string()],
//! ]);
//! let counts = lines
//!     .flat_map(|line| line.split(' ').map(str::to_owned).collect::<Vec<_>>())
//!     .map(|word| (word, 1_i64))
//!     .reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b,
//!         Duration::from_secs(2), Duration::from_secs(1))?;
//! let collected = counts.collect();
//! ssc.run()?;
//! let windows = collected.take();
//! let mut at_2s = windows[1].1.clone();
//! at_2s.sort();
//! assert_eq!(windows[1].0, 2_000);
//! assert_eq!(at_2s, [("be".to_string(), 2), ("not".into(), 1), ("or".into(), 1), ("to".into(), 2)]);
//! # Ok::<(), engine::Error>(())
//! ```

pub mod aggregate;
mod batch;
pub mod checkpoint;
pub mod columnar;
mod dictionary;
pub mod dstream;
mod error;
pub mod ingest;
pub mod job;
pub mod lookup;
pub mod metrics;
pub mod operator;
#[doc(hidden)]
pub mod simd;
pub mod sink;
pub mod source;
pub mod window;

pub use aggregate::{Agg, AggSet};
pub use batch::{Batch, Column, Values};
pub use dictionary::{Dictionary, DictionaryReader, KeyReclaimer};
pub use dstream::{DStream, StreamingContext};
pub use error::{ColumnRole, Error, IoSource, LookupProblem, Result, WindowPart};

/// Internal sizes that tests and benchmarks reach for (results do not depend
/// on them, except float rounding on [`CHUNK_ROWS`](tuning::CHUNK_ROWS)); not
/// part of the stable API.
pub mod tuning {
    pub use crate::batch::{CHUNK_ROWS, MIN_PARALLEL_ROWS};
}
pub use window::{
    AggColumn, Retention, TimePolicy, ValueType, WindowAggregator, WindowResult, WindowSpec,
    WindowStats,
};

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
