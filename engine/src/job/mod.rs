//! A whole windowed job: a source, a record format, a time mode, a window
//! and an aggregation, run until the source ends (or the job is stopped).
//! The `engine` binary is a command line over this module.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::batch::Batch;
use crate::dictionary::{Dictionary, KeyReclaimer};
use crate::error::{Error, Result};
use crate::ingest::{self, Format, ParseBuffer, Parsed, Parser, RecordError};
use crate::lookup::KeyMapper;
use crate::source::{self, ConnectSource, FileSource, ListenSource, Source, StdinSource};
use crate::window::WindowAggregator;

/// Bytes of a memory-mapped file processed per step; the pages behind a
/// step are released once it is done, so resident memory stays bounded.
const SEGMENT_BYTES: usize = 16 << 20;

/// Batch latencies a report keeps (a uniform sample beyond that).
const LATENCY_SAMPLES: usize = 100_000;

/// Bytes per parallel parsing task.
const PIECE_BYTES: usize = 256 << 10;

mod checkpoints;
mod columnar;
mod config;
mod deliver;
mod kafka;
mod mmap;
mod publish;
mod queue;
mod time;

pub use config::{
    Input, JobConfig, JobHooks, JobKind, JobReport, MmapChoice, Notice, OnError, TimeMode,
};
use deliver::{deliver, Delivered};

/// Runs `config` to its end, reporting through `hooks`; `stop` ends it early
/// (Ctrl-C): the windows that had closed are out, the open ones are not, and
/// the report says it was interrupted. The job also sets `stop` itself when
/// writing a window fails, so that no more are computed.
pub fn run(
    config: &JobConfig,
    hooks: &mut dyn JobHooks,
    stop: &Arc<AtomicBool>,
) -> Result<JobReport> {
    run_from(config, hooks, stop, None)
}

/// Whether `config`'s job can be checkpointed (its input replays from an
/// offset, or is a stream that cannot replay at all).
///
/// # Errors
///
/// [`crate::checkpoint::CheckpointError::Unsupported`] naming the input.
pub fn check_checkpointable(config: &JobConfig) -> Result<()> {
    checkpoints::check_supported(config)
}

/// [`run`], resuming from a checkpoint of the same job
/// ([`crate::checkpoint::load`]): a file is read on from the checkpoint's
/// offset, a stream from wherever it is now (what was in flight at the
/// crash is lost). With `config.checkpoint` set, checkpoints are written as
/// the job goes and once more when it has finished; a checkpoint of a
/// finished job resumes to its final report at once.
pub fn run_from(
    config: &JobConfig,
    hooks: &mut dyn JobHooks,
    stop: &Arc<AtomicBool>,
    resume: Option<&crate::checkpoint::Resume>,
) -> Result<JobReport> {
    config.validate()?;
    checkpoints::check_supported(config)?;
    // One pool for parsing and the window operator.
    let pool = crate::window::build_pool(config.threads, "engine-worker")?;
    let mut job = Job {
        config,
        format: config.effective_format(),
        dict: Dictionary::new(),
        reclaimer: KeyReclaimer::new(),
        op: config.operator(stop, &pool)?,
        stop: Arc::clone(stop),
        delivered: Delivered::default(),
        max_pane: i64::MIN,
        late: 0,
        pool,
        parsers: HashMap::new(),
        ignored: std::collections::HashSet::new(),
        spare: Vec::new(),
        clock_floor: i64::MIN,
        sampler: SplitMix64(7),
        mapper: match &config.kind {
            JobKind::Aggregate {
                lookup: Some(table),
                ..
            } => Some(KeyMapper::new(Arc::clone(table))),
            _ => None,
        },
        next_record: 0,
        events_parsed: 0,
        report: JobReport::default(),
        started: Instant::now(),
        checkpoints: None,
        resume_at: None,
        kafka: match &config.input {
            Input::Kafka(options) => Some(kafka::KafkaState::new(options)),
            _ => None,
        },
    };
    if let Some(resume) = resume {
        job.restore(resume)?;
        if resume.finished() {
            job.report.checkpoint_finished = true;
            job.report.windows = job.delivered.windows;
            job.report.elapsed = job.started.elapsed();
            return Ok(job.report);
        }
    }
    if let Some(settings) = &config.checkpoint {
        job.checkpoints = Some(checkpoints::Checkpoints::open(settings, config)?);
    }
    let source_ended = match &config.input {
        Input::Kafka(_) => {
            let outcome = job.run_kafka(hooks);
            job.settle(outcome)? && !job.stop.load(Ordering::Relaxed)
        }
        // Arrow, Parquet, binary events: read as columns.
        _ if job.format.is_columnar() => {
            let outcome = job.run_columnar(hooks);
            job.settle(outcome)?
        }
        // Mapped only when the caller vouched for the file staying unchanged
        // (`MmapChoice::auto` is unsafe for that reason).
        Input::File(path) if config.mmap.is_enabled() && is_regular_file(path) => {
            let outcome = job.run_file(path, hooks);
            job.settle(outcome)?
        }
        input => job.run_stream(input, hooks)?,
    };
    let finished = job.finish(source_ended, hooks);
    let completed = job.settle(finished);
    // A checkpoint still being written is durable (or its error known)
    // before the job returns.
    let written = job
        .checkpoints
        .as_mut()
        .map_or(Ok(()), checkpoints::Checkpoints::finish);
    let completed = completed?;
    written?;
    if completed && source_ended && !job.stop.load(Ordering::Relaxed) {
        // The last checkpoint says the job is over: a rerun does nothing.
        job.checkpoint(None, true, hooks)?;
        job.report.checkpoint_finished = job.checkpoints.is_some();
    }
    job.close_kafka(completed && source_ended && !job.stop.load(Ordering::Relaxed));
    job.report.interrupted = (!source_ended || !completed) && job.stop.load(Ordering::Relaxed);
    Ok(job.report)
}

impl Job<'_> {
    /// Runs a streamed input (stdin, a socket, a generator, a file not
    /// mapped) to its end (`true`) or until the job is stopped (`false`).
    fn run_stream(&mut self, input: &Input, hooks: &mut dyn JobHooks) -> Result<bool> {
        let (tx, rx) = source::queue();
        // The readers stop with the job (and so with `stop`): a flag of
        // their own, so that ending them does not interrupt the windows
        // still to be written.
        let sources_stop = Arc::new(AtomicBool::new(false));
        let readers = || Arc::clone(&sources_stop);
        let max = self.config.max_line_bytes;
        let reader: Box<dyn Source> = match input {
            Input::Stdin => Box::new(StdinSource::new(max)),
            // A file not to be mapped, a pipe or a device: read it as a
            // stream.
            Input::File(path) => Box::new(FileSource::new(path, max)),
            Input::Connect(addr) => Box::new(ConnectSource::new(addr, max, &self.config.socket)?),
            Input::Listen(addr) => {
                let listener = ListenSource::bind(addr, max, &self.config.socket)?;
                hooks.notice(&Notice::Listening(listener.local_addr()));
                Box::new(listener)
            }
            Input::Generate(generator) => Box::new(generator.source()),
            Input::Kafka(_) => unreachable!("Kafka is read by run_kafka"),
        };
        source::spawn(reader, tx, readers())?;
        let outcome = self.run_queue(&rx, hooks);
        let outcome = self.settle(outcome);
        // Readers blocked on a full queue see it closed and end.
        sources_stop.store(true, Ordering::Relaxed);
        drop(rx);
        // A source that ended while the job was being stopped does not
        // make the open windows complete.
        Ok(outcome? && !self.stop.load(Ordering::Relaxed))
    }
}

struct Job<'c> {
    config: &'c JobConfig,
    format: Format,
    dict: Dictionary,
    /// Releases the dictionary ids of keys that left every window, so that
    /// memory follows the live keys of an endless stream.
    reclaimer: KeyReclaimer,
    op: WindowAggregator,
    /// Set by the caller (Ctrl-C, SIGTERM), the end of `run_for`, or a failed write: the
    /// operator checks it at every pane it closes.
    stop: Arc<AtomicBool>,
    /// Windows written so far, and the error that stopped writing them.
    delivered: Delivered,
    /// Event-time jobs: the latest pane any record so far fell in. A record
    /// of an earlier pane is late whatever the chunking of the input.
    max_pane: i64,
    /// Records dropped as late by that rule.
    late: u64,
    pool: Arc<rayon::ThreadPool>,
    /// One parser per origin: each CSV stream has its own header.
    /// Shared (`Arc`), so that a round of pieces borrows its parser while
    /// the job aggregates.
    parsers: HashMap<Arc<str>, Arc<Parser>>,
    /// Producers whose CSV header was unusable: their lines are skipped.
    ignored: std::collections::HashSet<Arc<str>>,
    /// Parsed chunks to reuse.
    spare: Vec<ParseBuffer>,
    /// Processing time: the clock the windows have been closed up to.
    clock_floor: i64,
    /// Picks the latencies kept in the report's sample.
    sampler: SplitMix64,
    /// Re-keys events through the job's lookup table.
    mapper: Option<KeyMapper>,
    next_record: u64,
    /// Events the parsers produced (before the lookup).
    events_parsed: u64,
    report: JobReport,
    started: Instant,
    checkpoints: Option<checkpoints::Checkpoints>,
    /// Where a resumed file job reads on from.
    resume_at: Option<crate::checkpoint::FilePosition>,
    /// A Kafka job's partitions.
    kafka: Option<kafka::KafkaState>,
}

impl Job<'_> {
    fn deadline_passed(&self) -> bool {
        self.config
            .run_for
            .is_some_and(|d| self.started.elapsed() >= d)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.deadline_passed()
    }

    /// The outcome of a step: a failed write wins over everything; an
    /// operator that saw the stop flag means the job was stopped (`false`).
    fn settle(&mut self, outcome: Result<bool>) -> Result<bool> {
        if let Some(e) = self.delivered.failed.take() {
            return Err(e);
        }
        match outcome {
            Err(Error::Interrupted) => Ok(false),
            other => other,
        }
    }

    /// Sets up the parser of an origin from its CSV header line.
    fn header_only(&mut self, origin: &str, header: Option<&[u8]>) -> Result<()> {
        let header = match header {
            Some(h) => Some(
                std::str::from_utf8(h.strip_suffix(b"\n").unwrap_or(h))
                    .map_err(|_| Error::CsvHeaderNotUtf8 {
                        origin: origin.to_owned(),
                    })?
                    // A byte-order mark is not part of the first column's name.
                    .trim_start_matches('\u{feff}'),
            ),
            None => None,
        };
        if self.format == Format::Csv && header.is_some_and(|h| h.trim().is_empty()) {
            return Err(Error::EmptyCsvHeader {
                origin: origin.to_owned(),
            });
        }
        let parser = self.config.parser(header)?;
        self.parsers.insert(origin.into(), Arc::new(parser));
        Ok(())
    }

    /// Parses `data` (whole lines from `origin`, starting at line
    /// `first_line`) in parallel pieces and aggregates them in order. Returns
    /// the number of lines.
    /// `file` is where `data` starts in a mapped file and where its segment
    /// ends: the job may checkpoint between rounds, at the position reached.
    #[allow(clippy::too_many_arguments)] // One call per kind of source.
    fn process(
        &mut self,
        origin: &Arc<str>,
        data: &[u8],
        first_line: u64,
        arrival_ms: i64,
        dropped_long_lines: &[u64],
        file: Option<(u64, u64)>,
        hooks: &mut dyn JobHooks,
    ) -> Result<u64> {
        let started = Instant::now();
        for &line in dropped_long_lines {
            let reason = RecordError::LineTooLong {
                bytes: None,
                max: self.config.max_line_bytes,
            };
            self.bad(origin, line, &reason, hooks)?;
            // A record all the same: it has its index in virtual time.
            self.report.records += 1;
            self.next_record += 1;
        }
        // Every origin's parser is set up from its first chunk (or before a
        // file's first segment); ignored origins never get here.
        let parser = Arc::clone(
            self.parsers
                .get(origin)
                .expect("a parser is set up before an origin's records"),
        );
        let parser = &*parser;
        let pieces = ingest::split_at_lines(data, PIECE_BYTES);
        // Pieces are parsed in rounds of two per thread and aggregated
        // before the next round: the parsed columns of a round are still in
        // cache when they are aggregated, and the buffers (recycled, so a
        // steady stream allocates nothing) stay few whatever the segment.
        let round = 2 * self.pool.current_num_threads();
        while self.spare.len() < round.min(pieces.len()) {
            self.spare.push(ParseBuffer::default());
        }
        let mut line = first_line;
        let mut outcome = Ok(());
        let mut consumed = 0_usize;
        for group in pieces.chunks(round) {
            let outs = &mut self.spare[..group.len()];
            let dict = &self.dict;
            let parsed: Vec<Result<()>> = if group.len() > 1 {
                self.pool.install(|| {
                    group
                        .par_iter()
                        .zip(outs.par_iter_mut())
                        .map(|(p, out)| parser.parse_into(p, dict, out))
                        .collect()
                })
            } else {
                group
                    .iter()
                    .zip(outs.iter_mut())
                    .map(|(p, out)| parser.parse_into(p, dict, out))
                    .collect()
            };
            for (index, result) in parsed.into_iter().enumerate() {
                if let Err(e) = result {
                    outcome = Err(e);
                    break;
                }
                // The buffers move into a batch and come back once it is
                // aggregated.
                let mut piece = self.spare[index].take(&self.dict);
                outcome = self.take_piece(&mut piece, origin, line, arrival_ms, hooks);
                line += piece.lines;
                self.spare[index].recycle(piece.batch);
                if outcome.is_err() {
                    break;
                }
            }
            if outcome.is_err() {
                break;
            }
            let round_bytes: usize = group.iter().map(|p| p.len()).sum();
            self.report.bytes += round_bytes as u64;
            consumed += round_bytes;
            // A cut: every piece so far is aggregated and its windows are
            // out. Not after the last round: the segment's end is the
            // next call's start, and keys are reclaimed in between.
            if let (Some((offset, segment_end)), true) = (file, consumed < data.len()) {
                let position = crate::checkpoint::FilePosition {
                    offset: offset + consumed as u64,
                    segment_end,
                    line,
                };
                self.maybe_checkpoint(Some(position), hooks)?;
            }
        }
        // Bytes of rounds not aggregated (an error, a stop) count as read.
        self.report.bytes += (data.len() - consumed) as u64;
        outcome?;
        self.reclaim_keys();
        self.record_latency(started.elapsed());
        Ok(line - first_line)
    }

    /// Counts, reports and aggregates one parsed piece.
    fn take_piece(
        &mut self,
        piece: &mut Parsed,
        origin: &Arc<str>,
        line: u64,
        arrival_ms: i64,
        hooks: &mut dyn JobHooks,
    ) -> Result<()> {
        self.events_parsed += piece.batch.len() as u64;
        // Good records that yield no event: the filter rejected them, a
        // grep line without the pattern, a blank line of words.
        self.report.filtered += piece
            .records
            .saturating_sub(piece.skipped + records_with_events(&piece.batch));
        if let Some(mapper) = &mut self.mapper {
            self.report.unmatched += mapper.apply(&mut piece.batch)?;
        }
        for bad in &piece.errors {
            self.bad(origin, line + bad.line, &bad.reason, hooks)?;
        }
        self.report.skipped += piece.skipped - piece.errors.len() as u64;
        // Read is read, also when the job is stopped while aggregating.
        self.report.records += piece.records;
        let outcome = if self.kafka.is_some() {
            self.kafka_piece(&mut piece.batch, line, arrival_ms, hooks)
        } else {
            self.aggregate(&mut piece.batch, arrival_ms, hooks)
        };
        self.next_record += piece.records;
        outcome
    }

    /// Releases the ids of keys nothing holds any more. Safe here: every
    /// piece parsed so far has been aggregated, and every window emitted has
    /// been written (its keys turned into strings) — no id is in flight
    /// outside the operator. The parsers' key caches and the lookup mapper
    /// see the dictionary's new epoch and start afresh.
    fn reclaim_keys(&mut self) {
        let op = &mut self.op;
        let kafka = &self.kafka;
        self.reclaimer.maybe_reclaim(&self.dict, |mark| {
            op.for_each_held_key(mark);
            // Events waiting for the other partitions hold their keys too.
            if let Some(kafka) = kafka {
                kafka.for_each_waiting_key(mark);
            }
        });
    }

    /// Keeps a uniform sample of batch latencies (reservoir sampling) and
    /// the maximum.
    fn record_latency(&mut self, latency: Duration) {
        let report = &mut self.report;
        report.batches += 1;
        report.max_batch_latency = report.max_batch_latency.max(latency);
        if report.batch_latencies.len() < LATENCY_SAMPLES {
            report.batch_latencies.push(latency);
        } else {
            let slot = self.sampler.below(report.batches) as usize;
            if slot < LATENCY_SAMPLES {
                report.batch_latencies[slot] = latency;
            }
        }
        self.publish_batch(latency);
    }

    fn bad(
        &mut self,
        origin: &str,
        line: u64,
        reason: &RecordError,
        hooks: &mut dyn JobHooks,
    ) -> Result<()> {
        if self.config.on_error == OnError::Fail {
            return Err(Error::BadRecord {
                origin: origin.to_owned(),
                line,
                reason: reason.clone(),
            });
        }
        self.report.skipped += 1;
        hooks.bad_record(origin, line, reason);
        Ok(())
    }

    /// Emits the last windows: up to `until`, or, when the source ended,
    /// every window that holds a record. A stopped job emits no window that
    /// had not closed: it would be incomplete.
    fn finish(&mut self, source_ended: bool, hooks: &mut dyn JobHooks) -> Result<bool> {
        let outcome = {
            let mut sink = deliver(hooks, &self.dict, &mut self.delivered, &self.stop);
            match (self.config.until, source_ended) {
                (Some(until), true) => self.op.advance_to(until, &mut sink),
                (None, true) => self.op.finish(&mut sink),
                (_, false) => Ok(()),
            }
        };
        // The last windows' counts, before the report's own adjustments.
        self.publish();
        let report = &mut self.report;
        report.windows = self.delivered.windows;
        report.overflowed = self.delivered.overflowed;
        report.late = self.late + self.op.stats().late_events;
        // Events the operator dropped as late were counted as events first.
        report.events -= self.op.stats().late_events.min(report.events);
        report.in_windows = report.records.saturating_sub(
            report.skipped + report.filtered + report.late + report.unmatched + report.after_until,
        );
        report.elapsed = self.started.elapsed();
        outcome?;
        if let JobKind::Aggregate {
            filter: Some((field, text)),
            ..
        } = &self.config.kind
        {
            // A misspelt NDJSON member cannot be caught up front (members
            // are not declared): say so when it filtered everything out.
            let good = self.report.records - self.report.skipped;
            if good > 0 && self.events_parsed == 0 {
                hooks.notice(&Notice::FilterMatchedNothing { field, text });
            }
        }
        Ok(true)
    }
}

/// Records among a piece's events: each record's events are adjacent.
fn records_with_events(piece: &Batch) -> u64 {
    let r = piece.records();
    u64::from(!r.is_empty()) + r.windows(2).filter(|w| w[0] != w[1]).count() as u64
}

/// Length of a UTF-8 byte-order mark at the start of `bytes` (0 or 3).
fn bom_len(bytes: &[u8]) -> usize {
    bytes.len() - ingest::strip_bom(bytes).len()
}

/// Whether `path` is a regular file (which can be memory-mapped); a missing
/// path counts as one, so that mapping reports it.
fn is_regular_file(path: &std::path::Path) -> bool {
    std::fs::metadata(path).map_or(true, |m| m.is_file())
}

/// The report's sampler of batch latencies: SplitMix64, a tiny
/// well-mixed PRNG (statistical quality is all a reservoir sample needs).
struct SplitMix64(u64);

impl SplitMix64 {
    /// A uniform number in `0..n` (`n > 0`), by Lemire's multiply-shift.
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((u128::from(z) * u128::from(n)) >> 64) as u64
    }
}
