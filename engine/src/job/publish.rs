//! The job's live metrics ([`crate::metrics::Metrics`]): its report's
//! counters published once per batch of input, never per record.

use std::time::Duration;

use super::Job;
use crate::metrics::Counts;

impl Job<'_> {
    /// Stores the counters so far into the job's metrics, if it has any:
    /// the same numbers the final [`super::JobReport`] derives.
    pub(super) fn publish(&self) {
        let Some(metrics) = &self.config.metrics else {
            return;
        };
        let r = &self.report;
        // Events the operator dropped as late were counted as events first.
        let late_in_operator = self.op.stats().late_events;
        metrics.publish(&Counts {
            records: r.records,
            bytes: r.bytes,
            skipped: r.skipped,
            late: self.late + late_in_operator,
            unmatched: r.unmatched,
            filtered: r.filtered,
            after_until: r.after_until,
            events: r.events.saturating_sub(late_in_operator),
            windows: self.delivered.windows,
            rows: self.delivered.rows,
        });
    }

    /// A batch of input is done: its latency into the histogram, the
    /// counters published.
    pub(super) fn publish_batch(&self, latency: Duration) {
        if let Some(metrics) = &self.config.metrics {
            metrics.observe_batch(latency);
            self.publish();
        }
    }
}
