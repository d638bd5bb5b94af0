//! The "collect records" accumulator: whole records over a sliding window on
//! the shared pane clock, for the DStream API's `window`.

use std::collections::VecDeque;
use std::sync::Arc;

use super::core::{PartitionState, WindowCore};
use super::WindowSpec;
use crate::error::Result;

/// The batches of the open pane and of the closed panes some future window
/// still covers, oldest first. Batches are shared, never copied, until a
/// window is emitted.
pub(crate) struct RecordPanes<T> {
    open: Vec<Arc<Vec<T>>>,
    ring: VecDeque<(i64, Vec<Arc<Vec<T>>>)>,
}

impl<T: Clone + Send + Sync> PartitionState for RecordPanes<T> {
    type Config = ();
    type Rows = Vec<T>;

    fn close_pane(&mut self, pane: i64, (): &()) {
        if !self.open.is_empty() {
            self.ring.push_back((pane, std::mem::take(&mut self.open)));
        }
    }

    fn evict_before(&mut self, first_kept: i64, (): &()) {
        while self
            .ring
            .front()
            .is_some_and(|(pane, _)| *pane < first_kept)
        {
            self.ring.pop_front();
        }
    }

    fn emit(&mut self, _: i64, (): &()) -> Vec<T> {
        self.ring
            .iter()
            .flat_map(|(_, batches)| batches.iter())
            .flat_map(|batch| batch.iter().cloned())
            .collect()
    }

    fn holds_nothing(&self) -> bool {
        self.open.is_empty() && self.ring.is_empty()
    }

    fn pending_work(&self, _: i64, _: bool) -> usize {
        // One partition: the pool is never worth waking.
        0
    }

    fn may_skip_idle((): &()) -> bool {
        true
    }
}

/// Every record of the last window, every slide: the DStream API's `window`.
pub(crate) struct RecordWindow<T: Clone + Send + Sync> {
    core: WindowCore<RecordPanes<T>>,
}

impl<T: Clone + Send + Sync> RecordWindow<T> {
    /// A window of records over `spec`; `pool` is only held, records are
    /// gathered on the calling thread.
    pub fn new(spec: WindowSpec, pool: Arc<rayon::ThreadPool>) -> Self {
        let panes = RecordPanes {
            open: Vec::new(),
            ring: VecDeque::new(),
        };
        Self {
            core: WindowCore::new(spec, (), vec![panes], pool, None),
        }
    }

    /// Adds micro-batch `index`'s records and returns the window ending with
    /// the batch, in arrival order, when one is due.
    pub fn push_batch(&mut self, index: i64, batch: Arc<Vec<T>>) -> Result<Option<Vec<T>>> {
        let window = self.core.micro_batch(index, batch.len(), |core| {
            // An empty batch adds no record: keeping it would make an idle
            // window look as if it held something.
            if !batch.is_empty() {
                core.partitions[0].open.push(batch);
            }
        })?;
        Ok(window.map(|parts| parts.into_iter().flatten().collect()))
    }
}

/// A record window's state as numbers and records: its open pane's and
/// closed panes' batches.
impl<T: Clone + Send + Sync> super::StateOf<T> for RecordWindow<T> {
    fn export(&self, numbers: &mut Vec<i64>, records: &mut Vec<T>) {
        self.core.export_clock(numbers);
        let panes = &self.core.partitions[0];
        let batches = |batches: &[Arc<Vec<T>>], numbers: &mut Vec<i64>, records: &mut Vec<T>| {
            numbers.push(batches.len() as i64);
            for batch in batches {
                numbers.push(batch.len() as i64);
                records.extend(batch.iter().cloned());
            }
        };
        batches(&panes.open, numbers, records);
        numbers.push(panes.ring.len() as i64);
        for (pane, closed) in &panes.ring {
            numbers.push(*pane);
            batches(closed, numbers, records);
        }
    }

    fn import(&mut self, numbers: Vec<i64>, records: Vec<T>) -> Option<()> {
        let (mut numbers, mut records) = (numbers.into_iter(), records.into_iter());
        self.core.import_clock(&mut numbers)?;
        let mut batches = |numbers: &mut std::vec::IntoIter<i64>| -> Option<Vec<Arc<Vec<T>>>> {
            let n = usize::try_from(numbers.next()?).ok()?;
            let mut out = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let len = usize::try_from(numbers.next()?).ok()?;
                let batch: Vec<T> = records.by_ref().take(len).collect();
                if batch.len() != len {
                    return None;
                }
                out.push(Arc::new(batch));
            }
            Some(out)
        };
        let open = batches(&mut numbers)?;
        let mut ring = VecDeque::new();
        for _ in 0..usize::try_from(numbers.next()?).ok()? {
            let pane = numbers.next()?;
            ring.push_back((pane, batches(&mut numbers)?));
        }
        let done = numbers.next().is_none();
        self.core.partitions[0] = RecordPanes { open, ring };
        (done && records.next().is_none()).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Empty batches (a pane's first, a whole slide) add nothing, and a
    /// window is exactly the records of its batches, in arrival order.
    #[test]
    fn record_windows_over_empty_batches_hold_exactly_their_batches() {
        let spec = WindowSpec::from_millis(100, 400, 200).unwrap();
        let pool = crate::window::build_pool(1, "test").unwrap();
        let mut op = RecordWindow::new(spec, pool);
        let batches: [&[u8]; 8] = [&[1], &[], &[], &[2, 3], &[], &[], &[], &[]];
        let mut windows = Vec::new();
        for (i, batch) in batches.iter().enumerate() {
            if let Some(window) = op.push_batch(i as i64, Arc::new(batch.to_vec())).unwrap() {
                windows.push((i, window));
            }
        }
        assert_eq!(
            windows,
            [
                (1, vec![1]),
                (3, vec![1, 2, 3]),
                (5, vec![2, 3]),
                (7, vec![])
            ]
        );
        assert!(op.core.partitions[0].holds_nothing());
    }
}
