//! `--generate`: the built-in generators, text made by `datasets` in
//! blocks of whole lines. The library only streams them.

use std::io::Write as _;

use engine::ingest::Format;
use engine::source::{Blocks, Generator};

/// Lines per block handed to the queue.
const BLOCK_RECORDS: u64 = 20_000;

/// The generator called `name` (`words` or `events`), `records` records
/// long; `None` for a name there is no generator of.
pub fn by_name(name: &str, records: u64) -> Option<Generator> {
    match name {
        "words" => Some(Generator::new(name, Format::Text, move || words(records))),
        "events" => Some(Generator::new(name, Format::Csv, move || events(records))),
        _ => None,
    }
}

/// Text lines of words (Zipf-distributed over 10 000 words).
fn words(records: u64) -> Blocks {
    let mut words = datasets::WordLines::new(42, 10_000, 1.0, 10);
    let mut done = 0;
    Box::new(move || {
        let n = (records - done).min(BLOCK_RECORDS);
        if n == 0 {
            return None;
        }
        let mut buf = Vec::with_capacity(n as usize * 64);
        for _ in 0..n {
            buf.extend_from_slice(words.line().as_bytes());
            buf.push(b'\n');
        }
        done += n;
        Some(buf)
    })
}

/// CSV `ts,key,value`: 1 000 events a second, 10 000 keys, values in
/// -1000..=1000.
fn events(records: u64) -> Blocks {
    let mut rng = datasets::Rng::new(42);
    let mut done = 0;
    Box::new(move || {
        let n = (records - done).min(BLOCK_RECORDS);
        if n == 0 {
            return None;
        }
        let mut buf = Vec::with_capacity(n as usize * 64);
        if done == 0 {
            buf.extend_from_slice(b"ts,key,value\n");
        }
        for i in done..done + n {
            let _ = writeln!(
                buf,
                "{},k{},{}",
                i / 1000,
                rng.below(10_000),
                rng.below(2_001) as i64 - 1_000
            );
        }
        done += n;
        Some(buf)
    })
}
