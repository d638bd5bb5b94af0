//! Sources of newline-delimited records: stdin, TCP sockets (connecting or
//! listening) and generators, each feeding a bounded queue of chunks of whole
//! lines; memory-mapped files are read in place by the job instead.
//!
//! The queue is what keeps memory bounded when a source is faster than the
//! engine: a full queue blocks the reader, which stops reading its socket, so
//! TCP's flow control slows the peer down.

use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// Bytes a reader gathers before handing a chunk to the queue.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Chunks the queue holds: with [`CHUNK_BYTES`], at most 16 MiB in flight.
pub const QUEUE_CHUNKS: usize = 16;

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
            pending: Vec::with_capacity(CHUNK_BYTES),
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
            return None;
        }
        if tail_start == 0 || (!force && tail_start < CHUNK_BYTES) {
            return None;
        }
        let tail = self.pending.split_off(tail_start);
        let lines = std::mem::replace(&mut self.pending, tail);
        Some(self.emit(lines))
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
    /// The queue's receiver is gone: the job is over.
    Stopped,
}

/// Reads `reader` to its end, sending chunks of whole lines; a read that
/// times out only flushes what is gathered (so a slow trickle of lines is
/// not held back).
fn pump(
    reader: &mut impl Read,
    chunker: &mut LineChunker,
    tx: &SyncSender<SourceEvent>,
    stop: &AtomicBool,
) -> StreamEnd {
    let mut buf = vec![0_u8; 256 * 1024];
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
            Ok(n) => (n, false),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => (0, true),
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
        let event = match pump(&mut reader, &mut chunker, &tx, &stop) {
            StreamEnd::Clean | StreamEnd::Stopped => SourceEvent::End,
            StreamEnd::Broken(e) => SourceEvent::Failed(Error::io(&origin, &e)),
        };
        let _ = tx.send(event);
    });
}

/// Connects to `addr`, failing at once if it cannot be reached; then reads
/// it, reconnecting with backoff whenever the peer goes away, until `stop`.
pub fn spawn_connect(
    addr: &str,
    tx: SyncSender<SourceEvent>,
    max_line_bytes: usize,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let resolved: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|e| Error::io(format!("cannot resolve {addr}"), &e))?
        .collect();
    let connect = move || -> std::io::Result<TcpStream> {
        let mut last = None;
        for a in &resolved {
            match TcpStream::connect_timeout(a, Duration::from_secs(5)) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::new(ErrorKind::NotFound, "no address")))
    };
    let first = connect().map_err(|e| Error::io(format!("cannot connect to {addr}"), &e))?;
    let origin: Arc<str> = addr.into();
    std::thread::spawn(move || {
        let mut stream = Some(first);
        let mut backoff = Duration::from_millis(100);
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let Some(mut s) = stream.take() else {
                std::thread::sleep(backoff);
                match connect() {
                    Ok(s) => {
                        let _ = tx.send(SourceEvent::Notice(format!("reconnected to {origin}")));
                        backoff = Duration::from_millis(100);
                        stream = Some(s);
                    }
                    Err(_) => backoff = (backoff * 2).min(Duration::from_secs(5)),
                }
                continue;
            };
            // A read timeout lets the reader notice `stop` and flush a slow
            // trickle of lines.
            let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
            // Each connection is a stream of its own: line numbers (and a
            // CSV header) start again.
            let mut chunker = LineChunker::new(Arc::clone(&origin), max_line_bytes);
            let why = match pump(&mut s, &mut chunker, &tx, &stop) {
                StreamEnd::Stopped => return,
                StreamEnd::Clean => "closed the connection".to_string(),
                StreamEnd::Broken(e) => format!("failed ({e})"),
            };
            if tx
                .send(SourceEvent::Notice(format!("{origin} {why}; reconnecting")))
                .is_err()
            {
                return;
            }
        }
    });
    Ok(())
}

/// Listens on `addr`; every producer that connects is read on its own thread
/// into the shared queue.
pub fn spawn_listen(
    addr: &str,
    tx: SyncSender<SourceEvent>,
    max_line_bytes: usize,
    stop: Arc<AtomicBool>,
) -> Result<std::net::SocketAddr> {
    let listener =
        TcpListener::bind(addr).map_err(|e| Error::io(format!("cannot listen on {addr}"), &e))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::io(format!("cannot listen on {addr}"), &e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io(format!("cannot listen on {addr}"), &e))?;
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    let (tx, stop) = (tx.clone(), Arc::clone(&stop));
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
                    if tx
                        .send(SourceEvent::Notice(format!("producer {peer} connected")))
                        .is_err()
                    {
                        return;
                    }
                    std::thread::spawn(move || {
                        let origin: Arc<str> = peer.to_string().into();
                        let mut chunker = LineChunker::new(Arc::clone(&origin), max_line_bytes);
                        let why = match pump(&mut stream, &mut chunker, &tx, &stop) {
                            StreamEnd::Stopped => return,
                            StreamEnd::Clean => "disconnected".to_string(),
                            StreamEnd::Broken(e) => format!("failed ({e})"),
                        };
                        let _ = tx.send(SourceEvent::Notice(format!("producer {origin} {why}")));
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    let _ = tx.send(SourceEvent::Notice(format!(
                        "accept on {local} failed: {e}"
                    )));
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    });
    Ok(local)
}

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
    fn a_broken_stream_loses_only_its_partial_line() {
        let mut c = LineChunker::new("t".into(), 100);
        assert!(c.feed(b"a\nb\npart", false).is_none());
        assert_eq!(c.finish(false).unwrap().data, b"a\nb\n");
    }
}
