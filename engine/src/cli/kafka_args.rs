//! Flags of a Kafka input (`--kafka-*`, `--header`), flattened into `engine
//! run`'s. They exist in every build, so that a build without the `kafka`
//! feature can say what it lacks instead of not knowing the flag.

use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use engine::ingest::Format;
use engine::source::kafka::{KafkaOptions, KafkaStart, RECORD_TIME};

use super::args::usage;
use super::values::parse_duration_or_zero;

const KAFKA: &str = "Kafka";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KafkaStartArg {
    /// Partitions without a committed offset start at their first record.
    Earliest,
    /// Partitions without a committed offset start at their end.
    Latest,
    /// The group's committed offsets (the first record where there is none).
    Committed,
}

#[derive(Debug, Args)]
pub struct KafkaArgs {
    /// Read a Kafka topic (with --kafka-brokers); each record is a line of
    /// --format text, csv (with --header) or ndjson.
    #[arg(long, value_name = "TOPIC", group = "source", help_heading = KAFKA)]
    pub kafka_topic: Option<String>,
    /// The Kafka brokers to bootstrap from.
    #[arg(long, value_name = "HOST:PORT[,…]", help_heading = KAFKA)]
    pub kafka_brokers: Option<String>,
    /// A consumer group: the processes of a group share the topic's
    /// partitions (the topic must be keyed by --key-col: README, "Kafka").
    /// Without it the job reads every partition and commits nothing.
    #[arg(long, value_name = "G", help_heading = KAFKA)]
    pub kafka_group: Option<String>,
    /// Where partitions start when the group has no committed offset for
    /// them [default: committed with --kafka-group, earliest otherwise].
    #[arg(long, value_enum, help_heading = KAFKA)]
    pub kafka_start: Option<KafkaStartArg>,
    /// Stop once every partition reached the end offset it had when the job
    /// started (as kcat -e), then write the remaining windows.
    #[arg(long, help_heading = KAFKA)]
    pub kafka_until_end: bool,
    /// In event time, a partition with nothing to read for this long stops
    /// holding the others' windows back (0: never) [default: 10s].
    #[arg(long, value_name = "DURATION", help_heading = KAFKA)]
    pub kafka_idle: Option<String>,
    /// A librdkafka property for the Kafka clients, e.g. --kafka-option
    /// security.protocol=ssl (repeatable; applied after the engine's own).
    #[arg(long, value_name = "KEY=VALUE", help_heading = KAFKA)]
    pub kafka_option: Vec<String>,
    /// Half of a two-stage job over a topic not keyed by the aggregation key
    /// (README, "Kafka"): partial pre-aggregates panes for --output kafka,
    /// final merges them from --kafka-topic into the job's windows.
    #[arg(long, value_enum, value_name = "STAGE", help_heading = KAFKA)]
    pub stage: Option<super::stage::StageArg>,
    /// CSV from Kafka: the columns' names, as a header line would give them
    /// (Kafka records carry no header), e.g. --header ts,key,value.
    #[arg(long, value_name = "NAMES", help_heading = KAFKA)]
    pub header: Option<String>,
}

/// What `--kafka-idle` defaults to.
const DEFAULT_IDLE: Duration = Duration::from_secs(10);

impl KafkaArgs {
    /// Whether any Kafka input flag was given (`--kafka-brokers` is also
    /// `--output kafka`'s).
    fn any(&self) -> bool {
        self.kafka_topic.is_some()
            || self.kafka_group.is_some()
            || self.kafka_start.is_some()
            || self.kafka_until_end
            || self.kafka_idle.is_some()
            || !self.kafka_option.is_empty()
    }

    /// What the Kafka flags change once the job and its output are known:
    /// `--kafka-option`s for the Kafka output too, and a `--stage`.
    pub fn finish(
        &self,
        config: &mut engine::job::JobConfig,
        output: &mut super::args::OutputOptions,
    ) -> Result<()> {
        if let Some(kafka) = &mut output.kafka {
            kafka.properties = self.properties()?;
        }
        if let Some(stage) = self.stage {
            super::stage::apply(stage, config, output)?;
        }
        Ok(())
    }

    /// `--kafka-option KEY=VALUE`s.
    pub fn properties(&self) -> Result<Vec<(String, String)>> {
        self.kafka_option
            .iter()
            .map(|o| match o.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
                _ => Err(usage(format!(
                    "--kafka-option {o}: KEY=VALUE expected, e.g. --kafka-option session.timeout.ms=6000"
                ))),
            })
            .collect()
    }

    /// The Kafka input, if `--kafka-topic` was given; a usage error for
    /// flags that cannot go together. `format` is the record format asked
    /// for (text when none), `time_col` the event-time field.
    pub fn options(
        &self,
        format: Option<Format>,
        time_col: Option<&str>,
    ) -> Result<Option<KafkaOptions>> {
        if !self.any() {
            if self.header.is_some() {
                bail!(usage(
                    "--header names the columns of CSV records from --kafka-topic (files and \
                     streams carry their own header line)"
                ));
            }
            if time_col == Some(RECORD_TIME) {
                bail!(usage(format!(
                    "--time-col {RECORD_TIME} is the Kafka record timestamp: it goes with --kafka-topic"
                )));
            }
            return Ok(None);
        }
        if !cfg!(feature = "kafka") {
            let flag = [
                ("--kafka-topic", self.kafka_topic.is_some()),
                ("--kafka-group", self.kafka_group.is_some()),
                ("--kafka-start", self.kafka_start.is_some()),
                ("--kafka-until-end", self.kafka_until_end),
                ("--kafka-idle", self.kafka_idle.is_some()),
                ("--kafka-option", !self.kafka_option.is_empty()),
            ]
            .into_iter()
            .find_map(|(flag, given)| given.then_some(flag))
            .unwrap_or("--kafka-topic");
            bail!(usage(format!(
                "{flag} needs a build with the `kafka` feature (cargo build --release --features kafka)"
            )));
        }
        let Some(topic) = self.kafka_topic.clone() else {
            bail!(usage(
                "--kafka-group, --kafka-start, --kafka-until-end, --kafka-idle and --kafka-option go with --kafka-topic"
            ));
        };
        let Some(brokers) = self.kafka_brokers.clone() else {
            bail!(usage("--kafka-topic needs --kafka-brokers HOST:PORT[,…]"));
        };
        if topic.trim().is_empty() || brokers.trim().is_empty() {
            bail!(usage("--kafka-topic and --kafka-brokers must not be empty"));
        }
        if self
            .kafka_group
            .as_deref()
            .is_some_and(|g| g.trim().is_empty())
        {
            bail!(usage("--kafka-group must not be empty"));
        }
        match format {
            Some(Format::Csv) if self.header.is_none() => bail!(usage(
                "CSV records from Kafka carry no header: name the columns with --header, e.g. --header ts,key,value"
            )),
            Some(f) if f.is_columnar() => bail!(usage(format!(
                "--kafka-topic reads lines (--format text, csv or ndjson), not {}",
                f.name()
            ))),
            _ => {}
        }
        if self.header.is_some() && format != Some(Format::Csv) {
            bail!(usage(
                "--header names CSV columns: it goes with --format csv"
            ));
        }
        let start = match (self.kafka_start, self.kafka_group.is_some()) {
            (Some(KafkaStartArg::Latest), _) => KafkaStart::Latest,
            (Some(KafkaStartArg::Committed), false) => bail!(usage(
                "--kafka-start committed needs --kafka-group (offsets are committed by a group)"
            )),
            (Some(KafkaStartArg::Committed) | None, true) => KafkaStart::Committed,
            (Some(KafkaStartArg::Earliest), _) | (None, false) => KafkaStart::Earliest,
        };
        if start == KafkaStart::Latest && self.kafka_until_end {
            bail!(usage(
                "--kafka-start latest with --kafka-until-end reads nothing: the end is where it starts"
            ));
        }
        let idle_after = match self.kafka_idle.as_deref() {
            None => Some(DEFAULT_IDLE),
            Some(text) => match parse_duration_or_zero(text, "--kafka-idle")? {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
        };
        Ok(Some(KafkaOptions {
            brokers,
            topic,
            group: self.kafka_group.clone(),
            start,
            until_end: self.kafka_until_end,
            idle_after,
            record_time: time_col == Some(RECORD_TIME),
            csv_header: self.header.clone(),
            properties: self.properties()?,
        }))
    }
}
