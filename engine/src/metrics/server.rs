//! A minimal HTTP/1.1 server of [`Metrics::render`]'s text: std sockets,
//! one accepting thread, a short-lived thread per scrape (at most
//! [`MAX_CLIENTS`] at once), every connection closed after one answer.
//! A client gets [`REQUEST_TIMEOUT`] in all to send a request of at most
//! [`MAX_REQUEST_BYTES`]: a slow or hostile one can neither hold a thread
//! longer nor grow memory.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Metrics, CONTENT_TYPE};
use crate::error::{Error, Result};

/// Connections answered at once; more are closed at once.
pub const MAX_CLIENTS: usize = 4;
/// The longest request (its request line and headers) read.
pub const MAX_REQUEST_BYTES: usize = 8 << 10;
/// The time a client has to send its request, and to take the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// A running metrics server; it stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Serves `metrics` over HTTP on `addr` (`host:port`; port 0 picks a free
/// port, see [`MetricsServer::local_addr`]) until the server is dropped:
/// any `GET` gets the text exposition format, `HEAD` its headers, other
/// methods 405.
///
/// # Errors
///
/// [`Error::Io`] naming the address when it does not resolve or cannot be
/// bound (in use, not local, not permitted).
pub fn serve(addr: &str, metrics: Arc<Metrics>) -> Result<MetricsServer> {
    let what = || format!("the metrics address {addr}");
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| Error::io(what(), e))?
        .collect();
    let listener = TcpListener::bind(&addrs[..]).map_err(|e| Error::io(what(), e))?;
    let local = listener.local_addr().map_err(|e| Error::io(what(), e))?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("engine-metrics".into())
        .spawn(move || accept(&listener, &metrics, &stopped))
        .map_err(|e| Error::io(what(), e))?;
    Ok(MetricsServer {
        addr: local,
        stop,
        thread: Some(thread),
    })
}

impl MetricsServer {
    /// The address the server listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accepting thread; when the connection cannot be made it
        // is left to end with the process.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// Accepts connections until `stop`; each is answered on a thread of its
/// own, at most [`MAX_CLIENTS`] at once.
fn accept(listener: &TcpListener, metrics: &Arc<Metrics>, stop: &AtomicBool) {
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // A failed accept (a reset connection, out of descriptors) is the
        // client's loss; the server goes on, pausing in case it repeats.
        let Ok(stream) = stream else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
            busy.fetch_sub(1, Ordering::AcqRel);
            continue;
        }
        let (metrics, done) = (Arc::clone(metrics), Arc::clone(&busy));
        let spawned = std::thread::Builder::new()
            .name("engine-metrics-client".into())
            .spawn(move || {
                let _ = answer(stream, &metrics);
                done.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            busy.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Reads one request (within the time and size bounds) and answers it.
fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut request = Vec::with_capacity(512);
    let mut buf = [0_u8; 1024];
    let complete = loop {
        if request.windows(4).any(|w| w == b"\r\n\r\n") || request.windows(2).any(|w| w == b"\n\n")
        {
            break true;
        }
        if request.len() > MAX_REQUEST_BYTES {
            break false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // Too slow: no answer.
            return Ok(());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => break false,
            Ok(n) => request.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    let method = request
        .split(|&b| b == b' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    let response = match (complete, method.as_slice()) {
        (false, _) => response("400 Bad Request", "text/plain", "bad request\n", true),
        (true, b"GET") => response("200 OK", CONTENT_TYPE, &metrics.render(), true),
        (true, b"HEAD") => response("200 OK", CONTENT_TYPE, &metrics.render(), false),
        (true, _) => response(
            "405 Method Not Allowed",
            "text/plain",
            "only GET and HEAD\n",
            true,
        ),
    };
    stream.write_all(&response)?;
    stream.flush()?;
    stream.shutdown(Shutdown::Write)
}

/// An HTTP/1.1 response that closes the connection; `with_body` false for
/// `HEAD` (the length is still the body's).
fn response(status: &str, content_type: &str, body: &str, with_body: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n{}\r\n",
        body.len(),
        if status.starts_with("405") {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        }
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}
