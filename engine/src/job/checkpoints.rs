//! A job's checkpoints: taken at cuts between pieces of input (every
//! `Checkpointing::every` of wall time), and once more when the job has
//! finished; restored before a resumed job reads anything.

use std::thread::JoinHandle;
use std::time::Instant;

use super::{Input, Job, JobHooks};
use crate::checkpoint::{
    store::Store, CheckpointError, Checkpointing, Counters, FilePosition, JobState, Resume,
};
use crate::dictionary::{Dictionary, KeyReclaimer};
use crate::error::Result;

/// The checkpoints being written. The job waits only while its state is
/// copied and encoded; the file is written and synced on a thread of its
/// own while the job goes on (one write in flight: the next checkpoint
/// waits for it, and the last one is written before the job returns).
pub(super) struct Checkpoints {
    /// The store, or the write that has it.
    store: Writer,
    settings: Checkpointing,
    fingerprint: Vec<(String, String)>,
    last: Instant,
    /// Told when a checkpoint is durable.
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

/// The store, idle or out on a thread writing one checkpoint.
enum Writer {
    Idle(Store),
    Writing(JoinHandle<(Store, std::result::Result<u64, CheckpointError>)>),
    /// A write thread panicked: no more checkpoints (its error was told).
    Gone,
}

impl Checkpoints {
    pub fn open(settings: &Checkpointing, config: &super::JobConfig) -> Result<Self> {
        if let Some(metrics) = &config.metrics {
            metrics.set_checkpointing(true);
        }
        Ok(Self {
            store: Writer::Idle(Store::open(&settings.dir)?),
            settings: settings.clone(),
            fingerprint: config
                .fingerprint()
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
            last: Instant::now(),
            metrics: config.metrics.clone(),
        })
    }

    /// Waits for the write in flight, if any: its error, or the store.
    fn settle(&mut self) -> Result<&mut Store> {
        if let Writer::Writing(_) = self.store {
            let Writer::Writing(handle) = std::mem::replace(&mut self.store, Writer::Gone) else {
                unreachable!("matched above");
            };
            let (store, written) = handle.join().map_err(|_| CheckpointError::Io {
                path: self.settings.dir.clone(),
                source: std::io::Error::other("the checkpoint writer panicked"),
            })?;
            self.store = Writer::Idle(store);
            written?;
        }
        match &mut self.store {
            Writer::Idle(store) => Ok(store),
            _ => Err(CheckpointError::Io {
                path: self.settings.dir.clone(),
                source: std::io::Error::other("the checkpoint writer is gone"),
            }
            .into()),
        }
    }

    /// Writes `bytes` as the next checkpoint: in the background, or now
    /// (`wait`, the job's last).
    fn write(&mut self, bytes: Vec<u8>, wait: bool) -> Result<()> {
        let store = self.settle()?;
        if wait {
            store.write(&bytes)?;
            if let Some(metrics) = &self.metrics {
                metrics.checkpoint_durable();
            }
            return Ok(());
        }
        let Writer::Idle(mut store) = std::mem::replace(&mut self.store, Writer::Gone) else {
            unreachable!("settled");
        };
        let metrics = self.metrics.clone();
        let spawned = std::thread::Builder::new()
            .name("engine-checkpoint".into())
            .spawn(move || {
                let written = store.write(&bytes);
                if let (Ok(_), Some(metrics)) = (&written, metrics) {
                    metrics.checkpoint_durable();
                }
                (store, written)
            });
        match spawned {
            Ok(handle) => {
                self.store = Writer::Writing(handle);
                Ok(())
            }
            Err(e) => Err(CheckpointError::Io {
                path: self.settings.dir.clone(),
                source: e,
            }
            .into()),
        }
    }

    /// Waits for the write in flight (the job is ending).
    pub fn finish(&mut self) -> Result<()> {
        self.settle().map(|_| ())
    }
}

/// Whether `config`'s job can be checkpointed: its input must replay from
/// a byte offset (a file read memory-mapped) or be a stream that cannot
/// replay at all (at-most-once on resume). Files read as streams and
/// columnar files would be read again from their start, and a generator
/// would produce its records again: those cannot be checkpointed yet.
pub(crate) fn check_supported(config: &super::JobConfig) -> Result<()> {
    if config.checkpoint.is_none() {
        return Ok(());
    }
    let unsupported = |what: &str| -> Result<()> {
        Err(CheckpointError::Unsupported {
            what: what.to_owned(),
        }
        .into())
    };
    if config.effective_format().is_columnar() {
        return unsupported("columnar input (binary, Arrow, Parquet)");
    }
    match &config.input {
        Input::File(path) if !config.mmap.is_enabled() || !super::is_regular_file(path) => {
            unsupported("a file read as a stream (not memory-mapped)")
        }
        Input::Generate(_) => {
            unsupported("a generator (it would produce its records again): write them to a file")
        }
        _ => Ok(()),
    }
}

impl Job<'_> {
    /// The counters a checkpoint keeps.
    fn counters(&self) -> Counters {
        let r = &self.report;
        Counters {
            next_record: self.next_record,
            events_parsed: self.events_parsed,
            max_pane: self.max_pane,
            late: self.late,
            clock_floor: self.clock_floor,
            records: r.records,
            bytes: r.bytes,
            skipped: r.skipped,
            unmatched: r.unmatched,
            events: r.events,
            after_until: r.after_until,
            filtered: r.filtered,
            windows: self.delivered.windows,
            overflowed: self.delivered.overflowed,
            batches: r.batches,
        }
    }

    /// Puts the job in the state of `resume`: the dictionary, the window
    /// operator, the counters and where the file is to be read from.
    pub(super) fn restore(&mut self, resume: &Resume) -> Result<()> {
        let state = &resume.state;
        let bad = |source| CheckpointError::Decode {
            path: format!("number {}", resume.number()).into(),
            source,
        };
        self.dict = Dictionary::restored(&state.dictionary).map_err(bad)?;
        self.reclaimer = KeyReclaimer::starting_at(state.dictionary.reclaim_at as usize);
        self.op.restore_state(&state.operator).map_err(bad)?;
        // Every key the operator holds must be one the dictionary knows.
        let mut unknown = None;
        {
            let reader = self.dict.read();
            self.op.for_each_held_key(&mut |id| {
                if reader.get(id).is_none() {
                    unknown = Some(id);
                }
            });
        }
        if let Some(id) = unknown {
            return Err(bad(crate::checkpoint::codec::CodecError::Invalid(format!(
                "the window state holds key id {id}, which the dictionary does not"
            )))
            .into());
        }
        let c = &state.counters;
        self.next_record = c.next_record;
        self.events_parsed = c.events_parsed;
        self.max_pane = c.max_pane;
        self.late = c.late;
        self.clock_floor = c.clock_floor;
        let r = &mut self.report;
        (r.records, r.bytes, r.skipped, r.unmatched) = (c.records, c.bytes, c.skipped, c.unmatched);
        (r.events, r.after_until, r.filtered, r.batches) =
            (c.events, c.after_until, c.filtered, c.batches);
        (self.delivered.windows, self.delivered.overflowed) = (c.windows, c.overflowed);
        self.resume_at = state.position;
        if self.kafka.is_some() {
            self.kafka_restore(&state.source).map_err(bad)?;
        }
        Ok(())
    }

    /// Takes a checkpoint at this cut if the interval has passed (`position`
    /// is where a file is to be read from next; streams have none).
    pub(super) fn maybe_checkpoint(
        &mut self,
        position: Option<FilePosition>,
        hooks: &mut dyn JobHooks,
    ) -> Result<()> {
        let due = self
            .checkpoints
            .as_ref()
            .is_some_and(|c| c.last.elapsed() >= c.settings.every);
        if due {
            self.checkpoint(position, false, hooks)?;
        }
        Ok(())
    }

    /// Writes a checkpoint now: the output is made durable first, so that
    /// the checkpoint never names output that a crash could lose.
    pub(super) fn checkpoint(
        &mut self,
        position: Option<FilePosition>,
        finished: bool,
        hooks: &mut dyn JobHooks,
    ) -> Result<()> {
        if self.checkpoints.is_none() {
            return Ok(());
        }
        let started = Instant::now();
        let output = hooks.commit_output(finished)?;
        let mut dictionary = self.dict.snapshot();
        dictionary.reclaim_at = self.reclaimer.next_at() as u64;
        let state = JobState {
            fingerprint: Vec::new(),
            finished,
            position,
            counters: self.counters(),
            dictionary,
            operator: self.op.save_state(),
            output,
            source: self.kafka_checkpoint_state(),
        };
        let checkpoints = self.checkpoints.as_mut().expect("checked above");
        let state = JobState {
            fingerprint: checkpoints.fingerprint.clone(),
            ..state
        };
        let bytes = state.encode();
        let size = bytes.len() as u64;
        // The job's last checkpoint is durable before the job returns.
        checkpoints.write(bytes, finished)?;
        checkpoints.last = Instant::now();
        let pause = started.elapsed();
        let r = &mut self.report;
        r.checkpoints += 1;
        r.checkpoint_max_pause = r.checkpoint_max_pause.max(pause);
        r.checkpoint_total_pause += pause;
        r.checkpoint_max_bytes = r.checkpoint_max_bytes.max(size);
        if let Some(metrics) = &self.config.metrics {
            metrics.checkpoint_taken(pause, size);
        }
        Ok(())
    }
}
