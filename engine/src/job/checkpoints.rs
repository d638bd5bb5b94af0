//! A job's checkpoints: taken at cuts between pieces of input (every
//! `Checkpointing::every` of wall time), and once more when the job has
//! finished; restored before a resumed job reads anything.

use std::time::Instant;

use super::{Input, Job, JobHooks};
use crate::checkpoint::{
    store::Store, CheckpointError, Checkpointing, Counters, FilePosition, JobState, Resume,
};
use crate::dictionary::{Dictionary, KeyReclaimer};
use crate::error::Result;

/// The checkpoints being written.
pub(super) struct Checkpoints {
    store: Store,
    settings: Checkpointing,
    fingerprint: Vec<(String, String)>,
    last: Instant,
}

impl Checkpoints {
    pub fn open(settings: &Checkpointing, config: &super::JobConfig) -> Result<Self> {
        Ok(Self {
            store: Store::open(&settings.dir)?,
            settings: settings.clone(),
            fingerprint: config
                .fingerprint()
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
            last: Instant::now(),
        })
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
        };
        let checkpoints = self.checkpoints.as_mut().expect("checked above");
        let state = JobState {
            fingerprint: checkpoints.fingerprint.clone(),
            ..state
        };
        let bytes = state.encode();
        checkpoints.store.write(&bytes)?;
        checkpoints.last = Instant::now();
        let pause = started.elapsed();
        let r = &mut self.report;
        r.checkpoints += 1;
        r.checkpoint_max_pause = r.checkpoint_max_pause.max(pause);
        r.checkpoint_total_pause += pause;
        r.checkpoint_max_bytes = r.checkpoint_max_bytes.max(bytes.len() as u64);
        Ok(())
    }
}
