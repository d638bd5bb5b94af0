//! Windowed WordCount, as in Spark Streaming's programming guide, on
//! generated text: 30 s windows sliding every 10 s over 1 s batches.
//!
//! ```text
//! cargo run --release -p engine --example wordcount [-- --batches 60 --lines 20000 --columnar]
//! ```
//!
//! The default path is the Spark-shaped one, with user closures; `--columnar`
//! runs the same job on dictionary-encoded columns (`words()` then
//! `count_by_value_and_window`). Both print the first ten counts of every
//! window, like Spark's `pprint`, then a throughput line on stderr.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use engine::StreamingContext;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut batches = 60_i64;
    let mut lines_per_batch = 20_000_usize;
    let mut columnar = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--batches" => batches = args.next().ok_or("--batches needs a number")?.parse()?,
            "--lines" => lines_per_batch = args.next().ok_or("--lines needs a number")?.parse()?,
            "--columnar" => columnar = true,
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }

    let ssc = StreamingContext::new(Duration::from_secs(1))?;
    let mut generator = datasets::WordLines::new(42, 10_000, 1.0, 10);
    let lines =
        ssc.generator_stream(move |k| (k < batches).then(|| generator.lines(lines_per_batch)));

    let (window, slide) = (Duration::from_secs(30), Duration::from_secs(10));
    if columnar {
        lines
            .words()
            .count_by_value_and_window(window, slide)?
            .print();
    } else {
        let words = lines.flat_map(|line| line.split(' ').map(str::to_owned).collect::<Vec<_>>());
        let pairs = words.map(|word| (word, 1_i64));
        let counts =
            pairs.reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, window, slide)?;
        counts.print();
    }

    let started = Instant::now();
    ssc.run()?;
    let elapsed = started.elapsed().as_secs_f64();
    let total = batches as f64 * lines_per_batch as f64;
    eprintln!(
        "{total} lines in {elapsed:.2} s: {:.0} lines/s on {} threads",
        total / elapsed,
        ssc.threads()
    );
    Ok(())
}
