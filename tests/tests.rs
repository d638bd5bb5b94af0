//! The engine's integration tests: one binary, one module per area.

// Exact float equality is what several of these tests assert on purpose
// (min/max are selections, emptied sums must be exactly zero).
#![allow(clippy::float_cmp)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod checkpoint;
mod cli;
mod cli_columnar;
mod cli_help;
mod cli_kafka_output;
mod cli_memory;
mod cli_parquet;
mod cli_sockets;
mod cli_usability;
mod cli_ysb;
mod dstream_checkpoint;
mod dstream_props;
mod dstream_sources;
mod hardening;
mod hardening_connect;
mod hardening_numbers;
mod hardening_output;
mod hardening_parse;
mod hardening_sockets;
#[cfg(feature = "kafka")]
mod kafka;
#[cfg(feature = "kafka")]
mod kafka_sink;
#[cfg(feature = "kafka")]
mod kafka_util;
mod live_keys;
mod metrics;
mod oracle;
mod review_9;
mod rounds;
mod simd_levels;
mod spark_golden;
mod util;
mod window_props;
