//! Cutting a byte stream into chunks of whole lines, shared by every
//! source that reads bytes: line splitting, the longest line allowed, the
//! position after each chunk, and the read loop ([`pump`]).

use std::io::{ErrorKind, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{now_ms, Chunk, SourceEvent, SourcePosition, CHUNK_BYTES};
use crate::error::{Error, Result};

/// A partial line's buffer keeps at most this much room once the line is
/// out (a burst of long lines does not pin its memory).
pub(super) const KEEP_PENDING_BYTES: usize = 64 << 10;

/// Cuts a byte stream into chunks of whole lines.
pub(super) struct LineChunker {
    pub(super) origin: Arc<str>,
    max_line_bytes: usize,
    pending: Vec<u8>,
    /// Line number of the first line in `pending`.
    next_line: u64,
    /// Inside a line longer than the limit: drop bytes until its newline.
    dropping: bool,
    /// Bytes of the over-long line being dropped, so far.
    dropping_bytes: u64,
    dropped: Vec<u64>,
    started: bool,
    /// Stream offset of the first byte not yet in a chunk or a dropped line
    /// (`None`: the source does not report positions).
    offset: Option<u64>,
}

impl LineChunker {
    /// A chunker of a stream that starts at its first line and reports no
    /// positions.
    pub(super) fn new(origin: Arc<str>, max_line_bytes: usize) -> Self {
        Self {
            origin,
            max_line_bytes,
            // Grown on demand: a producer that sends a line now and then
            // costs a few bytes, not a chunk.
            pending: Vec::new(),
            next_line: 1,
            dropping: false,
            dropping_bytes: 0,
            dropped: Vec::new(),
            started: false,
            offset: None,
        }
    }

    /// Every chunk carries the byte offset after it, the stream starting at
    /// `offset` (a file opened there). A stream resumed past its start does
    /// not start its origin (no CSV header leads it), and its line numbers
    /// count from where it resumed.
    pub(super) fn with_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self.started = offset > 0;
        self
    }

    /// Takes in bytes; returns a chunk of the whole lines gathered so far
    /// once there are enough (or whatever is whole, with `force`).
    pub(super) fn feed(&mut self, mut bytes: &[u8], force: bool) -> Option<Chunk> {
        if self.dropping {
            let Some(end) = memchr::memchr(b'\n', bytes) else {
                self.dropping_bytes += bytes.len() as u64;
                return None;
            };
            self.dropping = false;
            self.skip_dropped(end as u64 + 1);
            bytes = &bytes[end + 1..];
        }
        self.pending.extend_from_slice(bytes);
        let last_newline = memchr::memrchr(b'\n', &self.pending);
        let tail_start = last_newline.map_or(0, |i| i + 1);
        if self.pending.len() - tail_start > self.max_line_bytes {
            // An over-long partial line: keep no more of it than this. The
            // whole lines before it go out first, so that line numbers stay
            // in order.
            self.dropping_bytes = (self.pending.len() - tail_start) as u64;
            self.pending.truncate(tail_start);
            self.dropping = true;
            if tail_start > 0 {
                let lines = std::mem::take(&mut self.pending);
                return Some(self.emit(lines));
            }
            self.trim();
            return None;
        }
        if tail_start == 0 || (!force && tail_start < CHUNK_BYTES) {
            self.trim();
            return None;
        }
        let tail = self.pending.split_off(tail_start);
        let lines = std::mem::replace(&mut self.pending, tail);
        Some(self.emit(lines))
    }

    /// The over-long line being dropped has ended, `last` bytes into this
    /// read: it counts as a line, and its bytes as read.
    fn skip_dropped(&mut self, last: u64) {
        self.dropped.push(self.next_line);
        self.next_line += 1;
        if let Some(offset) = &mut self.offset {
            *offset += std::mem::take(&mut self.dropping_bytes) + last;
        }
        self.dropping_bytes = 0;
    }

    /// Gives back the room a burst left behind.
    fn trim(&mut self) {
        if self.pending.capacity() > KEEP_PENDING_BYTES
            && self.pending.len() <= KEEP_PENDING_BYTES / 2
        {
            self.pending.shrink_to(KEEP_PENDING_BYTES);
        }
    }

    /// Bytes held for the line in progress (and room for more).
    #[cfg(test)]
    pub(super) fn held_bytes(&self) -> usize {
        self.pending.capacity()
    }

    /// Whatever is left when the stream ends; a final line without a
    /// newline is a record when the stream ended cleanly.
    pub(super) fn finish(&mut self, clean: bool) -> Option<Chunk> {
        if self.dropping {
            self.dropping = false;
            self.skip_dropped(0);
        }
        if !clean {
            let keep = memchr::memrchr(b'\n', &self.pending).map_or(0, |i| i + 1);
            self.pending.truncate(keep);
        }
        if self.pending.is_empty() && self.dropped.is_empty() {
            return None;
        }
        let data = std::mem::take(&mut self.pending);
        Some(self.emit(data))
    }

    fn emit(&mut self, data: Vec<u8>) -> Chunk {
        let lines = memchr::memchr_iter(b'\n', &data).count() as u64
            + u64::from(!data.is_empty() && !data.ends_with(b"\n"));
        if let Some(offset) = &mut self.offset {
            *offset += data.len() as u64;
        }
        let chunk = Chunk {
            origin: Arc::clone(&self.origin),
            first_line: self.next_line,
            arrival_ms: now_ms(),
            dropped_long_lines: std::mem::take(&mut self.dropped),
            starts_origin: !self.started,
            position: self.offset.map(SourcePosition::Byte),
            data,
        };
        self.started = true;
        self.next_line += lines;
        chunk
    }
}

/// How a stream ended.
pub(super) enum StreamEnd {
    /// End of file / orderly shutdown by the peer.
    Clean,
    /// The connection broke.
    Broken(std::io::Error),
    /// Nothing arrived for the idle timeout.
    Idle(Duration),
    /// The queue's receiver is gone, or `stop` is set: the job is over.
    Stopped,
}

/// Reads `reader` to its end, sending chunks of whole lines; a read that
/// times out only flushes what is gathered (so a slow trickle of lines is
/// not held back), or ends the stream once nothing has come for `idle`.
pub(super) fn pump(
    reader: &mut impl Read,
    chunker: &mut LineChunker,
    tx: &SyncSender<SourceEvent>,
    stop: &AtomicBool,
    idle: Option<Duration>,
) -> StreamEnd {
    let mut buf = vec![0_u8; 256 * 1024];
    let mut last_data = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            return StreamEnd::Stopped;
        }
        let (n, force) = match reader.read(&mut buf) {
            Ok(0) => {
                if let Some(chunk) = chunker.finish(true) {
                    if tx.send(SourceEvent::Data(chunk)).is_err() {
                        return StreamEnd::Stopped;
                    }
                }
                return StreamEnd::Clean;
            }
            Ok(n) => {
                last_data = Instant::now();
                (n, false)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if let Some(idle) = idle.filter(|&idle| last_data.elapsed() >= idle) {
                    // Whatever is whole goes out; the partial line of a
                    // connection that is given up on is dropped.
                    if let Some(chunk) = chunker.finish(false) {
                        if tx.send(SourceEvent::Data(chunk)).is_err() {
                            return StreamEnd::Stopped;
                        }
                    }
                    return StreamEnd::Idle(idle);
                }
                (0, true)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                if let Some(chunk) = chunker.finish(false) {
                    if tx.send(SourceEvent::Data(chunk)).is_err() {
                        return StreamEnd::Stopped;
                    }
                }
                return StreamEnd::Broken(e);
            }
        };
        // Flush once a chunk's worth has gathered, or whenever the source has
        // nothing more for now (a short read, or a read timeout): lines that
        // trickle in are not held back.
        if let Some(chunk) = chunker.feed(&buf[..n], force || n < buf.len()) {
            if tx.send(SourceEvent::Data(chunk)).is_err() {
                return StreamEnd::Stopped;
            }
        }
    }
}

/// Reads a byte stream (a file, a pipe, stdin) to its end: a read error
/// fails the source, naming its origin.
pub(super) fn read_to_end(
    reader: &mut impl Read,
    chunker: &mut LineChunker,
    tx: &SyncSender<SourceEvent>,
    stop: &AtomicBool,
) -> Result<()> {
    match pump(reader, chunker, tx, stop, None) {
        StreamEnd::Clean | StreamEnd::Stopped | StreamEnd::Idle(_) => Ok(()),
        StreamEnd::Broken(e) => Err(Error::io(&chunker.origin, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunker_keeps_partial_lines_and_drops_over_long_ones() {
        let mut c = LineChunker::new("t".into(), 8);
        assert!(c.feed(b"ab\ncd", false).is_none());
        let chunk = c.feed(b"e\nxyz", true).unwrap();
        assert_eq!(chunk.data, b"ab\ncde\n");
        assert_eq!(chunk.first_line, 1);
        assert_eq!(chunk.position, None, "no positions unless asked for");
        // "xyz" + 10 more bytes: over the limit, dropped until its newline.
        assert!(c.feed(b"0123456789", true).is_none());
        let chunk = c.feed(b"tail\nok\n", true).unwrap();
        assert_eq!(chunk.data, b"ok\n");
        assert_eq!(chunk.dropped_long_lines, [3]);
        assert_eq!(chunk.first_line, 4);
        assert!(c.feed(b"last", false).is_none());
        let end = c.finish(true).unwrap();
        assert_eq!((end.data.as_slice(), end.first_line), (&b"last"[..], 5));
    }

    #[test]
    fn positions_count_every_byte_read_including_dropped_lines() {
        let mut c = LineChunker::new("t".into(), 8).with_offset(100);
        let at = |chunk: Option<Chunk>| chunk.unwrap().position;
        assert_eq!(
            at(c.feed(b"ab\ncd\nx", true)),
            Some(SourcePosition::Byte(106))
        );
        // "x" + 10 bytes is over the limit; the line ends 3 bytes on.
        assert!(c.feed(b"0123456789", true).is_none());
        assert_eq!(
            at(c.feed(b"ab\nok\n", true)),
            Some(SourcePosition::Byte(106 + 11 + 3 + 3))
        );
        // A broken stream's partial line is not read: it is read again on
        // resuming.
        assert!(c.feed(b"part", false).is_none());
        assert!(c.finish(false).is_none());
        assert_eq!(c.offset, Some(123));
        // A stream resumed past its start does not lead with a header.
        let mut resumed = LineChunker::new("t".into(), 8).with_offset(5);
        assert!(!resumed.feed(b"a\n", true).unwrap().starts_origin);
    }

    #[test]
    fn a_burst_of_long_lines_does_not_pin_memory() {
        let mut c = LineChunker::new("t".into(), 1 << 20);
        assert_eq!(c.held_bytes(), 0, "nothing held before the first byte");
        // A 900 KiB partial line, then its end: the room goes out with it.
        assert!(c.feed(&vec![b'x'; 900 << 10], true).is_none());
        assert!(c.held_bytes() >= 900 << 10);
        assert!(c.feed(b"\nab", true).is_some());
        assert!(c.held_bytes() <= KEEP_PENDING_BYTES, "{}", c.held_bytes());
        // An over-long line is dropped, and its room given back.
        assert!(c.feed(&vec![b'y'; (1 << 20) + 10], true).is_none());
        assert!(c.held_bytes() <= KEEP_PENDING_BYTES, "{}", c.held_bytes());
        let chunk = c.feed(b"tail\nok\n", true).unwrap();
        assert_eq!(chunk.data, b"ok\n");
        assert_eq!(chunk.dropped_long_lines, [2]);
    }

    #[test]
    fn a_broken_stream_loses_only_its_partial_line() {
        let mut c = LineChunker::new("t".into(), 100);
        assert!(c.feed(b"a\nb\npart", false).is_none());
        assert_eq!(c.finish(false).unwrap().data, b"a\nb\n");
    }
}
