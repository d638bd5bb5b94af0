//! Arbitrary bytes through the engine's csv parsing: see
//! `engine::ingest::fuzz_check::check_csv`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| engine::ingest::fuzz_check::check_csv(data));
