//! Kafka (`--output kafka`, feature `kafka`): one record per window row.
//!
//! A record's key is the row's key (its UTF-8 bytes), its value the row as
//! one JSON object, exactly a line of [`NdjsonSink`](super::NdjsonSink)
//! without the line break (the same writer), and its timestamp the window's
//! end (ms since the epoch; a window end at or before the epoch is left to
//! the producer's clock, Kafka refusing negative timestamps: `window_end`
//! in the value is the row's time). Records are partitioned by key with
//! Kafka's Java partitioner (`murmur2_random`), so a row lands where a Java
//! or Kafka Streams producer would put its key.
//!
//! The producer is librdkafka's, driven synchronously (no runtime, no
//! thread of ours): idempotent (`enable.idempotence`, `acks=all`, so a
//! retry never duplicates or reorders a partition's records), lingering
//! 5 ms to batch, with a bounded local queue (32 MiB): a window larger than
//! the queue waits for the broker's acknowledgements (poll and retry),
//! nothing is dropped. A record the broker could not take (a delivery
//! report with an error, a message timeout) is counted and fails the next
//! write, commit or finish: no row is lost silently.
//!
//! # Guarantee: at-least-once, each row identified by `(window_end, key)`
//!
//! - **Without checkpoints**: every row is acknowledged by the broker
//!   before [`finish`](Sink::finish) returns, or the job fails naming how
//!   many records were not delivered.
//! - **With checkpoints**: at each checkpoint ([`commit`](Sink::commit))
//!   every row of the windows before it is acknowledged by the broker
//!   (`acks=all`) before the checkpoint is written: no row a checkpoint
//!   covers can be lost. Rows written after the last checkpoint are
//!   written again by a resumed job (they are in the topic already, as far
//!   as they got), so a row may appear more than once: **at-least-once**.
//!   A row is identified by `(window_end, key)`, and a row written again
//!   is the same record again (same key, value, timestamp and partition),
//!   so a consumer that keeps one value per `(window_end, key)` (an upsert,
//!   a compacted topic keyed by both) sees every row exactly once.
//!
//! Not exactly-once with transactions: the test broker (tansu 0.6.0) does
//! not offer `EndTxn` (Kafka API 26) in its API versions, so librdkafka
//! refuses to commit or abort a transaction there.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

pub use crate::source::kafka::PRODUCER_HEADER;
use rdkafka::ClientContext;

use super::ndjson::write_row;
use super::{OutputColumns, RowOrder, Rows, Sink};
use crate::dictionary::Dictionary;
use crate::window::WindowResult;

/// The local queue's bound, KiB: a window's rows wait for acknowledgements
/// beyond it.
const QUEUE_KBYTES: u32 = 32 * 1024;

/// Where and how a [`KafkaSink`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// `bootstrap.servers`: `host:port[,host:port…]`.
    pub brokers: String,
    /// The topic the rows go to (it must exist).
    pub topic: String,
    /// How long a record may wait for the broker (`message.timeout.ms`),
    /// and a flush for all of them: a broker that is away for less is
    /// waited for.
    pub delivery_timeout: Duration,
    /// The stage of a two-stage job this sink writes partials for: each
    /// record carries the header `engine-producer` naming this process (the
    /// next stage tracks each producer's progress on its own), and its
    /// timestamp is the window's start instead of its end (the pane's
    /// events' times), `window_end − pane_ms`.
    pub partials: Option<Partials>,
    /// librdkafka properties set after the engine's own.
    pub properties: Vec<(String, String)>,
}

/// A partial stage's producer (see [`KafkaSettings::partials`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partials {
    /// This process, unique among the stage's producers.
    pub producer: String,
    /// The pane, ms.
    pub pane_ms: i64,
}

impl KafkaSettings {
    /// A producer to `topic` at `brokers`, waiting two minutes for a broker
    /// that is away.
    #[must_use]
    pub fn new(brokers: &str, topic: &str) -> Self {
        Self {
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            delivery_timeout: Duration::from_secs(120),
            partials: None,
            properties: Vec::new(),
        }
    }

    /// The producer's librdkafka configuration.
    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("queue.buffering.max.kbytes", QUEUE_KBYTES.to_string())
            .set("partitioner", "murmur2_random")
            .set("compression.type", "none")
            .set(
                "message.timeout.ms",
                self.delivery_timeout.as_millis().to_string(),
            );
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// Delivery reports: how many records the broker did not take, and why the
/// first one failed.
#[derive(Default)]
struct Deliveries {
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, (): ()) {
        if let Err((error, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut first) = self.first_error.lock() {
                first.get_or_insert_with(|| error.to_string());
            }
        }
    }
}

/// Writes window rows as Kafka records (see the module's documentation).
pub struct KafkaSink {
    producer: BaseProducer<Deliveries>,
    settings: KafkaSettings,
    columns: OutputColumns,
    order: RowOrder,
    /// The value being built.
    value: Vec<u8>,
}

impl KafkaSink {
    /// A producer to `settings`' topic, which must exist at the brokers
    /// (checked now: unreachable brokers or a missing topic fail here, not
    /// at the first window).
    pub fn new(settings: KafkaSettings, columns: OutputColumns) -> io::Result<Self> {
        let producer: BaseProducer<Deliveries> = settings
            .client_config()
            .create_with_context(Deliveries::default())
            .map_err(|e| kafka_error(&settings, "creating the producer", &e))?;
        check_topic(&producer, &settings)?;
        Ok(Self {
            producer,
            settings,
            columns,
            order: RowOrder::ByKey,
            value: Vec::new(),
        })
    }

    /// The rows of each window in `order`.
    #[must_use]
    pub fn with_order(mut self, order: RowOrder) -> Self {
        self.order = order;
        self
    }

    /// Fails if a record was not delivered.
    fn check_deliveries(&self) -> io::Result<()> {
        let context = self.producer.context();
        let failed = context.failed.load(Ordering::Relaxed);
        if failed == 0 {
            return Ok(());
        }
        let first = context
            .first_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or_default();
        Err(io::Error::other(format!(
            "{failed} records could not be delivered to Kafka topic {} at {} (the first: {first})",
            self.settings.topic, self.settings.brokers
        )))
    }

    /// Waits until every record sent is acknowledged, or fails.
    fn flush(&self) -> io::Result<()> {
        self.producer
            .flush(self.settings.delivery_timeout)
            .map_err(|e| {
                kafka_error(
                    &self.settings,
                    &format!(
                        "waiting for {} records to be acknowledged",
                        self.producer.in_flight_count()
                    ),
                    &e,
                )
            })?;
        self.check_deliveries()
    }
}

/// Sends one record, waiting for room in a full local queue (never
/// dropping it).
fn send(
    producer: &BaseProducer<Deliveries>,
    settings: &KafkaSettings,
    key: &str,
    value: &[u8],
    timestamp: i64,
) -> Result<(), KafkaError> {
    let mut record = BaseRecord::to(&settings.topic)
        .key(key.as_bytes())
        .payload(value);
    let timestamp = match &settings.partials {
        Some(partials) => {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: PRODUCER_HEADER,
                value: Some(partials.producer.as_bytes()),
            }));
            timestamp - partials.pane_ms
        }
        None => timestamp,
    };
    // Kafka takes any timestamp from 0 on; before the epoch, the
    // producer's clock.
    if timestamp >= 0 {
        record = record.timestamp(timestamp);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(10));
                // A broker that stays away expires queued records: their
                // delivery reports fail the write instead of a wait
                // forever.
                if producer.context().failed.load(Ordering::Relaxed) > 0 {
                    return Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull));
                }
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Fails unless the brokers answer and know `settings.topic`.
fn check_topic(producer: &BaseProducer<Deliveries>, settings: &KafkaSettings) -> io::Result<()> {
    let metadata = producer
        .client()
        .fetch_metadata(Some(&settings.topic), Duration::from_secs(10))
        .map_err(|e| kafka_error(settings, "reaching the brokers", &e))?;
    let known = metadata
        .topics()
        .iter()
        .find(|t| t.name() == settings.topic)
        .is_some_and(|t| t.error().is_none() && !t.partitions().is_empty());
    if known {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "Kafka topic {} does not exist at {} (create it first)",
            settings.topic, settings.brokers
        )))
    }
}

fn kafka_error(settings: &KafkaSettings, doing: &str, error: &KafkaError) -> io::Error {
    io::Error::other(format!(
        "Kafka at {}, topic {}: {doing}: {error}",
        settings.brokers, settings.topic
    ))
}

impl Sink for KafkaSink {
    fn write_window(&mut self, window: &WindowResult, dict: &Dictionary) -> io::Result<()> {
        self.check_deliveries()?;
        let (producer, settings) = (&self.producer, &self.settings);
        let sent = each_record(
            window,
            dict,
            (&self.columns, self.order),
            &mut self.value,
            |key, value, timestamp| {
                send(producer, settings, key, value, timestamp).map_err(|e| {
                    let undelivered = producer.context().failed.load(Ordering::Relaxed);
                    let doing = if undelivered > 0 {
                        format!("sending a record ({undelivered} earlier ones were not delivered)")
                    } else {
                        "sending a record".to_owned()
                    };
                    kafka_error(settings, &doing, &e)
                })
            },
        );
        sent?;
        // Delivery reports of earlier windows.
        self.producer.poll(Duration::ZERO);
        self.check_deliveries()
    }

    /// Every row is acknowledged, or the job fails.
    fn finish(&mut self) -> io::Result<()> {
        self.flush()
    }

    /// Every row so far is acknowledged before the checkpoint is written.
    fn commit(&mut self) -> io::Result<()> {
        self.flush()
    }
}

/// Each row of `window` as a record: its key, its value (written into
/// `value`) and its timestamp, in the output's order.
fn each_record(
    window: &WindowResult,
    dict: &Dictionary,
    (columns, order): (&OutputColumns, RowOrder),
    value: &mut Vec<u8>,
    mut record: impl FnMut(&str, &[u8], i64) -> io::Result<()>,
) -> io::Result<()> {
    let reader = dict.read();
    let rows = Rows::new(window, &reader, columns, order);
    for &i in &rows.order {
        value.clear();
        write_row(value, &rows, columns, i)?;
        record(rows.keys[i], value, rows.end)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{columns_of, window};
    use super::super::NdjsonSink;
    use super::*;
    use crate::aggregate::Agg;
    use crate::window::AggColumn;

    #[test]
    fn a_record_per_row_keyed_valued_as_ndjson_timestamped_at_the_window_end() {
        let columns = vec![
            (Agg::Count, AggColumn::U64(vec![3, 1])),
            (Agg::Max, AggColumn::NullableF64(vec![Some(2.5), None])),
        ];
        let names = columns_of(&columns);
        let (dict, win) = window(7_000, &["b\"é", "a"], columns);
        let records = |order| {
            let mut got = Vec::new();
            each_record(&win, &dict, (&names, order), &mut Vec::new(), |k, v, ts| {
                got.push((k.to_owned(), v.to_vec(), ts));
                Ok(())
            })
            .unwrap();
            got
        };
        let got = records(RowOrder::ByKey);
        let mut ndjson = NdjsonSink::new(Vec::new(), names.clone());
        ndjson.write_window(&win, &dict).unwrap();
        let lines = String::from_utf8(ndjson.into_inner().unwrap()).unwrap();
        let values: Vec<String> = got
            .iter()
            .map(|(_, v, _)| String::from_utf8(v.clone()).unwrap())
            .collect();
        assert_eq!(values.join("\n") + "\n", lines);
        assert_eq!(
            got.iter()
                .map(|(k, _, ts)| (k.as_str(), *ts))
                .collect::<Vec<_>>(),
            [("a", 7_000), ("b\"é", 7_000)]
        );
        assert_eq!(
            values[0],
            "{\"window_end\":7000,\"key\":\"a\",\"count\":1,\"max\":null}"
        );
        let top = records(RowOrder::Top(1));
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].0, "b\"é");
    }

    #[test]
    fn producer_settings_are_idempotent_acknowledged_by_all_and_bounded() {
        let config = KafkaSettings::new("127.0.0.1:1", "out").client_config();
        for (name, value) in [
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "5"),
            ("queue.buffering.max.kbytes", "32768"),
            ("message.timeout.ms", "120000"),
            ("partitioner", "murmur2_random"),
        ] {
            assert_eq!(config.get(name), Some(value), "{name}");
        }
    }

    #[test]
    fn unreachable_brokers_fail_at_the_start_naming_them() {
        // Port 1 on loopback: nothing listens, the connection is refused.
        let err = match KafkaSink::new(KafkaSettings::new("127.0.0.1:1", "out"), Vec::new()) {
            Ok(_) => panic!("no broker at 127.0.0.1:1"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("127.0.0.1:1") && err.contains("out"), "{err}");
    }
}
