//! The consumer's callbacks: where assigned partitions start (the
//! checkpoint's offsets, the handover points, the start policy), the
//! handover commits when partitions are taken away, and client errors told
//! once per outage.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::super::{
    parse_handover_metadata, KafkaEvent, KafkaOptions, KafkaShared, KafkaStart, PartitionStart,
};
use super::{debug, kafka_error, lock, REQUEST_TIMEOUT};
use crate::error::Result;

/// The consumer's callbacks: rebalances (run inside `poll`, on the
/// consumer thread) and client errors.
pub(super) struct Context {
    pub(super) options: KafkaOptions,
    pub(super) shared: Arc<KafkaShared>,
    /// The checkpoint's offsets, used by the first assignment only.
    pub(super) resume: Mutex<Option<BTreeMap<i32, i64>>>,
    /// `until_end`: each partition's end offset when the job started.
    pub(super) ends: Mutex<BTreeMap<i32, i64>>,
    /// Events raised inside callbacks, sent by the loop.
    pub(super) outbox: Mutex<Vec<KafkaEvent>>,
    /// Whether the broker was last seen unreachable (told once per outage).
    pub(super) broker_down: AtomicBool,
    /// Group jobs: where handover points are kept.
    pub(super) handover: Option<super::super::handover::HandoverTopic>,
}

impl ClientContext for Context {
    fn log(&self, _level: RDKafkaLogLevel, fac: &str, message: &str) {
        // librdkafka's own chatter, for ENGINE_KAFKA_DEBUG only: the errors
        // that matter come through `error` and are told once per outage.
        debug(|| format!("librdkafka {fac}: {message}"));
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(
            error.rdkafka_error_code(),
            Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        ) {
            // The end of a partition also comes through `poll`.
            return;
        }
        let down = matches!(
            error.rdkafka_error_code(),
            Some(
                rdkafka::types::RDKafkaErrorCode::AllBrokersDown
                    | rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure
                    | rdkafka::types::RDKafkaErrorCode::Resolve
            )
        );
        if down {
            if !self.broker_down.swap(true, Ordering::Relaxed) {
                lock(&self.outbox).push(KafkaEvent::Notice(format!(
                    "Kafka broker {} unreachable ({reason}); waiting for it, nothing is lost",
                    self.options.brokers
                )));
            }
        } else {
            lock(&self.outbox).push(KafkaEvent::Notice(format!("Kafka: {error}: {reason}")));
        }
    }
}

impl ConsumerContext for Context {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            let partitions: Vec<i32> = tpl
                .elements()
                .iter()
                .map(rdkafka::topic_partition_list::TopicPartitionListElem::partition)
                .collect();
            match self.starts(consumer, &partitions) {
                Ok((starts, resumed)) => {
                    for start in &starts {
                        let _ = tpl.set_partition_offset(
                            &self.options.topic,
                            start.partition,
                            Offset::Offset(start.offset),
                        );
                    }
                    // A partition paused under an earlier assignment (done,
                    // or ahead of the others) stays paused through a
                    // rebalance otherwise.
                    let assigned = consumer.assign(tpl).and_then(|()| consumer.resume(tpl));
                    if let Err(e) = assigned {
                        lock(&self.outbox).push(KafkaEvent::Failed(kafka_error(
                            format!("cannot read the partitions of {}", self.options.topic),
                            e,
                        )));
                        return;
                    }
                    let generation = self.shared.generation.load(Ordering::SeqCst);
                    debug(|| {
                        format!("assigned {starts:?} resumed {resumed} generation {generation}")
                    });
                    lock(&self.outbox).push(KafkaEvent::Assigned {
                        generation,
                        partitions: starts,
                        resumed,
                    });
                }
                Err(e) => lock(&self.outbox).push(KafkaEvent::Failed(e)),
            }
        } else {
            // Partitions taken away (or a rebalance error): commit the
            // handover point of each, after the chunk in progress, and
            // make every chunk read so far stale.
            debug(|| {
                format!(
                    "revoked {:?}",
                    tpl.elements()
                        .iter()
                        .map(rdkafka::topic_partition_list::TopicPartitionListElem::partition)
                        .collect::<Vec<_>>()
                )
            });
            let _processing = lock(&self.shared.processing);
            self.shared.generation.fetch_add(1, Ordering::SeqCst);
            let handover = lock(&self.shared.handover).clone();
            let revoked: Vec<i32> = tpl
                .elements()
                .iter()
                .map(rdkafka::topic_partition_list::TopicPartitionListElem::partition)
                .collect();
            let commits: Vec<(i32, i64, String)> = handover
                .into_iter()
                .filter(|(p, _)| revoked.contains(p))
                .map(|(p, (offset, meta))| (p, offset, meta))
                .collect();
            debug(|| format!("handover commits {commits:?}"));
            if let Err(e) = self.commit(consumer, &commits) {
                lock(&self.outbox).push(KafkaEvent::Notice(format!(
                    "Kafka: the handover offsets of {} could not be committed: {e}",
                    self.options.topic
                )));
            }
            let _ = consumer.unassign();
        }
    }
}

impl Context {
    /// Commits `(partition, offset, metadata)` to the group, and writes
    /// them to the handover topic (which keeps the metadata whatever the
    /// broker).
    pub(super) fn commit(
        &self,
        consumer: &BaseConsumer<Self>,
        commits: &[(i32, i64, String)],
    ) -> Result<()> {
        if commits.is_empty() {
            return Ok(());
        }
        let topic = &self.options.topic;
        if let Some(handover) = &self.handover {
            handover.write(commits)?;
        }
        let mut tpl = TopicPartitionList::new();
        for (p, offset, meta) in commits {
            tpl.add_partition_offset(topic, *p, Offset::Offset(*offset))
                .map_err(|e| kafka_error("cannot commit", e))?;
            if let Some(mut e) = tpl.find_partition(topic, *p) {
                e.set_metadata(meta.as_str());
            }
        }
        consumer
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| kafka_error(format!("cannot commit the offsets of {topic}"), e))
    }

    /// Where each of `partitions` starts, and whether that is the
    /// checkpoint's offsets.
    pub(super) fn starts(
        &self,
        consumer: &BaseConsumer<Self>,
        partitions: &[i32],
    ) -> Result<(Vec<PartitionStart>, bool)> {
        let topic = &self.options.topic;
        let ends = lock(&self.ends).clone();
        let end = |p: i32| {
            self.options
                .until_end
                .then(|| ends.get(&p).copied())
                .flatten()
        };
        // A checkpoint's offsets: each partition it has (without a group,
        // a partition added since starts by the policy); a group job only
        // when it owns exactly the checkpoint's partitions, whose state the
        // checkpoint holds and no other process.
        let resume = lock(&self.resume).take().filter(|resume| {
            self.options.group.is_none()
                || resume.keys().copied().collect::<BTreeSet<i32>>()
                    == partitions.iter().copied().collect()
        });
        if let Some(resume) = &resume {
            let mut starts = Vec::with_capacity(partitions.len());
            for &p in partitions {
                let offset = match resume.get(&p) {
                    Some(&offset) => offset,
                    None => self.policy_start(consumer, p)?,
                };
                starts.push(PartitionStart {
                    partition: p,
                    offset,
                    emitted_through: None,
                    end: end(p),
                });
            }
            return Ok((starts, true));
        }
        let mut committed = BTreeMap::new();
        if let Some(handover) = &self.handover {
            committed = handover.read()?;
            debug(|| format!("handover points {committed:?}"));
        } else if self.options.group.is_some() && !partitions.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for &p in partitions {
                tpl.add_partition(topic, p);
            }
            let offsets = consumer
                .committed_offsets(tpl, REQUEST_TIMEOUT)
                .map_err(|e| {
                    kafka_error(format!("cannot read the committed offsets of {topic}"), e)
                })?;
            for e in offsets.elements() {
                if let Offset::Offset(n) = e.offset() {
                    committed.insert(e.partition(), (n, parse_handover_metadata(e.metadata())));
                }
            }
        }
        let mut starts = Vec::with_capacity(partitions.len());
        for &p in partitions {
            let (offset, emitted_through) = match committed.get(&p) {
                Some(&(n, through)) => (n, through),
                None => (self.policy_start(consumer, p)?, None),
            };
            starts.push(PartitionStart {
                partition: p,
                offset,
                emitted_through,
                end: end(p),
            });
        }
        Ok((starts, false))
    }

    /// Where partition `p` starts by the start policy.
    fn policy_start(&self, consumer: &BaseConsumer<Self>, p: i32) -> Result<i64> {
        let topic = &self.options.topic;
        let (low, high) = consumer
            .fetch_watermarks(topic, p, REQUEST_TIMEOUT)
            .map_err(|e| kafka_error(format!("cannot read the offsets of {topic}[{p}]"), e))?;
        Ok(match self.options.start {
            KafkaStart::Latest => high,
            KafkaStart::Earliest | KafkaStart::Committed => low,
        })
    }
}
