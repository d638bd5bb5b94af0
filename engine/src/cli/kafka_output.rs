//! `--output kafka`: its flags, their checks, and (feature `kafka`) the
//! sink. The flags exist in every build, so that a build without the
//! feature answers them with one line naming it.

use anyhow::{bail, Result};
use clap::Args;

use super::args::usage;

const OUTPUT: &str = "Output";

/// What a build without the feature answers.
const NEEDS_FEATURE: &str = "needs a build with the `kafka` feature \
                             (cargo build --release -p engine --features kafka)";

/// The flags of `--output kafka`.
#[derive(Debug, Args)]
#[allow(clippy::struct_field_names)] // Clap derives the flags' names from them.
pub struct KafkaOutputArgs {
    /// --output kafka: the topic the rows go to, one record per row (key:
    /// the row's key; value: the row as --output ndjson writes it;
    /// timestamp: the window's end). The topic must exist.
    #[arg(long, value_name = "TOPIC", help_heading = OUTPUT)]
    pub kafka_output_topic: Option<String>,
    /// --output kafka: the brokers written to (default: --kafka-brokers).
    #[arg(long, value_name = "HOST:PORT[,…]", help_heading = OUTPUT)]
    pub kafka_output_brokers: Option<String>,
    /// `--kafka-brokers` (a flag of the Kafka input, `kafka_args.rs`),
    /// filled in by `RunArgs` before [`options`](Self::options).
    #[arg(skip)]
    pub kafka_brokers: Option<String>,
}

/// Where `--output kafka` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaOutput {
    /// `host:port[,…]`.
    pub brokers: String,
    /// The topic.
    pub topic: String,
    /// `--stage partial`: the pane, ms (records carry their producer and
    /// their pane's start).
    pub partial_pane_ms: Option<i64>,
    /// `--kafka-option`s.
    pub properties: Vec<(String, String)>,
}

impl KafkaOutputArgs {
    /// The Kafka output, `None` without `--output kafka`; usage errors for
    /// a build without the feature, a flag without `--output kafka`, a
    /// missing topic or broker list, and `--output-file`.
    pub fn options(&self, kafka: bool, output_file: bool) -> Result<Option<KafkaOutput>> {
        let given = [
            ("--kafka-output-topic", self.kafka_output_topic.is_some()),
            (
                "--kafka-output-brokers",
                self.kafka_output_brokers.is_some(),
            ),
            ("--kafka-brokers", self.kafka_brokers.is_some()),
        ];
        let first_flag = given.iter().find(|(_, on)| *on).map(|(flag, _)| *flag);
        if !cfg!(feature = "kafka") {
            match (kafka, first_flag) {
                (true, _) => bail!(usage(format!("--output kafka {NEEDS_FEATURE}"))),
                (false, Some(flag)) => bail!(usage(format!("{flag} {NEEDS_FEATURE}"))),
                (false, None) => return Ok(None),
            }
        }
        if !kafka {
            // --kafka-brokers alone is the source's (a Kafka input).
            return match given[..2].iter().find(|(_, on)| *on) {
                Some((flag, _)) => bail!(usage(format!("{flag} goes with --output kafka"))),
                None => Ok(None),
            };
        }
        if output_file {
            bail!(usage(
                "--output kafka writes to a topic: --output-file goes with the other outputs"
            ));
        }
        let Some(topic) = self.kafka_output_topic.clone() else {
            bail!(usage("--output kafka needs --kafka-output-topic TOPIC"));
        };
        check_topic_name(&topic)?;
        let brokers = match (&self.kafka_output_brokers, &self.kafka_brokers) {
            (Some(b), _) | (None, Some(b)) => b.trim().to_owned(),
            (None, None) => bail!(usage(
                "--output kafka needs --kafka-brokers HOST:PORT[,…] (or --kafka-output-brokers)"
            )),
        };
        if brokers.split(',').any(|b| b.trim().is_empty()) {
            bail!(usage(format!(
                "--kafka-output-brokers {brokers:?}: HOST:PORT[,HOST:PORT…] expected"
            )));
        }
        Ok(Some(KafkaOutput {
            brokers,
            topic,
            partial_pane_ms: None,
            properties: Vec::new(),
        }))
    }
}

/// Where the rows go, in a checkpoint's fingerprint: the file, the Kafka
/// topic or stdout.
pub fn destination(file: Option<&std::path::Path>, kafka: Option<&KafkaOutput>) -> String {
    match (file, kafka) {
        (Some(f), _) => f.display().to_string(),
        (None, Some(kafka)) => format!("Kafka topic {}", kafka.topic),
        (None, None) => "stdout".into(),
    }
}

/// Kafka's rule for topic names: 1 to 249 of `[A-Za-z0-9._-]`, not `.` or
/// `..`.
fn check_topic_name(topic: &str) -> Result<()> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if topic.is_empty()
        || topic.len() > 249
        || !topic.chars().all(legal)
        || topic == "."
        || topic == ".."
    {
        bail!(usage(format!(
            "--kafka-output-topic {topic:?}: a Kafka topic name is 1 to 249 letters, digits, `.`, `_` or `-`"
        )));
    }
    Ok(())
}

/// The sink of `output` (at-least-once: see `engine::sink::KafkaSink`).
#[cfg(feature = "kafka")]
pub fn open_sink(
    output: &KafkaOutput,
    columns: Vec<(engine::Agg, &'static str)>,
    order: engine::sink::RowOrder,
) -> Result<Box<dyn engine::sink::Sink>> {
    use engine::sink::{KafkaSettings, KafkaSink, Partials};
    let mut settings = KafkaSettings::new(&output.brokers, &output.topic);
    settings.properties.clone_from(&output.properties);
    settings.partials = output.partial_pane_ms.map(|pane_ms| Partials {
        // Unique among the stage's producers, on one machine or many.
        producer: format!(
            "{}-{}-{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into()),
            std::process::id(),
            engine::source::now_ms()
        ),
        pane_ms,
    });
    let sink =
        KafkaSink::new(settings, columns).map_err(|e| engine::Error::io("--output kafka", e))?;
    Ok(Box::new(sink.with_order(order)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(topic: Option<&str>, brokers: Option<&str>) -> KafkaOutputArgs {
        KafkaOutputArgs {
            kafka_output_topic: topic.map(str::to_owned),
            kafka_output_brokers: None,
            kafka_brokers: brokers.map(str::to_owned),
        }
    }

    #[test]
    fn topic_names_follow_kafka() {
        assert!(check_topic_name("out.rows_1-a").is_ok());
        for bad in ["", ".", "..", "a b", "ü", &"x".repeat(250)] {
            assert!(check_topic_name(bad).is_err(), "{bad}");
        }
    }

    #[cfg(feature = "kafka")]
    #[test]
    fn flags_are_checked_before_any_connection() {
        let ok = args(Some("out"), Some("b1:9092, b2:9092"));
        assert_eq!(
            ok.options(true, false).unwrap(),
            Some(KafkaOutput {
                partial_pane_ms: None,
                properties: Vec::new(),
                brokers: "b1:9092, b2:9092".into(),
                topic: "out".into()
            })
        );
        let err =
            |a: &KafkaOutputArgs, kafka, file| a.options(kafka, file).unwrap_err().to_string();
        assert!(err(&ok, false, false).contains("goes with --output kafka"));
        assert!(err(&ok, true, true).contains("--output-file"));
        assert!(err(&args(None, Some("b:1")), true, false).contains("--kafka-output-topic"));
        assert!(err(&args(Some("t"), None), true, false).contains("--kafka-brokers"));
        assert!(err(&args(Some("t"), Some("a:1,,b:2")), true, false).contains("HOST:PORT"));
        // --kafka-brokers alone is a Kafka input's.
        assert_eq!(args(None, Some("b:1")).options(false, false).unwrap(), None);
    }

    #[cfg(not(feature = "kafka"))]
    #[test]
    fn a_build_without_the_feature_names_it() {
        let err = args(Some("out"), None).options(false, false).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("--kafka-output-topic needs a build with the `kafka` feature"));
        assert_eq!(args(None, None).options(false, false).unwrap(), None);
    }
}
