//! The engine's integration tests: one binary, one module per area.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod oracle;

mod window_props;
