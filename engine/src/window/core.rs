//! The one windowing core: the pane clock and the schedule that drives the
//! key partitions of every windowed operator (the numeric
//! [`super::WindowAggregator`] and the DStream API's generic reductions,
//! record windows and counts).
//!
//! The core owns time: which pane is open, the first and last event, which
//! pane closes, which panes leave the window ending with it, whether that
//! window is emitted, the idle-pane skip and the interrupt flag. What a pane
//! holds and how a window's rows are computed is the business of a
//! [`PartitionState`]: one per key partition, each owned by one worker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rayon::prelude::*;

use super::spec::WindowSpec;
use super::WindowStats;
use crate::checkpoint::codec::{CodecError, Decoder, Encoder, Persist};
use crate::error::{Error, Result};

/// Longest run of empty panes closed one by one when nothing is held;
/// longer idle stretches are skipped up to their last this-many panes.
const MAX_IDLE_PANES: i64 = 10_000;

/// Below this many entries to touch, a pane closes on the calling thread.
pub(crate) const PARALLEL_THRESHOLD: usize = 16 * 1024;

/// The window state of one key partition, driven by a [`WindowCore`].
///
/// Panes are closed in increasing order; `evict_before` follows every
/// `close_pane` with the first pane the window ending there still covers.
pub(crate) trait PartitionState: Send {
    /// What the partitions share, read-only: aggregates, reduce functions,
    /// retention.
    type Config: Sync;
    /// This partition's rows of one window.
    type Rows: Send;

    /// Closes the open pane `pane`: what it holds joins the window state.
    fn close_pane(&mut self, pane: i64, config: &Self::Config);
    /// Removes every pane with index `< first_kept` from the window state.
    fn evict_before(&mut self, first_kept: i64, config: &Self::Config);
    /// The rows of the window ending at `end` (a filter may drop keys here).
    fn emit(&mut self, end: i64, config: &Self::Config) -> Self::Rows;
    /// Whether the partition holds no key, no closed pane and no open one.
    fn holds_nothing(&self) -> bool;
    /// A rough count of the entries closing a pane, evicting before
    /// `first_kept` and maybe emitting would touch: small jobs skip the pool.
    fn pending_work(&self, first_kept: i64, emit: bool) -> usize;
    /// Whether an idle stretch may be skipped when every partition holds
    /// nothing: only when empty keys are not output (live retention).
    fn may_skip_idle(config: &Self::Config) -> bool;
}

/// Events an operator keeps outside its partitions until a pane closes
/// (the numeric operator's per-worker scratches).
pub(crate) trait Staged<P> {
    /// Moves staged events into the partitions' open pane.
    fn flush(&mut self, partitions: &mut [P], pool: &rayon::ThreadPool);
    /// Whether nothing is staged.
    fn is_empty(&mut self) -> bool;
}

/// Nothing staged: operators that add events straight to their partitions.
pub(crate) struct Direct;

impl<P> Staged<P> for Direct {
    fn flush(&mut self, _: &mut [P], _: &rayon::ThreadPool) {}

    fn is_empty(&mut self) -> bool {
        true
    }
}

/// The pane clock and its key partitions.
///
/// # Invariants
///
/// - every pane before `open_pane` is closed in every partition, and the
///   window ending with each of them was emitted when due;
/// - `first_event`/`last_event` bound the times of the events accepted so far.
pub(crate) struct WindowCore<P: PartitionState> {
    pub spec: WindowSpec,
    pub config: P::Config,
    pub partitions: Vec<P>,
    pub pool: Arc<rayon::ThreadPool>,
    /// The pane events currently go to; `None` before the first event.
    pub open_pane: Option<i64>,
    first_event: Option<i64>,
    last_event: Option<i64>,
    pub stats: WindowStats,
    interrupt: Option<Arc<AtomicBool>>,
}

impl<P: PartitionState> WindowCore<P> {
    pub fn new(
        spec: WindowSpec,
        config: P::Config,
        partitions: Vec<P>,
        pool: Arc<rayon::ThreadPool>,
        interrupt: Option<Arc<AtomicBool>>,
    ) -> Self {
        Self {
            spec,
            config,
            partitions,
            pool,
            open_pane: None,
            first_event: None,
            last_event: None,
            stats: WindowStats::default(),
            interrupt,
        }
    }

    /// Whether events of `pane` come too late: their pane has closed.
    pub fn is_late(&self, pane: i64) -> bool {
        self.open_pane.is_some_and(|open| pane < open)
    }

    /// The pane of micro-batch `index` (all its events at `index · B`), or
    /// [`Error::LateBatch`] when that pane has closed.
    pub fn batch_pane(&self, index: i64) -> Result<i64> {
        let pane = self.spec.pane_index(index * self.spec.batch());
        match self.open_pane.filter(|&open| pane < open) {
            Some(open) => Err(Error::LateBatch {
                index,
                open: open * self.spec.pane() / self.spec.batch(),
            }),
            None => Ok(pane),
        }
    }

    /// Makes `pane` (not before the open one) the open pane for `events`
    /// events between `t_min` and `t_max`: panes before it close on the way.
    /// The caller then adds the events to the partitions (or its staging).
    pub fn open(
        &mut self,
        pane: i64,
        (t_min, t_max): (i64, i64),
        events: usize,
        staged: &mut impl Staged<P>,
        sink: &mut dyn FnMut(i64, Vec<P::Rows>),
    ) -> Result<()> {
        self.advance_to(pane * self.spec.pane(), staged, sink)?;
        if self.open_pane.is_none_or(|open| open < pane) {
            self.open_pane = Some(pane);
        }
        self.first_event = Some(self.first_event.map_or(t_min, |f| f.min(t_min)));
        self.last_event = Some(self.last_event.map_or(t_max, |l| l.max(t_max)));
        self.stats.events += events as u64;
        Ok(())
    }

    /// Closes every pane that ends at or before `time`, emitting the windows
    /// that end on the way.
    pub fn advance_to(
        &mut self,
        time: i64,
        staged: &mut impl Staged<P>,
        sink: &mut dyn FnMut(i64, Vec<P::Rows>),
    ) -> Result<()> {
        let Some(mut open) = self.open_pane else {
            return Ok(());
        };
        // Panes before `target` end at or before `time`.
        let target = time.div_euclid(self.spec.pane());
        while open < target {
            if self
                .interrupt
                .as_ref()
                .is_some_and(|flag| flag.load(Ordering::Relaxed))
            {
                return Err(Error::Interrupted);
            }
            if target - open > MAX_IDLE_PANES && self.holds_nothing(staged) {
                // Every window of an idle stretch is empty: only the last
                // ones before `time` are reported, so that a jump in event
                // time costs neither hours nor gigabytes of empty windows.
                open = target - MAX_IDLE_PANES;
            }
            self.close_pane(open, staged, sink);
            open += 1;
            self.open_pane = Some(open);
        }
        Ok(())
    }

    /// Emits every remaining window that holds any event.
    pub fn finish(
        &mut self,
        staged: &mut impl Staged<P>,
        sink: &mut dyn FnMut(i64, Vec<P::Rows>),
    ) -> Result<()> {
        match self.last_event {
            Some(last) => self.advance_to(self.spec.last_window_end(last), staged, sink),
            None => Ok(()),
        }
    }

    /// Whether no key is in any window and no event waits in a pane (so
    /// that every window until the next event is empty).
    fn holds_nothing(&self, staged: &mut impl Staged<P>) -> bool {
        P::may_skip_idle(&self.config)
            && self.partitions.iter().all(P::holds_nothing)
            && staged.is_empty()
    }

    /// Closes pane `pane`, evicts what leaves the window ending with it, and
    /// emits that window when it is due.
    fn close_pane(
        &mut self,
        pane: i64,
        staged: &mut impl Staged<P>,
        sink: &mut dyn FnMut(i64, Vec<P::Rows>),
    ) {
        staged.flush(&mut self.partitions, &self.pool);
        let end = (pane + 1) * self.spec.pane();
        let first_kept = pane + 1 - self.spec.panes_per_window();
        let emit = end % self.spec.slide() == 0 && self.first_event.is_some_and(|f| end > f);
        let Self {
            pool,
            partitions,
            config,
            ..
        } = self;
        let config = &*config;
        let step = |partition: &mut P| {
            partition.close_pane(pane, config);
            partition.evict_before(first_kept, config);
            emit.then(|| partition.emit(end, config))
        };
        let work: usize = partitions
            .iter()
            .map(|p| p.pending_work(first_kept, emit))
            .sum();
        // Waking the pool costs microseconds: not worth it for a few keys.
        let parts: Vec<Option<P::Rows>> = if work < PARALLEL_THRESHOLD || partitions.len() == 1 {
            partitions.iter_mut().map(step).collect()
        } else {
            pool.install(|| partitions.par_iter_mut().map(step).collect())
        };
        if emit {
            self.stats.windows += 1;
            sink(end, parts.into_iter().flatten().collect());
        }
    }

    /// Runs micro-batch `index` of a DStream (all its events at `index · B`):
    /// `add` puts its `events` events into the open pane, then the clock
    /// advances to the batch's end, `(index + 1) · B`. Returns the rows of
    /// the window that ends there, when one is due.
    pub fn micro_batch(
        &mut self,
        index: i64,
        events: usize,
        add: impl FnOnce(&mut Self),
    ) -> Result<Option<Vec<P::Rows>>> {
        let pane = self.batch_pane(index)?;
        let time = index * self.spec.batch();
        let mut window = None;
        // Batches are consecutive and a slide is at least one batch: at most
        // one window ends in a batch.
        let mut sink = |_: i64, rows: Vec<P::Rows>| window = Some(rows);
        if events > 0 {
            self.open(pane, (time, time), events, &mut Direct, &mut sink)?;
            add(self);
        }
        self.advance_to(time + self.spec.batch(), &mut Direct, &mut sink)?;
        Ok(window)
    }
}

impl<P: PartitionState> WindowCore<P> {
    /// Appends the pane clock to a checkpoint (the partitions save
    /// themselves).
    pub fn save_clock(&self, e: &mut Encoder) {
        self.open_pane.save(e);
        self.first_event.save(e);
        self.last_event.save(e);
        self.stats.events.save(e);
        self.stats.late_events.save(e);
        self.stats.windows.save(e);
    }

    /// Restores a pane clock saved by [`save_clock`](Self::save_clock).
    pub fn restore_clock(&mut self, d: &mut Decoder<'_>) -> std::result::Result<(), CodecError> {
        self.open_pane = Option::load(d)?;
        self.first_event = Option::load(d)?;
        self.last_event = Option::load(d)?;
        self.stats = WindowStats {
            events: u64::load(d)?,
            late_events: u64::load(d)?,
            windows: u64::load(d)?,
        };
        Ok(())
    }
}

impl<P: PartitionState> WindowCore<P> {
    /// The pane clock as numbers, for a state export
    /// ([`crate::window::StateOf`]).
    pub fn export_clock(&self, numbers: &mut Vec<i64>) {
        for time in [self.open_pane, self.first_event, self.last_event] {
            numbers.extend([i64::from(time.is_some()), time.unwrap_or(0)]);
        }
        for n in [
            self.stats.events,
            self.stats.late_events,
            self.stats.windows,
        ] {
            numbers.push(n as i64);
        }
    }

    /// The clock [`export_clock`](Self::export_clock) wrote.
    pub fn import_clock(&mut self, numbers: &mut impl Iterator<Item = i64>) -> Option<()> {
        let mut time = || -> Option<Option<i64>> {
            let (some, value) = (numbers.next()?, numbers.next()?);
            Some((some == 1).then_some(value))
        };
        let (open, first, last) = (time()?, time()?, time()?);
        self.open_pane = open;
        self.first_event = first;
        self.last_event = last;
        self.stats = WindowStats {
            events: numbers.next()? as u64,
            late_events: numbers.next()? as u64,
            windows: numbers.next()? as u64,
        };
        Some(())
    }
}
