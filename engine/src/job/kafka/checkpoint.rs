//! The Kafka part of a job's checkpoint: each partition's next offset,
//! lines read, previous owner's last window, each producer's lateness
//! state and the events still waiting for the other partitions; and, for
//! group jobs, the partition of every key id.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::super::Job;
use super::{Part, Stream};
use crate::batch::Batch;
use crate::checkpoint::codec::{CodecError, Decoder, Encoder, Persist};
use crate::source::kafka::PartitionStart;

impl Job<'_> {
    /// The Kafka state a checkpoint keeps: each partition's next offset,
    /// its lateness state and its waiting events.
    pub(in crate::job) fn kafka_checkpoint_state(&self) -> Vec<u8> {
        let Some(kafka) = &self.kafka else {
            return Vec::new();
        };
        let mut e = Encoder::new();
        e.len(kafka.parts.len());
        for (&p, part) in &kafka.parts {
            (i64::from(p), part.next_offset).save(&mut e);
            part.lines.save(&mut e);
            part.emitted_through.save(&mut e);
            e.len(part.streams.len());
            for (producer, stream) in &part.streams {
                let name = producer.as_deref().map(str::to_owned);
                (name, stream.max_pane).save(&mut e);
            }
            // Waiting events in pane order: one batch.
            let waiting = Batch::gather(
                &self.dict,
                &part
                    .waiting
                    .values()
                    .flatten()
                    .map(|b| (b, 0..b.len()))
                    .collect::<Vec<_>>(),
            );
            save_batch(&waiting, &mut e);
        }
        // Group jobs: the partition of every key id, so that a resumed job
        // knows whose rows a previous owner wrote for the keys it holds.
        self.delivered
            .filter
            .as_ref()
            .map(|f| f.key_partition.clone())
            .save(&mut e);
        e.into_bytes()
    }

    /// Restores what [`kafka_checkpoint_state`](Self::kafka_checkpoint_state) saved.
    pub(in crate::job) fn kafka_restore(
        &mut self,
        bytes: &[u8],
    ) -> std::result::Result<(), CodecError> {
        let options = self.kafka().options.clone();
        let mut d = Decoder::new(bytes);
        let n = d.len(16)?;
        let mut parts = BTreeMap::new();
        for _ in 0..n {
            let (p, next_offset) = <(i64, i64)>::load(&mut d)?;
            let p = i32::try_from(p).map_err(|_| CodecError::Invalid("partition".into()))?;
            let lines = u64::load(&mut d)?;
            let emitted_through = Option::<i64>::load(&mut d)?;
            let mut streams = BTreeMap::new();
            for _ in 0..d.len(16)? {
                let (name, max_pane) = <(Option<String>, i64)>::load(&mut d)?;
                let stream = Stream {
                    max_pane,
                    seen: Instant::now(),
                };
                streams.insert(name.map(Arc::from), stream);
            }
            let waiting = load_batch(&self.dict, &mut d)?;
            let start = PartitionStart {
                partition: p,
                offset: next_offset,
                emitted_through,
                end: None,
            };
            let mut part = Part::new(&options, &start);
            part.streams = streams;
            part.lines = lines;
            part.wait(&waiting, self.config.spec.pane());
            parts.insert(p, part);
        }
        let key_partition = Option::<Vec<i32>>::load(&mut d)?;
        if !d.is_done() {
            return Err(CodecError::Invalid("bytes after the Kafka state".into()));
        }
        if let Some(key_partition) = key_partition {
            self.delivered.filter = Some(super::super::deliver::RowFilter {
                through: BTreeMap::new(),
                key_partition,
            });
        }
        self.kafka_mut().restored = Some(parts);
        Ok(())
    }
}

fn save_batch(batch: &Batch, e: &mut Encoder) {
    batch.times().to_vec().save(e);
    batch.keys().to_vec().save(e);
    match batch.values(0) {
        crate::batch::Values::I64(v) => (1_u8, v.to_vec()).save(e),
        crate::batch::Values::F64(v) => {
            2_u8.save(e);
            v.to_vec().save(e);
        }
        crate::batch::Values::None => 0_u8.save(e),
    }
}

fn load_batch(
    dict: &crate::Dictionary,
    d: &mut Decoder<'_>,
) -> std::result::Result<Batch, CodecError> {
    let times = Vec::<i64>::load(d)?;
    let keys = Vec::<u32>::load(d)?;
    let columns = match u8::load(d)? {
        0 => Vec::new(),
        1 => vec![crate::batch::Column::I64(Vec::<i64>::load(d)?)],
        2 => vec![crate::batch::Column::F64(Vec::<f64>::load(d)?)],
        other => return Err(CodecError::Invalid(format!("value column kind {other}"))),
    };
    Batch::try_new(dict.clone(), times, keys, columns)
        .map_err(|e| CodecError::Invalid(format!("waiting Kafka events: {e}")))
}
