//! The time policy of a job: which parsed events are late or past
//! `until`, and the times the operator gets — each event's own (event
//! time), runs of records sharing a pane (virtual time), or the arrival
//! time (processing time).

use super::{deliver, Job, JobHooks, TimeMode};
use crate::batch::Batch;
use crate::error::Result;
use crate::operator::Operator;
use crate::window::TimePolicy;

impl Job<'_> {
    /// Drops, in place, the events of a piece whose pane is before the
    /// latest pane of any earlier record: lateness is decided in record
    /// order, so the same bytes give the same result however they were cut
    /// into chunks (a file, a pipe, a socket read).
    pub(super) fn drop_late(&mut self, piece: &mut Batch) {
        let pane = self.config.spec.pane();
        let times = piece.times();
        // In time order from the latest pane on (a replay, pre-parsed
        // columns): nothing is late, one vectorized scan instead of a
        // test a row.
        if times
            .first()
            .is_some_and(|&t| t >= self.max_pane.saturating_mul(pane))
            && times.is_sorted()
        {
            let last = times.last().map_or(i64::MIN, |t| t.div_euclid(pane));
            self.max_pane = self.max_pane.max(last);
            return;
        }
        let mut floor = self.max_pane.saturating_mul(pane);
        let mut ceiling = floor.saturating_add(pane);
        let mut on_time = |t: i64| {
            if t >= ceiling {
                floor = t.div_euclid(pane) * pane;
                ceiling = floor + pane;
            }
            t >= floor
        };
        self.late += piece.retain(|t, _, _| on_time(t)).records;
        self.max_pane = floor.div_euclid(pane);
    }

    /// Drops, in place, the events at or after `until`: they would only
    /// be in windows that are never written (and would advance the clock
    /// past `until`).
    pub(super) fn drop_after_until(&mut self, piece: &mut Batch) {
        let Some(until) = self.config.until else {
            return;
        };
        self.report.after_until += match self.config.time {
            // Nothing at or after `until`: one vectorized scan.
            TimeMode::Column(_) if piece.times().iter().all(|&t| t < until) => 0,
            TimeMode::Column(_) => piece.retain(|t, _, _| t < until).records,
            TimeMode::Rate(rate) => {
                // Record i has time floor(i·1000/rate) >= until from
                // i = ceil(until·rate/1000) on.
                let first = (i128::from(until) * i128::from(rate) + 999).div_euclid(1000);
                let base = i128::from(self.next_record);
                piece
                    .retain(|_, _, record| base + i128::from(record) < first)
                    .records
            }
            TimeMode::Processing => 0,
        };
    }

    /// Feeds a parsed piece to the window operator. Event-time jobs pass
    /// every event's time; virtual-time and processing-time jobs pass runs of
    /// events that share a pane, with no per-event times at all. Windows that
    /// close on the way are written at once.
    pub(super) fn aggregate(
        &mut self,
        piece: &mut Batch,
        arrival_ms: i64,
        hooks: &mut dyn JobHooks,
    ) -> Result<()> {
        if matches!(self.config.time, TimeMode::Column(_)) {
            self.drop_late(piece);
        }
        self.drop_after_until(piece);
        let mut sink = deliver(hooks, &self.dict, &mut self.delivered, &self.stop);
        let sink = &mut sink;
        let n = piece.len();
        self.report.events += n as u64;
        let op = &mut self.op;
        match self.config.time {
            TimeMode::Column(_) => Operator::push(op, piece, TimePolicy::EventTime, sink),
            TimeMode::Processing => {
                // Lines that arrived just before a batch closed but were
                // processed after go to the open batch, as a lagging Spark
                // receiver's blocks do: never dropped as late.
                let time = arrival_ms.max(self.clock_floor);
                let policy = TimePolicy::Span {
                    first: time,
                    last: time,
                };
                Operator::push(op, piece, policy, sink)
            }
            TimeMode::Rate(rate) => {
                // Record i has time floor(i·1000/rate): the rows go in runs
                // that share a pane, as slices of the batch.
                let pane = u128::from(self.config.spec.pane().unsigned_abs());
                let (rate, base) = (u128::from(rate), u128::from(self.next_record));
                let time = |record: u32| ((base + u128::from(record)) * 1000 / rate) as i64;
                let records = piece.records();
                let mut start = 0;
                while start < n {
                    let t0 = time(records[start]);
                    // The first record of the next pane: i·1000/rate >= its start.
                    let next_pane_ms = (u128::from(t0.unsigned_abs()) / pane + 1) * pane;
                    let first_next = (next_pane_ms * rate).div_ceil(1000).saturating_sub(base);
                    let bound = u32::try_from(first_next).unwrap_or(u32::MAX);
                    let end = start + records[start..].partition_point(|&r| r < bound);
                    let t1 = time(records[end - 1]);
                    let policy = TimePolicy::Span {
                        first: t0,
                        last: t1,
                    };
                    Operator::push(op, &piece.slice(start..end), policy, sink)?;
                    start = end;
                }
                Ok(())
            }
        }
    }
}
