//! Sockets under stress: many producers, refused producers, servers that are
//! late, silent or gone. Every test talks to 127.0.0.1 (or ::1) only and is
//! bounded in time.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The engine, run under `sh` with a raised open-file limit (2 000
/// producers are 2 000 descriptors).
fn engine(args: &[&str]) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 8192 2>/dev/null; exec \"$0\" run \"$@\"")
        .arg(env!("CARGO_BIN_EXE_engine"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the engine binary runs")
}

/// Lines of one of the child's pipes, read on a thread.
fn lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// A running engine with its stdout and stderr lines.
struct Engine {
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
    out_seen: Vec<String>,
    err_seen: Vec<String>,
}

impl Engine {
    fn start(args: &[&str]) -> Self {
        let mut child = engine(args);
        let out = lines(child.stdout.take().unwrap());
        let err = lines(child.stderr.take().unwrap());
        Self {
            child,
            out,
            err,
            out_seen: Vec::new(),
            err_seen: Vec::new(),
        }
    }

    fn drain(&mut self) {
        self.out_seen.extend(self.out.try_iter());
        self.err_seen.extend(self.err.try_iter());
    }

    /// Waits until `pred` holds for (stdout, stderr) seen so far.
    fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&[String], &[String]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            self.drain();
            if pred(&self.out_seen, &self.err_seen) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address of a `--listen` engine, from its "listening on" notice.
    fn listening_on(&mut self) -> String {
        let found = self.wait_for(Duration::from_secs(10), |_, err| {
            err.iter().any(|l| l.contains("listening on "))
        });
        assert!(found, "no `listening on` notice: {:?}", self.err_seen);
        let line = self
            .err_seen
            .iter()
            .find(|l| l.contains("listening on "))
            .unwrap();
        line.rsplit("listening on ").next().unwrap().trim().to_owned()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM (a clean stop: closed windows out, stats written), then the
    /// exit status; killed if it does not stop within 10 s.
    fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        self.wait(Duration::from_secs(10))
    }

    /// Waits for the engine to exit; kills it after `timeout`.
    fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads see the end of the pipes.
                std::thread::sleep(Duration::from_millis(50));
                self.drain();
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let status = self.child.wait().unwrap();
                self.drain();
                panic!(
                    "the engine did not stop within {timeout:?} ({status}); stderr: {:?}",
                    self.tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&self) -> String {
        self.err_seen.join("\n")
    }

    fn tail(&self) -> &[String] {
        &self.err_seen[self.err_seen.len().saturating_sub(20)..]
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The count of `word` in the most recent CSV window row that has it.
fn last_count(lines: &[String], word: &str) -> Option<u64> {
    lines.iter().rev().find_map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        (f.len() == 3 && f[1] == word)
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

/// A word count over processing time, 100 ms batches and a long window, so
/// that the last row of a word is its total.
const WORDCOUNT: &[&str] = &[
    "--job",
    "wordcount",
    "--batch",
    "100ms",
    "--window",
    "60s",
    "--slide",
    "100ms",
    "--output",
    "csv",
    "--run-for",
    "60s",
];

fn wordcount(extra: &[&str]) -> Engine {
    let mut args: Vec<&str> = WORDCOUNT.to_vec();
    args.extend_from_slice(extra);
    Engine::start(&args)
}

/// A JSON number member of the stats file.
fn stat(json: &str, member: &str) -> f64 {
    let key = format!("\"{member}\":");
    let at = json.find(&key).expect("member in the stats") + key.len();
    json[at..]
        .split([',', '}'])
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// This process's soft limit on open files.
fn open_file_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse().ok()
        })
        .unwrap_or(1024)
}

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("engine-hardening-{}-{name}", std::process::id()))
}

/// Connects, retrying while the engine is not up yet.
fn connect(addr: &str) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => return s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("cannot connect to {addr}: {e}"),
        }
    }
}

const PRODUCERS: usize = 2_000;
const LINES_PER_PRODUCER: usize = 5;

/// 2 000 producers connected at once, each sending a few lines: every line
/// is counted, and the engine's peak memory stays far below a thread and a
/// megabyte per producer.
#[test]
fn listen_two_thousand_producers_stays_bounded() {
    // The test holds 2 000 sockets open itself.
    if open_file_limit() < PRODUCERS as u64 + 200 {
        eprintln!(
            "skipped: the open-file limit ({}) is below {PRODUCERS} producers",
            open_file_limit()
        );
        return;
    }
    let started = Instant::now();
    let stats = scratch("two-thousand.json");
    let stats_arg = stats.to_string_lossy().into_owned();
    let mut engine = wordcount(&[
        "--listen",
        "0",
        "--max-connections",
        "4000",
        "--stats-json",
        &stats_arg,
    ]);
    let addr = engine.listening_on();
    let mut producers = Vec::with_capacity(PRODUCERS);
    for i in 0..PRODUCERS {
        let mut s = connect(&addr);
        for _ in 0..LINES_PER_PRODUCER {
            s.write_all(format!("common w{}\n", i % 10).as_bytes())
                .unwrap();
        }
        producers.push(s);
    }
    let total = (PRODUCERS * LINES_PER_PRODUCER) as u64;
    let all_counted = engine.wait_for(Duration::from_secs(15), |out, _| {
        last_count(out, "common") == Some(total)
    });
    // The rows so far (the windows after the stop slide past the data).
    let rows = engine.out_seen.clone();
    // The peak while all of them are connected.
    let status = std::fs::read_to_string(format!("/proc/{}/status", engine.pid())).unwrap();
    drop(producers);
    let exit = engine.stop();
    assert!(
        all_counted,
        "common: {:?} of {total}; stderr: {:?}",
        last_count(&engine.out_seen, "common"),
        engine.tail()
    );
    assert!(exit.success(), "{exit}: {:?}", engine.tail());
    let json = std::fs::read_to_string(&stats).unwrap();
    let _ = std::fs::remove_file(&stats);
    assert_eq!(stat(&json, "records") as u64, total, "{json}");
    let peak = stat(&json, "peak_rss_mb");
    let threads: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    eprintln!(
        "{PRODUCERS} producers: peak RSS {peak} MB, {threads} threads, {:?}",
        started.elapsed()
    );
    assert!(peak < 300.0, "peak RSS {peak} MB with {PRODUCERS} producers");
    for i in 0..10 {
        assert_eq!(
            last_count(&rows, &format!("w{i}")),
            Some(total / 10)
        );
    }
}
