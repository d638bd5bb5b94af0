//! A listening source (the binary's `--listen`): producers served from one
//! poll thread, each with small buffers, up to a maximum at once.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use socket2::SockRef;

use super::chunk::LineChunker;
use super::connect::keepalive;
use super::{
    NoticeLimiter, SocketOptions, Source, SourceEvent, SourceNotice, StreamClosed, STOP_POLL,
    TURN_BYTES,
};
use crate::error::{Error, Result};

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

/// Listens for producers: every producer that connects is read into the
/// shared queue, each a stream of its own (its own line numbers and CSV
/// header; a partial line of a producer that breaks off is dropped, never
/// joined to another's). One thread reads them all, at most
/// [`SocketOptions::max_connections`] at once.
#[derive(Debug)]
pub struct ListenSource {
    socket: mio::net::TcpListener,
    local: SocketAddr,
    name: String,
    poll: Poll,
    max_line_bytes: usize,
    options: SocketOptions,
}

impl ListenSource {
    /// Binds `addr` (`host:port`; port 0 picks a free one), dropping (and
    /// reporting) lines longer than `max_line_bytes`. Producers can connect
    /// from now on; they are read once the source runs.
    ///
    /// # Errors
    /// The address cannot be bound (in use, not an address).
    pub fn bind(addr: &str, max_line_bytes: usize, options: &SocketOptions) -> Result<Self> {
        let fail = |e: &std::io::Error| Error::io(format!("cannot listen on {addr}"), e);
        let listener = bind(addr)?;
        let local = listener.local_addr().map_err(|e| fail(&e))?;
        let poll = Poll::new().map_err(|e| fail(&e))?;
        let mut socket = mio::net::TcpListener::from_std(listener);
        poll.registry()
            .register(&mut socket, LISTENER, Interest::READABLE)
            .map_err(|e| fail(&e))?;
        Ok(Self {
            socket,
            local,
            name: local.to_string(),
            poll,
            max_line_bytes,
            options: options.clone(),
        })
    }

    /// The address bound (with the port picked, for port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Source for ListenSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(self: Box<Self>, tx: &SyncSender<SourceEvent>, stop: &AtomicBool) -> Result<()> {
        let local = self.local;
        let mut server = Listener {
            socket: self.socket,
            local,
            poll: self.poll,
            conns: Vec::new(),
            free: Vec::new(),
            live: 0,
            ready: VecDeque::new(),
            tx: tx.clone(),
            max_line_bytes: self.max_line_bytes,
            options: self.options,
            accept_paused_until: None,
            refused: NoticeLimiter::new(5, NOTICE_PERIOD),
            connected: NoticeLimiter::new(20, NOTICE_PERIOD),
            disconnected: NoticeLimiter::new(20, NOTICE_PERIOD),
            accept_errors: NoticeLimiter::new(1, NOTICE_PERIOD),
        };
        server
            .run(stop)
            .map_err(|e| Error::io(format!("listening on {local}"), &e))
    }
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

    fn notice(&self, notice: SourceNotice) -> std::result::Result<(), Stopped> {
        self.send(SourceEvent::Notice(notice))
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
                        self.notice(SourceNotice::AcceptFailed {
                            local: self.local,
                            error: e,
                            retry_in: pause,
                        })?;
                    }
                    return Ok(true);
                }
            };
            let now = Instant::now();
            if self.live >= self.options.max_connections {
                drop(stream);
                if self.refused.allow(now) {
                    self.notice(SourceNotice::ProducerRefused {
                        peer,
                        connected: self.live,
                    })?;
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
                self.notice(SourceNotice::ProducerConnected { peer })?;
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
                Close::Clean => StreamClosed::Clean,
                Close::Broken(e) => StreamClosed::Broken(e),
                Close::Idle(d) => StreamClosed::Idle(d),
            };
            self.notice(SourceNotice::ProducerEnded { origin, why })?;
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
        let period = NOTICE_PERIOD;
        if let Some(count) = self.refused.untold(now) {
            self.notice(SourceNotice::MoreRefused {
                count,
                period,
                max_connections: self.options.max_connections,
            })?;
        }
        if let Some(count) = self.connected.untold(now) {
            self.notice(SourceNotice::MoreConnected {
                count,
                period,
                live: self.live,
            })?;
        }
        if let Some(count) = self.disconnected.untold(now) {
            self.notice(SourceNotice::MoreDisconnected {
                count,
                period,
                live: self.live,
            })?;
        }
        if let Some(count) = self.accept_errors.untold(now) {
            self.notice(SourceNotice::MoreFailedAccepts { count, period })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use super::super::{queue, spawn};
    use super::*;

    #[test]
    fn each_producer_is_a_stream_of_its_own_closed_when_it_leaves() {
        let source = ListenSource::bind("127.0.0.1:0", 1 << 20, &SocketOptions::default()).unwrap();
        let addr = source.local_addr();
        assert_eq!(source.name(), addr.to_string());
        let (tx, rx) = queue();
        let stop = Arc::new(AtomicBool::new(false));
        spawn(Box::new(source), tx, Arc::clone(&stop)).unwrap();
        let mut producer = std::net::TcpStream::connect(addr).unwrap();
        let peer: Arc<str> = producer.local_addr().unwrap().to_string().into();
        producer.write_all(b"a b\nc").unwrap();
        drop(producer);
        let (mut data, mut closed) = (Vec::new(), false);
        while !closed {
            match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
                SourceEvent::Data(chunk) => {
                    assert_eq!(chunk.origin, peer);
                    assert_eq!(chunk.position, None);
                    data.extend_from_slice(&chunk.data);
                }
                SourceEvent::Notice(_) => {}
                SourceEvent::Closed(origin) => closed = origin == peer,
                other => panic!("{other:?}"),
            }
        }
        // A clean close: the last line counts without its newline.
        assert_eq!(data, b"a b\nc");
        stop.store(true, Ordering::Relaxed);
        loop {
            match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
                SourceEvent::End => break,
                SourceEvent::Notice(_) => {}
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn an_address_in_use_is_an_error_naming_it() {
        let first = ListenSource::bind("127.0.0.1:0", 1 << 20, &SocketOptions::default()).unwrap();
        let addr = first.local_addr().to_string();
        let err = ListenSource::bind(&addr, 1 << 20, &SocketOptions::default()).unwrap_err();
        assert!(err.to_string().contains(&addr), "{err}");
    }
}
