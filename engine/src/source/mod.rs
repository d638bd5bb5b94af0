//! Sources of newline-delimited records: stdin, TCP sockets (connecting or
//! listening) and generators, each feeding a bounded queue of chunks of whole
//! lines; memory-mapped files are read in place by the job instead.
//!
//! The queue is what keeps memory bounded when a source is faster than the
//! engine: a full queue blocks the reader, which stops reading its socket, so
//! TCP's flow control slows the peer down.
//!
//! Resources per connection are bounded too: `--listen` takes at most
//! [`SocketOptions::max_connections`] producers at once (more are closed at
//! once), all of them read by one thread with one read buffer; a producer
//! costs its socket and the partial line it is in the middle of (at most the
//! longest line allowed). A blocked send always ends: the job drops the
//! queue's receiver when it ends, which fails every send.

use std::io::{ErrorKind, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::Error;

mod connect;
mod listen;

/// Bytes a reader gathers before handing a chunk to the queue.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Chunks the queue holds: with [`CHUNK_BYTES`], at most 16 MiB in flight.
pub const QUEUE_CHUNKS: usize = 16;

/// Default of [`SocketOptions::max_connections`].
pub const MAX_CONNECTIONS: usize = 256;

/// A partial line's buffer keeps at most this much room once the line is
/// out (a burst of long lines does not pin its memory).
const KEEP_PENDING_BYTES: usize = 64 << 10;

/// Bytes read from one producer before the others get their turn.
const TURN_BYTES: usize = 256 << 10;

/// How often a blocked reader wakes up to see whether the job is over.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Limits and timeouts of the socket sources (`--connect`, `--listen`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOptions {
    /// `--listen`: producers connected at once; a producer over the cap is
    /// closed as soon as it is accepted (and the refusal logged).
    pub max_connections: usize,
    /// `--connect`: how long the engine goes on trying when no connection
    /// can be made, for the first connection and for every reconnection;
    /// then the source fails. `None`: it tries until the job ends.
    pub connect_timeout: Option<Duration>,
    /// A connection that sends nothing for this long is closed (`--connect`
    /// then connects again). `None`: a silent peer is waited for; TCP
    /// keepalive still notices a peer whose host is gone.
    pub idle_timeout: Option<Duration>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            max_connections: MAX_CONNECTIONS,
            connect_timeout: None,
            idle_timeout: None,
        }
    }
}

/// Whole lines from one origin.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// The source the lines came from (`stdin`, a peer address, …).
    pub origin: Arc<str>,
    /// Whole lines, each ending with `\n` except perhaps the last of a
    /// stream that ended without one.
    pub data: Vec<u8>,
    /// 1-based number of the first line within its origin.
    pub first_line: u64,
    /// Wall-clock time the chunk was received, ms since the epoch.
    pub arrival_ms: i64,
    /// Lines longer than the limit that the reader dropped before this chunk
    /// (their line numbers): they were never held in memory whole.
    pub dropped_long_lines: Vec<u64>,
    /// Whether this is the first chunk of its origin (a CSV header leads it).
    pub starts_origin: bool,
}

/// What a source says.
#[derive(Debug)]
pub enum SourceEvent {
    /// Lines.
    Data(Chunk),
    /// Something worth telling the user (a reconnection).
    Notice(String),
    /// One stream of a source (a producer of `--listen`) has ended after its
    /// last chunk: its per-stream state (a CSV header) can be let go, so
    /// that memory follows the producers connected, not those ever seen.
    Closed(Arc<str>),
    /// The source has ended.
    End,
    /// The source failed and cannot go on.
    Failed(Error),
}

/// The wall clock, ms since the epoch.
#[must_use]
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Cuts a byte stream into chunks of whole lines.
struct LineChunker {
    origin: Arc<str>,
    max_line_bytes: usize,
    pending: Vec<u8>,
    /// Line number of the first line in `pending`.
    next_line: u64,
    /// Inside a line longer than the limit: drop bytes until its newline.
    dropping: bool,
    dropped: Vec<u64>,
    started: bool,
}

impl LineChunker {
    fn new(origin: Arc<str>, max_line_bytes: usize) -> Self {
        Self {
            origin,
            max_line_bytes,
            // Grown on demand: a producer that sends a line now and then
            // costs a few bytes, not a chunk.
            pending: Vec::new(),
            next_line: 1,
            dropping: false,
            dropped: Vec::new(),
            started: false,
        }
    }

    /// Takes in bytes; returns a chunk of the whole lines gathered so far
    /// once there are enough.
    fn feed(&mut self, mut bytes: &[u8], force: bool) -> Option<Chunk> {
        if self.dropping {
            match memchr::memchr(b'\n', bytes) {
                Some(end) => {
                    self.dropping = false;
                    self.dropped.push(self.next_line);
                    self.next_line += 1;
                    bytes = &bytes[end + 1..];
                }
                None => return None,
            }
        }
        self.pending.extend_from_slice(bytes);
        let last_newline = memchr::memrchr(b'\n', &self.pending);
        let tail_start = last_newline.map_or(0, |i| i + 1);
        if self.pending.len() - tail_start > self.max_line_bytes {
            // An over-long partial line: keep no more of it than this. The
            // whole lines before it go out first, so that line numbers stay
            // in order.
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
    fn held_bytes(&self) -> usize {
        self.pending.capacity()
    }

    /// Whatever is left when the stream ends; a final line without a
    /// newline is a record when the stream ended cleanly.
    fn finish(&mut self, clean: bool) -> Option<Chunk> {
        if self.dropping {
            self.dropping = false;
            self.dropped.push(self.next_line);
            self.next_line += 1;
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
        let chunk = Chunk {
            origin: Arc::clone(&self.origin),
            first_line: self.next_line,
            arrival_ms: now_ms(),
            dropped_long_lines: std::mem::take(&mut self.dropped),
            starts_origin: !self.started,
            data,
        };
        self.started = true;
        self.next_line += lines;
        chunk
    }
}

/// How a stream ended.
enum StreamEnd {
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
fn pump(
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

/// Reads standard input.
pub fn spawn_stdin(tx: SyncSender<SourceEvent>, max_line_bytes: usize, stop: Arc<AtomicBool>) {
    spawn_reader("stdin", std::io::stdin(), tx, max_line_bytes, stop);
}

/// Reads any byte stream to its end (a pipe, a FIFO, a device).
pub fn spawn_reader(
    name: &str,
    mut reader: impl Read + Send + 'static,
    tx: SyncSender<SourceEvent>,
    max_line_bytes: usize,
    stop: Arc<AtomicBool>,
) {
    let origin: Arc<str> = name.into();
    std::thread::spawn(move || {
        let mut chunker = LineChunker::new(Arc::clone(&origin), max_line_bytes);
        let event = match pump(&mut reader, &mut chunker, &tx, &stop, None) {
            StreamEnd::Clean | StreamEnd::Stopped | StreamEnd::Idle(_) => SourceEvent::End,
            StreamEnd::Broken(e) => SourceEvent::Failed(Error::io(&origin, &e)),
        };
        let _ = tx.send(event);
    });
}

/// A duration as the flags take it: `250ms`, `5s`, `1.5s`.
fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1_000 == 0 {
        format!("{}s", ms / 1_000)
    } else if ms < 1_000 {
        format!("{ms}ms")
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

/// Lets the first few notices of a kind through per period and counts the
/// rest, so that a storm (10 000 refused producers) is a few lines.
struct NoticeLimiter {
    burst: u32,
    period: Duration,
    period_start: Instant,
    shown: u32,
    suppressed: u64,
    /// Suppressed in periods that are over, not yet told.
    untold: u64,
}

impl NoticeLimiter {
    fn new(burst: u32, period: Duration) -> Self {
        Self {
            burst,
            period,
            period_start: Instant::now(),
            shown: 0,
            suppressed: 0,
            untold: 0,
        }
    }

    fn roll(&mut self, now: Instant) {
        if now.saturating_duration_since(self.period_start) >= self.period {
            self.period_start = now;
            self.shown = 0;
            self.untold += std::mem::take(&mut self.suppressed);
        }
    }

    /// Whether this notice is to be shown (else it is counted).
    fn allow(&mut self, now: Instant) -> bool {
        self.roll(now);
        if self.shown < self.burst {
            self.shown += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// Notices held back during periods that are over.
    fn untold(&mut self, now: Instant) -> Option<u64> {
        self.roll(now);
        (self.untold > 0).then(|| std::mem::take(&mut self.untold))
    }
}

pub use connect::spawn_connect;
pub use listen::spawn_listen;

/// Runs `generate` on its own thread: it is handed a function that sends
/// text (whole lines) and returns false once the job is over.
pub fn spawn_generator(
    name: &str,
    tx: SyncSender<SourceEvent>,
    stop: Arc<AtomicBool>,
    generate: impl FnOnce(&mut dyn FnMut(Vec<u8>) -> bool) + Send + 'static,
) {
    let origin: Arc<str> = format!("generator {name}").into();
    std::thread::spawn(move || {
        let mut next_line = 1;
        let mut first = true;
        let mut send = |data: Vec<u8>| {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            let lines = memchr::memchr_iter(b'\n', &data).count() as u64;
            let chunk = Chunk {
                origin: Arc::clone(&origin),
                data,
                first_line: next_line,
                arrival_ms: now_ms(),
                dropped_long_lines: Vec::new(),
                starts_origin: std::mem::take(&mut first),
            };
            next_line += lines;
            tx.send(SourceEvent::Data(chunk)).is_ok()
        };
        generate(&mut send);
        let _ = tx.send(SourceEvent::End);
    });
}

/// A bounded queue between sources and the job.
#[must_use]
pub fn queue() -> (SyncSender<SourceEvent>, Receiver<SourceEvent>) {
    std::sync::mpsc::sync_channel(QUEUE_CHUNKS)
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
    fn a_burst_of_long_lines_does_not_pin_memory() {
        let mut c = LineChunker::new("t".into(), 1 << 20);
        assert_eq!(c.held_bytes(), 0, "nothing held before the first byte");
        // A 900 KiB partial line, then its end: the room goes out with it.
        assert!(c.feed(&vec![b'x'; 900 << 10], true).is_none());
        assert!(c.held_bytes() >= 900 << 10);
        assert!(c
            .feed(
                b"
ab", true
            )
            .is_some());
        assert!(c.held_bytes() <= KEEP_PENDING_BYTES, "{}", c.held_bytes());
        // An over-long line is dropped, and its room given back.
        assert!(c.feed(&vec![b'y'; (1 << 20) + 10], true).is_none());
        assert!(c.held_bytes() <= KEEP_PENDING_BYTES, "{}", c.held_bytes());
        let chunk = c
            .feed(
                b"tail
ok
",
                true,
            )
            .unwrap();
        assert_eq!(
            chunk.data,
            b"ok
"
        );
        assert_eq!(chunk.dropped_long_lines, [2]);
    }

    #[test]
    fn a_storm_of_notices_is_a_few_lines_and_a_count() {
        let start = Instant::now();
        let mut limiter = NoticeLimiter::new(3, Duration::from_secs(5));
        let shown = (0..10_000).filter(|_| limiter.allow(start)).count();
        assert_eq!(shown, 3);
        assert_eq!(limiter.untold(start), None, "the period is not over");
        let later = start + Duration::from_secs(6);
        assert_eq!(limiter.untold(later), Some(9_997));
        assert_eq!(limiter.untold(later), None);
        assert!(limiter.allow(later), "a new period shows notices again");
    }

    #[test]
    fn a_sender_blocked_on_a_full_queue_ends_with_the_job() {
        let (tx, rx) = std::sync::mpsc::sync_channel::<SourceEvent>(1);
        tx.send(SourceEvent::End).unwrap();
        let blocked = std::thread::spawn(move || tx.send(SourceEvent::End).is_err());
        std::thread::sleep(Duration::from_millis(100));
        assert!(!blocked.is_finished(), "the queue is full: the send waits");
        drop(rx);
        assert!(
            blocked.join().unwrap(),
            "the send fails once the job is over"
        );
    }

    #[test]
    fn durations_are_shown_as_flags_take_them() {
        assert_eq!(show(Duration::from_millis(500)), "500ms");
        assert_eq!(show(Duration::from_secs(5)), "5s");
        assert_eq!(show(Duration::from_millis(1_500)), "1.5s");
    }

    #[test]
    fn a_broken_stream_loses_only_its_partial_line() {
        let mut c = LineChunker::new("t".into(), 100);
        assert!(c.feed(b"a\nb\npart", false).is_none());
        assert_eq!(c.finish(false).unwrap().data, b"a\nb\n");
    }
}
