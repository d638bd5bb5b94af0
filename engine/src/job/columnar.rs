//! Columnar input (Arrow IPC, Parquet, binary events): blocks decoded into
//! batches on the job's thread ([`crate::columnar::Decoder`]) and pushed
//! through the same path as parsed pieces — lookup, lateness, `--until`,
//! the operator — with the same counts and reports. A mapped binary file
//! is decoded in place; other inputs come from a reader thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memmap2::{Mmap, UncheckedAdvice};

use super::{deliver, Input, Job, JobHooks, TimeMode};
use crate::columnar::{self, Block, ColumnarProblem, Decoder, Opened, Place, RECORD_BYTES};
use crate::error::{Error, Result};
use crate::ingest::Format;
use crate::source;

/// Rows decoded into one batch: the size of the window benchmarks' batches
/// (`bench/benches/window.rs`), large enough to spread over the workers.
const PIECE_ROWS: usize = 1 << 20;

impl Job<'_> {
    /// Runs until the input ends (`true`) or the job is stopped (`false`).
    pub(super) fn run_columnar(&mut self, hooks: &mut dyn JobHooks) -> Result<bool> {
        let place = match &self.config.input {
            Input::File(path) => Place::File {
                path,
                mmap: self.config.mmap.is_enabled(),
            },
            // Refused by `JobConfig::validate`.
            _ => Place::Stdin,
        };
        let origin = columnar::origin(place);
        let Some(names) = self.config.column_names() else {
            // Refused by `JobConfig::validate` too.
            return Err(Error::ColumnarInput {
                origin,
                problem: ColumnarProblem::NeedsAggregateJob {
                    format: self.format.name(),
                },
            });
        };
        let rate = matches!(self.config.time, TimeMode::Rate(_));
        let mut decoder = Decoder::new(&origin, names.clone(), rate);
        if self.format == Format::Binary {
            decoder.check_binary_names()?;
        }
        let total = match place {
            Place::File { path, .. } => std::fs::metadata(path).map_or(0, |m| m.len()),
            Place::Stdin => 0,
        };
        let origin: Arc<str> = origin.into();
        // The reader thread stops with the job.
        let readers = Arc::new(AtomicBool::new(false));
        let outcome = match columnar::open(self.format, place, &names, &readers)? {
            Opened::Mapped(map) => self.run_mapped(&map, &mut decoder, &origin, hooks),
            Opened::Stream { blocks, bytes } => {
                let outcome = self.run_blocks(&blocks, &bytes, total, &mut decoder, &origin, hooks);
                readers.store(true, Ordering::Relaxed);
                outcome
            }
        };
        readers.store(true, Ordering::Relaxed);
        outcome
    }

    /// A mapped binary events file, in pieces of whole events; the pages
    /// behind each piece are released.
    fn run_mapped(
        &mut self,
        map: &Mmap,
        decoder: &mut Decoder,
        origin: &Arc<str>,
        hooks: &mut dyn JobHooks,
    ) -> Result<bool> {
        let bytes: &[u8] = map;
        let step = PIECE_ROWS * RECORD_BYTES;
        let (mut pos, mut released) = (0, 0);
        while pos < bytes.len() {
            if self.stopped() {
                return Ok(false);
            }
            let started = Instant::now();
            let end = bytes.len().min(pos + step);
            decoder.binary(&bytes[pos..end], &self.dict)?;
            self.report.bytes += (end - pos) as u64;
            pos = end;
            self.aggregate_columns(decoder, origin, hooks)?;
            self.record_latency(started.elapsed());
            hooks.progress(pos as u64, bytes.len() as u64);
            let upto = pos / 4096 * 4096;
            if upto > released {
                // SAFETY: the range lies inside the mapping and nothing
                // borrows it any more: the piece's columns were copied out
                // (keys into the dictionary). A read-only file mapping
                // repopulates from the file if the pages are touched again.
                let _ = unsafe {
                    map.unchecked_advise_range(UncheckedAdvice::DontNeed, released, upto - released)
                };
                released = upto;
            }
        }
        Ok(true)
    }

    /// Blocks from the reader thread, joined into pieces of about
    /// [`PIECE_ROWS`] rows when they come faster than they are aggregated.
    fn run_blocks(
        &mut self,
        blocks: &Receiver<Result<Block>>,
        bytes: &AtomicU64,
        total: u64,
        decoder: &mut Decoder,
        origin: &Arc<str>,
        hooks: &mut dyn JobHooks,
    ) -> Result<bool> {
        let processing_time = self.config.time == TimeMode::Processing;
        loop {
            if self.stopped() {
                return Ok(false);
            }
            // Wake up at least at every pane boundary so that a quiet
            // input still yields its windows on schedule.
            let wait = if processing_time {
                let pane = self.config.spec.pane();
                let now = source::now_ms();
                Duration::from_millis(((now.div_euclid(pane) + 1) * pane - now).clamp(1, 100) as u64)
            } else {
                Duration::from_millis(100)
            };
            let mut next = blocks.recv_timeout(wait);
            let started = Instant::now();
            let mut ended = false;
            loop {
                match next {
                    Ok(Ok(block)) => self.decode(decoder, block)?,
                    Ok(Err(e)) => {
                        // The rows before the failure count.
                        self.aggregate_columns(decoder, origin, hooks)?;
                        return Err(e);
                    }
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => {
                        ended = true;
                        break;
                    }
                }
                if decoder.buffered() >= PIECE_ROWS {
                    break;
                }
                next = blocks.try_recv().map_err(|e| match e {
                    std::sync::mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                    std::sync::mpsc::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                });
            }
            if decoder.records() > 0 {
                self.report.bytes = bytes.load(Ordering::Relaxed);
                self.aggregate_columns(decoder, origin, hooks)?;
                self.record_latency(started.elapsed());
                if total > 0 {
                    hooks.progress(self.report.bytes.min(total), total);
                }
            }
            if ended {
                self.report.bytes = bytes.load(Ordering::Relaxed);
                return Ok(true);
            }
            if processing_time && !self.stopped() {
                let now = source::now_ms().max(self.clock_floor);
                self.clock_floor = now;
                let mut sink = deliver(hooks, &self.dict, &mut self.delivered, &self.stop);
                self.op.advance_to(now, &mut sink)?;
                drop(sink);
                self.publish();
            }
        }
    }

    fn decode(&mut self, decoder: &mut Decoder, block: Block) -> Result<()> {
        match block {
            Block::Binary(bytes) => decoder.binary(&bytes, &self.dict),
            #[cfg(feature = "columnar")]
            Block::Schema(schema) => decoder.arrow_schema(&schema),
            #[cfg(feature = "columnar")]
            Block::Arrow(batch) => decoder.arrow(&batch, &self.dict),
        }
    }

    /// Counts, reports and aggregates the rows decoded so far, as one
    /// batch, as [`Job::take_piece`] does for parsed ones; then releases
    /// the ids of keys nothing holds (a safe point: no id is in flight).
    fn aggregate_columns(
        &mut self,
        decoder: &mut Decoder,
        origin: &Arc<str>,
        hooks: &mut dyn JobHooks,
    ) -> Result<()> {
        let mut piece = decoder.take(&self.dict);
        // 1-based, as lines are: the record number of the piece's first row.
        let first = self.next_record + 1;
        self.events_parsed += piece.batch.len() as u64;
        self.report.filtered += piece.filtered;
        if let Some(mapper) = &mut self.mapper {
            self.report.unmatched += mapper.apply(&mut piece.batch)?;
        }
        for bad in &piece.errors {
            self.bad(origin, first + bad.line, &bad.reason, hooks)?;
        }
        self.report.skipped += piece.skipped - piece.errors.len() as u64;
        self.report.records += piece.records;
        let outcome = self.aggregate(&mut piece.batch, source::now_ms(), hooks);
        self.next_record += piece.records;
        decoder.recycle(piece.batch);
        outcome?;
        self.reclaim_keys();
        Ok(())
    }
}
