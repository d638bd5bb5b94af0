//! Live metrics of a running job, in Prometheus' text exposition format
//! (version 0.0.4), and a tiny HTTP server for them ([`serve`]).
//!
//! [`Metrics`] is a registry of atomics. A job given one
//! ([`crate::job::JobConfig::metrics`]) publishes its counters into it once
//! per batch of input (never per record), from the same counters its
//! [`JobReport`] holds; [`Metrics::report`] reads them back as a report of
//! the job so far. Sources may set gauges of their own: a Kafka source its
//! consumer lag per partition ([`Metrics::set_partition_lag`]).
//!
//! ```
//! use engine::metrics::{Counts, Metrics};
//!
//! let metrics = Metrics::new();
//! metrics.publish(&Counts { records: 3, bytes: 12, ..Counts::default() });
//! metrics.observe_batch(std::time::Duration::from_millis(2));
//! metrics.set_partition_lag("events", 0, 42);
//! let text = metrics.render();
//! assert!(text.contains("engine_records_in_total 3\n"));
//! assert!(text.contains("engine_kafka_consumer_lag{topic=\"events\",partition=\"0\"} 42\n"));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::job::JobReport;

mod server;

pub use server::{serve, MetricsServer, MAX_CLIENTS, MAX_REQUEST_BYTES, REQUEST_TIMEOUT};

/// The upper bounds of the batch latency histogram's buckets, in
/// nanoseconds: 100 µs to 10 s (then `+Inf`).
pub const LATENCY_BUCKETS_NS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A job's counters at one moment: what [`Metrics::publish`] stores (the
/// same numbers as the [`JobReport`]'s fields of the same names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Records read (good and malformed).
    pub records: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Malformed records skipped.
    pub skipped: u64,
    /// Records dropped as late.
    pub late: u64,
    /// Events whose key is not in the lookup table.
    pub unmatched: u64,
    /// Well-formed records that yield no event.
    pub filtered: u64,
    /// Records at or after the job's `until`.
    pub after_until: u64,
    /// Events aggregated into windows.
    pub events: u64,
    /// Windows emitted.
    pub windows: u64,
    /// Rows of the windows emitted (one per key and window, before a front
    /// end cuts them, e.g. to the top N).
    pub rows: u64,
}

/// The live metrics of a job: counters, a batch latency histogram,
/// checkpoint gauges and labelled gauges of Kafka consumer lag. Every
/// update is a few relaxed atomic operations; [`Metrics::render`] reads
/// them without stopping the job.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    started_unix: Duration,
    records: AtomicU64,
    bytes: AtomicU64,
    skipped: AtomicU64,
    late: AtomicU64,
    unmatched: AtomicU64,
    filtered: AtomicU64,
    after_until: AtomicU64,
    events: AtomicU64,
    windows: AtomicU64,
    rows: AtomicU64,
    /// Batches per latency bucket (not cumulative; the last is `+Inf`).
    buckets: [AtomicU64; LATENCY_BUCKETS_NS.len() + 1],
    latency_sum_ns: AtomicU64,
    latency_max_ns: AtomicU64,
    checkpointing: AtomicBool,
    checkpoints: AtomicU64,
    /// Nanoseconds after `started` when the last checkpoint became durable
    /// (`u64::MAX`: none yet).
    checkpoint_durable_ns: AtomicU64,
    checkpoint_pause_ns: AtomicU64,
    checkpoint_max_pause_ns: AtomicU64,
    checkpoint_total_pause_ns: AtomicU64,
    checkpoint_max_bytes: AtomicU64,
    /// Consumer lag by topic and partition.
    lag: Mutex<BTreeMap<String, BTreeMap<i32, i64>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Nanoseconds of a duration, saturating.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Metrics {
    /// An empty registry; the job's clock (its age, the checkpoint age
    /// before the first checkpoint) starts now.
    #[must_use]
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            started_unix: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            late: AtomicU64::new(0),
            unmatched: AtomicU64::new(0),
            filtered: AtomicU64::new(0),
            after_until: AtomicU64::new(0),
            events: AtomicU64::new(0),
            windows: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_sum_ns: AtomicU64::new(0),
            latency_max_ns: AtomicU64::new(0),
            checkpointing: AtomicBool::new(false),
            checkpoints: AtomicU64::new(0),
            checkpoint_durable_ns: AtomicU64::new(u64::MAX),
            checkpoint_pause_ns: AtomicU64::new(0),
            checkpoint_max_pause_ns: AtomicU64::new(0),
            checkpoint_total_pause_ns: AtomicU64::new(0),
            checkpoint_max_bytes: AtomicU64::new(0),
            lag: Mutex::new(BTreeMap::new()),
        }
    }

    /// Stores the job's counters (absolute values, not increments: a job
    /// resumed from a checkpoint goes on from its counters).
    pub fn publish(&self, counts: &Counts) {
        self.records.store(counts.records, Relaxed);
        self.bytes.store(counts.bytes, Relaxed);
        self.skipped.store(counts.skipped, Relaxed);
        self.late.store(counts.late, Relaxed);
        self.unmatched.store(counts.unmatched, Relaxed);
        self.filtered.store(counts.filtered, Relaxed);
        self.after_until.store(counts.after_until, Relaxed);
        self.events.store(counts.events, Relaxed);
        self.windows.store(counts.windows, Relaxed);
        self.rows.store(counts.rows, Relaxed);
    }

    /// The counters last published.
    #[must_use]
    pub fn counts(&self) -> Counts {
        Counts {
            records: self.records.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            late: self.late.load(Relaxed),
            unmatched: self.unmatched.load(Relaxed),
            filtered: self.filtered.load(Relaxed),
            after_until: self.after_until.load(Relaxed),
            events: self.events.load(Relaxed),
            windows: self.windows.load(Relaxed),
            rows: self.rows.load(Relaxed),
        }
    }

    /// Counts one batch's processing time in the latency histogram.
    pub fn observe_batch(&self, latency: Duration) {
        let ns = nanos(latency);
        let bucket = LATENCY_BUCKETS_NS.partition_point(|&le| le < ns);
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.latency_sum_ns.fetch_add(ns, Relaxed);
        self.latency_max_ns.fetch_max(ns, Relaxed);
    }

    /// The histogram as cumulative counts per bucket (the last is `+Inf`,
    /// the number of batches), the sum and the maximum.
    fn histogram(&self) -> ([u64; LATENCY_BUCKETS_NS.len() + 1], Duration, Duration) {
        let mut total = 0;
        let cumulative = std::array::from_fn(|i| {
            total += self.buckets[i].load(Relaxed);
            total
        });
        (
            cumulative,
            Duration::from_nanos(self.latency_sum_ns.load(Relaxed)),
            Duration::from_nanos(self.latency_max_ns.load(Relaxed)),
        )
    }

    /// An estimate of the `q` quantile (0 to 1) of batch latency from the
    /// histogram, interpolated within its bucket as Prometheus'
    /// `histogram_quantile` does (the `+Inf` bucket gives the maximum);
    /// zero before the first batch.
    #[must_use]
    pub fn latency_quantile(&self, q: f64) -> Duration {
        let (cumulative, _, max) = self.histogram();
        let count = cumulative[LATENCY_BUCKETS_NS.len()];
        if count == 0 {
            return Duration::ZERO;
        }
        let rank = q.clamp(0.0, 1.0) * count as f64;
        let i = cumulative.partition_point(|&c| (c as f64) < rank);
        let Some(&upper) = LATENCY_BUCKETS_NS.get(i) else {
            return max;
        };
        let (lower, below) = match i {
            0 => (0, 0),
            _ => (LATENCY_BUCKETS_NS[i - 1], cumulative[i - 1]),
        };
        let in_bucket = (cumulative[i] - below).max(1) as f64;
        let at = lower as f64 + (upper - lower) as f64 * (rank - below as f64) / in_bucket;
        Duration::from_nanos(at as u64).min(max)
    }

    /// The job takes checkpoints: the checkpoint gauges are exposed.
    pub fn set_checkpointing(&self, on: bool) {
        self.checkpointing.store(on, Relaxed);
    }

    /// A checkpoint was taken: it held the job up for `pause` and is
    /// `bytes` long (durable once [`Metrics::checkpoint_durable`] says so).
    pub fn checkpoint_taken(&self, pause: Duration, bytes: u64) {
        let ns = nanos(pause);
        self.checkpoints.fetch_add(1, Relaxed);
        self.checkpoint_pause_ns.store(ns, Relaxed);
        self.checkpoint_max_pause_ns.fetch_max(ns, Relaxed);
        self.checkpoint_total_pause_ns.fetch_add(ns, Relaxed);
        self.checkpoint_max_bytes.fetch_max(bytes, Relaxed);
    }

    /// A checkpoint is durable now (written, synced, renamed).
    pub fn checkpoint_durable(&self) {
        let ns = nanos(self.started.elapsed()).min(u64::MAX - 1);
        self.checkpoint_durable_ns.store(ns, Relaxed);
    }

    /// Time since the last durable checkpoint, or since the job started
    /// before the first.
    #[must_use]
    pub fn checkpoint_age(&self) -> Duration {
        let elapsed = self.started.elapsed();
        match self.checkpoint_durable_ns.load(Relaxed) {
            u64::MAX => elapsed,
            at => elapsed.saturating_sub(Duration::from_nanos(at)),
        }
    }

    /// Sets the consumer lag of a topic's partition (records between the
    /// consumer's position and the partition's end).
    pub fn set_partition_lag(&self, topic: &str, partition: i32, lag: i64) {
        let mut lags = self.lag.lock().unwrap_or_else(PoisonError::into_inner);
        // No allocation once the topic is known (a source sets it often).
        match lags.get_mut(topic) {
            Some(partitions) => {
                partitions.insert(partition, lag);
            }
            None => {
                lags.insert(topic.to_owned(), BTreeMap::from([(partition, lag)]));
            }
        }
    }

    /// Forgets a partition's lag (the partition was revoked from this
    /// consumer).
    pub fn remove_partition(&self, topic: &str, partition: i32) {
        let mut lags = self.lag.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(partitions) = lags.get_mut(topic) {
            partitions.remove(&partition);
            if partitions.is_empty() {
                lags.remove(topic);
            }
        }
    }

    /// Time since the registry was made (the job's wall time).
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The job so far as a [`JobReport`]: the counters last published, the
    /// batch count and longest latency, and the checkpoints. It holds no
    /// latency sample: [`Metrics::latency_quantile`] estimates quantiles.
    #[must_use]
    pub fn report(&self) -> JobReport {
        let c = self.counts();
        let (cumulative, _, max) = self.histogram();
        JobReport {
            records: c.records,
            bytes: c.bytes,
            skipped: c.skipped,
            late: c.late,
            unmatched: c.unmatched,
            events: c.events,
            in_windows: c
                .records
                .saturating_sub(c.skipped + c.filtered + c.late + c.unmatched + c.after_until),
            after_until: c.after_until,
            filtered: c.filtered,
            windows: c.windows,
            elapsed: self.elapsed(),
            max_batch_latency: max,
            batches: cumulative[LATENCY_BUCKETS_NS.len()],
            checkpoints: self.checkpoints.load(Relaxed),
            checkpoint_max_pause: Duration::from_nanos(self.checkpoint_max_pause_ns.load(Relaxed)),
            checkpoint_total_pause: Duration::from_nanos(
                self.checkpoint_total_pause_ns.load(Relaxed),
            ),
            checkpoint_max_bytes: self.checkpoint_max_bytes.load(Relaxed),
            ..JobReport::default()
        }
    }

    /// The metrics in Prometheus' text exposition format, version 0.0.4.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let c = self.counts();
        let counters = [
            ("records_in", "Records read, good and malformed.", c.records),
            ("bytes_in", "Bytes read.", c.bytes),
            (
                "malformed_records",
                "Malformed records, skipped.",
                c.skipped,
            ),
            (
                "late_records",
                "Records dropped because their window had already closed.",
                c.late,
            ),
            (
                "unmatched_records",
                "Events dropped because their key is not in the lookup table.",
                c.unmatched,
            ),
            (
                "filtered_records",
                "Well-formed records that yield no event (the filter, a grep line without the pattern, a line without words).",
                c.filtered,
            ),
            (
                "after_until_records",
                "Records at or after the job's end time, in no window written.",
                c.after_until,
            ),
            ("events", "Events aggregated into windows.", c.events),
            ("windows_out", "Windows emitted.", c.windows),
            (
                "rows_out",
                "Rows (key and window) of the windows emitted.",
                c.rows,
            ),
        ];
        for (name, help, value) in counters {
            family(&mut out, &format!("engine_{name}_total"), "counter", help);
            let _ = writeln!(out, "engine_{name}_total {value}");
        }
        self.render_histogram(&mut out);
        self.render_checkpoints(&mut out);
        family(
            &mut out,
            "engine_start_time_seconds",
            "gauge",
            "When the job started, seconds since the Unix epoch.",
        );
        let _ = writeln!(
            out,
            "engine_start_time_seconds {}",
            self.started_unix.as_secs_f64()
        );
        let lags = self.lag.lock().unwrap_or_else(PoisonError::into_inner);
        if !lags.is_empty() {
            family(
                &mut out,
                "engine_kafka_consumer_lag",
                "gauge",
                "Records between the consumer's position and the end of the partition.",
            );
            for (topic, partitions) in lags.iter() {
                let topic = escape_label(topic);
                for (partition, lag) in partitions {
                    let _ = writeln!(
                        out,
                        "engine_kafka_consumer_lag{{topic=\"{topic}\",partition=\"{partition}\"}} {lag}"
                    );
                }
            }
        }
        out
    }

    fn render_histogram(&self, out: &mut String) {
        let name = "engine_batch_latency_seconds";
        family(
            out,
            name,
            "histogram",
            "Processing time of a batch of input (parse, aggregate, emit).",
        );
        let (cumulative, sum, _) = self.histogram();
        for (le, count) in LATENCY_BUCKETS_NS.iter().zip(&cumulative) {
            let le = *le as f64 / 1e9;
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {count}");
        }
        // `+Inf` and the count are the same number, read once.
        let count = cumulative[LATENCY_BUCKETS_NS.len()];
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", sum.as_secs_f64());
        let _ = writeln!(out, "{name}_count {count}");
    }

    fn render_checkpoints(&self, out: &mut String) {
        family(
            out,
            "engine_checkpoints_total",
            "counter",
            "Checkpoints written.",
        );
        let _ = writeln!(
            out,
            "engine_checkpoints_total {}",
            self.checkpoints.load(Relaxed)
        );
        if !self.checkpointing.load(Relaxed) {
            return;
        }
        let seconds = |ns: &AtomicU64| Duration::from_nanos(ns.load(Relaxed)).as_secs_f64();
        let gauges = [
            (
                "engine_checkpoint_age_seconds",
                "Seconds since the last durable checkpoint (since the job started, before the first).",
                self.checkpoint_age().as_secs_f64(),
            ),
            (
                "engine_checkpoint_pause_seconds",
                "How long the last checkpoint held the job up.",
                seconds(&self.checkpoint_pause_ns),
            ),
            (
                "engine_checkpoint_max_pause_seconds",
                "The longest a checkpoint held the job up.",
                seconds(&self.checkpoint_max_pause_ns),
            ),
        ];
        for (name, help, value) in gauges {
            family(out, name, "gauge", help);
            let _ = writeln!(out, "{name} {value}");
        }
    }
}

/// The `# HELP` and `# TYPE` lines of a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and line feeds escaped.
fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests;
