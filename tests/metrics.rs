//! `--metrics-addr` and `--report-every`: a running job's metrics scraped
//! over HTTP as a Prometheus server would, its summary line printed while
//! it runs, and the mistakes both flags refuse. Jobs read a stdin pipe the
//! test keeps open, so they run until the test closes it; every wait polls
//! with a generous deadline.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::{engine, exits_within, run, stderr, TempDir};

/// How long anything may take on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(60);

/// A running `engine run --input - ARGS`: its stdin to write to, its
/// stderr lines as they come.
struct Job {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Job {
    fn start(args: &[&str]) -> Self {
        let mut child = engine()
            .args(["--input", "-"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the engine binary starts");
        let stdin = child.stdin.take();
        let stderr = child.stderr.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first stderr line from the `from`th on (seen so far or to
    /// come) that `pred` picks, and its index.
    #[track_caller]
    fn line(&mut self, from: usize, what: &str, pred: impl Fn(&str) -> bool) -> (usize, String) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(at) = self.seen.iter().skip(from).position(|l| pred(l)) {
                return (from + at, self.seen[from + at].clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                let _ = self.child.kill();
                panic!("no {what} on stderr: {:?}", self.seen);
            };
            self.seen.push(line);
        }
    }

    /// The address the metrics are served on, as the job told it.
    fn metrics_addr(&mut self) -> SocketAddr {
        let (_, line) = self.line(0, "metrics address", |l| {
            l.starts_with("engine: metrics on http://")
        });
        line.trim_start_matches("engine: metrics on http://")
            .trim_end_matches("/metrics")
            .parse()
            .unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn send(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin: the job ends; its exit status and every stderr line.
    fn end(mut self) -> (std::process::ExitStatus, Vec<String>) {
        drop(self.stdin.take());
        let status = exits_within(&mut self.child, DEADLINE);
        // The reader thread ends with the pipe.
        while let Ok(line) = self.lines.recv_timeout(DEADLINE) {
            self.seen.push(line);
        }
        (status, self.seen)
    }
}

/// One scrape: `GET /metrics`, the body of a 200 answer.
fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).expect("the metrics server accepts");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nAccept: */*\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not HTTP: {answer}"));
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(head.contains("Connection: close"), "{head}");
    body.to_owned()
}

/// Every sample of a scrape: series (name and labels) to value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("{l}"));
            let value = value.parse().unwrap_or_else(|e| panic!("{l}: {e}"));
            (series.to_owned(), value)
        })
        .collect()
}

/// A series' value as a count.
#[track_caller]
fn count(samples: &BTreeMap<String, f64>, series: &str) -> u64 {
    let value = samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {samples:?}"));
    assert!(value.fract() == 0.0 && *value >= 0.0, "{series} {value}");
    *value as u64
}

/// Scrapes until `done` holds (the job publishes once per batch).
#[track_caller]
fn scrape_until(
    addr: SocketAddr,
    what: &str,
    done: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let now = samples(&scrape(addr));
        if done(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "never {what}: {now:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn metrics_count_the_records_sent_and_the_latency_histogram_is_well_formed() {
    let mut job = Job::start(&[
        "--job",
        "wordcount",
        "--batch",
        "100ms",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let addr = job.metrics_addr();
    // Served before any input: every counter at zero.
    let before = samples(&scrape(addr));
    assert_eq!(count(&before, "engine_records_in_total"), 0);
    assert_eq!(count(&before, "engine_batch_latency_seconds_count"), 0);
    let mut input = String::new();
    for i in 0..1000 {
        let _ = writeln!(input, "w{} common", i % 10);
    }
    job.send(input.as_bytes());
    let now = scrape_until(addr, "1000 records", |s| {
        count(s, "engine_records_in_total") == 1000
            && count(s, "engine_rows_out_total") >= 11
            && count(s, "engine_windows_out_total") >= 1
    });
    assert_eq!(
        count(&now, "engine_bytes_in_total"),
        input.len() as u64,
        "{now:?}"
    );
    assert_eq!(count(&now, "engine_events_total"), 2000);
    for zero in [
        "engine_malformed_records_total",
        "engine_late_records_total",
        "engine_unmatched_records_total",
        "engine_filtered_records_total",
        "engine_checkpoints_total",
    ] {
        assert_eq!(count(&now, zero), 0, "{zero}");
    }
    // The histogram: buckets cumulative in increasing `le`, `+Inf` equal to
    // the count, at least one batch, a sum that fits the largest bucket.
    let mut buckets: Vec<(f64, u64)> = now
        .keys()
        .filter_map(|series| {
            let le = series
                .strip_prefix("engine_batch_latency_seconds_bucket{le=\"")?
                .strip_suffix("\"}")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            Some((le, count(&now, series)))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() >= 10, "{buckets:?}");
    assert!(
        (buckets[0].0 - 0.0001).abs() < 1e-12,
        "starts at 100 µs: {buckets:?}"
    );
    assert!(
        buckets.iter().any(|b| (b.0 - 10.0).abs() < 1e-12),
        "{buckets:?}"
    );
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    let batches = count(&now, "engine_batch_latency_seconds_count");
    assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, batches));
    assert!(batches >= 1);
    let sum = now["engine_batch_latency_seconds_sum"];
    assert!(sum > 0.0 && sum < batches as f64 * 60.0, "{sum}");
    let (status, lines) = job.end();
    assert!(status.success(), "{status:?}: {lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("engine: 1000 records, ")),
        "{lines:?}"
    );
    // The server went with the job.
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn metrics_count_malformed_filtered_and_late_records() {
    let mut job = Job::start(&[
        "--format",
        "csv",
        "--key-col",
        "key",
        "--value-col",
        "value",
        "--time-col",
        "ts",
        "--where",
        "kind=view",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let addr = job.metrics_addr();
    let mut input = String::from("ts,key,value,kind\n");
    for i in 0..100 {
        let _ = writeln!(input, "{},k{},1,view", i * 10, i % 7);
    }
    for i in 0..10 {
        let _ = writeln!(input, "{},k{i},1,click", 1000 + i);
    }
    for _ in 0..5 {
        input.push_str("1500,k1,not-a-number,view\n");
    }
    // A later pane, then 3 records of a pane already closed.
    input.push_str("9000,k1,1,view\n");
    for _ in 0..3 {
        input.push_str("100,k2,1,view\n");
    }
    job.send(input.as_bytes());
    let records = 100 + 10 + 5 + 1 + 3;
    let now = scrape_until(addr, "every record", |s| {
        count(s, "engine_records_in_total") == records
    });
    assert_eq!(count(&now, "engine_malformed_records_total"), 5);
    assert_eq!(count(&now, "engine_filtered_records_total"), 10);
    assert_eq!(count(&now, "engine_late_records_total"), 3);
    assert_eq!(count(&now, "engine_bytes_in_total"), input.len() as u64);
    let (status, lines) = job.end();
    assert!(status.success(), "{status:?}: {lines:?}");
}

#[test]
fn checkpoints_are_counted_and_their_age_told() {
    let dir = TempDir::new("metrics-checkpoints");
    let checkpoints = dir.path("ckpt");
    let mut job = Job::start(&[
        "--job",
        "wordcount",
        "--checkpoint",
        checkpoints.to_str().unwrap(),
        "--checkpoint-every",
        "0s",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let addr = job.metrics_addr();
    job.send(b"a b c\n");
    let now = scrape_until(addr, "a durable checkpoint", |s| {
        count(s, "engine_checkpoints_total") >= 1
            && s["engine_checkpoint_age_seconds"] < DEADLINE.as_secs_f64()
    });
    let (pause, max) = (
        now["engine_checkpoint_pause_seconds"],
        now["engine_checkpoint_max_pause_seconds"],
    );
    assert!(pause > 0.0 && pause <= max, "{now:?}");
    assert!(now["engine_checkpoint_age_seconds"] >= 0.0);
    let (status, lines) = job.end();
    assert!(status.success(), "{status:?}: {lines:?}");
}

#[test]
fn report_every_prints_the_summary_line_while_the_job_runs() {
    let mut job = Job::start(&["--job", "wordcount", "--report-every", "200ms"]);
    let mut input = String::new();
    for i in 0..1000 {
        let _ = writeln!(input, "w{}", i % 10);
    }
    job.send(input.as_bytes());
    // The live counters reach the line: every record, once read.
    let (first, live) = job.line(0, "a summary line of 1000 records so far", |l| {
        l.starts_with("engine: so far 1000 records, ")
    });
    assert!(live.contains(" windows; batch latency p50 "), "{live}");
    // And it goes on, one line a period, while the job runs.
    job.line(first + 1, "another summary line", |l| {
        l.starts_with("engine: so far 1000 records, ")
    });
    let (status, lines) = job.end();
    assert!(status.success(), "{status:?}: {lines:?}");
    let so_far = lines
        .iter()
        .filter(|l| l.starts_with("engine: so far "))
        .count();
    assert!(so_far >= 2, "{lines:?}");
    // The final summary is the same line, last, after every periodic one.
    let last = lines.last().expect("a summary");
    assert!(last.starts_with("engine: 1000 records, "), "{lines:?}");
    let shape = |l: &str| {
        l.split(|c: char| c.is_ascii_digit() || c == '.')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join("#")
    };
    assert_eq!(
        shape(last),
        shape(&lines[first].replacen("so far ", "", 1)),
        "{lines:?}"
    );
}

#[test]
fn observability_flags_refuse_absurd_values_naming_them() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let in_use = taken.local_addr().unwrap().to_string();
    let cases: [(&[&str], &str); 8] = [
        (&["--report-every", "0s"], "--report-every 0s"),
        (&["--report-every", "10ms"], "--report-every 10ms"),
        (&["--report-every", "soon"], "--report-every"),
        (&["--metrics-addr", "nonsense"], "--metrics-addr nonsense"),
        (
            &["--metrics-addr", "127.0.0.1:99999"],
            "--metrics-addr 127.0.0.1:99999",
        ),
        (
            &["--metrics-addr", "127.0.0.1:"],
            "--metrics-addr 127.0.0.1:",
        ),
        (&["--metrics-addr", &in_use], &in_use),
        (&["--report-every", "1s", "--quiet"], "--quiet"),
    ];
    for (flags, named) in cases {
        // A job that would run for 30 s if the flags were taken.
        let mut args = vec!["--listen", "127.0.0.1:0", "--run-for", "30s"];
        args.extend_from_slice(flags);
        let started = Instant::now();
        let out = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(named), "{flags:?}: {err}");
        assert!(started.elapsed() < Duration::from_secs(25), "{flags:?}");
        assert!(!err.contains("listening on"), "{flags:?}: {err}");
    }
    drop(taken);
}

#[test]
fn the_flags_are_listed_under_reporting() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = crate::util::stdout(&out);
    // The section: from its heading to the next line that is not indented.
    let reporting: String = help
        .split("\nReporting:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{help}"))
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect::<Vec<_>>()
        .join("\n");
    for flag in ["--metrics-addr <HOST:PORT>", "--report-every <DURATION>"] {
        assert!(reporting.contains(flag), "{flag}: {reporting}");
    }
}
