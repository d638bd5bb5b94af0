//! Per-key operations on streams of pairs: `reduce_by_key` and the windowed
//! reductions, with or without an inverse function, on the engine's one
//! windowing core (the generic accumulator of [`crate::window`]).

use std::cell::RefCell;
use std::hash::Hash;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::stream::DStream;
use super::Record;
use crate::error::Result;
use crate::window::{reduce_partitioned, GenericWindow, PairFilter, Reduce, Retention};

/// Which keys a windowed reduction outputs and keeps: the engine's one
/// [`Retention`], its filter a predicate on `(key, value)`.
/// [`SparkCompatible`](Retention::SparkCompatible) and
/// [`Filter`](Retention::Filter) need an inverse function.
pub type KeyRetention<K, V> = Retention<PairFilter<K, V>>;

impl<K, V> DStream<(K, V)>
where
    K: Record + Hash + Eq,
    V: Record,
{
    /// Reduces the values of each key within every batch, as Spark's
    /// `reduceByKey`. `f` must be associative and commutative.
    #[must_use]
    pub fn reduce_by_key<F>(&self, f: F) -> DStream<(K, V)>
    where
        F: Fn(V, V) -> V + Send + Sync + 'static,
    {
        let partitions = self.ctx.threads();
        let ctx = self.ctx.pool_arc();
        let f: Reduce<V> = Arc::new(f);
        self.derive(move |_, batch| {
            Ok(batch.map(|records| {
                let maps = reduce_partitioned(&ctx, &records, partitions, &f);
                maps.into_iter()
                    .flat_map(|map| map.into_iter().map(|(k, (v, _))| (k, v)))
                    .collect()
            }))
        })
    }

    /// Reduces each key's values over a sliding window, recombining per-pane
    /// partial results in an O(1)-amortized sliding structure: no inverse
    /// needed, and keys without records in the window drop out.
    pub fn reduce_by_key_and_window<F>(
        &self,
        f: F,
        window: Duration,
        slide: Duration,
    ) -> Result<DStream<(K, V)>>
    where
        F: Fn(V, V) -> V + Send + Sync + 'static,
    {
        self.windowed(Arc::new(f), None, window, slide, KeyRetention::Live)
    }

    /// Reduces each key's values over a sliding window by inverse-reduce: each
    /// slide adds the entering panes with `f` and removes the leaving ones with
    /// `inv`, as Spark's `reduceByKeyAndWindow(func, invFunc, …)`. Keys without
    /// records in the window drop out (see
    /// [`reduce_by_key_and_window_with`](Self::reduce_by_key_and_window_with)
    /// for Spark's keep-with-zero behaviour).
    pub fn reduce_by_key_and_window_inv<F, G>(
        &self,
        f: F,
        inv: G,
        window: Duration,
        slide: Duration,
    ) -> Result<DStream<(K, V)>>
    where
        F: Fn(V, V) -> V + Send + Sync + 'static,
        G: Fn(V, V) -> V + Send + Sync + 'static,
    {
        self.windowed(
            Arc::new(f),
            Some(Arc::new(inv)),
            window,
            slide,
            KeyRetention::Live,
        )
    }

    /// The general windowed reduction: optional inverse, and a choice of which
    /// keys to keep. [`KeyRetention::SparkCompatible`] and
    /// [`KeyRetention::Filter`] need an inverse; without one they act as
    /// [`KeyRetention::Live`], as Spark's recomputing reduction does.
    pub fn reduce_by_key_and_window_with<F, G>(
        &self,
        f: F,
        inv: Option<G>,
        window: Duration,
        slide: Duration,
        retention: KeyRetention<K, V>,
    ) -> Result<DStream<(K, V)>>
    where
        F: Fn(V, V) -> V + Send + Sync + 'static,
        G: Fn(V, V) -> V + Send + Sync + 'static,
    {
        let inv = inv.map(|g| Arc::new(g) as Reduce<V>);
        self.windowed(Arc::new(f), inv, window, slide, retention)
    }

    fn windowed(
        &self,
        f: Reduce<V>,
        inv: Option<Reduce<V>>,
        window: Duration,
        slide: Duration,
        retention: KeyRetention<K, V>,
    ) -> Result<DStream<(K, V)>> {
        let spec = self.window_spec(window, slide)?;
        // What a checkpoint of this stream must match: the same window, the
        // same kind of reduction, the same retention.
        let what = format!(
            "reduce_by_key_and_window(window {} ms, slide {} ms, {} inverse, {} keys)",
            spec.window(),
            spec.slide(),
            if inv.is_some() { "with" } else { "without" },
            match &retention {
                Retention::Live => "live",
                Retention::SparkCompatible => "spark-compatible",
                Retention::Filter(_) => "filtered",
            }
        );
        let op = Rc::new(RefCell::new(GenericWindow::new(
            spec,
            f,
            inv,
            retention,
            self.ctx.pool_arc(),
        )));
        let stepped = Rc::clone(&op);
        let mut out = self.derive(move |tick, batch| {
            let records = batch.unwrap_or_default();
            stepped.borrow_mut().push_batch(tick.index, &records)
        });
        out.state = Some(self.ctx.register_state::<(K, V)>(what, op));
        Ok(out.delayed_by(spec))
    }
}
