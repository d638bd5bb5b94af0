//! `engine`: windowed aggregation of files, sockets and generated streams.
//!
//! ```text
//! engine run --input datasets/samples/events.csv --time-col ts --key-col key --value-col value \
//!            --batch 1s --window 10s --slide 1s --agg count,sum,avg,min,max --output csv
//! engine run --connect 127.0.0.1:9999 --job wordcount --batch 1s --window 30s --slide 1s
//! engine run --input datasets/samples/words.txt --job grep --pattern w0 --rate 100 --window 10s
//! engine completions bash; engine man run; engine --version
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::main() {
        Ok(code) => code,
        Err(err) => {
            cli::diag(&format!("engine: error: {}", cli::render(&err)));
            ExitCode::from(cli::exit_code(&err))
        }
    }
}
