//! Deterministic, seeded generators of data sets for the engine's tests and
//! benchmarks. The same seed and parameters give the same bytes on every
//! machine.
//!
//! - [`Rng`] and [`Zipf`]: the random draws every generator is built on.
//! - [`WordLines`] (`words`): text lines of Zipf-distributed words, or
//!   fixed-width (e.g. 100-byte) records of them.
//! - [`EventStream`] and [`events`] (`events`): keyed, timed integer events
//!   `ts,key,value`, with key skew and a fraction of late (out-of-order)
//!   events; CSV or a documented binary layout ([`EventFormat`]).
//! - [`YsbStream`] (`ysb`): the Yahoo Streaming Benchmark's ad events as
//!   JSON lines, and its ad → campaign table.
//! - [`BidStream`] (`nexmark`): Nexmark bids `auction, bidder, price,
//!   date_time` as CSV or NDJSON, with hot auctions.
//!
//! Every generator is a [`Generator`]: it appends records to a byte buffer,
//! and [`write_records`] streams them to any writer in large chunks, without
//! allocating per record. The `datasets` binary is the command-line front:
//! `cargo run -p datasets --release -- words --out words.txt --records 1000000`
//! (see `--help`).
//!
//! ```
//! use datasets::{EventConfig, Limit, Rng, WordLines};
//!
//! // Columnar events, e.g. to feed an engine directly.
//! let events = datasets::events(&EventConfig { keys: 100, events: 1_000, ..EventConfig::default() });
//! assert_eq!(events.keys.len(), 1_000);
//! assert!(events.keys.iter().all(|&k| k < 100));
//! assert_eq!(Rng::new(7).next_u64(), Rng::new(7).next_u64());
//!
//! // The bytes of a data set: three lines of four words.
//! let mut text = Vec::new();
//! let mut words = WordLines::new(42, 1_000, 1.0, 4);
//! let written = datasets::write_records(&mut words, Limit::Records(3), &mut text, |_| {}).unwrap();
//! assert_eq!(written.records, 3);
//! assert_eq!(written.bytes, text.len() as u64);
//! let text = String::from_utf8(text).unwrap();
//! assert!(text.lines().all(|line| line.split(' ').count() == 4));
//!
//! // Same seed, same bytes.
//! let mut again = Vec::new();
//! let mut words = WordLines::new(42, 1_000, 1.0, 4);
//! datasets::write_records(&mut words, Limit::Records(3), &mut again, |_| {}).unwrap();
//! assert_eq!(text.as_bytes(), again);
//! ```

use std::io::{self, Write};

mod event;
mod nexmark;
mod num;
mod rng;
mod words;
mod ysb;

pub use event::{events, Event, EventConfig, EventFormat, EventStream, Events, EVENT_RECORD_BYTES};
pub use nexmark::{Bid, BidConfig, BidFormat, BidStream, FIRST_AUCTION_ID, FIRST_PERSON_ID};
pub use rng::{Rng, Zipf};
pub use words::WordLines;
pub use ysb::{YsbConfig, YsbEvent, YsbSpelling, YsbStream, AD_TYPES, EVENT_TYPES, YSB_MEMBERS};

/// A source of records written as bytes.
pub trait Generator {
    /// Bytes written once before the first record (a CSV header line); by
    /// default none.
    fn header(&self) -> &[u8] {
        b""
    }

    /// Appends the next record to `out`, with its terminating newline in
    /// text formats.
    fn append_record(&mut self, out: &mut Vec<u8>);
}

/// When [`write_records`] stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// After this many records.
    Records(u64),
    /// After the first record that brings the output (header included) to
    /// at least this many bytes: whole records only.
    Bytes(u64),
}

/// What [`write_records`] has written so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    /// Records (the header is none).
    pub records: u64,
    /// Bytes, the header's included.
    pub bytes: u64,
}

/// Bytes generated before each write to the output.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Writes `generator`'s header and records up to `limit` to `out`, in
/// chunks of about [`CHUNK_BYTES`], calling `progress` after each chunk;
/// then flushes `out`. Returns what was written.
pub fn write_records<G, W, P>(
    generator: &mut G,
    limit: Limit,
    out: &mut W,
    mut progress: P,
) -> io::Result<Written>
where
    G: Generator + ?Sized,
    W: Write + ?Sized,
    P: FnMut(Written),
{
    let mut buf = Vec::with_capacity(CHUNK_BYTES + (64 << 10));
    buf.extend_from_slice(generator.header());
    let mut done = Written::default();
    let mut flush = |buf: &mut Vec<u8>, done: &mut Written| -> io::Result<()> {
        out.write_all(buf)?;
        done.bytes += buf.len() as u64;
        buf.clear();
        progress(*done);
        Ok(())
    };
    match limit {
        Limit::Records(records) => {
            while done.records < records {
                generator.append_record(&mut buf);
                done.records += 1;
                if buf.len() >= CHUNK_BYTES {
                    flush(&mut buf, &mut done)?;
                }
            }
        }
        Limit::Bytes(bytes) => {
            while done.bytes + (buf.len() as u64) < bytes {
                generator.append_record(&mut buf);
                done.records += 1;
                if buf.len() >= CHUNK_BYTES {
                    flush(&mut buf, &mut done)?;
                }
            }
        }
    }
    // The rest, and at least one report.
    if !buf.is_empty() || done.bytes == 0 {
        flush(&mut buf, &mut done)?;
    }
    out.flush()?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of<G: Generator>(mut generator: G, limit: Limit) -> (Vec<u8>, Written) {
        let mut out = Vec::new();
        let written = write_records(&mut generator, limit, &mut out, |_| {}).unwrap();
        assert_eq!(written.bytes, out.len() as u64);
        (out, written)
    }

    #[test]
    fn same_seed_same_bytes_for_every_generator() {
        let limit = Limit::Bytes(3 * CHUNK_BYTES as u64 + 5);
        let all = |seed: u64| {
            [
                bytes_of(WordLines::new(seed, 10_000, 1.0, 10), limit).0,
                bytes_of(
                    WordLines::new(seed, 10_000, 1.0, 10).with_record_bytes(100),
                    limit,
                )
                .0,
                bytes_of(
                    EventStream::new(&EventConfig {
                        seed,
                        out_of_order: 0.1,
                        ..EventConfig::default()
                    }),
                    limit,
                )
                .0,
                bytes_of(
                    EventStream::new(&EventConfig {
                        seed,
                        ..EventConfig::default()
                    })
                    .with_format(EventFormat::Binary),
                    limit,
                )
                .0,
                bytes_of(
                    YsbStream::new(&YsbConfig {
                        seed,
                        ..YsbConfig::default()
                    }),
                    limit,
                )
                .0,
                bytes_of(
                    BidStream::new(&BidConfig {
                        seed,
                        ..BidConfig::default()
                    }),
                    limit,
                )
                .0,
            ]
        };
        let (a, b, c) = (all(42), all(42), all(43));
        for i in 0..a.len() {
            assert!(a[i].len() as u64 >= 3 * CHUNK_BYTES as u64 + 5);
            assert_eq!(a[i], b[i], "generator {i}");
            assert_ne!(a[i], c[i], "generator {i}");
        }
    }

    #[test]
    fn limits_count_whole_records() {
        let (out, written) = bytes_of(
            WordLines::new(1, 100, 1.0, 5).with_record_bytes(100),
            Limit::Records(12_345),
        );
        assert_eq!(
            written,
            Written {
                records: 12_345,
                bytes: 12_345 * 101
            }
        );
        assert_eq!(out.len(), 12_345 * 101);

        let (out, written) = bytes_of(
            WordLines::new(1, 100, 1.0, 5).with_record_bytes(100),
            Limit::Bytes(1_000),
        );
        assert_eq!(written.records, 10);
        assert_eq!(out.len(), 1_010);

        let (out, written) = bytes_of(EventStream::new(&EventConfig::default()), Limit::Records(0));
        assert_eq!(written.records, 0);
        assert_eq!(out, b"ts,key,value\n");

        // A prefix of a longer run: chunking does not change the bytes.
        let (long, _) = bytes_of(
            YsbStream::new(&YsbConfig::default()),
            Limit::Records(20_000),
        );
        let (short, _) = bytes_of(YsbStream::new(&YsbConfig::default()), Limit::Records(7_000));
        assert!(long.starts_with(&short));
        assert_eq!(short.split(|&b| b == b'\n').count() - 1, 7_000);
    }

    #[test]
    fn progress_reports_every_chunk() {
        let mut reports = Vec::new();
        let mut out = Vec::new();
        let mut words = WordLines::new(3, 1_000, 1.0, 10);
        let written = write_records(
            &mut words,
            Limit::Bytes(5 * CHUNK_BYTES as u64),
            &mut out,
            |w| {
                reports.push(w);
            },
        )
        .unwrap();
        assert!(reports.len() >= 5);
        assert!(reports
            .windows(2)
            .all(|w| w[0].bytes < w[1].bytes && w[0].records < w[1].records));
        assert_eq!(reports.last(), Some(&written));
    }
}
