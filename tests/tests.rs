//! The engine's integration tests: one binary, one module per area.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod dstream_props;
mod oracle;
mod spark_golden;
mod window_props;
