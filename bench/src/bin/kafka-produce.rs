//! `kafka-produce`: each line of a file becomes one record of a Kafka topic
//! (no key: librdkafka's partitioner spreads them), for the scripts of
//! `bench/kafka/` (Debian's kcat speaks a protocol version the test broker,
//! tansu, cannot answer).
//!
//! ```text
//! kafka-produce --brokers 127.0.0.1:9092 --topic lines --file lines.txt [--one-per-batch]
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::BufRead as _;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Parser;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

/// Each line of a file as one record of a Kafka topic.
#[derive(Parser)]
struct Args {
    /// The brokers, `host:port[,…]`.
    #[arg(long)]
    brokers: String,
    /// The topic (it must exist).
    #[arg(long)]
    topic: String,
    /// The lines.
    #[arg(long)]
    file: std::path::PathBuf,
    /// One record per batch (tansu 0.6 cannot read from the middle of a
    /// batch, where a resumed or handed-over partition may start).
    #[arg(long)]
    one_per_batch: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set(
            "batch.num.messages",
            if args.one_per_batch { "1" } else { "10000" },
        )
        .create()
        .context("a Kafka producer")?;
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let mut records = 0_u64;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.context("reading the lines")?;
        let mut record: BaseRecord<'_, (), str> = BaseRecord::to(&args.topic).payload(&line);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(e).context("producing a record"),
            }
        }
        producer.poll(Duration::ZERO);
        records += 1;
    }
    producer
        .flush(Duration::from_secs(120))
        .context("waiting for the broker's acknowledgements")?;
    eprintln!("kafka-produce: {records} records to {}", args.topic);
    Ok(())
}
