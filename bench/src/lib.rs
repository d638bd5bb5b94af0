//! Benchmarks of the engine; see `benches/`.
