//! Windows over whole records, and counting operators, on the engine's one
//! windowing core.

use std::cell::RefCell;
use std::hash::Hash;
use std::rc::Rc;
use std::time::Duration;

use super::keyed::KeyRetention;
use super::stream::DStream;
use super::Record;
use crate::error::Result;
use crate::window::RecordWindow;

impl<T: Record> DStream<T> {
    /// Every record of the last `window`, every `slide`, as Spark's `window`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let ssc = engine::StreamingContext::new(Duration::from_secs(1))?;
    /// let windows = ssc
    ///     .queue_stream(vec![vec![1], vec![2], vec![3]])
    ///     .window(Duration::from_secs(2), Duration::from_secs(1))?
    ///     .collect();
    /// ssc.run()?;
    /// let got: Vec<Vec<i32>> = windows.take().into_iter().map(|(_, w)| w).collect();
    /// assert_eq!(got, [vec![1], vec![1, 2], vec![2, 3], vec![3]]);
    /// # Ok::<(), engine::Error>(())
    /// ```
    pub fn window(&self, window: Duration, slide: Duration) -> Result<DStream<T>> {
        let spec = self.window_spec(window, slide)?;
        let op = Rc::new(RefCell::new(RecordWindow::new(spec, self.ctx.pool_arc())));
        let stepped = Rc::clone(&op);
        let mut out = self.derive(move |tick, batch| {
            stepped
                .borrow_mut()
                .push_batch(tick.index, batch.unwrap_or_default())
        });
        let what = format!(
            "window(window {} ms, slide {} ms)",
            spec.window(),
            spec.slide()
        );
        out.state = Some(self.ctx.register_state::<T>(what, op));
        Ok(out.delayed_by(spec))
    }

    /// The number of records in each window, as Spark's `countByWindow`:
    /// once the stream has started, every slide has a count, 0 when empty.
    pub fn count_by_window(&self, window: Duration, slide: Duration) -> Result<DStream<u64>> {
        Ok(self
            .map(|_| ((), 1_u64))
            .reduce_by_key_and_window_with(
                |a, b| a + b,
                Some(|a: u64, b: u64| a - b),
                window,
                slide,
                KeyRetention::SparkCompatible,
            )?
            .checkpointed()?
            .map(|((), count)| count))
    }
}

impl<T: Record + Hash + Eq> DStream<T> {
    /// The number of occurrences of each distinct record in each batch, as
    /// Spark's `countByValue`.
    #[must_use]
    pub fn count_by_value(&self) -> DStream<(T, u64)> {
        self.map(|t| (t, 1_u64)).reduce_by_key(|a, b| a + b)
    }

    /// The number of occurrences of each distinct record in each window, by
    /// inverse-reduce, as Spark's `countByValueAndWindow` (which drops values
    /// whose count falls to zero).
    pub fn count_by_value_and_window(
        &self,
        window: Duration,
        slide: Duration,
    ) -> Result<DStream<(T, u64)>> {
        self.map(|t| (t, 1_u64)).reduce_by_key_and_window_inv(
            |a, b| a + b,
            |a, b| a - b,
            window,
            slide,
        )
    }
}
