//! Sources of newline-delimited records, one connector per file: standard
//! input ([`StdinSource`]), a file, pipe or FIFO ([`FileSource`]), a TCP
//! server to connect to ([`ConnectSource`]), producers that connect to us
//! ([`ListenSource`]) and a generator of text ([`GeneratorSource`]). Each
//! is a [`Source`]: it runs on a thread of its own ([`spawn`]) and feeds a
//! bounded queue ([`queue`]) with [`SourceEvent`]s, chunks of whole lines
//! cut by the shared chunker (`chunk.rs`). Memory-mapped files are read in
//! place by the job instead.
//!
//! The queue is what keeps memory bounded when a source is faster than the
//! engine: a full queue blocks the reader, which stops reading its socket, so
//! TCP's flow control slows the peer down.
//!
//! Resources per connection are bounded too: a [`ListenSource`] takes at
//! most [`SocketOptions::max_connections`] producers at once (more are
//! closed at once), all of them read by one thread with one read buffer; a
//! producer costs its socket and the partial line it is in the middle of
//! (at most the longest line allowed). A blocked send always ends: the job
//! drops the queue's receiver when it ends, which fails every send.
//!
//! A new connector of one stream of lines is one new file here implementing
//! [`Source`]: it sends [`Chunk`]s of whole lines, each with the
//! [`SourcePosition`] to resume from after it, and nothing downstream
//! changes. Kafka, whose partitions each have offsets, event-time progress
//! and an owner that can change, has a consumer of its own ([`kafka`]).

use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

mod chunk;
mod connect;
mod file;
mod generator;
pub mod kafka;
mod listen;
mod notice;
mod stdin;

pub use connect::ConnectSource;
pub use file::FileSource;
pub use generator::{Blocks, Generator, GeneratorSource};
pub use listen::ListenSource;
pub use notice::{Limit, SourceNotice, StreamClosed};
pub use stdin::StdinSource;

/// A connector: reads records from somewhere and sends them, as chunks of
/// whole lines, to the job's queue.
///
/// Sources push: each runs on a thread of its own ([`spawn`]), blocking on
/// its input and on the queue (which is what bounds memory), so that a
/// socket source can wait for its peer without a scheduler.
pub trait Source: Send + 'static {
    /// What the source reads, for diagnostics (`stdin`, a path, an address).
    fn name(&self) -> &str;

    /// Where reading starts, for a source that can be resumed (a file
    /// opened at an offset); `None` for one that cannot (a socket, stdin).
    /// While it runs, each [`Chunk`] carries the position after it.
    fn position(&self) -> Option<SourcePosition> {
        None
    }

    /// Reads until the input ends or fails, or the job is over (`stop` is
    /// set, or the queue's receiver is gone), sending [`SourceEvent::Data`],
    /// [`SourceEvent::Notice`] and [`SourceEvent::Closed`]; [`spawn`] sends
    /// the closing [`SourceEvent::End`] or [`SourceEvent::Failed`].
    ///
    /// # Errors
    /// The failure that ended the source (a read error, a server that could
    /// not be reached within the connect timeout).
    fn run(self: Box<Self>, tx: &SyncSender<SourceEvent>, stop: &AtomicBool) -> Result<()>;
}

/// Runs `source` on a thread of its own, ending its events with
/// [`SourceEvent::End`] or [`SourceEvent::Failed`].
///
/// # Errors
/// The thread could not be started.
pub fn spawn(
    source: Box<dyn Source>,
    tx: SyncSender<SourceEvent>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let name = source.name().to_owned();
    std::thread::Builder::new()
        .name("engine-source".into())
        .spawn(move || {
            let event = match source.run(&tx, &stop) {
                Ok(()) => SourceEvent::End,
                Err(e) => SourceEvent::Failed(e),
            };
            // The job may be over already: nobody to tell.
            let _ = tx.send(event);
        })
        .map_err(|e| Error::io(format!("cannot start a reader for {name}"), &e))?;
    Ok(())
}

/// Where a source resumes: the position of the first record not yet sent.
/// A checkpoint stores it with the state the records before it built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SourcePosition {
    /// A byte offset into a file ([`FileSource::at_offset`] resumes there).
    Byte(u64),
}

/// Bytes a reader gathers before handing a chunk to the queue.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Chunks the queue holds: with [`CHUNK_BYTES`], at most 16 MiB in flight.
pub const QUEUE_CHUNKS: usize = 16;

/// Default of [`SocketOptions::max_connections`].
pub const MAX_CONNECTIONS: usize = 256;

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
    /// Where the origin resumes after this chunk, for a source that can be
    /// resumed ([`Source::position`]).
    pub position: Option<SourcePosition>,
}

/// What a source says.
#[derive(Debug)]
pub enum SourceEvent {
    /// Lines.
    Data(Chunk),
    /// Something worth telling the user (a reconnection).
    Notice(SourceNotice),
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

/// A duration as notices print it (and the `engine` binary's flags take
/// it): `250ms`, `5s`, `1.5s`.
#[must_use]
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1_000) {
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

/// A bounded queue between sources and the job.
#[must_use]
pub fn queue() -> (SyncSender<SourceEvent>, Receiver<SourceEvent>) {
    std::sync::mpsc::sync_channel(QUEUE_CHUNKS)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_secs(5)), "5s");
        assert_eq!(format_duration(Duration::from_millis(1_500)), "1.5s");
    }
}
