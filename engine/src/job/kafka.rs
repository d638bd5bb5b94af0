//! A job over a Kafka topic: each partition's records parsed as they come,
//! event time aligned across partitions (Flink's per-partition
//! watermarks), offsets in the checkpoints, and the handover of partitions
//! between the processes of a group.
//!
//! # Event time across partitions
//!
//! Each partition's records are in time order, or late by the same rule as
//! a file's (an earlier pane than any earlier record *of that partition*).
//! The window operator takes panes in order, so a partition's events wait
//! in a buffer until every partition that can still send something has got
//! past their pane; then each pane is pushed whole, partitions in number
//! order and each in offset order — the same batches however the
//! partitions' records interleaved on the way, so float sums are identical
//! from run to run. A partition that is done (`until_end`) or idle (caught
//! up for `idle_after`) holds nobody back; one that races ahead is paused
//! when the buffers hold [`BUFFERED_EVENTS`] events.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use super::{deliver, Job, JobHooks, Notice, TimeMode};
use crate::batch::Batch;
use crate::error::Result;
use crate::operator::Operator;
use crate::source::kafka::{
    handover_metadata, KafkaChunk, KafkaCommand, KafkaConsumer, KafkaEvent, KafkaOptions,
    PartitionStart,
};
use crate::window::TimePolicy;

mod checkpoint;

/// Events waiting for the other partitions before partitions that are
/// ahead are paused.
const BUFFERED_EVENTS: usize = 4 << 20;

/// How long a closing job waits for its final commit and leaving the group.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(15);

/// How often a group job commits its handover points (without checkpoints).
const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// One assigned partition.
#[derive(Debug)]
pub(super) struct Part {
    origin: Arc<str>,
    /// The offset after the last record processed.
    next_offset: i64,
    /// Each producer's progress: the latest pane of any of its records
    /// (lateness within it). Records name no producer but those of a
    /// two-stage job's first stage, so most partitions have one stream.
    streams: BTreeMap<Option<Arc<str>>, Stream>,
    /// Events of panes not yet released, by pane.
    waiting: BTreeMap<i64, Vec<Batch>>,
    waiting_events: usize,
    /// Nothing more will come (`until_end`).
    done: bool,
    /// Since when it has had nothing to read.
    caught_up: Option<Instant>,
    /// Whether it has been read to its end once: the producers of its
    /// records up to then are all known.
    caught_up_once: bool,
    /// Lines read since it was assigned (line numbers in messages).
    lines: u64,
    /// Group jobs: the first offset of each pane still in a window.
    pane_offsets: BTreeMap<i64, i64>,
    /// Windows ending at or before this were written by a previous owner.
    emitted_through: Option<i64>,
}

impl Part {
    fn new(options: &KafkaOptions, start: &PartitionStart) -> Self {
        Self {
            origin: options.origin(start.partition).into(),
            next_offset: start.offset,
            streams: BTreeMap::new(),
            waiting: BTreeMap::new(),
            waiting_events: 0,
            done: false,
            caught_up: None,
            caught_up_once: false,
            lines: 0,
            pane_offsets: BTreeMap::new(),
            emitted_through: start.emitted_through,
        }
    }

    /// Keeps `batch`'s events (in pane order) waiting, one slice per pane.
    fn wait(&mut self, batch: &Batch, pane: i64) {
        let times = batch.times();
        let mut start = 0;
        while start < batch.len() {
            let p = times[start].div_euclid(pane);
            let end = start + times[start..].partition_point(|t| t.div_euclid(pane) == p);
            self.waiting
                .entry(p)
                .or_default()
                .push(batch.slice(start..end));
            self.waiting_events += end - start;
            start = end;
        }
    }

    /// The first pane of its waiting events.
    fn first_waiting_pane(&self) -> Option<i64> {
        self.waiting.keys().next().copied()
    }

    /// The least pane the partition may still send: its slowest producer's
    /// (one quiet for `idle_after` does not count).
    fn progress(&self, idle_after: Option<Duration>) -> i64 {
        // Records that name their producers (a two-stage job's partials)
        // come from producers that are each in time order, not together: a
        // producer not seen yet may still send early panes, so nothing is
        // released before the partition was read to its end once.
        if !self.caught_up_once && self.streams.keys().any(Option::is_some) {
            return i64::MIN;
        }
        // A producer is quiet only while the partition has nothing more to
        // read: records still to be read may be its own.
        let caught_up = self.caught_up.is_some();
        let live = self.streams.values().filter(|s| {
            !caught_up || idle_after.is_none_or(|d| s.seen.elapsed() < d) || self.streams.len() == 1
        });
        live.map(|s| s.max_pane).min().unwrap_or(i64::MIN)
    }
}

/// One producer's records in a partition.
#[derive(Debug)]
struct Stream {
    max_pane: i64,
    seen: Instant,
}

/// The chunk being processed: its partition and producer, its lines'
/// times and offsets, and the number of its first line.
#[derive(Clone)]
struct Current {
    partition: i32,
    producer: Option<Arc<str>>,
    times: Arc<Vec<i64>>,
    offsets: Arc<Vec<i64>>,
    first_line: u64,
}

/// The Kafka side of a job.
pub(super) struct KafkaState {
    options: KafkaOptions,
    consumer: Option<KafkaConsumer>,
    generation: u64,
    pub(super) parts: BTreeMap<i32, Part>,
    /// The chunk being processed.
    current: Option<Current>,
    paused: BTreeSet<i32>,
    /// Whether an assignment was taken (a later one restarts the state).
    generation_seen: bool,
    last_commit: Instant,
    /// Group jobs with checkpoints: the handover points of the last
    /// checkpoint, committed once it is durable.
    pending_commit: Option<Vec<(i32, i64, String)>>,
    /// Restored from a checkpoint: `partition → (next offset, max pane,
    /// waiting events)`.
    restored: Option<BTreeMap<i32, Part>>,
}

impl KafkaState {
    pub(super) fn new(options: &KafkaOptions) -> Self {
        Self {
            options: options.clone(),
            consumer: None,
            generation: 0,
            parts: BTreeMap::new(),
            current: None,
            paused: BTreeSet::new(),
            generation_seen: false,
            last_commit: Instant::now(),
            pending_commit: None,
            restored: None,
        }
    }

    fn group(&self) -> bool {
        self.options.group.is_some()
    }

    fn send(&self, command: KafkaCommand) {
        if let Some(c) = &self.consumer {
            let _ = c.commands.send(command);
        }
    }

    /// Marks every key id waiting in a buffer (they must not be reclaimed).
    pub(super) fn for_each_waiting_key(&self, mark: &mut dyn FnMut(u32)) {
        for part in self.parts.values() {
            for batch in part.waiting.values().flatten() {
                for &k in batch.keys() {
                    mark(k);
                }
            }
        }
    }

    /// Consumer lag per partition, for the metrics.
    #[must_use]
    pub(super) fn lag(&self) -> BTreeMap<i32, i64> {
        self.consumer.as_ref().map_or_else(BTreeMap::new, |c| {
            c.shared
                .lag
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        })
    }
}

impl Job<'_> {
    /// Runs until every partition is done (`until_end`: `true`), or the job
    /// is stopped (`false`).
    pub(super) fn run_kafka(&mut self, hooks: &mut dyn JobHooks) -> Result<bool> {
        let resume = self.kafka().restored.as_ref().map(|parts| {
            parts
                .iter()
                .map(|(&p, part)| (p, part.next_offset))
                .collect()
        });
        let options = self.kafka().options.clone();
        let consumer = crate::source::kafka::spawn(&options, resume, Arc::clone(&self.stop))?;
        self.kafka_mut().consumer = Some(consumer);
        self.kafka_loop(hooks)
    }

    /// The job is over: the final commit (once every window is written and
    /// the last checkpoint is durable; `finished`: every record's windows
    /// are out), then the consumer leaves the group and its thread ends.
    pub(super) fn close_kafka(&mut self, finished: bool) {
        let Some(kafka) = &self.kafka else {
            return;
        };
        let commits = if kafka.group() {
            self.handovers(finished)
        } else {
            Vec::new()
        };
        let kafka = self.kafka_mut();
        kafka.send(KafkaCommand::Close(kafka.generation, commits));
        if let Some(thread) = kafka.consumer.as_mut().and_then(|c| c.thread.take()) {
            // Leaving the group hands the partitions over at once; a broker
            // that is gone is not waited for long.
            let deadline = Instant::now() + CLOSE_TIMEOUT;
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }

    fn kafka(&self) -> &KafkaState {
        self.kafka.as_ref().expect("a Kafka job")
    }

    fn kafka_mut(&mut self) -> &mut KafkaState {
        self.kafka.as_mut().expect("a Kafka job")
    }

    fn kafka_loop(&mut self, hooks: &mut dyn JobHooks) -> Result<bool> {
        let processing_time = self.config.time == TimeMode::Processing;
        loop {
            if self.stopped() {
                return Ok(false);
            }
            let (event, shared) = {
                let consumer = self.kafka().consumer.as_ref().expect("spawned");
                (
                    consumer.events.recv_timeout(Duration::from_millis(100)),
                    Arc::clone(&consumer.shared),
                )
            };
            // A rebalance waits for this step; once it has taken
            // partitions away, nothing is written until the new assignment
            // (the partitions' new owners write their windows).
            let _processing = shared
                .processing
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let stale = shared.generation.load(Ordering::SeqCst) != self.kafka().generation;
            let event = match event {
                Ok(KafkaEvent::Data(_) | KafkaEvent::Done { .. } | KafkaEvent::CaughtUp { .. })
                    if stale =>
                {
                    continue;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if stale => continue,
                other => other,
            };
            match event {
                Ok(KafkaEvent::Assigned {
                    generation,
                    partitions,
                    resumed,
                }) => self.assigned(generation, &partitions, resumed)?,
                Ok(KafkaEvent::Data(chunk)) => {
                    if self.kafka_chunk(chunk, hooks)? {
                        self.kafka_cut(hooks)?;
                    }
                }
                Ok(KafkaEvent::Done {
                    generation,
                    partition,
                }) => {
                    if generation == self.kafka().generation {
                        if let Some(part) = self.kafka_mut().parts.get_mut(&partition) {
                            part.done = true;
                        }
                        self.release(hooks)?;
                    }
                }
                Ok(KafkaEvent::CaughtUp {
                    generation,
                    partition,
                }) => {
                    if generation == self.kafka().generation {
                        if let Some(part) = self.kafka_mut().parts.get_mut(&partition) {
                            part.caught_up.get_or_insert_with(Instant::now);
                            part.caught_up_once = true;
                        }
                    }
                }
                Ok(KafkaEvent::Notice(text)) => hooks.notice(&Notice::Kafka(&text)),
                Ok(KafkaEvent::End) => {
                    // Everything read is released: the source has ended.
                    for part in self.kafka_mut().parts.values_mut() {
                        part.done = true;
                    }
                    self.release(hooks)?;
                    return Ok(!self.stop.load(Ordering::Relaxed));
                }
                Ok(KafkaEvent::Failed(e)) => return Err(e),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(false),
            }
            // Idle partitions stop holding the others back.
            if matches!(self.config.time, TimeMode::Column(_)) {
                self.release(hooks)?;
            }
            if processing_time && !self.stopped() {
                let now = crate::source::now_ms().max(self.clock_floor);
                self.clock_floor = now;
                let mut sink = deliver(hooks, &self.dict, &mut self.delivered, &self.stop);
                self.op.advance_to(now, &mut sink)?;
            }
            if let Some(metrics) = &self.config.metrics {
                let topic = &self.kafka().options.topic;
                for (p, lag) in self.kafka().lag() {
                    metrics.set_partition_lag(topic, p, lag);
                }
            }
            if self.kafka().group()
                && self.checkpoints.is_none()
                && self.kafka().last_commit.elapsed() >= COMMIT_EVERY
            {
                let commits = self.handovers(false);
                let kafka = self.kafka_mut();
                kafka.last_commit = Instant::now();
                kafka.send(KafkaCommand::Commit(kafka.generation, commits));
            }
        }
    }

    /// A new assignment: the checkpoint's (its state is kept), or another
    /// (the state starts afresh from the group's handover points).
    fn assigned(
        &mut self,
        generation: u64,
        partitions: &[PartitionStart],
        resumed: bool,
    ) -> Result<()> {
        let restored = self.kafka_mut().restored.take();
        let fresh = !resumed && (restored.is_some() || self.kafka().generation_seen);
        if fresh {
            // Rows already written by this process or the partitions'
            // previous owners are not written again (`emitted_through`).
            self.op = self.config.operator(&self.stop, &self.pool)?;
            self.max_pane = i64::MIN;
            self.clock_floor = i64::MIN;
        }
        let options = self.kafka().options.clone();
        let emitted = self.delivered.last_end;
        let kafka = self.kafka_mut();
        kafka.generation = generation;
        kafka.current = None;
        kafka.paused.clear();
        let mut parts = BTreeMap::new();
        let mut restored = if resumed { restored } else { None };
        let owned: BTreeSet<i32> = kafka.parts.keys().copied().collect();
        for start in partitions {
            let mut part = restored
                .as_mut()
                .and_then(|r| r.remove(&start.partition))
                .unwrap_or_else(|| Part::new(&options, start));
            if fresh && options.group.is_some() && owned.contains(&start.partition) {
                // What this process wrote of a partition it keeps counts
                // too (its handover may not have been committed).
                part.emitted_through = part.emitted_through.max(emitted);
            }
            parts.insert(start.partition, part);
        }
        kafka.parts = parts;
        kafka.generation_seen = true;
        let old = self.delivered.filter.take();
        self.delivered.filter = self.kafka_filter(old);
        Ok(())
    }

    /// Processes a chunk of the current assignment; `false` when it was
    /// stale (read before a rebalance).
    fn kafka_chunk(&mut self, chunk: KafkaChunk, hooks: &mut dyn JobHooks) -> Result<bool> {
        let shared = Arc::clone(&self.kafka().consumer.as_ref().expect("spawned").shared);
        // A chunk read before a rebalance is dropped (the partition's new
        // owner reads it again). The caller holds `shared.processing`.
        if chunk.generation != self.kafka().generation {
            return Ok(false);
        }
        let Some(part) = self.kafka_mut().parts.get_mut(&chunk.partition) else {
            return Ok(false);
        };
        part.caught_up = None;
        let origin = Arc::clone(&part.origin);
        let first_line = part.lines + 1;
        part.lines += chunk.offsets.len() as u64;
        if !self.parsers.contains_key(&origin) {
            // Kafka records carry no header: CSV columns come from the job.
            let header = self.kafka().options.csv_header.clone();
            self.header_only(&origin, header.as_deref().map(str::as_bytes))?;
        }
        let kafka = self.kafka_mut();
        kafka.current = Some(Current {
            partition: chunk.partition,
            producer: chunk.producer.clone(),
            times: Arc::new(chunk.times),
            offsets: Arc::new(chunk.offsets),
            first_line,
        });
        let outcome = self.process(
            &origin,
            &chunk.data,
            first_line,
            chunk.arrival_ms,
            &[],
            None,
            hooks,
        );
        let kafka = self.kafka_mut();
        kafka.current = None;
        outcome?;
        if let Some(part) = kafka.parts.get_mut(&chunk.partition) {
            part.next_offset = chunk.next_offset;
        }
        self.release(hooks)?;
        if self.kafka().group() && self.checkpoints.is_none() {
            // With checkpoints, only a durable checkpoint's points are
            // handed over (`kafka_cut`).
            let handovers = self.handovers(false);
            *shared
                .handover
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = handovers
                .into_iter()
                .map(|(p, offset, meta)| (p, (offset, meta)))
                .collect();
        }
        Ok(true)
    }

    /// Takes a parsed piece of the current chunk: Kafka timestamps as event
    /// times (`@timestamp`); in event time, lateness within the partition,
    /// then the partition's buffer; otherwise straight to the operator.
    pub(super) fn kafka_piece(
        &mut self,
        batch: &mut Batch,
        line: u64,
        arrival_ms: i64,
        hooks: &mut dyn JobHooks,
    ) -> Result<()> {
        let Current {
            partition,
            producer,
            times,
            offsets,
            first_line,
        } = self
            .kafka()
            .current
            .clone()
            .expect("a chunk is being processed");
        let base = (line - first_line) as usize;
        if self.kafka().options.record_time {
            let stamped: Vec<i64> = batch
                .records()
                .iter()
                .map(|&r| times[base + r as usize])
                .collect();
            batch.set_times(stamped);
        }
        if let Some(filter) = &mut self.delivered.filter {
            filter.note_keys(batch.keys(), partition);
        }
        if !matches!(self.config.time, TimeMode::Column(_)) {
            let outcome = self.aggregate(batch, arrival_ms, hooks);
            return outcome;
        }
        // Lateness is the producer's own, within the partition.
        let stream_max = self.kafka().parts[&partition]
            .streams
            .get(&producer)
            .map_or(i64::MIN, |s| s.max_pane);
        let job_max = std::mem::replace(&mut self.max_pane, stream_max);
        self.drop_late(batch);
        let stream_max = std::mem::replace(&mut self.max_pane, job_max);
        self.drop_after_until(batch);
        let pane = self.config.spec.pane();
        let group = self.kafka().group();
        let part = self
            .kafka_mut()
            .parts
            .get_mut(&partition)
            .expect("assigned");
        part.streams.insert(
            producer,
            Stream {
                max_pane: stream_max,
                seen: Instant::now(),
            },
        );
        if group {
            for (&t, &r) in batch.times().iter().zip(batch.records()) {
                // The least offset of the pane's records: producers'
                // records interleave, and a chunk of one may come after a
                // chunk of another with earlier offsets.
                let offset = offsets[base + r as usize];
                part.pane_offsets
                    .entry(t.div_euclid(pane))
                    .and_modify(|o| *o = (*o).min(offset))
                    .or_insert(offset);
            }
        }
        // In pane order: lateness dropped the others.
        part.wait(batch, pane);
        Ok(())
    }

    /// Pushes every pane all partitions that can still send records have
    /// got past, pane by pane; pauses partitions that are ahead while the
    /// buffers are full.
    fn release(&mut self, hooks: &mut dyn JobHooks) -> Result<()> {
        if !matches!(self.config.time, TimeMode::Column(_)) {
            return Ok(());
        }
        let idle_after = self.kafka().options.idle_after;
        let idle = |part: &Part| {
            idle_after.is_some_and(|d| part.caught_up.is_some_and(|c| c.elapsed() >= d))
                && part.waiting.is_empty()
        };
        // The watermark: the least pane any partition may still send.
        let watermark = self
            .kafka()
            .parts
            .values()
            .filter(|p| !p.done && !idle(p))
            .map(|p| p.progress(idle_after))
            .min()
            .unwrap_or(i64::MAX);
        loop {
            let next = self
                .kafka()
                .parts
                .values()
                .filter_map(Part::first_waiting_pane)
                .min();
            let Some(next) = next.filter(|&n| n < watermark) else {
                break;
            };
            let merged = self.take_pane(next);
            self.report.events += merged.len() as u64;
            let mut sink = deliver(hooks, &self.dict, &mut self.delivered, &self.stop);
            Operator::push(&mut self.op, &merged, TimePolicy::EventTime, &mut sink)?;
        }
        self.pace(watermark);
        Ok(())
    }

    /// The waiting events of pane `next`, every partition's in partition
    /// order (each in the order it was read), as one batch.
    fn take_pane(&mut self, next: i64) -> Batch {
        let mut taken: Vec<Batch> = Vec::new();
        for part in self.kafka.as_mut().expect("a Kafka job").parts.values_mut() {
            if let Some(batches) = part.waiting.remove(&next) {
                part.waiting_events -= batches.iter().map(Batch::len).sum::<usize>();
                taken.extend(batches);
            }
        }
        let parts: Vec<(&Batch, std::ops::Range<usize>)> =
            taken.iter().map(|b| (b, 0..b.len())).collect();
        Batch::gather(&self.dict, &parts)
    }

    /// Pauses the partitions ahead of `watermark` while too many events
    /// wait, and resumes them once half have gone.
    fn pace(&mut self, watermark: i64) {
        let kafka = self.kafka_mut();
        let waiting: usize = kafka.parts.values().map(|p| p.waiting_events).sum();
        // Nothing is paused while a partition must be read to its end first.
        if waiting >= BUFFERED_EVENTS && watermark > i64::MIN {
            let ahead: Vec<i32> = kafka
                .parts
                .iter()
                .filter(|(p, part)| {
                    part.streams.values().any(|s| s.max_pane > watermark)
                        && !kafka.paused.contains(p)
                })
                .map(|(&p, _)| p)
                .collect();
            if !ahead.is_empty() {
                kafka.paused.extend(&ahead);
                kafka.send(KafkaCommand::Pause(ahead));
            }
        } else if waiting < BUFFERED_EVENTS / 2 && !kafka.paused.is_empty() {
            let paused: Vec<i32> = std::mem::take(&mut kafka.paused).into_iter().collect();
            kafka.send(KafkaCommand::Resume(paused));
        }
    }

    /// The handover point of every partition: where a new owner reads from
    /// to rebuild every window not yet written, and the end of the last
    /// window written (`finished`: every window, from the next offset).
    fn handovers(&self, finished: bool) -> Vec<(i32, i64, String)> {
        let Some(kafka) = &self.kafka else {
            return Vec::new();
        };
        let spec = &self.config.spec;
        let pane = spec.pane();
        let emitted = self.delivered.last_end;
        kafka
            .parts
            .iter()
            .map(|(&p, part)| {
                if finished {
                    // Every window of the records read is out, through the
                    // last one written.
                    let through = part.emitted_through.max(emitted).unwrap_or(i64::MIN);
                    return (p, part.next_offset, handover_metadata(through));
                }
                let through = part.emitted_through.max(emitted);
                let offset = match through {
                    Some(end) if matches!(self.config.time, TimeMode::Column(_)) => {
                        // The first pane of the next window to be written.
                        let first = end
                            .saturating_add(spec.slide())
                            .saturating_sub(spec.window());
                        part.pane_offsets
                            .range(first.div_euclid(pane)..)
                            .map(|(_, &o)| o)
                            .min()
                            .map_or(part.next_offset, |o| o)
                    }
                    Some(_) => part.next_offset,
                    None => part
                        .pane_offsets
                        .values()
                        .min()
                        .map_or(part.next_offset, |&o| o),
                };
                (p, offset, handover_metadata(through.unwrap_or(i64::MIN)))
            })
            .collect()
    }

    /// After a chunk: a checkpoint when due (group jobs commit the previous
    /// checkpoint's handover points once it is durable).
    fn kafka_cut(&mut self, hooks: &mut dyn JobHooks) -> Result<()> {
        let before = self.report.checkpoints;
        self.maybe_checkpoint(None, hooks)?;
        if self.report.checkpoints > before && self.kafka().group() {
            let commits = self.handovers(false);
            let kafka = self.kafka_mut();
            if let Some(durable) = kafka.pending_commit.replace(commits) {
                // The previous checkpoint is durable now: its handover
                // points are what a rebalance may hand over.
                if let Some(c) = &kafka.consumer {
                    *c.shared
                        .handover
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = durable
                        .iter()
                        .map(|(p, offset, meta)| (*p, (*offset, meta.clone())))
                        .collect();
                }
                kafka.send(KafkaCommand::Commit(kafka.generation, durable));
            }
        }
        self.prune_pane_offsets();
        Ok(())
    }

    /// Drops the pane offsets of panes no window to come needs.
    fn prune_pane_offsets(&mut self) {
        let spec = &self.config.spec;
        let Some(end) = self.delivered.last_end else {
            return;
        };
        let first = end
            .saturating_add(spec.slide())
            .saturating_sub(spec.window());
        let pane = spec.pane();
        let kafka = self.kafka.as_mut().expect("a Kafka job");
        for part in kafka.parts.values_mut() {
            let through = part.emitted_through.map_or(first, |t| {
                first.min(t.saturating_add(spec.slide()).saturating_sub(spec.window()))
            });
            // Panes before the first a window to come needs.
            part.pane_offsets = part.pane_offsets.split_off(&through.div_euclid(pane));
        }
    }

    /// The rows a group job does not write again: those of keys whose
    /// partition's previous owner wrote their window already.
    fn kafka_filter(
        &self,
        old: Option<super::deliver::RowFilter>,
    ) -> Option<super::deliver::RowFilter> {
        let kafka = self.kafka.as_ref()?;
        if !kafka.group() {
            return None;
        }
        let through: BTreeMap<i32, i64> = kafka
            .parts
            .iter()
            .filter_map(|(&p, part)| part.emitted_through.map(|t| (p, t)))
            .collect();
        Some(super::deliver::RowFilter {
            through,
            // Keys keep their partition (a topic keyed by the key).
            key_partition: old.map(|f| f.key_partition).unwrap_or_default(),
        })
    }
}
