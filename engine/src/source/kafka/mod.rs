//! Kafka as a source (feature `kafka` for the client; the options and the
//! events are always compiled, so that a build without the feature can say
//! what it lacks).
//!
//! Kafka does not fit the [`Source`](super::Source) trait's one stream of
//! lines: its records come from partitions, each with offsets to resume
//! from and its own event-time progress, and the partitions a process owns
//! change when another process joins or leaves its group. So the consumer
//! runs on a thread of its own ([`spawn`]) and sends [`KafkaEvent`]s:
//! [`KafkaChunk`]s of one partition's records (each record a line, with
//! its offset and its Kafka timestamp beside it), the partitions assigned,
//! and partitions that reached the end offset they had when the job
//! started (`until_end`). The job sends [`KafkaCommand`]s back: offsets
//! to commit, partitions to pause while their records wait for the others
//! (watermark alignment keeps memory bounded), and the final close.
//!
//! # Offsets and ownership
//!
//! The engine never commits an offset past a record whose effect could be
//! lost. What it commits for a partition is the *handover* point: the
//! first offset a new owner must read again to rebuild every window not yet
//! written, with the end of the last window written (`emitted through`) in
//! the commit's metadata. A process that gets a partition from another one
//! (a rebalance) reads it from there and drops the rows of that
//! partition's keys in windows that end at or before that point: each
//! window row is written once across the group. That requires a topic
//! keyed by the aggregation key (each key in one partition), as Kafka
//! Streams does; the README says so.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[cfg(feature = "kafka")]
mod consumer;
#[cfg(feature = "kafka")]
mod handover;

/// Where partitions without a committed offset start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KafkaStart {
    /// From each partition's first record.
    Earliest,
    /// From each partition's end: only records produced from now on.
    Latest,
    /// From the group's committed offset, or the first record when there is
    /// none (the default with a group).
    Committed,
}

/// A Kafka input: `--kafka-brokers`, `--kafka-topic` and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaOptions {
    /// `host:port[,host:port…]`: the bootstrap brokers.
    pub brokers: String,
    /// The topic to read.
    pub topic: String,
    /// A consumer group shared with other processes (each owns some
    /// partitions); `None`: this process reads every partition and commits
    /// nothing.
    pub group: Option<String>,
    /// Where partitions start when nothing says otherwise.
    pub start: KafkaStart,
    /// Stop once every partition reached the end offset it had when the
    /// job started (kcat's `-e`), then flush the windows as a finished file
    /// does.
    pub until_end: bool,
    /// A partition with nothing to read for this long does not hold the
    /// others' windows back (Flink's idleness); `None`: it always does.
    pub idle_after: Option<Duration>,
    /// Event time from the records' Kafka timestamps (`--time-col
    /// @timestamp`) instead of a field.
    pub record_time: bool,
    /// CSV: the columns' names, as a header line would give them (Kafka
    /// records carry no header).
    pub csv_header: Option<String>,
    /// librdkafka properties set on the consumer after the engine's own
    /// (`security.protocol`, `session.timeout.ms`, …).
    pub properties: Vec<(String, String)>,
}

impl KafkaOptions {
    /// The origin name of a partition's records in messages: `topic[3]`.
    #[must_use]
    pub fn origin(&self, partition: i32) -> String {
        format!("{}[{partition}]", self.topic)
    }
}

/// The header naming the process that wrote a partial aggregate (a
/// two-stage job's first stage): the second stage tracks the progress of
/// each producer of a partition on its own.
pub const PRODUCER_HEADER: &str = "engine-producer";

/// The name `--time-col` takes for the Kafka record timestamp.
pub const RECORD_TIME: &str = "@timestamp";

/// Records of one partition, in offset order: each record is one line of
/// `data` (a record holding newlines is several lines of the same offset).
#[derive(Debug, Clone)]
pub struct KafkaChunk {
    /// The assignment the records were read under ([`KafkaEvent::Assigned`]).
    pub generation: u64,
    /// The partition.
    pub partition: i32,
    /// The producer of the records ([`PRODUCER_HEADER`]), if they name one.
    pub producer: Option<Arc<str>>,
    /// Lines, each ending with `\n`.
    pub data: Vec<u8>,
    /// The offset of each line's record.
    pub offsets: Vec<i64>,
    /// The Kafka timestamp of each line's record (ms; -1 when the broker
    /// has none).
    pub times: Vec<i64>,
    /// The offset after the chunk's last record: where the partition
    /// resumes after it.
    pub next_offset: i64,
    /// Wall-clock time the chunk was received, ms since the epoch.
    pub arrival_ms: i64,
}

/// Where an assigned partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionStart {
    /// The partition.
    pub partition: i32,
    /// The first offset to read.
    pub offset: i64,
    /// Windows ending at or before this were written by the partition's
    /// previous owner (from the committed metadata): their rows for this
    /// partition's keys are not written again.
    pub emitted_through: Option<i64>,
    /// `until_end`: the end offset the partition had when the job started.
    pub end: Option<i64>,
}

/// What the Kafka consumer tells the job.
#[derive(Debug)]
pub enum KafkaEvent {
    /// The partitions this process reads from now on, replacing any earlier
    /// assignment. `resumed`: they start at the checkpoint's offsets (the
    /// job keeps the checkpoint's state); otherwise at the group's handover
    /// points or the start policy (the job starts its state afresh).
    Assigned {
        /// Counts assignments; chunks of an earlier one are stale.
        generation: u64,
        /// The partitions and where each starts.
        partitions: Vec<PartitionStart>,
        /// Whether the offsets are the checkpoint's.
        resumed: bool,
    },
    /// Records.
    Data(KafkaChunk),
    /// A partition reached its end offset (`until_end`): nothing more will
    /// come from it.
    Done {
        /// The assignment.
        generation: u64,
        /// The partition.
        partition: i32,
    },
    /// A partition has nothing more to read for now (it is caught up).
    CaughtUp {
        /// The assignment.
        generation: u64,
        /// The partition.
        partition: i32,
    },
    /// Something worth telling (the broker is unreachable, it is back).
    Notice(String),
    /// Every assigned partition is done (`until_end`), or the consumer
    /// stopped.
    End,
    /// The consumer failed and cannot go on.
    Failed(crate::error::Error),
}

/// What the job tells the consumer.
#[derive(Debug)]
pub enum KafkaCommand {
    /// Commit these `(partition, offset, metadata)` to the group, if the
    /// assignment (its generation) is still the same.
    Commit(u64, Vec<(i32, i64, String)>),
    /// Stop fetching these partitions (their records wait for the others).
    Pause(Vec<i32>),
    /// Fetch them again.
    Resume(Vec<i32>),
    /// Commit these (if the assignment is still the same) and leave the
    /// group: the job is over.
    Close(u64, Vec<(i32, i64, String)>),
}

/// What the job and the consumer share: the handover point of every
/// partition the job has processed records of, kept current by the job
/// (the consumer commits them when a rebalance takes partitions away), and
/// a lock the job holds while it processes a chunk, so that a rebalance
/// waits for the chunk in progress and the job never writes a window of a
/// partition after its handover point was committed.
#[derive(Debug, Default)]
pub struct KafkaShared {
    /// `partition → (offset, metadata)`.
    pub handover: Mutex<std::collections::BTreeMap<i32, (i64, String)>>,
    /// Held by the job while it processes a chunk.
    pub processing: Mutex<()>,
    /// The current assignment's generation.
    pub generation: AtomicU64,
    /// Consumer lag per partition (high watermark − position), for metrics.
    pub lag: Mutex<std::collections::BTreeMap<i32, i64>>,
}

/// The metadata of a handover commit: `emitted_through=<ms>`.
#[must_use]
pub fn handover_metadata(emitted_through: i64) -> String {
    format!("engine:emitted_through={emitted_through}")
}

/// The window end a handover commit's metadata names, if it is one.
#[must_use]
pub fn parse_handover_metadata(metadata: &str) -> Option<i64> {
    metadata
        .strip_prefix("engine:emitted_through=")
        .and_then(|n| n.parse().ok())
}

/// The channels of a running consumer.
pub struct KafkaConsumer {
    /// Events from the consumer.
    pub events: std::sync::mpsc::Receiver<KafkaEvent>,
    /// Commands to it.
    pub commands: std::sync::mpsc::Sender<KafkaCommand>,
    /// State shared with it.
    pub shared: Arc<KafkaShared>,
    /// The consumer thread (joined once the job closed it).
    pub thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts the consumer on a thread of its own. `resume` holds the
/// checkpoint's `partition → offset` of a resumed job: the partitions
/// start there when the first assignment is exactly those partitions.
///
/// # Errors
///
/// [`crate::Error::NeedsFeature`] in a build without the `kafka` feature;
/// the client could not be created (a malformed broker list).
#[allow(clippy::needless_pass_by_value)] // The feature-less build only names it.
pub fn spawn(
    options: &KafkaOptions,
    resume: Option<std::collections::BTreeMap<i32, i64>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> crate::error::Result<KafkaConsumer> {
    #[cfg(feature = "kafka")]
    {
        consumer::spawn(options, resume, stop)
    }
    #[cfg(not(feature = "kafka"))]
    {
        let _ = (options, resume, stop);
        Err(crate::error::Error::NeedsFeature {
            what: "Kafka input",
            feature: "kafka",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handover_metadata_round_trips_and_foreign_metadata_is_ignored() {
        assert_eq!(
            parse_handover_metadata(&handover_metadata(-5_000)),
            Some(-5_000)
        );
        assert_eq!(parse_handover_metadata(""), None);
        assert_eq!(parse_handover_metadata("someone else's"), None);
    }
}
