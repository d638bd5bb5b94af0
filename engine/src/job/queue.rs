//! Streamed input (stdin, pipes, sockets, generators, unmapped files): the
//! sources' chunks from a bounded queue, a header per origin, and the clock
//! of processing time.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use super::{bom_len, deliver, Input, Job, JobHooks, Notice, TimeMode, SEGMENT_BYTES};
use crate::error::Result;
use crate::ingest::{self, Format};
use crate::source::{self, Chunk, SourceEvent};

impl Job<'_> {
    /// Runs until the source ends (`true`) or the job is stopped (`false`).
    pub(super) fn run_queue(
        &mut self,
        rx: &Receiver<SourceEvent>,
        hooks: &mut dyn JobHooks,
    ) -> Result<bool> {
        let processing_time = self.config.time == TimeMode::Processing;
        let mut held: Option<SourceEvent> = None;
        loop {
            if self.stopped() {
                return Ok(false);
            }
            // Wake up at least at every pane boundary so that a quiet source
            // still yields its windows on schedule.
            let wait = if processing_time {
                let pane = self.config.spec.pane();
                let now = source::now_ms();
                Duration::from_millis(((now.div_euclid(pane) + 1) * pane - now).clamp(1, 100) as u64)
            } else {
                Duration::from_millis(100)
            };
            let event = match held.take() {
                Some(event) => Ok(event),
                None => rx.recv_timeout(wait),
            };
            match event {
                Ok(SourceEvent::Data(chunk)) => {
                    let (chunk, next) = coalesce(chunk, rx);
                    held = next;
                    self.process_chunk(&chunk, hooks)?;
                    // A cut: a stream has no position to come back to.
                    self.maybe_checkpoint(None, hooks)?;
                }
                Ok(SourceEvent::Notice(message)) => hooks.notice(&Notice::Source(&message)),
                Ok(SourceEvent::Closed(origin)) => {
                    self.parsers.remove(&origin);
                    self.ignored.remove(&origin);
                }
                Ok(SourceEvent::End) | Err(RecvTimeoutError::Disconnected) => return Ok(true),
                Ok(SourceEvent::Failed(e)) => return Err(e),
                Err(RecvTimeoutError::Timeout) => {}
            }
            if processing_time && !self.stopped() {
                let now = source::now_ms().max(self.clock_floor);
                self.clock_floor = now;
                let mut sink = deliver(hooks, &self.dict, &mut self.delivered, &self.stop);
                self.op.advance_to(now, &mut sink)?;
            }
            self.publish();
        }
    }

    fn process_chunk(&mut self, chunk: &Chunk, hooks: &mut dyn JobHooks) -> Result<()> {
        let mut data: &[u8] = &chunk.data;
        let mut first_line = chunk.first_line;
        let known =
            self.parsers.contains_key(&chunk.origin) || self.ignored.contains(&chunk.origin);
        if chunk.starts_origin || !known {
            self.ignored.remove(&chunk.origin);
            self.parsers.remove(&chunk.origin);
            // A byte-order mark is not part of the first record.
            let bom = if chunk.starts_origin {
                bom_len(data)
            } else {
                0
            };
            data = &data[bom..];
            self.report.bytes += bom as u64;
            let header_end = (self.format == Format::Csv)
                .then(|| memchr::memchr(b'\n', data).map_or(data.len(), |i| i + 1));
            let set_up = self.header_only(&chunk.origin, header_end.map(|end| &data[..end]));
            match set_up {
                Ok(()) => {}
                // One producer among many with a bad header: that producer
                // is ignored, the job goes on for the others.
                Err(e) if matches!(self.config.input, Input::Listen(_) | Input::Connect(_)) => {
                    hooks.notice(&Notice::ProducerIgnored {
                        origin: &chunk.origin,
                        error: &e,
                    });
                    self.ignored.insert(Arc::clone(&chunk.origin));
                }
                Err(e) => return Err(e),
            }
            if let Some(end) = header_end {
                data = &data[end..];
                first_line += 1;
                self.report.bytes += end as u64;
            }
        }
        if self.ignored.contains(&chunk.origin) {
            let lines = ingest::lines(data).count() as u64 + chunk.dropped_long_lines.len() as u64;
            self.report.records += lines;
            self.report.skipped += lines;
            self.report.bytes += data.len() as u64;
            return Ok(());
        }
        let origin = Arc::clone(&chunk.origin);
        self.process(
            &origin,
            data,
            first_line,
            chunk.arrival_ms,
            &chunk.dropped_long_lines,
            None,
            hooks,
        )?;
        Ok(())
    }
}

/// Appends the chunks already waiting from the same origin (up to half a
/// segment) so that they are parsed in parallel; never waits. The first
/// event that cannot be merged is handed back.
fn coalesce(mut chunk: Chunk, rx: &Receiver<SourceEvent>) -> (Chunk, Option<SourceEvent>) {
    while chunk.data.len() < SEGMENT_BYTES / 2 {
        match rx.try_recv() {
            Ok(SourceEvent::Data(next))
                if Arc::ptr_eq(&next.origin, &chunk.origin)
                    && !next.starts_origin
                    && next.dropped_long_lines.is_empty() =>
            {
                chunk.data.extend_from_slice(&next.data);
                chunk.position = next.position;
            }
            Ok(other) => return (chunk, Some(other)),
            Err(_) => break,
        }
    }
    (chunk, None)
}
