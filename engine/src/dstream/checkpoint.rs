//! Checkpoints of a DStream graph, as Spark's `ssc.checkpoint(dir)`: after
//! a micro-batch, the batch clock, the sources' progress and the state of
//! every windowed stream are written to the directory; a context built the
//! same way and run again resumes from the last one.
//!
//! A windowed stream's state holds records of the user's types, so it is
//! saved only for streams marked [`DStream::checkpointed`], whose records
//! implement [`Persist`]: the trait bound is on that path only. With
//! checkpointing on, `run` refuses a windowed stream that is not marked.
//!
//! Sources: a generator (and `queue_stream`) is asked again for batch `k`
//! from the checkpoint on, so a deterministic one replays exactly; socket
//! and file streams do not replay (records in flight are lost). Output
//! operations (`print`, `foreach_batch`, `collect`) run again for the
//! batches after the checkpoint, as Spark's do.

use std::any::Any;
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use super::context::{Graph, StreamingContext};
use super::stream::DStream;
use super::Record;
use crate::checkpoint::codec::{self, CodecError, Decoder, Encoder, Persist};
use crate::checkpoint::store::Store;
use crate::checkpoint::{check_fingerprint, CheckpointError, Checkpointing, ENGINE_BUILD};
use crate::error::Result;
use crate::window::StateOf;

/// A windowed stream's state, as the graph knows it.
pub(crate) struct StatefulStream {
    /// The operation that made the stream, with its settings.
    pub what: String,
    /// The operator as `Rc<RefCell<dyn StateOf<T>>>` for the stream's `T`.
    pub state: Rc<dyn Any>,
    /// Saves and restores it, once the stream is marked checkpointed.
    pub saver: Option<Box<dyn StateSaver>>,
}

/// Saves and restores one stream's state.
pub(crate) trait StateSaver {
    fn save(&self, e: &mut Encoder);
    fn restore(&self, d: &mut Decoder<'_>) -> std::result::Result<(), CodecError>;
}

/// The saver of a stream of `T` records.
struct Saver<T> {
    op: Rc<RefCell<dyn StateOf<T>>>,
}

impl<T: Persist> StateSaver for Saver<T> {
    fn save(&self, e: &mut Encoder) {
        let (mut numbers, mut records) = (Vec::new(), Vec::new());
        self.op.borrow().export(&mut numbers, &mut records);
        numbers.save(e);
        codec::save_items(records.into_iter(), e);
    }

    fn restore(&self, d: &mut Decoder<'_>) -> std::result::Result<(), CodecError> {
        let numbers = Vec::<i64>::load(d)?;
        let records = codec::load_items(d, 0)?;
        self.op
            .borrow_mut()
            .import(numbers, records)
            .ok_or_else(|| CodecError::Invalid("a stream's state does not fit its operator".into()))
    }
}

/// The checkpoints being written.
pub(crate) struct StreamCheckpoints {
    store: Store,
    settings: Checkpointing,
    last: Instant,
}

impl StreamingContext {
    /// Takes checkpoints in `dir` while the context runs, every
    /// [`Checkpointing::DEFAULT_EVERY`] of wall time and when it has
    /// finished, and resumes from the last one when the same graph runs
    /// again, as Spark's `ssc.checkpoint(dir)`. Windowed streams must be
    /// marked [`DStream::checkpointed`].
    ///
    /// # Errors
    ///
    /// The directory cannot be created.
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.checkpoint_with(Checkpointing::new(dir.as_ref()))
    }

    /// [`checkpoint`](Self::checkpoint) with its interval
    /// (`Checkpointing::every`; zero: after every micro-batch).
    ///
    /// # Errors
    ///
    /// The directory cannot be created.
    pub fn checkpoint_with(&self, settings: Checkpointing) -> Result<()> {
        let store = Store::open(&settings.dir)?;
        self.graph.borrow_mut().checkpoints = Some(StreamCheckpoints {
            store,
            settings,
            last: Instant::now(),
        });
        Ok(())
    }

    /// Records that a stream made by `what` holds window state that
    /// checkpoints cannot save yet (the columnar operators): checkpointing
    /// then refuses to run rather than resume without it.
    pub(crate) fn register_unsaved(&self, what: &str) -> usize {
        let mut graph = self.graph.borrow_mut();
        graph.stateful.push(StatefulStream {
            what: what.to_owned(),
            state: Rc::new(()),
            saver: None,
        });
        graph.stateful.len() - 1
    }

    /// Records that the stream made by `what` holds `op`'s window state.
    pub(crate) fn register_state<T: 'static>(
        &self,
        what: String,
        op: Rc<RefCell<dyn StateOf<T>>>,
    ) -> usize {
        let mut graph = self.graph.borrow_mut();
        graph.stateful.push(StatefulStream {
            what,
            state: Rc::new(op),
            saver: None,
        });
        graph.stateful.len() - 1
    }
}

impl<T: Record + Persist> DStream<T> {
    /// Marks this stream's window state as saved in the context's
    /// checkpoints (see [`StreamingContext::checkpoint`]): its records are
    /// [`Persist`]. A stream without window state is returned as it is.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let dir = std::env::temp_dir().join(format!("engine-doc-dstream-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let ssc = engine::StreamingContext::with_threads(Duration::from_secs(1), 1)?;
    /// ssc.checkpoint(&dir)?;
    /// let counts = ssc
    ///     .queue_stream(vec![vec![("a".to_string(), 1_i64)], vec![("a".to_string(), 2)]])
    ///     .reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b,
    ///         Duration::from_secs(2), Duration::from_secs(1))?
    ///     .checkpointed()?;
    /// let seen = counts.collect();
    /// ssc.run()?;
    /// assert_eq!(seen.take()[1].1, [("a".to_string(), 3)]);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), engine::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The stream's window state cannot be saved yet (the columnar
    /// operators, [`DStream::words`] and
    /// [`DStream::aggregate_by_key_and_window`]).
    pub fn checkpointed(&self) -> Result<Self> {
        if let Some(index) = self.state {
            let mut graph = self.ctx.graph.borrow_mut();
            let entry = &mut graph.stateful[index];
            let Some(op) = entry.state.downcast_ref::<Rc<RefCell<dyn StateOf<T>>>>() else {
                return Err(CheckpointError::Unsupported {
                    what: format!("the state of `{}` streams", entry.what),
                }
                .into());
            };
            entry.saver = Some(Box::new(Saver { op: Rc::clone(op) }));
        }
        Ok(self.clone())
    }
}

impl Graph {
    /// What identifies the graph for its checkpoints.
    fn fingerprint(&self, batch: i64, threads: usize) -> Vec<(String, String)> {
        let streams: Vec<&str> = self.stateful.iter().map(|s| s.what.as_str()).collect();
        vec![
            ("engine version".into(), ENGINE_BUILD.into()),
            ("batch".into(), format!("{batch} ms")),
            ("threads".into(), threads.to_string()),
            ("sources".into(), self.sources.len().to_string()),
            ("windowed streams".into(), streams.join(", ")),
        ]
    }

    /// Checks that every windowed stream can be saved, and restores the
    /// last checkpoint if there is one: the sequence number of the next
    /// micro-batch, or `None` when the checkpointed run had finished.
    pub(crate) fn resume(&mut self, batch: i64, threads: usize) -> Result<Option<i64>> {
        let Some(checkpoints) = &self.checkpoints else {
            return Ok(Some(0));
        };
        if let Some(stream) = self.stateful.iter().find(|s| s.saver.is_none()) {
            let what = if stream.state.is::<()>() {
                format!("the state of `{}` streams (not yet)", stream.what)
            } else {
                format!(
                    "the stream made by `{}` unless it is marked `.checkpointed()` (its records must implement engine::checkpoint::Persist)",
                    stream.what
                )
            };
            return Err(CheckpointError::Unsupported { what }.into());
        }
        let dir = checkpoints.settings.dir.clone();
        let Some(loaded) = checkpoints.store.latest()? else {
            return Ok(Some(0));
        };
        let bad = |source| CheckpointError::Decode {
            path: loaded.path.clone(),
            source,
        };
        let mut d = Decoder::new(&loaded.payload);
        let fingerprint: Vec<(String, String)> = codec::load_items(&mut d, 16).map_err(bad)?;
        check_fingerprint(&dir, &fingerprint, self.fingerprint(batch, threads))?;
        let finished = bool::load(&mut d).map_err(bad)?;
        let next_seq = i64::load(&mut d).map_err(bad)?;
        for source in &self.sources {
            let mut source = source.borrow_mut();
            source.ended = bool::load(&mut d).map_err(bad)?;
            source.last_data = Option::<i64>::load(&mut d).map_err(bad)?;
        }
        for stream in &self.stateful {
            let saver = stream.saver.as_ref().expect("checked above");
            saver.restore(&mut d).map_err(bad)?;
        }
        if !d.is_done() {
            return Err(bad(CodecError::Invalid("bytes after the graph's state".into())).into());
        }
        Ok((!finished).then_some(next_seq))
    }

    /// Writes a checkpoint after a micro-batch if the interval has passed
    /// (always when `finished`); `next_seq` is the next one's number.
    pub(crate) fn maybe_checkpoint(
        &mut self,
        next_seq: i64,
        finished: bool,
        batch: i64,
        threads: usize,
    ) -> Result<()> {
        let due = self
            .checkpoints
            .as_ref()
            .is_some_and(|c| finished || c.last.elapsed() >= c.settings.every);
        if !due {
            return Ok(());
        }
        let mut e = Encoder::new();
        codec::save_items(self.fingerprint(batch, threads).into_iter(), &mut e);
        finished.save(&mut e);
        next_seq.save(&mut e);
        for source in &self.sources {
            let source = source.borrow();
            source.ended.save(&mut e);
            source.last_data.save(&mut e);
        }
        for stream in &self.stateful {
            stream
                .saver
                .as_ref()
                .expect("checked when the run started")
                .save(&mut e);
        }
        let checkpoints = self.checkpoints.as_mut().expect("due");
        checkpoints.store.write(&e.into_bytes())?;
        checkpoints.last = Instant::now();
        Ok(())
    }
}
