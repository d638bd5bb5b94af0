//! A DStream API in the shape of Spark Streaming's.
//!
//! A [`StreamingContext`] has a batch interval and sources; each
//! [`DStream`] is a stream of record batches, one per micro-batch.
//! Transformations (`map`, `flat_map`, `filter`, `union`, `reduce_by_key`,
//! `count_by_value`), windowed operations (`window`, `reduce_by_key_and_window`
//! with or without an inverse function, `count_by_window`,
//! `count_by_value_and_window`) and output operations (`print`,
//! `foreach_batch`) follow Spark's semantics: batch `k` has time `(k+1)·B`,
//! its records time `k·B`, and a window ending at `t` covers `[t − W, t)`.
//!
//! User closures run per record (in parallel for large batches). The
//! columnar fast paths — [`DStream::words`] and
//! [`DStream::aggregate_by_key_and_window`] — run on dictionary-encoded
//! columns through [`crate::WindowAggregator`] instead.

mod checkpoint;
mod columnar;
mod context;
mod keyed;
mod stream;
mod windowed;

pub use crate::window::PairFilter;
pub use columnar::{AggRow, WordStream};
pub use context::{StreamingContext, Tick};
pub use keyed::KeyRetention;
pub use stream::{write_batch, Collected, DStream, TimedBatch};

/// What a stream can carry: cloneable records that can cross threads.
pub trait Record: Clone + Send + Sync + 'static {}

impl<T: Clone + Send + Sync + 'static> Record for T {}
