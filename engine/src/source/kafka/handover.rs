//! The handover points of a group's partitions, kept in a Kafka topic of
//! their own (`<topic>.<group>.handover`, one partition, the latest record
//! per partition wins): where a partition's next owner reads from, and the
//! end of the last window its previous owner wrote.
//!
//! Why not the metadata of the group's offset commits, which Kafka has for
//! exactly this? Some Kafka-compatible brokers (tansu 0.6) drop it. The
//! offsets are committed to the group as well, for monitoring (lag).

use std::collections::BTreeMap;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::parse_handover_metadata;
use crate::error::{Error, Result};

/// How long reading or writing the handover topic may take.
const TIMEOUT: Duration = Duration::from_secs(10);

fn kafka_error(what: impl Into<String>, e: KafkaError) -> Error {
    Error::Kafka {
        what: what.into(),
        source: Box::new(e),
    }
}

/// A partition's handover point: `(offset, emitted through)`.
pub(super) type Handover = (i64, Option<i64>);

/// The handover topic of a group.
pub(super) struct HandoverTopic {
    name: String,
    /// The clients' settings (`--kafka-option`s included).
    config: ClientConfig,
    producer: BaseProducer,
    /// What was written last (a commit that changes nothing is not
    /// written again).
    last: std::sync::Mutex<Vec<(i32, i64, String)>>,
}

impl HandoverTopic {
    /// Opens (creating it when missing) the handover topic of `group` on
    /// `topic`.
    pub fn open(options: &super::KafkaOptions, group: &str) -> Result<Self> {
        let brokers = &options.brokers;
        let name = format!("{}.{group}.handover", options.topic);
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", brokers);
        for (key, value) in &options.properties {
            config.set(key, value);
        }
        let admin: AdminClient<DefaultClientContext> = config
            .create()
            .map_err(|e| kafka_error(format!("cannot reach {brokers}"), e))?;
        // Compacted: the latest point of each partition is all it keeps.
        let new =
            NewTopic::new(&name, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact");
        let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
        let created = block_on(admin.create_topics([&new], &options), TIMEOUT)
            .ok_or_else(|| Error::Kafka {
                what: format!("creating the handover topic {name}"),
                source: "no answer from the broker".into(),
            })?
            .map_err(|e| kafka_error(format!("cannot create the handover topic {name}"), e))?;
        for outcome in created {
            match outcome {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(Error::Kafka {
                        what: format!("cannot create the handover topic {name}"),
                        source: Box::new(KafkaError::AdminOp(code)),
                    })
                }
            }
        }
        let producer: BaseProducer = config
            .clone()
            .set("acks", "all")
            // One record per batch: a broker that cannot read from the
            // middle of a batch (tansu 0.6) still reads every record.
            .set("batch.num.messages", "1")
            .create()
            .map_err(|e| kafka_error(format!("cannot write to {brokers}"), e))?;
        Ok(Self {
            name,
            config,
            producer,
            last: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Writes the handover points `(partition, offset, metadata)` and waits
    /// until the broker has them.
    pub fn write(&self, points: &[(i32, i64, String)]) -> Result<()> {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.as_slice() == points {
            return Ok(());
        }
        for (partition, offset, meta) in points {
            let key = partition.to_string();
            let value = format!("{offset};{meta}");
            let mut record = BaseRecord::to(&self.name).key(&key).payload(&value);
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        self.producer.poll(Duration::from_millis(10));
                    }
                    Err((e, _)) => {
                        return Err(kafka_error(format!("cannot write to {}", self.name), e))
                    }
                }
            }
        }
        self.producer
            .flush(TIMEOUT)
            .map_err(|e| kafka_error(format!("cannot write to {}", self.name), e))?;
        *last = points.to_vec();
        Ok(())
    }

    /// Every partition's latest handover point.
    pub fn read(&self) -> Result<BTreeMap<i32, Handover>> {
        let consumer: BaseConsumer = self
            .config
            .clone()
            .set(
                "group.id",
                format!("{}-reader-{}", self.name, std::process::id()),
            )
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .map_err(|e| kafka_error(format!("cannot read {}", self.name), e))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.name, 0, Offset::Beginning)
            .map_err(|e| kafka_error("cannot read the handover topic", e))?;
        consumer
            .assign(&tpl)
            .map_err(|e| kafka_error(format!("cannot read {}", self.name), e))?;
        let mut points = BTreeMap::new();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let key = m.key().and_then(|k| std::str::from_utf8(k).ok());
                    let value = m.payload().and_then(|v| std::str::from_utf8(v).ok());
                    if let (Some(Ok(partition)), Some((offset, meta))) = (
                        key.map(str::parse::<i32>),
                        value.and_then(|v| v.split_once(';')),
                    ) {
                        if let Ok(offset) = offset.parse::<i64>() {
                            points.insert(partition, (offset, parse_handover_metadata(meta)));
                        }
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => return Ok(points),
                Some(Err(_)) | None if Instant::now() >= deadline => {
                    return Err(Error::Kafka {
                        what: format!("cannot read {} to its end", self.name),
                        source: "timed out".into(),
                    })
                }
                _ => {}
            }
        }
    }
}

/// Drives an rdkafka admin future (the admin client has a thread of its
/// own that completes it): `None` when it takes longer than `timeout`.
fn block_on<F: std::future::Future>(future: F, timeout: Duration) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    let deadline = Instant::now() + timeout;
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
