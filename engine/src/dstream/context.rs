//! The streaming context: batch clock, sources, and the loop that runs the
//! graph of streams one micro-batch at a time.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::stream::{DStream, Slot};
use crate::error::{Error, Millis, Result};
use crate::ingest;
use crate::source::{self, now_ms, ConnectSource, SocketOptions, SourceEvent};
use crate::window::WindowSpec;

/// The clock of one step: micro-batch `index` covers `[index·B, (index+1)·B)`
/// and is labelled with its end, `time`, as Spark labels batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Micro-batch index `k`: from 0 in virtual time, from the wall clock
    /// (`now / B`) in real time.
    pub index: i64,
    /// Batch time `(k+1)·B`, ms.
    pub time: i64,
    /// Steps run before this one (0 for the first).
    pub seq: i64,
}

type Step = Box<dyn FnMut(Tick) -> Result<()>>;

pub(crate) struct Graph {
    steps: Vec<Step>,
    /// Per source: the index of its last non-empty batch, once it has ended.
    pub(crate) sources: Vec<Rc<RefCell<SourceState>>>,
    /// How long after the sources' last record a window can still hold data:
    /// the longest chain of window lengths.
    drain_ms: i64,
    /// Whether a source receives data in real time (a socket): batches then
    /// follow the wall clock.
    real_time: bool,
    /// Where the sources' diagnostics go ([`StreamingContext::on_notice`]);
    /// shared with the sources' steps, so that it can be set after them.
    notices: Rc<NoticeHook>,
    /// The windowed streams, in the order they were made.
    pub(crate) stateful: Vec<super::checkpoint::StatefulStream>,
    /// Set by [`StreamingContext::checkpoint`].
    pub(crate) checkpoints: Option<super::checkpoint::StreamCheckpoints>,
}

/// The callback set with [`StreamingContext::on_notice`], if any.
type NoticeHook = RefCell<Option<Box<dyn Fn(&str)>>>;

#[derive(Debug, Default)]
pub(crate) struct SourceState {
    pub(crate) ended: bool,
    pub(crate) last_data: Option<i64>,
}

/// The entry point of the DStream API, as Spark Streaming's
/// `StreamingContext`: a batch interval, sources, and `run`.
///
/// Streams are built on the context, then [`run`](Self::run) drives every
/// stream once per micro-batch, in the order they were created (which is a
/// topological order: a stream is made from streams that exist).
///
/// The clock is virtual: batch `k` is processed as soon as batch `k − 1` is
/// done, and its records carry time `k·B`. `run` stops once every source has
/// ended and every window that holds data has been emitted.
#[derive(Clone)]
pub struct StreamingContext {
    batch: i64,
    pool: Arc<rayon::ThreadPool>,
    pub(crate) graph: Rc<RefCell<Graph>>,
}

impl StreamingContext {
    /// A context with batch interval `batch`, using all cores.
    pub fn new(batch: Duration) -> Result<Self> {
        Self::with_threads(batch, 0)
    }

    /// A context with `threads` workers (0: all cores).
    pub fn with_threads(batch: Duration, threads: usize) -> Result<Self> {
        let spec = WindowSpec::new(batch, batch, batch)?;
        // The one pool of the context: every operator made on it runs here.
        let pool = crate::window::build_pool(threads, "engine-stream")?;
        Ok(Self {
            batch: spec.batch(),
            pool,
            graph: Rc::new(RefCell::new(Graph {
                steps: Vec::new(),
                sources: Vec::new(),
                drain_ms: 0,
                real_time: false,
                notices: Rc::new(RefCell::new(None)),
                stateful: Vec::new(),
                checkpoints: None,
            })),
        })
    }

    /// Where the sources' diagnostics go: a socket source's reconnections,
    /// a server that went away. The library prints nothing itself: without
    /// a callback they go to the [`log`](https://docs.rs/log) facade (level
    /// `warn`, target `engine`), which costs nothing when no logger is
    /// installed and reaches the application's logger when one is; a
    /// callback replaces that (e.g. `|m| eprintln!("engine: {m}")`).
    pub fn on_notice(&self, notice: impl Fn(&str) + 'static) {
        *self.graph.borrow().notices.borrow_mut() = Some(Box::new(notice));
    }

    /// The batch interval, ms.
    #[must_use]
    pub fn batch_ms(&self) -> i64 {
        self.batch
    }

    /// Worker threads.
    #[must_use]
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// The worker pool, shared by every operator of the context, for the
    /// steps to hold: a step that held the context itself would keep its
    /// own graph alive (and its sources running).
    pub(crate) fn pool_arc(&self) -> Arc<rayon::ThreadPool> {
        Arc::clone(&self.pool)
    }

    /// A window over this context's batches, checked as Spark checks it, for
    /// a stream whose data lags its sources' by `delay` ms: `run` goes on
    /// until the window's last output that can hold data.
    pub(crate) fn window_spec(
        &self,
        delay: i64,
        window: Duration,
        slide: Duration,
    ) -> Result<WindowSpec> {
        let spec = WindowSpec::new(Duration::from_millis(self.batch as u64), window, slide)?;
        let mut graph = self.graph.borrow_mut();
        graph.drain_ms = graph.drain_ms.max(delay + spec.window());
        Ok(spec)
    }

    pub(crate) fn add_step(&self, step: impl FnMut(Tick) -> Result<()> + 'static) {
        self.graph.borrow_mut().steps.push(Box::new(step));
    }

    /// A stream fed by `next(k)` for batch `k`, until it returns `None`:
    /// the generator source.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let ssc = engine::StreamingContext::new(Duration::from_secs(1))?;
    /// let numbers = ssc.generator_stream(|k| (k < 3).then(|| vec![k, k * 10]));
    /// let seen = numbers.collect();
    /// ssc.run()?;
    /// assert_eq!(seen.take(), [(1_000, vec![0, 0]), (2_000, vec![1, 10]), (3_000, vec![2, 20])]);
    /// # Ok::<(), engine::Error>(())
    /// ```
    pub fn generator_stream<T, F>(&self, mut next: F) -> DStream<T>
    where
        T: super::Record,
        F: FnMut(i64) -> Option<Vec<T>> + 'static,
    {
        let state = Rc::new(RefCell::new(SourceState::default()));
        self.graph.borrow_mut().sources.push(Rc::clone(&state));
        let out = Slot::new();
        let slot = out.clone();
        // One batch is fetched ahead, so that the source's end is known at the
        // tick of its last batch and `run` stops without an empty extra tick.
        let mut ahead: Option<Option<Vec<T>>> = None;
        self.add_step(move |tick| {
            let mut state = state.borrow_mut();
            let current = ahead.take().unwrap_or_else(|| next(tick.seq));
            let records = match current {
                Some(records) if !state.ended => records,
                _ => {
                    state.ended = true;
                    Vec::new()
                }
            };
            if !records.is_empty() {
                state.last_data = Some(tick.index);
            }
            if !state.ended {
                let following = next(tick.seq + 1);
                state.ended = following.is_none();
                ahead = Some(following);
            }
            slot.set(Some(Arc::new(records)));
            Ok(())
        });
        DStream::new(self.clone(), out)
    }

    /// A stream that yields one queued batch per micro-batch, then ends: the
    /// in-memory source, as Spark's `queueStream`.
    pub fn queue_stream<T: super::Record>(
        &self,
        batches: impl IntoIterator<Item = Vec<T>>,
    ) -> DStream<T> {
        // Batch `k` is the `k`-th queued one, so that a run resumed from a
        // checkpoint goes on where it was; each is asked for once.
        let mut queue: Vec<Option<Vec<T>>> = batches.into_iter().map(Some).collect();
        self.generator_stream(move |k| {
            usize::try_from(k)
                .ok()
                .and_then(|k| queue.get_mut(k))
                .and_then(Option::take)
        })
    }

    /// Runs until every source has ended and every window holding data has
    /// been emitted. With a socket source, that is until the process ends.
    pub fn run(&self) -> Result<()> {
        self.run_until(None, None)
    }

    /// Runs exactly `batches` micro-batches (for endless sources).
    pub fn run_batches(&self, batches: i64) -> Result<()> {
        self.run_until(Some(batches), None)
    }

    /// Runs for at most `duration` of wall-clock time (or until the sources
    /// end, as [`run`](Self::run)).
    pub fn run_for(&self, duration: Duration) -> Result<()> {
        self.run_until(None, Some(Instant::now() + duration))
    }

    fn run_until(&self, batches: Option<i64>, deadline: Option<Instant>) -> Result<()> {
        let mut graph = self.graph.borrow_mut();
        if graph.sources.is_empty() {
            return Err(Error::NoSource);
        }
        // A checkpointed graph resumes after its last checkpoint; one that
        // had finished has nothing left to do.
        let threads = self.threads();
        let Some(start) = graph.resume(self.batch, threads)? else {
            return Ok(());
        };
        // Real time: batch k ends at wall-clock (k+1)·B, as in Spark.
        let first = if graph.real_time {
            now_ms().div_euclid(self.batch) + 1 - start
        } else {
            0
        };
        for seq in start.. {
            if batches.is_some_and(|n| seq >= n) || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(());
            }
            let index = first + seq;
            let tick = Tick {
                index,
                time: (index + 1) * self.batch,
                seq,
            };
            if graph.real_time {
                let wait = tick.time - now_ms();
                if wait > 0 {
                    std::thread::sleep(Duration::from_millis(wait as u64));
                }
            }
            graph.step(tick)?;
            let stop = graph.stop_time(self.batch, first);
            let finished = batches.is_none() && stop.is_some_and(|stop| tick.time >= stop);
            graph.maybe_checkpoint(seq + 1, finished, self.batch, threads)?;
            if finished {
                return Ok(());
            }
        }
        Ok(())
    }

    /// A stream of the lines a TCP server sends (`host:port`), as Spark's
    /// `socketTextStream`: the context then runs in real time, one batch per
    /// batch interval of the wall clock. The connection is made, and made
    /// again whenever the server goes away, with backoff, for as long as the
    /// context lives (see [`socket_text_stream_with`](Self::socket_text_stream_with)
    /// to give up after a while). Only an address that is not `host:port`
    /// is an error here.
    ///
    /// The reading thread ends (and the connection is closed) once the
    /// context and every stream made from it are dropped.
    pub fn socket_text_stream(&self, addr: &str) -> Result<DStream<String>> {
        self.socket_text_stream_with(addr, &SocketOptions::default())
    }

    /// [`socket_text_stream`](Self::socket_text_stream) with a connect
    /// timeout (the stream fails, and [`run`](Self::run) with it, once no
    /// connection could be made for that long) and an idle timeout (a
    /// connection silent that long is made again).
    pub fn socket_text_stream_with(
        &self,
        addr: &str,
        options: &SocketOptions,
    ) -> Result<DStream<String>> {
        let (tx, rx) = source::queue();
        let stop = Arc::new(AtomicBool::new(false));
        let reader = ConnectSource::new(addr, 1 << 20, options)?;
        source::spawn(Box::new(reader), tx, Arc::clone(&stop))?;
        // Held by the step: dropping the graph stops the reader.
        let guard = StopOnDrop(stop);
        let state = Rc::new(RefCell::new(SourceState::default()));
        let notices = {
            let mut graph = self.graph.borrow_mut();
            graph.sources.push(Rc::clone(&state));
            graph.real_time = true;
            Rc::clone(&graph.notices)
        };
        let out = Slot::new();
        let slot = out.clone();
        self.add_step(move |tick| {
            let _reader = &guard;
            let mut lines = Vec::new();
            while let Ok(event) = rx.try_recv() {
                match event {
                    SourceEvent::Data(chunk) => {
                        // A byte-order mark at the start of a connection
                        // is not part of the first line.
                        let data = if chunk.starts_origin {
                            ingest::strip_bom(&chunk.data)
                        } else {
                            &chunk.data
                        };
                        lines.extend(
                            ingest::lines(data).map(|l| String::from_utf8_lossy(l).into_owned()),
                        );
                    }
                    SourceEvent::Notice(told) => match &*notices.borrow() {
                        Some(notice) => notice(&told.to_string()),
                        None => log::warn!(target: "engine", "{told}"),
                    },
                    SourceEvent::Closed(_) => {}
                    SourceEvent::End => state.borrow_mut().ended = true,
                    SourceEvent::Failed(e) => return Err(e),
                }
            }
            if !lines.is_empty() {
                state.borrow_mut().last_data = Some(tick.index);
            }
            slot.set(Some(Arc::new(lines)));
            Ok(())
        });
        Ok(DStream::new(self.clone(), out))
    }

    /// The lines of a file, all in the first batch: how Spark's
    /// `textFileStream` takes in a file that appears in its directory.
    /// (Spark's name for the same: [`text_file_stream`](Self::text_file_stream).)
    pub fn file_stream(&self, path: impl AsRef<std::path::Path>) -> Result<DStream<String>> {
        self.text_file_stream(path)
    }

    /// The lines of a file, all in the first batch, as
    /// [`file_stream`](Self::file_stream).
    pub fn text_file_stream(&self, path: impl AsRef<std::path::Path>) -> Result<DStream<String>> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path.display(), &e))?;
        // A byte-order mark is not part of the first line.
        let lines: Vec<String> = ingest::lines(ingest::strip_bom(&bytes))
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        Ok(self.queue_stream([lines]))
    }
}

/// Stops a source's reader when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Graph {
    fn step(&mut self, tick: Tick) -> Result<()> {
        for step in &mut self.steps {
            step(tick)?;
        }
        Ok(())
    }

    /// Once every source has ended: the batch time after which no window can
    /// hold data any more.
    fn stop_time(&self, batch: i64, first: i64) -> Option<i64> {
        let mut last: Option<i64> = None;
        for source in &self.sources {
            let source = source.borrow();
            if !source.ended {
                return None;
            }
            last = last.max(source.last_data);
        }
        // The last record carries time `index·B`; the last window holding it
        // ends at most `drain_ms` later. Without windows, stop after its batch.
        let last_time = last.map_or(first * batch, |index| index * batch);
        Some(last_time + self.drain_ms.max(batch))
    }
}

impl std::fmt::Debug for StreamingContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StreamingContext {{ batch: {}, threads: {} }}",
            Millis(self.batch),
            self.threads()
        )
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    use super::StreamingContext;

    /// Accepts one connection and waits for its end: the time from `dropped`
    /// being set until the reader closed it.
    fn closes_within(server: &TcpListener, limit: Duration, drop_all: impl FnOnce()) {
        let (mut conn, _) = server.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        drop_all();
        let dropped = Instant::now();
        let mut buf = [0_u8; 64];
        loop {
            match conn.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
            assert!(
                dropped.elapsed() < limit,
                "the reader still holds the connection {limit:?} after the context was dropped"
            );
        }
    }

    #[test]
    fn dropping_the_context_stops_the_socket_reader() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap().to_string();
        let ssc = StreamingContext::with_threads(Duration::from_millis(50), 1).unwrap();
        let lines = ssc.socket_text_stream(&addr).unwrap();
        // A graph with a window, a map and an output: none of its steps may
        // keep the context (and the reader) alive.
        let counts = lines
            .map(|line| (line, 1_i64))
            .reduce_by_key_and_window_inv(
                |a, b| a + b,
                |a, b| a - b,
                Duration::from_millis(200),
                Duration::from_millis(50),
            )
            .unwrap();
        let collected = counts.collect();
        ssc.run_batches(2).unwrap();
        closes_within(&server, Duration::from_secs(1), move || {
            drop((ssc, lines, counts));
        });
        // What was collected outlives the context.
        assert!(collected.take().len() <= 2);
    }

    #[test]
    fn a_run_for_then_drop_stops_the_socket_reader() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap().to_string();
        let ssc = StreamingContext::with_threads(Duration::from_millis(50), 1).unwrap();
        let _ids = ssc
            .socket_text_stream(&addr)
            .unwrap()
            .words()
            .ids()
            .collect();
        ssc.run_for(Duration::from_millis(120)).unwrap();
        closes_within(&server, Duration::from_secs(1), move || drop(ssc));
    }
}
