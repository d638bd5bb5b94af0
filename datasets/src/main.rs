//! `datasets NAME --out FILE [--records N] [--seed S]`: writes a generated
//! data set (`words`: text lines; `events`: CSV `ts,key,value`).

use std::io::{BufWriter, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("datasets: error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let name = args
        .next()
        .ok_or("usage: datasets words|events --out FILE [--records N] [--seed S]")?;
    let (mut out, mut records, mut seed) = (None, 1_000_000_u64, 42_u64);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => out = Some(value()?),
            "--records" => records = value()?.parse().map_err(|e| format!("--records: {e}"))?,
            "--seed" => seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    let out = out.ok_or("--out FILE is required")?;
    let file = std::fs::File::create(&out).map_err(|e| format!("{out}: {e}"))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let io = |e: std::io::Error| format!("{out}: {e}");
    match name.as_str() {
        "words" => {
            let mut lines = datasets::WordLines::new(seed, 10_000, 1.0, 10);
            for _ in 0..records {
                w.write_all(lines.line().as_bytes()).map_err(io)?;
                w.write_all(b"\n").map_err(io)?;
            }
        }
        "events" => {
            let events = datasets::events(&datasets::EventConfig {
                seed,
                events: records as usize,
                ..datasets::EventConfig::default()
            });
            writeln!(w, "ts,key,value").map_err(io)?;
            for i in 0..events.keys.len() {
                writeln!(
                    w,
                    "{},k{},{}",
                    events.times[i], events.keys[i], events.values[i]
                )
                .map_err(io)?;
            }
        }
        other => {
            return Err(format!(
                "unknown data set `{other}` (expected words or events)"
            ))
        }
    }
    w.flush().map_err(io)
}
