//! Opening a columnar input: a binary events file is mapped and decoded in
//! place; everything else (stdin, `--no-mmap` files, Arrow IPC, Parquet)
//! is read on a thread of its own that sends blocks through a bounded
//! queue, so that reading (and Parquet's decompression) overlaps the
//! aggregation, a full queue bounds memory, and a job stopped while its
//! input blocks still ends at once. Blocks carry raw columns, never key
//! ids: ids are made on the job's thread, between its safe points.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

use super::{ColumnNames, ColumnarProblem, RECORD_BYTES};
use crate::error::{Error, Result};
use crate::ingest::Format;

/// Binary events a block of a stream holds (1.25 MiB).
const STREAM_EVENTS: usize = 64 * 1024;

/// Blocks the queue holds.
const QUEUE_BLOCKS: usize = 8;

/// A block of columnar input, as read.
pub(crate) enum Block {
    /// Whole binary events.
    Binary(Vec<u8>),
    /// The schema of the Arrow or Parquet input, before its first batch.
    #[cfg(feature = "columnar")]
    Schema(arrow_schema::SchemaRef),
    /// A record batch.
    #[cfg(feature = "columnar")]
    Arrow(arrow_array::RecordBatch),
}

/// An input opened for reading.
pub(crate) enum Opened {
    /// A mapped binary events file, decoded in place.
    Mapped(memmap2::Mmap),
    /// Blocks from a reader thread, and the bytes it has read.
    Stream {
        /// The blocks, then the reader's error if it failed; the queue
        /// closes when the input ends.
        blocks: Receiver<Result<Block>>,
        /// Bytes read so far.
        bytes: Arc<AtomicU64>,
    },
}

/// Where columnar input comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Place<'a> {
    /// A file, mapped when `mmap` (binary events only).
    File { path: &'a Path, mmap: bool },
    /// Standard input.
    Stdin,
}

/// Opens `from` as `format`. The reader thread stops when `stop` is set or
/// the receiver is dropped.
pub(crate) fn open(
    format: Format,
    from: Place<'_>,
    names: &ColumnNames,
    stop: &Arc<AtomicBool>,
) -> Result<Opened> {
    let origin = origin(from);
    let problem = |problem| Error::ColumnarInput {
        origin: origin.clone(),
        problem,
    };
    let reader: Box<dyn Read + Send> = match from {
        Place::File { path, mmap } => {
            let file = std::fs::File::open(path).map_err(|e| Error::io(&origin, e))?;
            let len = file.metadata().map_err(|e| Error::io(&origin, e))?.len();
            if format == Format::Binary {
                if len % RECORD_BYTES as u64 != 0 {
                    return Err(problem(ColumnarProblem::TruncatedBinary {
                        len,
                        record: RECORD_BYTES,
                    }));
                }
                if mmap && len > 0 && std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
                    // SAFETY: the caller chose `MmapChoice::auto`, whose
                    // contract is that no other process modifies or
                    // truncates the file while the job runs. The map is
                    // read-only and only read through.
                    let map =
                        unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&origin, e))?;
                    let _ = map.advise(memmap2::Advice::Sequential);
                    return Ok(Opened::Mapped(map));
                }
            }
            if format == Format::Parquet {
                return parquet(file, names, &origin, stop);
            }
            Box::new(file)
        }
        Place::Stdin if format == Format::Parquet => {
            return Err(problem(ColumnarProblem::UnsupportedSource {
                format: "parquet",
                from: "a file (its footer is read first), not standard input",
            }))
        }
        Place::Stdin => Box::new(std::io::stdin()),
    };
    let bytes = Arc::new(AtomicU64::new(0));
    let counted = Counted {
        inner: reader,
        bytes: Arc::clone(&bytes),
    };
    let blocks = match format {
        Format::Binary => spawn(stop, move |tx, stop| {
            binary_blocks(counted, &origin, tx, stop)
        })?,
        _ => arrow(counted, format, &origin, stop)?,
    };
    Ok(Opened::Stream { blocks, bytes })
}

/// How an input is named in messages.
pub(crate) fn origin(from: Place<'_>) -> String {
    match from {
        Place::File { path, .. } => path.display().to_string(),
        Place::Stdin => "stdin".into(),
    }
}

/// Counts the bytes read through it.
struct Counted {
    inner: Box<dyn Read + Send>,
    bytes: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Runs `read` on a reader thread feeding a bounded queue.
fn spawn(
    stop: &Arc<AtomicBool>,
    read: impl FnOnce(&SyncSender<Result<Block>>, &AtomicBool) -> Result<()> + Send + 'static,
) -> Result<Receiver<Result<Block>>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_BLOCKS);
    let stop = Arc::clone(stop);
    std::thread::Builder::new()
        .name("engine-columnar".into())
        .spawn(move || {
            if let Err(e) = read(&tx, &stop) {
                // The job may be over already: nobody to tell.
                let _ = tx.send(Err(e));
            }
        })
        .map_err(|e| Error::io("cannot start a reader for the columnar input", &e))?;
    Ok(rx)
}

/// Reads whole binary events in blocks; an incomplete event at the end is
/// an error.
fn binary_blocks(
    mut reader: Counted,
    origin: &str,
    tx: &SyncSender<Result<Block>>,
    stop: &AtomicBool,
) -> Result<()> {
    let block = STREAM_EVENTS * RECORD_BYTES;
    let mut carry = 0;
    loop {
        let mut buf = vec![0; block];
        let mut filled = carry;
        carry = 0;
        while filled < block {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            match reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(origin, e)),
            }
        }
        let whole = filled / RECORD_BYTES * RECORD_BYTES;
        let ended = filled < block;
        if ended && whole < filled {
            if whole > 0 {
                buf.truncate(whole);
                if tx.send(Ok(Block::Binary(buf))).is_err() {
                    return Ok(());
                }
            }
            return Err(Error::ColumnarInput {
                origin: origin.to_owned(),
                problem: ColumnarProblem::TruncatedBinaryStream {
                    left: filled - whole,
                    record: RECORD_BYTES,
                },
            });
        }
        debug_assert_eq!(whole, filled, "a full block is whole events");
        buf.truncate(whole);
        if whole > 0 && tx.send(Ok(Block::Binary(buf))).is_err() {
            return Ok(());
        }
        if ended {
            return Ok(());
        }
    }
}

#[cfg(not(feature = "columnar"))]
fn arrow(
    _reader: Counted,
    format: Format,
    _origin: &str,
    _stop: &Arc<AtomicBool>,
) -> Result<Receiver<Result<Block>>> {
    Err(Error::FormatNeedsFeature {
        format,
        feature: "columnar",
    })
}

#[cfg(not(feature = "columnar"))]
fn parquet(
    _file: std::fs::File,
    _names: &ColumnNames,
    _origin: &str,
    _stop: &Arc<AtomicBool>,
) -> Result<Opened> {
    Err(Error::FormatNeedsFeature {
        format: Format::Parquet,
        feature: "columnar",
    })
}

/// Skips the magic number `ARROW1` of the Arrow IPC file format and the zero
/// padding after it (to the writer's alignment: 8 bytes in the
/// specification, 64 for arrow-rs), so that the stream it holds is read;
/// a stream is left as it is.
#[cfg(feature = "columnar")]
fn skip_file_header(input: &mut impl std::io::BufRead) -> std::io::Result<()> {
    const MAGIC: &[u8] = b"ARROW1";
    let head = input.fill_buf()?;
    if !head.starts_with(MAGIC) {
        return Ok(());
    }
    input.consume(MAGIC.len());
    // A message starts with 0xFFFFFFFF (or, before Arrow 0.15, its
    // non-zero length): padding is the zeros before it.
    loop {
        let buf = input.fill_buf()?;
        let zeros = buf.iter().take_while(|&&b| b == 0).count();
        let done = zeros < buf.len() || buf.is_empty();
        input.consume(zeros);
        if done {
            return Ok(());
        }
    }
}

/// Arrow IPC, a file (starts with `ARROW1`) or a stream: the file format is
/// the stream format between a magic number and a footer, so both are read
/// as a stream, also from a pipe.
#[cfg(feature = "columnar")]
fn arrow(
    reader: Counted,
    _format: Format,
    origin: &str,
    stop: &Arc<AtomicBool>,
) -> Result<Receiver<Result<Block>>> {
    let origin = origin.to_owned();
    spawn(stop, move |tx, stop| {
        let unreadable = |opening, e: arrow_schema::ArrowError| Error::ColumnarInput {
            origin: origin.clone(),
            problem: ColumnarProblem::Unreadable {
                format: "Arrow IPC",
                opening,
                source: Box::new(e),
            },
        };
        let mut input = std::io::BufReader::with_capacity(1 << 20, reader);
        skip_file_header(&mut input).map_err(|e| Error::io(&origin, e))?;
        // Every message starts with 0xFFFFFFFF (since Arrow 0.15, 2019):
        // other bytes are not read as a length, which could be gigabytes.
        let head = std::io::BufRead::fill_buf(&mut input).map_err(|e| Error::io(&origin, e))?;
        if !head.is_empty() && !head.starts_with(&[0xFF; 4]) {
            return Err(Error::ColumnarInput {
                origin: origin.clone(),
                problem: ColumnarProblem::Unreadable {
                    format: "Arrow IPC",
                    opening: true,
                    source: "it does not start with an Arrow IPC message (0xFFFFFFFF) \
                             nor the file format's magic number ARROW1"
                        .into(),
                },
            });
        }
        let stream = arrow_ipc::reader::StreamReader::try_new(input, None)
            .map_err(|e| unreadable(true, e))?;
        if tx.send(Ok(Block::Schema(stream.schema()))).is_err() {
            return Ok(());
        }
        for batch in stream {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let batch = batch.map_err(|e| unreadable(false, e))?;
            if tx.send(Ok(Block::Arrow(batch))).is_err() {
                return Ok(());
            }
        }
        Ok(())
    })
}

/// Rows a Parquet record batch holds (the job joins them into pieces).
#[cfg(feature = "columnar")]
const PARQUET_BATCH_ROWS: usize = 128 * 1024;

/// A Parquet file, only the columns the job reads decoded.
#[cfg(feature = "columnar")]
fn parquet(
    file: std::fs::File,
    names: &ColumnNames,
    origin: &str,
    stop: &Arc<AtomicBool>,
) -> Result<Opened> {
    use parquet::arrow::arrow_reader::{
        ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
    };
    use parquet::arrow::ProjectionMask;

    let len = file.metadata().map_or(0, |m| m.len());
    let unreadable = |opening, e: parquet::errors::ParquetError| Error::ColumnarInput {
        origin: origin.to_owned(),
        problem: ColumnarProblem::Unreadable {
            format: "Parquet",
            opening,
            source: Box::new(e),
        },
    };
    let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        .map_err(|e| unreadable(true, e))?;
    let metadata = dictionary_keys(metadata, &names.key);
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata);
    let schema = Arc::clone(builder.schema());
    let wanted: Vec<&str> = std::iter::once(names.key.as_str())
        .chain(names.time.as_deref())
        .chain(names.value.as_ref().map(|(v, _)| v.as_str()))
        .chain(names.filter.as_ref().map(|(f, _)| f.as_str()))
        .collect();
    let roots: Option<Vec<usize>> = wanted.iter().map(|n| schema.index_of(n).ok()).collect();
    let builder = builder.with_batch_size(PARQUET_BATCH_ROWS);
    let builder = match roots {
        Some(mut roots) => {
            roots.sort_unstable();
            roots.dedup();
            let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
            builder.with_projection(mask)
        }
        // A missing column: the job reports it from the whole schema.
        None => builder.with_projection(ProjectionMask::none(schema.fields().len())),
    };
    let reader = builder.build().map_err(|e| unreadable(true, e))?;
    let bytes = Arc::new(AtomicU64::new(0));
    let read = Arc::clone(&bytes);
    let origin = origin.to_owned();
    let blocks = spawn(stop, move |tx, stop| {
        if tx.send(Ok(Block::Schema(schema))).is_err() {
            return Ok(());
        }
        for batch in reader {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let batch = batch.map_err(|e| Error::ColumnarInput {
                origin: origin.clone(),
                problem: ColumnarProblem::Unreadable {
                    format: "Parquet",
                    opening: false,
                    source: Box::new(e),
                },
            })?;
            if tx.send(Ok(Block::Arrow(batch))).is_err() {
                return Ok(());
            }
        }
        read.store(len, Ordering::Relaxed);
        Ok(())
    })?;
    Ok(Opened::Stream { blocks, bytes })
}

/// A text key column read dictionary-encoded, as Parquet stores it (its
/// default for text): the strings of a row group's dictionary are mapped to
/// ids once, instead of materialized and interned row by row. Any other
/// schema, or one the reader refuses, as it is.
#[cfg(feature = "columnar")]
fn dictionary_keys(
    metadata: parquet::arrow::arrow_reader::ArrowReaderMetadata,
    key: &str,
) -> parquet::arrow::arrow_reader::ArrowReaderMetadata {
    use arrow_schema::{DataType, Schema};
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};

    let schema = metadata.schema();
    let Ok(at) = schema.index_of(key) else {
        return metadata;
    };
    let text = schema.field(at).data_type();
    if !matches!(text, DataType::Utf8 | DataType::LargeUtf8) {
        return metadata;
    }
    let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
    let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(text.clone()));
    fields[at] = Arc::new(fields[at].as_ref().clone().with_data_type(dictionary));
    let hinted = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let options = ArrowReaderOptions::new().with_schema(hinted);
    ArrowReaderMetadata::try_new(Arc::clone(metadata.metadata()), options).unwrap_or(metadata)
}
