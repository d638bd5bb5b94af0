//! Checkpoints: a job's consistent cut, written durably so that a job
//! killed at any moment resumes where its last checkpoint left it.
//!
//! A checkpoint holds, at one moment between two pieces of input: the
//! source's position (a file's byte offset and line; streams that cannot
//! replay have none), the window operator's whole state (open pane, closed
//! panes, running aggregates, sliding min/max structures), the dictionary
//! entries of the keys it holds, the summary's counters, and how far the
//! output had been made durable. The store ([`store`]) writes each one
//! atomically with a checksum and keeps the previous one until the new one
//! is durable.
//!
//! A job is resumed only by the same job: [`load`] compares the
//! checkpoint's fingerprint (the engine version and every setting that
//! changes the results) with the job's and refuses a difference by name.
//!
//! ```
//! use engine::checkpoint::{self, Checkpointing};
//! use engine::job::{self, JobConfig};
//! # let dir = std::env::temp_dir().join(format!("engine-doc-ckpt-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! # let input = dir.with_extension("txt");
//! # std::fs::write(&input, "a b a\nb c\n")?;
//! # let config = |checkpoint| JobConfig { checkpoint, ..doc_job(&input) };
//! let config = config(Some(Checkpointing::new(&dir)));
//! // Nothing to resume the first time; a finished job says so afterwards.
//! assert!(checkpoint::load(&config)?.is_none());
//! # struct Quiet;
//! # impl job::JobHooks for Quiet {
//! #     fn window(&mut self, _: &engine::WindowResult, _: &engine::Dictionary) -> engine::Result<()> { Ok(()) }
//! #     fn bad_record(&mut self, _: &str, _: u64, _: &engine::ingest::RecordError) {}
//! #     fn notice(&mut self, _: &job::Notice<'_>) {}
//! # }
//! let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
//! job::run(&config, &mut Quiet, &stop)?;
//! assert!(checkpoint::load(&config)?.expect("written").finished());
//! # fn doc_job(input: &std::path::Path) -> JobConfig {
//! #     JobConfig {
//! #         input: job::Input::File(input.to_owned()),
//! #         format: None,
//! #         time: job::TimeMode::Rate(1_000),
//! #         kind: job::JobKind::WordCount,
//! #         spec: engine::WindowSpec::from_millis(1_000, 1_000, 1_000).unwrap(),
//! #         until: None, keep_empty: false, key_ttl: None, threads: 1,
//! #         on_error: job::OnError::Skip, max_line_bytes: 1 << 20, run_for: None,
//! #         socket: engine::source::SocketOptions::default(),
//! #         // SAFETY: the doctest's own file, unchanged while the job runs.
//! #         mmap: unsafe { job::MmapChoice::auto() }, checkpoint: None, metrics: None,
//! #     }
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod codec;
pub mod store;

use codec::{CodecError, Decoder, Encoder, Persist};

use crate::error::{Error, Result};
use crate::job::JobConfig;

/// Where and how often a job checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpointing {
    /// The directory of the job's checkpoints.
    pub dir: PathBuf,
    /// Wall time between checkpoints; zero checkpoints at every cut (each
    /// piece of a file, each chunk of a stream).
    pub every: Duration,
    /// Where the job's output goes, in the front end's words: part of the
    /// job's fingerprint (a resumed job must write the same output).
    pub output: String,
}

impl Checkpointing {
    /// The default interval: ten seconds of wall time.
    pub const DEFAULT_EVERY: Duration = Duration::from_secs(10);

    /// Checkpoints in `dir` every [`DEFAULT_EVERY`](Self::DEFAULT_EVERY).
    #[must_use]
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            every: Self::DEFAULT_EVERY,
            output: String::new(),
        }
    }
}

/// How far the output had been made durable at a checkpoint: the file the
/// rows were being written to and its length. A resumed job truncates the
/// file to that length and goes on, so that the output is byte for byte
/// that of a run that was never interrupted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPosition {
    /// The file being written.
    pub path: PathBuf,
    /// Its committed length in bytes.
    pub len: u64,
}

/// What is wrong with a job's checkpoints.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Reading or writing the checkpoint directory failed.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Checkpoints exist, but every one is damaged.
    #[error("no intact checkpoint in {dir}: {}", damaged.iter().map(|(p, why)| format!("{} {why}", p.display())).collect::<Vec<_>>().join("; "))]
    NoneIntact {
        /// The directory.
        dir: PathBuf,
        /// Each checkpoint file and what is wrong with it.
        damaged: Vec<(PathBuf, String)>,
    },
    /// The checkpoint's payload does not decode (an intact file of another
    /// layout).
    #[error("checkpoint {path} does not decode: {source}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: CodecError,
    },
    /// The checkpoint is of another job: one setting differs.
    #[error(
        "the checkpoint in {dir} is of another job: its {setting} is {saved}, this job's is {now}"
    )]
    OtherJob {
        /// The checkpoint directory.
        dir: PathBuf,
        /// The setting that differs (a [`JobConfig`] field, or `engine
        /// version`, `input size`).
        setting: String,
        /// Its value in the checkpoint.
        saved: String,
        /// Its value in this job.
        now: String,
    },
    /// Another process has the checkpoint directory open (a job running).
    #[error("the checkpoint directory {dir} is in use by another job")]
    InUse {
        /// The directory.
        dir: PathBuf,
    },
    /// The job's input cannot be checkpointed (yet).
    #[error("checkpoints do not support {what}")]
    Unsupported {
        /// The input.
        what: String,
    },
    /// The input file no longer has the checkpoint's position (it changed
    /// although its size did not).
    #[error("{input} cannot be resumed at byte {offset}: the file ({len} bytes) changed")]
    InputChanged {
        /// The input.
        input: String,
        /// The checkpoint's offset.
        offset: u64,
        /// The file's length now.
        len: u64,
    },
    /// Resuming needs the output file in progress, and it is gone.
    #[error("the output in progress {path} is missing or shorter than its committed {len} bytes")]
    OutputGone {
        /// The file.
        path: PathBuf,
        /// Its committed length.
        len: u64,
    },
}

impl CheckpointError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A checkpoint to resume from ([`load`]).
#[derive(Debug)]
pub struct Resume {
    pub(crate) state: JobState,
    number: u64,
    skipped: Vec<(PathBuf, String)>,
}

impl Resume {
    /// The checkpoint's number in its directory.
    #[must_use]
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Newer checkpoints that were damaged and skipped, with why.
    #[must_use]
    pub fn skipped(&self) -> &[(PathBuf, String)] {
        &self.skipped
    }

    /// Whether the job had finished: its output is complete.
    #[must_use]
    pub fn finished(&self) -> bool {
        self.state.finished
    }

    /// Where the output stood.
    #[must_use]
    pub fn output(&self) -> Option<&OutputPosition> {
        self.state.output.as_ref()
    }

    /// Whether the source replays from the checkpoint (a file from its
    /// offset, Kafka partitions from theirs); records of a stream in flight
    /// at the crash are lost.
    #[must_use]
    pub fn replays(&self) -> bool {
        self.state.position.is_some() || !self.state.source.is_empty()
    }
}

/// The newest intact checkpoint of `config`'s job, if it has any.
///
/// # Errors
///
/// The job has no checkpoint settings, the directory cannot be read, every
/// checkpoint is damaged, or the newest intact one is of another job
/// ([`CheckpointError::OtherJob`]).
pub fn load(config: &JobConfig) -> Result<Option<Resume>> {
    let Some(settings) = &config.checkpoint else {
        return Ok(None);
    };
    crate::job::check_checkpointable(config)?;
    let store = store::Store::open(&settings.dir)?;
    let Some(loaded) = store.latest()? else {
        return Ok(None);
    };
    let bad = |source| CheckpointError::Decode {
        path: loaded.path.clone(),
        source,
    };
    // The fingerprint first: a checkpoint of another build or job is named
    // as such, whatever the rest of its layout.
    let fingerprint: Vec<(String, String)> =
        codec::load_items(&mut Decoder::new(&loaded.payload), 16).map_err(bad)?;
    check_fingerprint(
        &settings.dir,
        &fingerprint,
        config
            .fingerprint()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
    )?;
    let state = JobState::decode(&loaded.payload).map_err(bad)?;
    Ok(Some(Resume {
        state,
        number: loaded.number,
        skipped: loaded.skipped,
    }))
}

/// The output file in progress that the newest intact checkpoint in
/// `config`'s directory names, if its job had not finished, whatever job
/// it was: what a run from scratch removes with the checkpoints.
#[must_use]
pub fn output_in_progress(config: &JobConfig) -> Option<PathBuf> {
    let store = store::Store::open(&config.checkpoint.as_ref()?.dir).ok()?;
    let loaded = store.latest().ok()??;
    let state = JobState::decode(&loaded.payload).ok()?;
    (!state.finished).then_some(state.output?.path)
}

/// The build that writes checkpoints: crate version, git commit and
/// compiler (a hash function or a layout may change with any of them).
pub(crate) const ENGINE_BUILD: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " ",
    env!("ENGINE_GIT_COMMIT"),
    ", ",
    env!("ENGINE_RUSTC_VERSION")
);

/// Compares a checkpoint's fingerprint with a job's, setting by setting:
/// the first that differs (or that the checkpoint lacks) is the error.
pub(crate) fn check_fingerprint(
    dir: &Path,
    saved: &[(String, String)],
    now: impl IntoIterator<Item = (String, String)>,
) -> std::result::Result<(), CheckpointError> {
    for (setting, now) in now {
        let saved = saved
            .iter()
            .find(|(name, _)| *name == setting)
            .map_or("(not recorded)", |(_, value)| value.as_str());
        if saved != now {
            return Err(CheckpointError::OtherJob {
                dir: dir.to_path_buf(),
                setting,
                saved: saved.to_owned(),
                now,
            });
        }
    }
    Ok(())
}

/// Removes every checkpoint of `config`'s job (a run from scratch).
///
/// # Errors
///
/// The directory cannot be read or a file removed.
pub fn clear(config: &JobConfig) -> Result<()> {
    if let Some(settings) = &config.checkpoint {
        store::Store::open(&settings.dir)?.clear()?;
    }
    Ok(())
}

impl From<CheckpointError> for Error {
    fn from(e: CheckpointError) -> Self {
        Error::Checkpoint(Box::new(e))
    }
}

/// One checkpoint of `op` and `dict`, encoded as a job's checkpoint is
/// (dictionary snapshot, operator state, encoding): what a checkpoint holds
/// a job up for; the file is then written in the background
/// ([`store::Store::write`]). For the benchmarks of the pause; jobs
/// checkpoint through [`Checkpointing`].
#[doc(hidden)]
#[must_use]
pub fn encode_state(op: &crate::WindowAggregator, dict: &crate::Dictionary) -> Vec<u8> {
    JobState {
        fingerprint: Vec::new(),
        finished: false,
        position: None,
        counters: Counters::default(),
        dictionary: dict.snapshot(),
        operator: op.save_state(),
        output: None,
        source: Vec::new(),
    }
    .encode()
}

/// A file source's position at a cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FilePosition {
    /// Offset of the next unread byte (a line start).
    pub offset: u64,
    /// End of the segment being processed, so that a resumed job cuts the
    /// rest of the file exactly as an uninterrupted one (float sums then
    /// add in the same order).
    pub segment_end: u64,
    /// 1-based number of the line at `offset`.
    pub line: u64,
}

/// The job's counters at a cut (the summary and what decides lateness and
/// virtual time).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub next_record: u64,
    pub events_parsed: u64,
    pub max_pane: i64,
    pub late: u64,
    pub clock_floor: i64,
    pub records: u64,
    pub bytes: u64,
    pub skipped: u64,
    pub unmatched: u64,
    pub events: u64,
    pub after_until: u64,
    pub filtered: u64,
    pub windows: u64,
    pub overflowed: u64,
    pub batches: u64,
}

/// The dictionary at a cut: every live id with its string, the length of
/// the id range, and the free ids in the order they are reused (so that a
/// resumed job gives new keys the ids an uninterrupted one would).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DictionaryState {
    pub ids: Vec<u32>,
    /// Each live key's length in `text`, in the order of `ids`.
    pub lengths: Vec<u32>,
    /// The live keys' bytes, one after the other (one copy, not one
    /// allocation a key).
    pub text: Vec<u8>,
    pub range: u64,
    pub free: Vec<u32>,
    /// The key reclaimer's schedule: when it next looks, what it saw held.
    pub reclaim_at: u64,
    pub held: Vec<u64>,
}

/// Everything a checkpoint holds.
#[derive(Debug)]
pub(crate) struct JobState {
    pub fingerprint: Vec<(String, String)>,
    pub finished: bool,
    pub position: Option<FilePosition>,
    pub counters: Counters,
    pub dictionary: DictionaryState,
    /// The window operator, encoded by itself.
    pub operator: Vec<u8>,
    pub output: Option<OutputPosition>,
    /// What the source needs to resume (Kafka: each partition's offset,
    /// lateness state and events waiting for the other partitions), encoded
    /// by the job; empty for the others.
    pub source: Vec<u8>,
}

impl JobState {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.len(self.fingerprint.len());
        for pair in &self.fingerprint {
            pair.save(&mut e);
        }
        self.finished.save(&mut e);
        self.position
            .map(|p| (p.offset, (p.segment_end, p.line)))
            .save(&mut e);
        self.counters.save(&mut e);
        self.dictionary.save(&mut e);
        self.operator.save(&mut e);
        self.output
            .as_ref()
            .map(|o| (path_bytes(&o.path), o.len))
            .save(&mut e);
        self.source.save(&mut e);
        e.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> std::result::Result<Self, CodecError> {
        let mut d = Decoder::new(bytes);
        let fingerprint = codec::load_items(&mut d, 16)?;
        let finished = bool::load(&mut d)?;
        let position =
            Option::<(u64, (u64, u64))>::load(&mut d)?.map(|(offset, (segment_end, line))| {
                FilePosition {
                    offset,
                    segment_end,
                    line,
                }
            });
        let counters = Counters::load(&mut d)?;
        let dictionary = DictionaryState::load(&mut d)?;
        let operator = Vec::<u8>::load(&mut d)?;
        let output = Option::<(Vec<u8>, u64)>::load(&mut d)?.map(|(path, len)| OutputPosition {
            path: path_from_bytes(path),
            len,
        });
        let source = Vec::<u8>::load(&mut d)?;
        if !d.is_done() {
            return Err(CodecError::Invalid("bytes after the job state".into()));
        }
        Ok(Self {
            fingerprint,
            finished,
            position,
            counters,
            dictionary,
            operator,
            output,
            source,
        })
    }
}

/// A path as the checkpoint stores it: its bytes, whatever they are.
#[cfg(unix)]
fn path_bytes(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().to_vec()
}

#[cfg(unix)]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

#[cfg(not(unix))]
fn path_bytes(path: &Path) -> Vec<u8> {
    path.to_string_lossy().into_owned().into_bytes()
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

impl Persist for Counters {
    fn save(&self, e: &mut Encoder) {
        for n in [
            self.next_record,
            self.events_parsed,
            self.late,
            self.records,
            self.bytes,
            self.skipped,
            self.unmatched,
            self.events,
            self.after_until,
            self.filtered,
            self.windows,
            self.overflowed,
            self.batches,
        ] {
            n.save(e);
        }
        self.max_pane.save(e);
        self.clock_floor.save(e);
    }

    fn load(d: &mut Decoder<'_>) -> std::result::Result<Self, CodecError> {
        let mut n = [0_u64; 13];
        for slot in &mut n {
            *slot = u64::load(d)?;
        }
        let [next_record, events_parsed, late, records, bytes, skipped, unmatched, events, after_until, filtered, windows, overflowed, batches] =
            n;
        Ok(Self {
            next_record,
            events_parsed,
            max_pane: i64::load(d)?,
            late,
            clock_floor: i64::load(d)?,
            records,
            bytes,
            skipped,
            unmatched,
            events,
            after_until,
            filtered,
            windows,
            overflowed,
            batches,
        })
    }
}

impl Persist for DictionaryState {
    fn save(&self, e: &mut Encoder) {
        self.ids.save(e);
        self.lengths.save(e);
        self.text.save(e);
        self.range.save(e);
        self.free.save(e);
        self.reclaim_at.save(e);
        self.held.save(e);
    }

    fn load(d: &mut Decoder<'_>) -> std::result::Result<Self, CodecError> {
        let ids = Vec::<u32>::load(d)?;
        let lengths = Vec::<u32>::load(d)?;
        let text = Vec::<u8>::load(d)?;
        let total: u64 = lengths.iter().map(|&n| u64::from(n)).sum();
        if ids.len() != lengths.len() || total != text.len() as u64 {
            return Err(CodecError::Invalid(
                "dictionary ids, lengths and text do not match".into(),
            ));
        }
        Ok(Self {
            ids,
            lengths,
            text,
            range: u64::load(d)?,
            free: Vec::<u32>::load(d)?,
            reclaim_at: u64::load(d)?,
            held: Vec::<u64>::load(d)?,
        })
    }
}
