//! Windowed WordCount, as in Spark Streaming's programming guide: 30 s
//! windows sliding every 10 s over 1 s batches.
//!
//! ```text
//! nc -lk 9999                                                  # one terminal: type lines
//! cargo run --release -p engine --example wordcount -- 127.0.0.1:9999   # another
//! cargo run --release -p engine --example wordcount            # generated text instead
//! ```
//!
//! With `HOST:PORT` the lines come from that TCP server, as Spark's
//! `socketTextStream`, in real time (`--seconds N` stops after N seconds);
//! without, from a generator (`--batches`, `--lines`). `--columnar` runs the
//! same job on dictionary-encoded columns (`words()` then
//! `count_by_value_and_window`). Both print the counts of every window like
//! Spark's `pprint`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use engine::{DStream, StreamingContext};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut batches = 60_i64;
    let mut lines_per_batch = 20_000_usize;
    let mut seconds = None;
    let mut columnar = false;
    let mut server = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--batches" => batches = args.next().ok_or("--batches needs a number")?.parse()?,
            "--lines" => lines_per_batch = args.next().ok_or("--lines needs a number")?.parse()?,
            "--seconds" => seconds = Some(args.next().ok_or("--seconds needs a number")?.parse()?),
            "--columnar" => columnar = true,
            addr if !addr.starts_with('-') => server = Some(addr.to_owned()),
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }

    let ssc = StreamingContext::new(Duration::from_secs(1))?;
    // The sources' diagnostics (a server that went away) on stderr.
    ssc.on_notice(|message| eprintln!("engine: {message}"));
    let lines: DStream<String> = if let Some(addr) = &server {
        ssc.socket_text_stream(addr)?
    } else {
        let mut generator = datasets::WordLines::new(42, 10_000, 1.0, 10);
        ssc.generator_stream(move |k| (k < batches).then(|| generator.lines(lines_per_batch)))
    };

    let (window, slide) = (Duration::from_secs(30), Duration::from_secs(10));
    if columnar {
        lines
            .words()
            .count_by_value_and_window(window, slide)?
            .print();
    } else {
        let words = lines.flat_map(|line| line.split(' ').map(str::to_owned).collect::<Vec<_>>());
        let pairs = words.map(|word| (word, 1_i64));
        let window_counts =
            pairs.reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, window, slide)?;
        window_counts.print();
    }

    let started = Instant::now();
    match seconds {
        Some(s) => ssc.run_for(Duration::from_secs(s))?,
        None => ssc.run()?,
    }
    if server.is_none() {
        let elapsed = started.elapsed().as_secs_f64();
        let total = batches as f64 * lines_per_batch as f64;
        eprintln!(
            "{total} lines in {elapsed:.2} s: {:.0} lines/s on {} threads",
            total / elapsed,
            ssc.threads()
        );
    }
    Ok(())
}
