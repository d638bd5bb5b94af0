//! The committed samples are what the README's commands make: the
//! generators have not drifted from them.

use std::path::Path;

use datasets::{
    write_records, BidConfig, BidStream, EventConfig, EventFormat, EventStream, Generator, Limit,
    WordLines, YsbConfig, YsbStream,
};

fn sample(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn generated(generator: &mut dyn Generator, records: u64) -> Vec<u8> {
    let mut out = Vec::new();
    write_records(generator, Limit::Records(records), &mut out, |_| {}).unwrap();
    out
}

fn assert_same(name: &str, generated: &[u8]) {
    assert!(
        sample(name) == generated,
        "samples/{name} differs from the generator's output: regenerate it (see datasets/README.md)"
    );
}

#[test]
fn word_samples() {
    let mut words = WordLines::new(42, 10_000, 1.0, 10);
    assert_same("words.txt", &generated(&mut words, 300));
    let mut records = WordLines::new(42, 10_000, 1.0, 10).with_record_bytes(100);
    let bytes = generated(&mut records, 300);
    assert!(bytes
        .split(|&b| b == b'\n')
        .take(300)
        .all(|r| r.len() == 100));
    assert_same("words-100b.txt", &bytes);
}

#[test]
fn event_samples() {
    let config = EventConfig {
        seed: 42,
        keys: 100,
        skew: 1.0,
        rate: 1_000,
        out_of_order: 0.1,
        max_lateness_ms: 50,
        ..EventConfig::default()
    };
    assert_same(
        "events.csv",
        &generated(&mut EventStream::new(&config), 300),
    );
    let mut binary = EventStream::new(&config).with_format(EventFormat::Binary);
    assert_same("events.bin", &generated(&mut binary, 300));
}

#[test]
fn ysb_samples() {
    let mut ysb = YsbStream::new(&YsbConfig {
        seed: 42,
        rate: 1_000,
        ..YsbConfig::default()
    });
    assert_same("ysb.ndjson", &generated(&mut ysb, 300));
    let mut table = Vec::new();
    ysb.write_campaigns_csv(&mut table).unwrap();
    assert_same("ysb-campaigns.csv", &table);
}

#[test]
fn nexmark_sample() {
    let mut bids = BidStream::new(&BidConfig {
        seed: 42,
        rate: 100,
        ..BidConfig::default()
    });
    assert_same("nexmark-bids.csv", &generated(&mut bids, 300));
}
