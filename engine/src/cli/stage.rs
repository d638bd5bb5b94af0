//! `--stage partial|final`: a job split in two over a repartition topic, as
//! Kafka Streams does, for input that is not keyed by the aggregation key
//! (a word count over lines).
//!
//! - **partial**: the job runs with windows one pane long (the panes of
//!   `--window`/`--slide`), so each of its rows is a pane's partial
//!   aggregate of a key; `--output kafka` writes them keyed by the key, each
//!   record timestamped with its pane's start and naming its producer
//!   (header `engine-producer`).
//! - **final**: reads those records (`--kafka-topic`, NDJSON) with their
//!   timestamps as event time, and merges the partials of a key into the
//!   job's windows: counts and sums are summed, minima and maxima taken.
//!   Its event time follows each producer of each partition on its own, so
//!   producers that are at different panes make nothing late. The output
//!   is the one-stage job's, columns included.

use anyhow::{bail, Result};
use clap::ValueEnum;
use engine::ingest::Format;
use engine::job::{Input, JobConfig, JobKind, TimeMode};
use engine::source::kafka::RECORD_TIME;
use engine::{Agg, AggSet, ValueType, WindowSpec};

use super::args::{usage, OutputOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StageArg {
    /// Pre-aggregate each pane and write the partials (with --output kafka).
    Partial,
    /// Merge the partials read from --kafka-topic into the job's windows.
    Final,
}

/// The one aggregate a two-stage job computes: partials of several
/// aggregates (or of an average) are not merged yet.
fn single_agg(kind: &JobKind) -> Result<Agg> {
    match kind {
        JobKind::WordCount | JobKind::Grep(_) => Ok(Agg::Count),
        JobKind::Aggregate { aggs, .. } => match aggs.aggs() {
            &[agg @ (Agg::Count | Agg::Sum | Agg::Min | Agg::Max)] => Ok(agg),
            _ => bail!(usage(format!(
                "--stage runs one of --agg count, sum, min or max (not {})",
                aggs.aggs()
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(",")
            ))),
        },
    }
}

/// Rewrites `config` and `output` for `stage`.
pub fn apply(stage: StageArg, config: &mut JobConfig, output: &mut OutputOptions) -> Result<()> {
    let agg = single_agg(&config.kind)?;
    match stage {
        StageArg::Partial => {
            if !matches!(config.time, TimeMode::Column(_)) {
                bail!(usage(
                    "--stage partial needs event time (--time-col, or --time-col @timestamp from Kafka): \
                     the next stage merges panes by their time"
                ));
            }
            if output.kafka.is_none() {
                bail!(usage(
                    "--stage partial writes partials for a final stage: it goes with --output kafka"
                ));
            }
            let (batch, pane) = (config.spec.batch(), config.spec.pane());
            config.spec = WindowSpec::from_millis(batch, pane, pane)?;
            if let Some(kafka) = &mut output.kafka {
                kafka.partial_pane_ms = Some(pane);
            }
        }
        StageArg::Final => {
            let Input::Kafka(options) = &mut config.input else {
                bail!(usage("--stage final reads the partials from --kafka-topic"));
            };
            options.record_time = true;
            config.time = TimeMode::Column(RECORD_TIME.into());
            config.format = Some(Format::Ndjson);
            let value_type = match agg {
                Agg::Count => ValueType::I64,
                _ => config.value_type(),
            };
            let merge = if agg == Agg::Count { Agg::Sum } else { agg };
            config.kind = JobKind::Aggregate {
                key: "key".into(),
                value: Some(agg.name().into()),
                aggs: merge.name().parse::<AggSet>()?,
                value_type,
                filter: None,
                lookup: None,
            };
            // The merged column is named as the one-stage job names it.
            output.columns = Some(vec![(merge, agg.name())]);
        }
    }
    Ok(())
}
