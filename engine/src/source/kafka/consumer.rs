//! The Kafka consumer thread (librdkafka through `rdkafka`, synchronous:
//! a `BaseConsumer` polled by the thread, no async runtime).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::{KafkaChunk, KafkaCommand, KafkaConsumer, KafkaEvent, KafkaOptions, KafkaShared};
use crate::error::{Error, Result};

/// Bytes of one partition's records gathered before they go to the job.
const CHUNK_BYTES: usize = 1 << 20;

/// Chunks in flight to the job (with [`CHUNK_BYTES`], 16 MiB at most).
const QUEUE_CHUNKS: usize = 16;

/// A partial chunk goes to the job after this long, however small.
const LINGER: Duration = Duration::from_millis(20);

/// How long a request to the broker (metadata, offsets, commits) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one attempt to read the topic's metadata may take before the
/// job says it is waiting for the broker (and tries again).
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an empty assignment lasts before a `until_end` job believes it.
const EMPTY_ASSIGNMENT: Duration = Duration::from_secs(10);

/// How often the consumer lag is measured, and how long a measure may take.
const LAG_EVERY: Duration = Duration::from_secs(5);
const LAG_TIMEOUT: Duration = Duration::from_millis(500);

/// How often the consumer polls when there is nothing to read.
const POLL: Duration = Duration::from_millis(50);

fn kafka_error(what: impl Into<String>, e: KafkaError) -> Error {
    Error::Kafka {
        what: what.into(),
        source: Box::new(e),
    }
}

/// `ENGINE_KAFKA_DEBUG=1`: the consumer's steps on stderr.
fn debug(what: impl FnOnce() -> String) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("ENGINE_KAFKA_DEBUG").is_some()) {
        eprintln!("engine-kafka: {}", what());
    }
}

mod context;
use context::Context;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn spawn(
    options: &KafkaOptions,
    resume: Option<BTreeMap<i32, i64>>,
    stop: Arc<AtomicBool>,
) -> Result<KafkaConsumer> {
    let shared = Arc::new(KafkaShared::default());
    let context = Context {
        options: options.clone(),
        shared: Arc::clone(&shared),
        resume: Mutex::new(resume),
        ends: Mutex::new(BTreeMap::new()),
        outbox: Mutex::new(Vec::new()),
        broker_down: AtomicBool::new(false),
        handover: options
            .group
            .as_deref()
            .map(|group| super::handover::HandoverTopic::open(options, group))
            .transpose()?,
    };
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &options.brokers)
        // Without a group the consumer commits nothing; librdkafka still
        // wants a name.
        .set(
            "group.id",
            options
                .group
                .clone()
                .unwrap_or_else(|| format!("engine-{}", std::process::id())),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        // What librdkafka prefetches stays bounded (the job's queue bounds
        // the rest).
        .set("queued.max.messages.kbytes", "16384")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("partition.assignment.strategy", "range")
        .set("socket.keepalive.enable", "true");
    for (key, value) in &options.properties {
        config.set(key, value);
    }
    let consumer: BaseConsumer<Context> = config.create_with_context(context).map_err(|e| {
        kafka_error(
            format!("cannot create a consumer for {}", options.brokers),
            e,
        )
    })?;
    let (tx, events) = std::sync::mpsc::sync_channel(QUEUE_CHUNKS);
    let (commands, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("engine-kafka".into())
        .spawn(move || {
            let mut reader = Reader::new(consumer, tx.clone(), rx);
            let outcome = reader.run(&stop);
            let last = match outcome {
                Ok(()) => KafkaEvent::End,
                Err(e) => KafkaEvent::Failed(e),
            };
            let _ = tx.send(last);
            reader.close();
        })
        .map_err(|e| Error::io("cannot start the Kafka consumer", &e))?;
    Ok(KafkaConsumer {
        events,
        commands,
        shared,
        thread: Some(thread),
    })
}

/// One partition's records not yet sent.
#[derive(Default)]
struct Pending {
    data: Vec<u8>,
    offsets: Vec<i64>,
    times: Vec<i64>,
    next_offset: i64,
    since: Option<Instant>,
}

struct Reader {
    consumer: BaseConsumer<Context>,
    tx: SyncSender<KafkaEvent>,
    commands: Receiver<KafkaCommand>,
    /// Records not yet sent, per partition and producer.
    pending: BTreeMap<(i32, Option<Arc<str>>), Pending>,
    /// Producer names seen (one allocation each).
    producers: std::collections::HashSet<Arc<str>>,
    /// The partitions of the current assignment and where each is.
    position: BTreeMap<i32, i64>,
    /// `until_end`: partitions not yet at their end offset.
    unfinished: BTreeSet<i32>,
    generation: u64,
    /// Whether an assignment was received at all.
    assigned: bool,
    /// The final commit the job asked for.
    closing: Option<Vec<(i32, i64, String)>>,
    /// Since when the assignment has been empty.
    empty_since: Option<Instant>,
    /// Records read before their assignment was forwarded.
    held: Vec<rdkafka::message::OwnedMessage>,
    /// The last consumption error told, and when (a storm is one line a
    /// minute).
    last_error: Option<(String, Instant)>,
    lag_at: Instant,
}

impl Reader {
    fn new(
        consumer: BaseConsumer<Context>,
        tx: SyncSender<KafkaEvent>,
        commands: Receiver<KafkaCommand>,
    ) -> Self {
        Self {
            consumer,
            tx,
            commands,
            pending: BTreeMap::new(),
            producers: std::collections::HashSet::new(),
            position: BTreeMap::new(),
            unfinished: BTreeSet::new(),
            generation: 0,
            assigned: false,
            closing: None,
            empty_since: None,
            held: Vec::new(),
            last_error: None,
            lag_at: Instant::now(),
        }
    }

    fn options(&self) -> &KafkaOptions {
        &self.consumer.context().options
    }

    fn send(&self, event: KafkaEvent) -> Result<()> {
        self.tx.send(event).map_err(|_| Error::Interrupted)
    }

    /// Reads until `stop`, a failure, or (`until_end`) every partition is
    /// done.
    fn run(&mut self, stop: &AtomicBool) -> Result<()> {
        self.capture_ends(stop)?;
        let topic = self.options().topic.clone();
        if self.options().group.is_some() {
            self.consumer
                .subscribe(&[&topic])
                .map_err(|e| kafka_error(format!("cannot subscribe to {topic}"), e))?;
        } else {
            self.assign_all(stop)?;
        }
        let mut tick = Instant::now();
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if self.obey()? {
                return Ok(());
            }
            let polled = self.consumer.poll(POLL);
            match polled {
                None => {
                    self.forward_callbacks()?;
                    self.flush_all()?;
                }
                Some(Ok(message)) => {
                    // A record of a partition assigned inside this very
                    // poll (its rebalance not forwarded yet) is kept aside
                    // until the assignment is, not dropped.
                    let early = !self.position.contains_key(&message.partition())
                        && !lock(&self.consumer.context().outbox).is_empty();
                    let full = if early {
                        self.held.push(message.detach());
                        None
                    } else {
                        take(
                            &message,
                            &mut self.pending,
                            &mut self.position,
                            &mut self.producers,
                        )
                    };
                    self.consumer
                        .context()
                        .broker_down
                        .store(false, Ordering::Relaxed);
                    self.forward_callbacks()?;
                    for held in std::mem::take(&mut self.held) {
                        if let Some(p) = take(
                            &held,
                            &mut self.pending,
                            &mut self.position,
                            &mut self.producers,
                        ) {
                            self.flush(p)?;
                        }
                    }
                    if let Some(p) = full {
                        self.flush(p)?;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => self.at_end(p)?,
                Some(Err(e)) => self.consumption_error(&e)?,
            }
            if tick.elapsed() >= LINGER {
                tick = Instant::now();
                self.flush_lingering()?;
                self.update_lag();
            }
            if self.options().until_end
                && self.assigned
                && self.unfinished.is_empty()
                && self.settled()
            {
                self.flush_all()?;
                return Ok(());
            }
        }
    }

    /// Partition `p` has nothing more to read for now.
    fn at_end(&mut self, p: i32) -> Result<()> {
        self.forward_callbacks()?;
        self.flush(p)?;
        self.send(KafkaEvent::CaughtUp {
            generation: self.generation,
            partition: p,
        })?;
        // `until_end`: done at the first end of the partition at
        // or after the end offset it had at the start (kcat's
        // -e). Not at that offset itself: some brokers (tansu
        // 0.6) answer the end-offset request with the start of
        // the last batch, and a replay must not miss its records.
        // The consumer's position is past control records
        // (transaction markers), which no message shows.
        if let Some(at) = self.consumer_position(p) {
            if self.position.contains_key(&p) {
                self.position.insert(p, at);
            }
        }
        debug(|| {
            format!(
                "end of {p} at {:?}, until {}",
                self.position.get(&p),
                self.end_of(p)
            )
        });
        if self
            .position
            .get(&p)
            .is_some_and(|&at| at >= self.end_of(p))
        {
            self.finish_partition(p)?;
        }
        Ok(())
    }

    /// An error of the consumer (told once a minute when it repeats).
    fn consumption_error(&mut self, e: &KafkaError) -> Result<()> {
        self.forward_callbacks()?;
        let text = format!("Kafka: {e}");
        let repeated = self
            .last_error
            .as_ref()
            .is_some_and(|(last, at)| *last == text && at.elapsed() < Duration::from_secs(60));
        if !repeated {
            self.send(KafkaEvent::Notice(text.clone()))?;
            self.last_error = Some((text, Instant::now()));
        }
        Ok(())
    }

    /// Whether an empty assignment has lasted long enough to be believed
    /// (a group with more processes than partitions), or the assignment is
    /// not empty: during a rebalance a process briefly owns nothing.
    fn settled(&self) -> bool {
        !self.position.is_empty()
            || self.options().group.is_none()
            || self
                .empty_since
                .is_some_and(|t| t.elapsed() >= EMPTY_ASSIGNMENT)
    }

    /// `until_end`: every partition's end offset, before reading anything.
    fn capture_ends(&mut self, stop: &AtomicBool) -> Result<()> {
        if !self.options().until_end {
            return Ok(());
        }
        let topic = self.options().topic.clone();
        let partitions = self.partitions(stop)?;
        let mut ends = BTreeMap::new();
        for p in partitions {
            let (_, high) = self
                .consumer
                .fetch_watermarks(&topic, p, REQUEST_TIMEOUT)
                .map_err(|e| {
                    kafka_error(format!("cannot read the end offset of {topic}[{p}]"), e)
                })?;
            ends.insert(p, high);
        }
        *lock(&self.consumer.context().ends) = ends;
        Ok(())
    }

    /// The topic's partitions, waiting for the broker (and saying so).
    fn partitions(&self, stop: &AtomicBool) -> Result<Vec<i32>> {
        let topic = self.options().topic.clone();
        let mut told = false;
        loop {
            match self.consumer.fetch_metadata(Some(&topic), METADATA_TIMEOUT) {
                Ok(metadata) => {
                    let t = metadata.topics().iter().find(|t| t.name() == topic);
                    match t {
                        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                            return Ok(t
                                .partitions()
                                .iter()
                                .map(rdkafka::metadata::MetadataPartition::id)
                                .collect());
                        }
                        Some(t) if t.error().is_some() => {
                            return Err(Error::Kafka {
                                what: format!(
                                    "topic {topic} on {} cannot be read",
                                    self.options().brokers
                                ),
                                source: format!("{:?}", t.error()).into(),
                            })
                        }
                        _ => {
                            return Err(Error::Kafka {
                                what: format!(
                                    "topic {topic} does not exist on {}",
                                    self.options().brokers
                                ),
                                source: "unknown topic".into(),
                            })
                        }
                    }
                }
                Err(e) if stop.load(Ordering::Relaxed) => {
                    return Err(kafka_error("stopped while waiting for the broker", e))
                }
                Err(e) => {
                    if !told {
                        told = true;
                        self.send(KafkaEvent::Notice(format!(
                            "Kafka broker {} unreachable ({e}); waiting for it",
                            self.options().brokers
                        )))?;
                    }
                }
            }
        }
    }

    /// Without a group: every partition, from the checkpoint or the start
    /// policy.
    fn assign_all(&mut self, stop: &AtomicBool) -> Result<()> {
        let topic = self.options().topic.clone();
        let partitions = self.partitions(stop)?;
        let (starts, resumed) = self
            .consumer
            .context()
            .starts(&self.consumer, &partitions)?;
        let mut tpl = TopicPartitionList::new();
        for s in &starts {
            tpl.add_partition_offset(&topic, s.partition, Offset::Offset(s.offset))
                .map_err(|e| kafka_error("cannot assign partitions", e))?;
        }
        self.consumer
            .assign(&tpl)
            .map_err(|e| kafka_error(format!("cannot read the partitions of {topic}"), e))?;
        lock(&self.consumer.context().outbox).push(KafkaEvent::Assigned {
            generation: 0,
            partitions: starts,
            resumed,
        });
        self.forward_callbacks()
    }

    /// Sends what the callbacks raised; an assignment resets the reader.
    fn forward_callbacks(&mut self) -> Result<()> {
        let raised = std::mem::take(&mut *lock(&self.consumer.context().outbox));
        for event in raised {
            match event {
                KafkaEvent::Assigned {
                    generation,
                    ref partitions,
                    ..
                } => {
                    // Done partitions are told by their end (`PartitionEOF`).
                    self.generation = generation;
                    self.assigned = true;
                    self.pending.clear();
                    self.position = partitions.iter().map(|s| (s.partition, s.offset)).collect();
                    self.unfinished = partitions.iter().map(|s| s.partition).collect();
                    self.empty_since = partitions.is_empty().then(Instant::now);
                    if partitions.is_empty() {
                        self.send(KafkaEvent::Notice(format!(
                            "Kafka: no partition of {} is assigned to this process (the group has \
                             as many processes as partitions, or a rebalance is under way)",
                            self.options().topic
                        )))?;
                    }
                    self.send(event)?;
                }
                KafkaEvent::Failed(e) => return Err(e),
                other => self.send(other)?,
            }
        }
        Ok(())
    }

    /// Carries out the job's commands; `true` when it asked to close.
    fn obey(&mut self) -> Result<bool> {
        loop {
            match self.commands.try_recv() {
                Ok(KafkaCommand::Commit(generation, commits)) => {
                    if generation != self.generation {
                        // Made before a rebalance: the partitions' new
                        // owners commit theirs.
                        continue;
                    }
                    let commits: Vec<_> = commits
                        .into_iter()
                        .filter(|(p, ..)| self.position.contains_key(p))
                        .collect();
                    let topic = self.options().topic.clone();
                    if let Err(e) = self.consumer.context().commit(&self.consumer, &commits) {
                        self.send(KafkaEvent::Notice(format!(
                            "Kafka: offsets of {topic} not committed ({e}); the next commit covers them"
                        )))?;
                    }
                }
                Ok(KafkaCommand::Pause(partitions)) => {
                    let tpl = self.list(&partitions);
                    let _ = self.consumer.pause(&tpl);
                }
                Ok(KafkaCommand::Resume(partitions)) => {
                    let tpl = self.list(&partitions);
                    let _ = self.consumer.resume(&tpl);
                }
                Ok(KafkaCommand::Close(generation, commits)) => {
                    self.closing = (generation == self.generation).then_some(commits);
                    return Ok(true);
                }
                Err(TryRecvError::Empty) => return Ok(false),
                Err(TryRecvError::Disconnected) => return Ok(true),
            }
        }
    }

    fn list(&self, partitions: &[i32]) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            tpl.add_partition(&self.options().topic, p);
        }
        tpl
    }

    /// `until_end`: the end offset of partition `p` (else no end); a
    /// partition created after the start ends at its first end.
    fn end_of(&self, p: i32) -> i64 {
        if !self.options().until_end {
            return i64::MAX;
        }
        lock(&self.consumer.context().ends)
            .get(&p)
            .copied()
            .unwrap_or(0)
    }

    /// Where the consumer is in partition `p` (past control records too).
    fn consumer_position(&self, p: i32) -> Option<i64> {
        let positions = self.consumer.position().ok()?;
        let at = positions.find_partition(&self.options().topic, p)?.offset();
        match at {
            Offset::Offset(n) => Some(n),
            _ => None,
        }
    }

    fn finish_partition(&mut self, p: i32) -> Result<()> {
        if self.unfinished.remove(&p) {
            self.flush(p)?;
            let tpl = self.list(&[p]);
            let _ = self.consumer.pause(&tpl);
            self.send(KafkaEvent::Done {
                generation: self.generation,
                partition: p,
            })?;
        }
        Ok(())
    }

    /// Sends partition `p`'s pending records (of every producer). The
    /// producers' records interleave: a chunk's `next_offset` (where the
    /// partition resumes once it is processed) is the first offset of the
    /// chunks sent after it, and the last one's the offset after them all.
    fn flush(&mut self, p: i32) -> Result<()> {
        let keys: Vec<(i32, Option<Arc<str>>)> = self
            .pending
            .range((p, None)..)
            .take_while(|((q, _), _)| *q == p)
            .map(|(k, _)| k.clone())
            .collect();
        let chunks: Vec<(Option<Arc<str>>, Pending)> = keys
            .into_iter()
            .filter_map(|key| self.pending.remove(&key).map(|pending| (key.1, pending)))
            .filter(|(_, pending)| !pending.offsets.is_empty())
            .collect();
        let after_all = chunks.iter().map(|(_, c)| c.next_offset).max().unwrap_or(0);
        let mut resumes: Vec<i64> = chunks.iter().skip(1).map(|(_, c)| c.offsets[0]).collect();
        for i in (0..resumes.len().saturating_sub(1)).rev() {
            resumes[i] = resumes[i].min(resumes[i + 1]);
        }
        resumes.push(after_all);
        for ((producer, pending), next_offset) in chunks.into_iter().zip(resumes) {
            debug(|| {
                format!(
                    "chunk of {p} from {producer:?}: {} lines",
                    pending.offsets.len()
                )
            });
            self.send(KafkaEvent::Data(KafkaChunk {
                generation: self.generation,
                partition: p,
                producer,
                data: pending.data,
                offsets: pending.offsets,
                times: pending.times,
                next_offset,
                arrival_ms: crate::source::now_ms(),
            }))?;
        }
        Ok(())
    }

    fn flush_all(&mut self) -> Result<()> {
        let partitions: BTreeSet<i32> = self.pending.keys().map(|(p, _)| *p).collect();
        for p in partitions {
            self.flush(p)?;
        }
        Ok(())
    }

    fn flush_lingering(&mut self) -> Result<()> {
        let old: BTreeSet<i32> = self
            .pending
            .iter()
            .filter(|(_, pending)| pending.since.is_some_and(|s| s.elapsed() >= LINGER))
            .map(|((p, _), _)| *p)
            .collect();
        for p in old {
            self.flush(p)?;
        }
        Ok(())
    }

    /// Consumer lag per partition (high watermark − position), asked of
    /// the broker every [`LAG_EVERY`].
    fn update_lag(&mut self) {
        if self.lag_at.elapsed() < LAG_EVERY {
            return;
        }
        self.lag_at = Instant::now();
        let topic = self.options().topic.clone();
        let mut lags = BTreeMap::new();
        for (&p, &position) in &self.position {
            if let Ok((_, high)) = self.consumer.fetch_watermarks(&topic, p, LAG_TIMEOUT) {
                lags.insert(p, (high - position).max(0));
            }
        }
        *lock(&self.consumer.context().shared.lag) = lags;
    }

    /// The job's final commit, then leaving the group.
    fn close(&mut self) {
        let closing = self.closing.take().or_else(|| {
            // The job ends: wait a little for its final commit.
            loop {
                match self.commands.recv_timeout(REQUEST_TIMEOUT) {
                    Ok(KafkaCommand::Close(generation, commits)) => {
                        break (generation == self.generation).then_some(commits)
                    }
                    Ok(_) => {}
                    Err(_) => break None,
                }
            }
        });
        if let Some(commits) = closing {
            let _ = self.consumer.context().commit(&self.consumer, &commits);
            // Leaving the group below revokes the partitions: their
            // handover is this final commit, not an older one.
            *lock(&self.consumer.context().shared.handover) = commits
                .into_iter()
                .map(|(p, offset, meta)| (p, (offset, meta)))
                .collect();
        }
        if self.options().group.is_some() {
            self.consumer.unsubscribe();
            // Leaving the group hands the partitions over at once.
            let _ = self.consumer.poll(Duration::from_millis(100));
        }
    }
}

/// Appends a record to its partition's pending chunk: one line per line
/// of its payload, each with the record's offset and time.
fn append(pending: &mut Pending, offset: i64, time: i64, payload: &[u8]) {
    pending.since.get_or_insert_with(Instant::now);
    let payload = payload.strip_suffix(b"\n").unwrap_or(payload);
    for line in payload.split(|&b| b == b'\n') {
        // Blank lines are no records (the parsers skip them): the lines
        // sent are the records, so that a record's index finds its time
        // and offset.
        if line.is_empty() || line == b"\r" {
            continue;
        }
        pending.data.extend_from_slice(line);
        pending.data.push(b'\n');
        pending.offsets.push(offset);
        pending.times.push(time);
    }
    pending.next_offset = offset + 1;
}

/// The producer a record names ([`super::PRODUCER_HEADER`]), interned.
fn producer_of(
    message: &impl Message,
    names: &mut std::collections::HashSet<Arc<str>>,
) -> Option<Arc<str>> {
    use rdkafka::message::Headers;
    let headers = message.headers()?;
    let name = headers
        .iter()
        .find(|h| h.key == super::PRODUCER_HEADER)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())?;
    if let Some(known) = names.get(name) {
        return Some(Arc::clone(known));
    }
    let name: Arc<str> = name.into();
    names.insert(Arc::clone(&name));
    Some(name)
}

/// Appends a record of an assigned partition to its pending chunk; the
/// partition, when its chunk is full.
fn take(
    message: &impl Message,
    pending: &mut BTreeMap<(i32, Option<Arc<str>>), Pending>,
    position: &mut BTreeMap<i32, i64>,
    producers: &mut std::collections::HashSet<Arc<str>>,
) -> Option<i32> {
    let p = message.partition();
    if !position.contains_key(&p) {
        return None;
    }
    let offset = message.offset();
    let time = message.timestamp().to_millis().unwrap_or(-1);
    let payload = message.payload().unwrap_or_default();
    let producer = producer_of(message, producers);
    let chunk = pending.entry((p, producer)).or_default();
    append(chunk, offset, time, payload);
    position.insert(p, offset + 1);
    (chunk.data.len() >= CHUNK_BYTES).then_some(p)
}
