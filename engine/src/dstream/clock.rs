//! When a windowed stream closes panes and emits windows, by batch time.

use super::context::Tick;
use crate::window::WindowSpec;

/// What a window operator does at one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowStep {
    /// Pane that batch `tick.index`'s records belong to.
    pub pane: i64,
    /// The pane that ends at this tick, if one does.
    pub closes: Option<i64>,
    /// Panes before this one leave the window ending at this tick.
    pub first_kept: i64,
    /// Whether a window ends at this tick and is due (a multiple of the slide
    /// after the first record).
    pub emits: bool,
}

/// Batch-time window bookkeeping shared by the DStream window operators:
/// records of batch `k` carry time `k·B`.
#[derive(Debug, Clone)]
pub(crate) struct WindowClock {
    spec: WindowSpec,
    first_record: Option<i64>,
}

impl WindowClock {
    pub fn new(spec: WindowSpec) -> Self {
        Self {
            spec,
            first_record: None,
        }
    }

    /// Advances to `tick`, whose batch has records iff `has_records`.
    pub fn step(&mut self, tick: Tick, has_records: bool) -> WindowStep {
        let start = tick.index * self.spec.batch();
        if has_records && self.first_record.is_none() {
            self.first_record = Some(start);
        }
        let pane_len = self.spec.pane();
        let closes = (tick.time % pane_len == 0).then(|| tick.time / pane_len - 1);
        WindowStep {
            pane: self.spec.pane_index(start),
            closes,
            first_kept: tick.time.div_euclid(pane_len) - self.spec.panes_per_window(),
            emits: tick.time % self.spec.slide() == 0
                && self.first_record.is_some_and(|first| tick.time > first),
        }
    }
}
