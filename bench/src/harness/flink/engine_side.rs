//! The engine's side of the Flink comparison: the inputs (a prefix of the
//! jobs suite's word records, generated events), the engine's run of each
//! workload with its own CSV sink, and CPU time from `/proc`.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use datasets::{EventConfig, EventStream, Limit};
use engine::ingest::Format;
use engine::job::{self, Input, JobConfig, JobHooks, JobKind, OnError, TimeMode};
use engine::sink::{CsvSink, Sink};
use engine::{Agg, AggSet, Dictionary, ValueType, WindowResult, WindowSpec};

use super::compare::sorted_rows;
use super::{FlinkWorkload, EVENT_RATE, SLIDE_S, WINDOW_S};
use crate::jobs::TEXT_RATE;

/// Copies the whole lines of `from` that fit in `bytes` to `to` (all of
/// them when the file is smaller): the same records as the start of `from`.
pub fn copy_prefix(from: &Path, to: &Path, bytes: usize) -> Result<u64> {
    let mut data = Vec::with_capacity(bytes.min(1 << 30));
    File::open(from)
        .with_context(|| format!("opening {}", from.display()))?
        .take(bytes as u64)
        .read_to_end(&mut data)?;
    let whole = if data.len() < bytes {
        data.len()
    } else {
        data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
    };
    let mut out = File::create(to).with_context(|| format!("creating {}", to.display()))?;
    out.write_all(&data[..whole])?;
    Ok(whole as u64)
}

/// Writes about `bytes` of `datasets events` CSV to `path`: 10 000 uniform
/// keys, [`EVENT_RATE`] events per second of event time, in time order.
pub fn write_events(path: &Path, bytes: usize) -> Result<()> {
    let mut events = EventStream::new(&EventConfig {
        rate: EVENT_RATE,
        ..EventConfig::default()
    });
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    datasets::write_records(&mut events, Limit::Bytes(bytes as u64), &mut out, |_| {})
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The engine's configuration of `workload` on `input`: what `engine run
/// --input F --job wordcount --rate 50000 --window 10s --slide 1s` and
/// `engine run --input F --time-col ts --key-col key --value-col value
/// --value-type int --agg count,sum,min,max --window 10s --slide 1s` do.
pub fn engine_config(workload: FlinkWorkload, input: &Path, threads: usize) -> Result<JobConfig> {
    let ms = |s: u64| s as i64 * 1_000;
    let spec = WindowSpec::from_millis(ms(SLIDE_S), ms(WINDOW_S), ms(SLIDE_S))?;
    let (format, time, kind) = match workload {
        FlinkWorkload::WordCount => (Format::Text, TimeMode::Rate(TEXT_RATE), JobKind::WordCount),
        FlinkWorkload::Aggregate => (
            Format::Csv,
            TimeMode::Column("ts".into()),
            JobKind::Aggregate {
                key: "key".into(),
                value: Some("value".into()),
                aggs: AggSet::new([Agg::Count, Agg::Sum, Agg::Min, Agg::Max]),
                value_type: ValueType::I64,
                filter: None,
                lookup: None,
            },
        ),
    };
    Ok(JobConfig {
        input: Input::File(input.to_owned()),
        format: Some(format),
        time,
        kind,
        spec,
        until: None,
        keep_empty: false,
        key_ttl: None,
        threads,
        on_error: OnError::Skip,
        max_line_bytes: 1 << 20,
        run_for: None,
        socket: engine::source::SocketOptions::default(),
        // SAFETY: the benchmark's input files are written before the job and
        // not changed while it runs.
        mmap: unsafe { engine::job::MmapChoice::auto() },
    })
}

/// Hooks writing the windows with the engine's CSV sink, as `engine run
/// --output csv` does.
struct CsvHooks {
    sink: CsvSink<Vec<u8>>,
    bad: u64,
}

impl JobHooks for CsvHooks {
    fn window(&mut self, window: &WindowResult, dict: &Dictionary) -> engine::Result<()> {
        self.sink
            .write_window(window, dict)
            .map_err(|e| engine::Error::io("the engine's CSV rows (in memory)", e))
    }

    fn bad_record(&mut self, _origin: &str, _line: u64, _reason: &engine::ingest::RecordError) {
        self.bad += 1;
    }

    fn notice(&mut self, _notice: &engine::job::Notice<'_>) {}
}

/// What one engine run gave: records, seconds and its sorted rows.
pub struct EngineRun {
    /// Input records.
    pub records: u64,
    /// The job's wall time.
    pub seconds: f64,
    /// The process's CPU time over the run (every thread), when `/proc`
    /// tells it.
    pub cpu_seconds: Option<f64>,
    /// The CSV rows, sorted, without the header.
    pub rows: Vec<String>,
}

/// Runs `workload` in the engine on `threads` threads.
pub fn run_engine(workload: FlinkWorkload, input: &Path, threads: usize) -> Result<EngineRun> {
    let config = engine_config(workload, input, threads)?;
    let cpu = cpu_times();
    let mut hooks = CsvHooks {
        sink: CsvSink::new(Vec::with_capacity(64 << 20), config.output_columns()),
        bad: 0,
    };
    let report = job::run(&config, &mut hooks, &Arc::new(AtomicBool::new(false)))?;
    let csv = hooks.sink.into_inner()?;
    ensure!(
        report.skipped + hooks.bad + report.late == 0,
        "engine {}: {} malformed and {} late records",
        workload.name(),
        report.skipped.max(hooks.bad),
        report.late
    );
    Ok(EngineRun {
        records: report.records,
        seconds: report.elapsed.as_secs_f64(),
        cpu_seconds: cpu.zip(cpu_times()).map(|(start, end)| end.own - start.own),
        rows: sorted_rows(&String::from_utf8(csv)?, true),
    })
}

/// CPU seconds (user + system) of this process and of its waited-for
/// children, from `/proc/self/stat` (Linux; clock ticks of 1/100 s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuTimes {
    /// This process, every thread.
    pub own: f64,
    /// Children that have been waited for.
    pub children: f64,
}

/// This process's CPU times now, or `None` without `/proc`.
#[must_use]
pub fn cpu_times() -> Option<CpuTimes> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// Reads `utime stime cutime cstime` (fields 14–17) of a `/proc/PID/stat`
/// line; the command name (field 2) may hold spaces and parentheses.
#[must_use]
pub fn parse_stat(stat: &str) -> Option<CpuTimes> {
    // Linux's USER_HZ is 100 on every architecture it runs on.
    const TICKS: f64 = 100.0;
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields from 3 (state) on; utime is field 14.
    let fields: Vec<f64> = after_name
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [user, system, children_user, children_system] = fields.try_into().ok()?;
    Some(CpuTimes {
        own: (user + system) / TICKS,
        children: (children_user + children_system) / TICKS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_times_are_read_after_the_command_name() {
        // pid (comm) state ppid … utime stime cutime cstime …
        let line = "4242 (a (b) c) R 1 2 3 4 5 6 7 8 9 10 250 50 1000 20 20 0 1";
        assert_eq!(
            parse_stat(line),
            Some(CpuTimes {
                own: 3.0,
                children: 10.2
            })
        );
        assert_eq!(parse_stat("4242 (x) R 1 2"), None);
        // The process's own time grows while it computes.
        let start = cpu_times().expect("/proc/self/stat on Linux");
        let began = std::time::Instant::now();
        let mut x = 0_u64;
        while cpu_times().unwrap().own <= start.own {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            assert!(
                began.elapsed().as_secs() < 30,
                "no CPU time counted: {start:?}"
            );
        }
    }

    #[test]
    fn a_prefix_is_whole_lines() {
        let dir = std::env::temp_dir().join(format!("bench-flink-prefix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (from, to) = (dir.join("from.txt"), dir.join("to.txt"));
        std::fs::write(&from, "aaa\nbbb\nccc\n").unwrap();
        assert_eq!(copy_prefix(&from, &to, 9).unwrap(), 8);
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "aaa\nbbb\n");
        // The whole file when it is smaller than the limit.
        assert_eq!(copy_prefix(&from, &to, 100).unwrap(), 12);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_engine_side_writes_its_csv_columns_for_both_workloads() {
        let dir = std::env::temp_dir().join(format!("bench-flink-engine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let events = dir.join("events.csv");
        write_events(&events, 200_000).unwrap();
        let run = run_engine(FlinkWorkload::Aggregate, &events, 2).unwrap();
        // ~15 000 events at 1 M/s: one pane, so 10 windows of the same rows.
        assert!(run.records > 10_000, "{}", run.records);
        let total: u64 = run
            .rows
            .iter()
            .filter(|r| r.starts_with("1000,"))
            .map(|r| r.split(',').nth(2).unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(total, run.records);
        let fields: Vec<&str> = run.rows[0].split(',').collect();
        assert_eq!(
            fields.len(),
            6,
            "window_end,key,count,sum,min,max: {fields:?}"
        );
        let [count, sum, min, max] = [2, 3, 4, 5].map(|i| fields[i].parse::<i64>().unwrap());
        assert!(
            min <= max && (min * count..=max * count).contains(&sum),
            "{fields:?}"
        );

        let words = dir.join("words.txt");
        std::fs::write(&words, "a b  a\nb\n").unwrap();
        let run = run_engine(FlinkWorkload::WordCount, &words, 1).unwrap();
        // Two lines at 50 000 lines/s: both in the first pane.
        let expected: Vec<String> = (1..=10)
            .flat_map(|s| [format!("{s}000,a,2"), format!("{s}000,b,2")])
            .collect();
        assert_eq!(run.rows, {
            let mut e = expected;
            e.sort_unstable();
            e
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
