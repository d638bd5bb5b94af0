//! Arbitrary bytes through the engine's lookup parsing: see
//! `engine::ingest::fuzz_check::check_lookup`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| engine::ingest::fuzz_check::check_lookup(data));
