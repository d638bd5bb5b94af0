//! A TCP client source (the binary's `--connect`) that (re)connects with
//! backoff, notices a silent server, and reads lines into the queue.

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{SockRef, TcpKeepalive};

use super::chunk::{pump, LineChunker, StreamEnd};
use super::{
    format_duration, NoticeLimiter, SocketOptions, Source, SourceEvent, SourceNotice, StreamClosed,
    STOP_POLL,
};
use crate::error::{Error, Result};

/// Keepalive on every socket: a peer whose host went away (no reset, no
/// close) is noticed after a few minutes (60 s, then the system's count of
/// probes 10 s apart: 9 on Linux) instead of never.
pub(super) fn keepalive(socket: &SockRef<'_>) {
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

/// Connects to a TCP server and reads it until the job is over, as Spark's
/// `socketTextStream`: the first connection and every reconnection are
/// retried with backoff (100 ms doubling to 5 s), each failure told once in
/// a while; after [`SocketOptions::connect_timeout`] without a connection,
/// the source fails naming the address. A connection silent for
/// [`SocketOptions::idle_timeout`] is dropped and made again. Each
/// connection is a stream of its own (line numbers and a CSV header start
/// again).
#[derive(Debug, Clone)]
pub struct ConnectSource {
    addr: String,
    max_line_bytes: usize,
    options: SocketOptions,
}

impl ConnectSource {
    /// A source reading `addr` (`host:port`), dropping (and reporting)
    /// lines longer than `max_line_bytes`.
    ///
    /// # Errors
    /// Only an address that is not `host:port`: a name that does not
    /// resolve yet is retried as an unreachable server is.
    pub fn new(addr: &str, max_line_bytes: usize, options: &SocketOptions) -> Result<Self> {
        if let Err(e) = addr.to_socket_addrs() {
            if e.kind() == ErrorKind::InvalidInput {
                return Err(Error::io(format!("cannot resolve {addr}"), &e));
            }
        }
        Ok(Self {
            addr: addr.to_owned(),
            max_line_bytes,
            options: options.clone(),
        })
    }
}

impl Source for ConnectSource {
    fn name(&self) -> &str {
        &self.addr
    }

    fn run(self: Box<Self>, tx: &SyncSender<SourceEvent>, stop: &AtomicBool) -> Result<()> {
        let origin: Arc<str> = self.addr.as_str().into();
        connect_loop(&origin, tx, self.max_line_bytes, &self.options, stop)
    }
}

/// Reconnections beyond the first few are counted per this period.
const RECONNECT_PERIOD: Duration = Duration::from_secs(10);

fn connect_loop(
    origin: &Arc<str>,
    tx: &SyncSender<SourceEvent>,
    max_line_bytes: usize,
    options: &SocketOptions,
    stop: &AtomicBool,
) -> Result<()> {
    const FIRST_BACKOFF: Duration = Duration::from_millis(100);
    let notice = |notice: SourceNotice| tx.send(SourceEvent::Notice(notice)).is_ok();
    let mut connected_before = false;
    // Since when there has been no connection; failures since then.
    let mut down_since = Instant::now();
    let mut failures: u64 = 0;
    let mut last_told: Option<Instant> = None;
    let mut backoff = FIRST_BACKOFF;
    // A server that accepts and closes at once would be a notice a time.
    let mut reconnects = NoticeLimiter::new(5, RECONNECT_PERIOD);
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
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
                        format_duration(limit)
                    );
                    return Err(Error::io(what, &e));
                }
                if last_told.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    last_told = Some(Instant::now());
                    let told = SourceNotice::CannotConnect {
                        origin: Arc::clone(origin),
                        attempts: failures,
                        down,
                        error: e,
                    };
                    if !notice(told) {
                        return Ok(());
                    }
                }
                let mut wait = backoff;
                if let Some(limit) = options.connect_timeout {
                    // Try once more right at the deadline, not long after it.
                    wait = wait.min(limit.saturating_sub(down_since.elapsed()));
                }
                if !sleep_unless_stopped(wait, stop) {
                    return Ok(());
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if connected_before || failures > 0 {
            let told = if connected_before {
                SourceNotice::Reconnected {
                    origin: Arc::clone(origin),
                }
            } else {
                SourceNotice::ConnectedAfter {
                    origin: Arc::clone(origin),
                    failures,
                }
            };
            if reconnects.allow(Instant::now()) && !notice(told) {
                return Ok(());
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
            StreamEnd::Stopped => return Ok(()),
            StreamEnd::Clean => StreamClosed::Clean,
            StreamEnd::Broken(e) => StreamClosed::Broken(e),
            StreamEnd::Idle(d) => StreamClosed::Idle(d),
        };
        drop(stream);
        let now = Instant::now();
        if let Some(told) = ended_notice(origin, why, &mut reconnects, now) {
            if !notice(told) {
                return Ok(());
            }
        }
        down_since = now;
        // A connection that ended at once keeps the backoff growing (a
        // server that accepts and closes); one that lasted starts over.
        if now.duration_since(connected_at) > Duration::from_secs(1) {
            backoff = FIRST_BACKOFF;
        }
        if !sleep_unless_stopped(backoff, stop) {
            return Ok(());
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// What to tell of a connection that ended: the first few per period one
/// by one, then how many more there were.
fn ended_notice(
    origin: &Arc<str>,
    why: StreamClosed,
    reconnects: &mut NoticeLimiter,
    now: Instant,
) -> Option<SourceNotice> {
    if reconnects.allow(now) {
        Some(SourceNotice::ConnectionEnded {
            origin: Arc::clone(origin),
            why,
        })
    } else {
        reconnects
            .untold(now)
            .map(|count| SourceNotice::MoreReconnections {
                origin: Arc::clone(origin),
                count,
                period: RECONNECT_PERIOD,
            })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::super::{queue, spawn};
    use super::*;

    #[test]
    fn only_a_malformed_address_fails_at_once() {
        let options = SocketOptions::default();
        assert!(ConnectSource::new("no port", 1 << 20, &options).is_err());
        let source = ConnectSource::new("localhost:9", 1 << 20, &options).unwrap();
        assert_eq!(source.name(), "localhost:9");
        assert_eq!(source.position(), None);
    }

    #[test]
    fn lines_of_the_server_arrive_and_the_source_stops_with_the_job() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap().to_string();
        let source = ConnectSource::new(&addr, 1 << 20, &SocketOptions::default()).unwrap();
        let (tx, rx) = queue();
        let stop = Arc::new(AtomicBool::new(false));
        spawn(Box::new(source), tx, Arc::clone(&stop)).unwrap();
        let (mut peer, _) = server.accept().unwrap();
        peer.write_all(b"x y\n").unwrap();
        match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
            SourceEvent::Data(chunk) => {
                assert_eq!(chunk.data, b"x y\n");
                assert_eq!(&*chunk.origin, addr.as_str());
                assert!(chunk.starts_origin);
            }
            other => panic!("{other:?}"),
        }
        stop.store(true, Ordering::Relaxed);
        match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
            SourceEvent::End => {}
            other => panic!("{other:?}"),
        }
    }
}
