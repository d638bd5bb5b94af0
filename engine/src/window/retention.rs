//! Which keys a window's output holds and its state keeps: the one retention
//! enum of every windowed operator.

use std::sync::Arc;

use super::result::KeyRow;

/// Which keys a window's output holds, and which keys its state keeps.
///
/// `F` is the filter of [`Retention::Filter`]: a predicate on a numeric
/// window row ([`KeyFilter`], the default) for [`super::WindowAggregator`],
/// or on a `(key, value)` pair for the DStream API's generic reductions
/// ([`crate::dstream::KeyRetention`]).
#[derive(Clone)]
pub enum Retention<F = KeyFilter> {
    /// A key is in window `t`'s output iff it has an event in `[t − W, t)`;
    /// its state is freed when it leaves. Memory follows live keys.
    Live,
    /// Spark's `reduceByKeyAndWindow(func, invFunc, W, S)` without a filter: a
    /// key once seen stays, with the inverse result (count and sum 0; avg, min,
    /// max and variance null) once its events leave the window. Memory follows
    /// the keys ever seen.
    SparkCompatible,
    /// Spark's `filterFunc`: like [`SparkCompatible`](Self::SparkCompatible),
    /// but a key whose window row the filter rejects is dropped from the output
    /// and from the state. A dropped key comes back with its next event,
    /// counting from that event's pane.
    Filter(F),
}

/// A predicate on window rows; see [`Retention::Filter`].
pub type KeyFilter = Arc<dyn Fn(&KeyRow<'_>) -> bool + Send + Sync>;

// Not derived: a derived `Default` would ask for `F: Default`, which no
// filter (an `Arc<dyn Fn>`) is.
#[allow(clippy::derivable_impls)]
impl<F> Default for Retention<F> {
    fn default() -> Self {
        Retention::Live
    }
}

impl<F> Retention<F> {
    /// Whether keys leave the state as soon as they leave every window.
    #[must_use]
    pub fn is_live(&self) -> bool {
        matches!(self, Retention::Live)
    }
}

impl<F> std::fmt::Debug for Retention<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Retention::Live => "Live",
            Retention::SparkCompatible => "SparkCompatible",
            Retention::Filter(_) => "Filter(..)",
        })
    }
}
