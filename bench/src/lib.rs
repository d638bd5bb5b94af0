//! Benchmarks of the engine: the Criterion suites in `benches/` and the
//! `reproduce` harness (`src/bin/reproduce.rs`), which share the workloads
//! defined here.

// Benchmark code asserts what it measures and panics on a broken benchmark;
// a `# Panics` section on every helper would say only that.
#![allow(clippy::missing_panics_doc)]

pub mod harness;
pub mod jobs;
pub mod machine;
#[cfg(feature = "polars")]
pub mod polars_cmp;
pub mod svg;
pub mod workloads;
