//! Arbitrary bytes through the engine's text parsing: see
//! `engine::ingest::fuzz_check::check_text`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| engine::ingest::fuzz_check::check_text(data));
