//! `--generate words|events`: the built-in generators, made of the
//! `datasets` crate's seeded streams and handed to the job as an
//! [`Input::Generator`](engine::job::Input::Generator).

use std::io::Write as _;

use engine::job::Generator;

/// Lines per buffer handed to the job.
const LINES_PER_SEND: u64 = 20_000;

/// The generator called `name`, `records` records long: `words` (text lines
/// of 10 words) or `events` (CSV `ts,key,value` with a header); `None` for
/// another name.
pub fn generator(name: &str, records: u64) -> Option<Generator> {
    match name {
        "words" => Some(Generator::new(name, move |send| words(records, send))),
        "events" => Some(Generator::new(name, move |send| events(records, send))),
        _ => None,
    }
}

/// The record format of a generator's lines.
pub fn format_of(name: &str) -> engine::ingest::Format {
    if name == "events" {
        engine::ingest::Format::Csv
    } else {
        engine::ingest::Format::Text
    }
}

/// `records` lines of 10 words from a 10 000-word Zipf vocabulary.
fn words(records: u64, send: &mut dyn FnMut(Vec<u8>) -> bool) {
    let mut words = datasets::WordLines::new(42, 10_000, 1.0, 10);
    let mut done = 0;
    while done < records {
        let n = (records - done).min(LINES_PER_SEND);
        let mut buf = Vec::with_capacity(n as usize * 64);
        for _ in 0..n {
            buf.extend_from_slice(words.line().as_bytes());
            buf.push(b'\n');
        }
        if !send(buf) {
            return;
        }
        done += n;
    }
}

/// A header, then `records` rows `ts,key,value`: 1 000 records per
/// millisecond, 10 000 keys, values in -1000..=1000.
fn events(records: u64, send: &mut dyn FnMut(Vec<u8>) -> bool) {
    let mut rng = datasets::Rng::new(42);
    let mut done = 0;
    let mut first = true;
    while done < records {
        let n = (records - done).min(LINES_PER_SEND);
        let mut buf = Vec::with_capacity(n as usize * 64);
        if std::mem::take(&mut first) {
            buf.extend_from_slice(b"ts,key,value\n");
        }
        for i in done..done + n {
            // Writing to a Vec cannot fail.
            let _ = writeln!(
                buf,
                "{},k{},{}",
                i / 1000,
                rng.below(10_000),
                rng.below(2_001) as i64 - 1_000
            );
        }
        if !send(buf) {
            return;
        }
        done += n;
    }
}
