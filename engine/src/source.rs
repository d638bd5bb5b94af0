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

use std::collections::VecDeque;
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::{Events, Interest, Poll, Token};
use socket2::{SockRef, TcpKeepalive};

use crate::error::{Error, Result};

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

/// Keepalive on every socket: a peer whose host went away (no reset, no
/// close) is noticed after a few minutes (60 s, then the system's count of
/// probes 10 s apart: 9 on Linux) instead of never.
fn keepalive(socket: &SockRef<'_>) {
    let params = TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10));
    let _ = socket.set_tcp_keepalive(&params);
}

/// Sleeps `d` in steps, returning early (false) once `stop` is set.
fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(STOP_POLL));
    }
}

/// One attempt at every address of `addr`, each given at most `timeout`.
fn connect_once(addr: &str, timeout: Duration) -> std::io::Result<TcpStream> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::new(ErrorKind::NotFound, "no address")))
}

/// Connects to `addr` and reads it until `stop`, as Spark's
/// `socketTextStream`: the first connection and every reconnection are
/// retried with backoff (100 ms doubling to 5 s), each failure logged once
/// in a while; after `connect_timeout` without a connection, the source
/// fails naming the address. A connection silent for `idle_timeout` is
/// dropped and made again.
///
/// Fails at once only for an address that is not `host:port`.
pub fn spawn_connect(
    addr: &str,
    tx: SyncSender<SourceEvent>,
    max_line_bytes: usize,
    options: &SocketOptions,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    // A malformed address is a mistake to report now; a name that does not
    // resolve yet is retried as an unreachable server is.
    if let Err(e) = addr.to_socket_addrs() {
        if e.kind() == ErrorKind::InvalidInput {
            return Err(Error::io(format!("cannot resolve {addr}"), &e));
        }
    }
    let origin: Arc<str> = addr.into();
    let options = options.clone();
    std::thread::Builder::new()
        .name("engine-connect".into())
        .spawn(move || connect_loop(&origin, &tx, max_line_bytes, &options, &stop))
        .map_err(|e| Error::io(format!("cannot start a reader for {addr}"), &e))?;
    Ok(())
}

fn connect_loop(
    origin: &Arc<str>,
    tx: &SyncSender<SourceEvent>,
    max_line_bytes: usize,
    options: &SocketOptions,
    stop: &AtomicBool,
) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(100);
    let notice = |text: String| tx.send(SourceEvent::Notice(text)).is_ok();
    let mut connected_before = false;
    // Since when there has been no connection; failures since then.
    let mut down_since = Instant::now();
    let mut failures: u64 = 0;
    let mut last_told: Option<Instant> = None;
    let mut backoff = FIRST_BACKOFF;
    // A server that accepts and closes at once would be a notice a time.
    let mut reconnects = NoticeLimiter::new(5, Duration::from_secs(10));
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let attempt_limit = options.connect_timeout.map_or(Duration::from_secs(5), |t| {
            t.saturating_sub(down_since.elapsed())
                .clamp(Duration::from_millis(10), Duration::from_secs(5))
        });
        let stream = match connect_once(origin, attempt_limit) {
            Ok(stream) => stream,
            Err(e) => {
                failures += 1;
                let down = down_since.elapsed();
                if let Some(limit) = options.connect_timeout.filter(|&t| down >= t) {
                    let what = format!(
                        "cannot connect to {origin} (gave up after {}, {failures} attempts)",
                        show(limit)
                    );
                    let _ = tx.send(SourceEvent::Failed(Error::io(what, &e)));
                    return;
                }
                if last_told.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    last_told = Some(Instant::now());
                    let text = if failures == 1 {
                        format!("cannot connect to {origin} ({e}); retrying")
                    } else {
                        format!(
                            "still cannot connect to {origin} after {failures} attempts in {:.0} s ({e}); retrying",
                            down.as_secs_f64()
                        )
                    };
                    if !notice(text) {
                        return;
                    }
                }
                let mut wait = backoff;
                if let Some(limit) = options.connect_timeout {
                    // Try once more right at the deadline, not long after it.
                    wait = wait.min(limit.saturating_sub(down_since.elapsed()));
                }
                if !sleep_unless_stopped(wait, stop) {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if connected_before || failures > 0 {
            let text = if connected_before {
                format!("reconnected to {origin}")
            } else {
                format!("connected to {origin} after {failures} failed attempts")
            };
            if reconnects.allow(Instant::now()) && !notice(text) {
                return;
            }
        }
        connected_before = true;
        failures = 0;
        last_told = None;
        let mut stream = stream;
        keepalive(&SockRef::from(&stream));
        // A read timeout lets the reader notice `stop` and the idle timeout,
        // and flush a slow trickle of lines.
        let _ = stream.set_read_timeout(Some(STOP_POLL));
        // Each connection is a stream of its own: line numbers (and a CSV
        // header) start again.
        let mut chunker = LineChunker::new(Arc::clone(origin), max_line_bytes);
        let connected_at = Instant::now();
        let why = match pump(&mut stream, &mut chunker, tx, stop, options.idle_timeout) {
            StreamEnd::Stopped => return,
            StreamEnd::Clean => "closed the connection".to_string(),
            StreamEnd::Broken(e) => format!("failed ({e})"),
            StreamEnd::Idle(d) => format!("sent nothing for {} (--idle-timeout)", show(d)),
        };
        drop(stream);
        let now = Instant::now();
        if reconnects.allow(now) {
            if !notice(format!("{origin} {why}; reconnecting")) {
                return;
            }
        } else if let Some(n) = reconnects.untold(now) {
            if !notice(format!("{origin}: {n} more reconnections in the last 10 s")) {
                return;
            }
        }
        down_since = now;
        // A connection that ended at once keeps the backoff growing (a
        // server that accepts and closes); one that lasted starts over.
        if now.duration_since(connected_at) > Duration::from_secs(1) {
            backoff = FIRST_BACKOFF;
        }
        if !sleep_unless_stopped(backoff, stop) {
            return;
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Binds `addr` with a backlog for bursts of producers; port in use and
/// the like are errors naming the address.
fn bind(addr: &str) -> Result<std::net::TcpListener> {
    let fail = |e: &std::io::Error| Error::io(format!("cannot listen on {addr}"), e);
    let mut last = None;
    for a in addr.to_socket_addrs().map_err(|e| fail(&e))? {
        let attempt = (|| {
            let socket = socket2::Socket::new(
                socket2::Domain::for_address(a),
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )?;
            // As std's listener: a restarted engine can bind while the old
            // one's connections linger in TIME_WAIT (a live listener on the
            // port is still "address in use").
            socket.set_reuse_address(true)?;
            socket.bind(&a.into())?;
            socket.listen(1024)?;
            socket.set_nonblocking(true)?;
            Ok::<_, std::io::Error>(std::net::TcpListener::from(socket))
        })();
        match attempt {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| std::io::Error::new(ErrorKind::NotFound, "no address"));
    Err(fail(&e))
}

/// Listens on `addr`: every producer that connects is read into the shared
/// queue, each a stream of its own (its own line numbers and CSV header; a
/// partial line of a producer that breaks off is dropped, never joined to
/// another's). One thread reads them all.
pub fn spawn_listen(
    addr: &str,
    tx: SyncSender<SourceEvent>,
    max_line_bytes: usize,
    options: &SocketOptions,
    stop: Arc<AtomicBool>,
) -> Result<SocketAddr> {
    let listener = bind(addr)?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::io(format!("cannot listen on {addr}"), &e))?;
    let poll = Poll::new().map_err(|e| Error::io(format!("cannot listen on {addr}"), &e))?;
    let mut server = Listener {
        socket: mio::net::TcpListener::from_std(listener),
        local,
        poll,
        conns: Vec::new(),
        free: Vec::new(),
        live: 0,
        ready: VecDeque::new(),
        tx,
        max_line_bytes,
        options: options.clone(),
        accept_paused_until: None,
        refused: NoticeLimiter::new(5, NOTICE_PERIOD),
        connected: NoticeLimiter::new(20, NOTICE_PERIOD),
        disconnected: NoticeLimiter::new(20, NOTICE_PERIOD),
        accept_errors: NoticeLimiter::new(1, NOTICE_PERIOD),
    };
    server
        .poll
        .registry()
        .register(&mut server.socket, LISTENER, Interest::READABLE)
        .map_err(|e| Error::io(format!("cannot listen on {addr}"), &e))?;
    std::thread::Builder::new()
        .name("engine-listen".into())
        .spawn(move || {
            if let Err(e) = server.run(&stop) {
                let what = format!("listening on {}", server.local);
                let _ = server.tx.send(SourceEvent::Failed(Error::io(what, &e)));
            }
        })
        .map_err(|e| Error::io(format!("cannot listen on {addr}"), &e))?;
    Ok(local)
}

const LISTENER: Token = Token(usize::MAX);

/// Notices of a kind beyond the first few are counted per this period.
const NOTICE_PERIOD: Duration = Duration::from_secs(5);

/// A producer.
struct Conn {
    stream: mio::net::TcpStream,
    chunker: LineChunker,
    last_data: Instant,
    /// In [`Listener::ready`] already.
    queued: bool,
}

/// Why the listener let go of a producer.
enum Close {
    Clean,
    Broken(std::io::Error),
    Idle(Duration),
}

/// The listening source: the socket, its producers, one read buffer.
struct Listener {
    socket: mio::net::TcpListener,
    local: SocketAddr,
    poll: Poll,
    /// Producers by token; `None`: a free slot (listed in `free`).
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    live: usize,
    /// Producers that may have more to read: readiness is edge-triggered,
    /// and a producer is read for at most [`TURN_BYTES`] at a time.
    ready: VecDeque<usize>,
    tx: SyncSender<SourceEvent>,
    max_line_bytes: usize,
    options: SocketOptions,
    /// After an accept error such as "too many open files": no accepting
    /// until then (instead of spinning on the error).
    accept_paused_until: Option<Instant>,
    refused: NoticeLimiter,
    connected: NoticeLimiter,
    disconnected: NoticeLimiter,
    accept_errors: NoticeLimiter,
}

/// The job is over: the queue's receiver is gone.
struct Stopped;

impl Listener {
    fn run(&mut self, stop: &AtomicBool) -> std::io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut buf = vec![0_u8; 64 << 10];
        let mut accept_pending = true;
        let mut next_sweep = Instant::now();
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let now = Instant::now();
            let mut timeout = if self.ready.is_empty() {
                STOP_POLL
            } else {
                Duration::ZERO
            };
            if let Some(until) = self.accept_paused_until {
                timeout = timeout.min(until.saturating_duration_since(now));
            }
            if self.options.idle_timeout.is_some() {
                timeout = timeout.min(next_sweep.saturating_duration_since(now));
            }
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in &events {
                match event.token() {
                    LISTENER => accept_pending = true,
                    Token(i) => self.mark_ready(i),
                }
            }
            let outcome = (|| {
                if accept_pending {
                    accept_pending = self.accept()?;
                }
                for _ in 0..self.ready.len() {
                    let Some(i) = self.ready.pop_front() else {
                        break;
                    };
                    self.read(i, &mut buf)?;
                }
                let now = Instant::now();
                if let Some(idle) = self.options.idle_timeout {
                    if now >= next_sweep {
                        self.sweep_idle(idle, now)?;
                        next_sweep = now
                            + (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
                    }
                }
                self.tell_untold(now)
            })();
            if outcome.is_err() {
                return Ok(());
            }
        }
    }

    fn send(&self, event: SourceEvent) -> std::result::Result<(), Stopped> {
        self.tx.send(event).map_err(|_| Stopped)
    }

    fn notice(&self, text: String) -> std::result::Result<(), Stopped> {
        self.send(SourceEvent::Notice(text))
    }

    fn mark_ready(&mut self, i: usize) {
        if let Some(Some(conn)) = self.conns.get_mut(i) {
            if !conn.queued {
                conn.queued = true;
                self.ready.push_back(i);
            }
        }
    }

    /// Accepts the producers waiting; returns whether more may be waiting
    /// (accepting is paused after an error).
    fn accept(&mut self) -> std::result::Result<bool, Stopped> {
        if let Some(until) = self.accept_paused_until {
            if Instant::now() < until {
                return Ok(true);
            }
            self.accept_paused_until = None;
        }
        loop {
            let (mut stream, peer) = match self.socket.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    // Out of descriptors or memory: the pending producer
                    // stays in the backlog; try again in a while rather than
                    // spin on the error.
                    let pause = Duration::from_millis(200);
                    self.accept_paused_until = Some(Instant::now() + pause);
                    if self.accept_errors.allow(Instant::now()) {
                        self.notice(format!(
                            "accepting producers on {} failed ({e}); retrying in {}",
                            self.local,
                            show(pause)
                        ))?;
                    }
                    return Ok(true);
                }
            };
            let now = Instant::now();
            if self.live >= self.options.max_connections {
                drop(stream);
                if self.refused.allow(now) {
                    self.notice(format!(
                        "refused producer {peer}: {} producers connected already (--max-connections)",
                        self.live
                    ))?;
                }
                continue;
            }
            keepalive(&SockRef::from(&stream));
            let i = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            if self
                .poll
                .registry()
                .register(&mut stream, Token(i), Interest::READABLE)
                .is_err()
            {
                self.free.push(i);
                continue;
            }
            let origin: Arc<str> = peer.to_string().into();
            self.conns[i] = Some(Conn {
                stream,
                chunker: LineChunker::new(Arc::clone(&origin), self.max_line_bytes),
                last_data: now,
                queued: false,
            });
            self.live += 1;
            // Data may have come with the connection.
            self.mark_ready(i);
            if self.connected.allow(now) {
                self.notice(format!("producer {peer} connected"))?;
            }
        }
    }

    /// Reads producer `i` until it has nothing more for now (or has had its
    /// turn), sending whole lines.
    fn read(&mut self, i: usize, buf: &mut [u8]) -> std::result::Result<(), Stopped> {
        let Some(Some(conn)) = self.conns.get_mut(i) else {
            return Ok(());
        };
        conn.queued = false;
        let mut taken = 0;
        let end = loop {
            match conn.stream.read(buf) {
                Ok(0) => break Some(Close::Clean),
                Ok(n) => {
                    taken += n;
                    conn.last_data = Instant::now();
                    if let Some(chunk) = conn.chunker.feed(&buf[..n], false) {
                        self.tx
                            .send(SourceEvent::Data(chunk))
                            .map_err(|_| Stopped)?;
                    }
                    if taken >= TURN_BYTES {
                        // Its turn is over: the others are read first.
                        conn.queued = true;
                        self.ready.push_back(i);
                        break None;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break None,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Some(Close::Broken(e)),
            }
        };
        match end {
            // Nothing more for now: what is whole goes out.
            None => {
                if let Some(chunk) = conn.chunker.feed(&[], true) {
                    self.tx
                        .send(SourceEvent::Data(chunk))
                        .map_err(|_| Stopped)?;
                }
                Ok(())
            }
            Some(why) => self.close(i, why),
        }
    }

    /// Lets go of producer `i`: its last line counts only if it ended
    /// cleanly.
    fn close(&mut self, i: usize, why: Close) -> std::result::Result<(), Stopped> {
        let Some(mut conn) = self.conns.get_mut(i).and_then(Option::take) else {
            return Ok(());
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.free.push(i);
        self.live -= 1;
        if let Some(chunk) = conn.chunker.finish(matches!(why, Close::Clean)) {
            self.send(SourceEvent::Data(chunk))?;
        }
        let origin = Arc::clone(&conn.chunker.origin);
        drop(conn);
        self.send(SourceEvent::Closed(Arc::clone(&origin)))?;
        if self.disconnected.allow(Instant::now()) {
            let why = match why {
                Close::Clean => "disconnected".to_string(),
                Close::Broken(e) => format!("failed ({e})"),
                Close::Idle(d) => format!(
                    "sent nothing for {}: disconnected (--idle-timeout)",
                    show(d)
                ),
            };
            self.notice(format!("producer {origin} {why}"))?;
        }
        Ok(())
    }

    fn sweep_idle(&mut self, idle: Duration, now: Instant) -> std::result::Result<(), Stopped> {
        let silent: Vec<usize> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.as_ref()
                    .filter(|c| now.saturating_duration_since(c.last_data) >= idle)
                    .map(|_| i)
            })
            .collect();
        for i in silent {
            self.close(i, Close::Idle(idle))?;
        }
        Ok(())
    }

    /// The counts of notices held back.
    fn tell_untold(&mut self, now: Instant) -> std::result::Result<(), Stopped> {
        let period = NOTICE_PERIOD.as_secs();
        if let Some(n) = self.refused.untold(now) {
            self.notice(format!(
                "refused {n} more producers in the last {period} s (--max-connections {})",
                self.options.max_connections
            ))?;
        }
        if let Some(n) = self.connected.untold(now) {
            self.notice(format!(
                "{n} more producers connected in the last {period} s ({} connected now)",
                self.live
            ))?;
        }
        if let Some(n) = self.disconnected.untold(now) {
            self.notice(format!(
                "{n} more producers disconnected in the last {period} s ({} connected now)",
                self.live
            ))?;
        }
        if let Some(n) = self.accept_errors.untold(now) {
            self.notice(format!("{n} more failed accepts in the last {period} s"))?;
        }
        Ok(())
    }
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
