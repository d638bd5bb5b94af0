//! Sockets under stress: many producers, refused producers, servers that are
//! late, silent or gone. Every test talks to 127.0.0.1 (or `::1`) only and is
//! bounded in time.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::stat;

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
pub(crate) struct Engine {
    pub(crate) child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
    pub(crate) out_seen: Vec<String>,
    pub(crate) err_seen: Vec<String>,
}

impl Engine {
    pub(crate) fn start(args: &[&str]) -> Self {
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

    pub(crate) fn drain(&mut self) {
        self.out_seen.extend(self.out.try_iter());
        self.err_seen.extend(self.err.try_iter());
    }

    /// Waits until `pred` holds for (stdout, stderr) seen so far.
    pub(crate) fn wait_for(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&[String], &[String]) -> bool,
    ) -> bool {
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
    pub(crate) fn listening_on(&mut self) -> String {
        let found = self.wait_for(Duration::from_secs(10), |_, err| {
            err.iter().any(|l| l.contains("listening on "))
        });
        assert!(found, "no `listening on` notice: {:?}", self.err_seen);
        let line = self
            .err_seen
            .iter()
            .find(|l| l.contains("listening on "))
            .unwrap();
        line.rsplit("listening on ")
            .next()
            .unwrap()
            .trim()
            .to_owned()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM (a clean stop: closed windows out, stats written), then the
    /// exit status; killed if it does not stop within 10 s.
    pub(crate) fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        self.wait(Duration::from_secs(10))
    }

    /// Waits for the engine to exit; kills it after `timeout`.
    pub(crate) fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
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

    pub(crate) fn stderr(&self) -> String {
        self.err_seen.join("\n")
    }

    pub(crate) fn tail(&self) -> &[String] {
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
pub(crate) fn last_count(lines: &[String], word: &str) -> Option<u64> {
    lines.iter().rev().find_map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        (f.len() == 3 && f[1] == word)
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

/// A word count over processing time, 100 ms batches and a long window, so
/// that the last row of a word is its total.
pub(crate) const WORDCOUNT: &[&str] = &[
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

pub(crate) fn wordcount(extra: &[&str]) -> Engine {
    let mut args: Vec<&str> = WORDCOUNT.to_vec();
    args.extend_from_slice(extra);
    Engine::start(&args)
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

pub(crate) fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("engine-hardening-{}-{name}", std::process::id()))
}

/// Connects, retrying while the engine is not up yet.
pub(crate) fn connect(addr: &str) -> TcpStream {
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
    let proc_status = std::fs::read_to_string(format!("/proc/{}/status", engine.pid())).unwrap();
    drop(producers);
    let exit = engine.stop();
    assert!(
        all_counted,
        "common: {:?} of {total}; stderr: {:?}",
        last_count(&engine.out_seen, "common"),
        engine.tail()
    );
    // Stopped by SIGTERM: 143 (128 + 15), stats written.
    assert!(
        matches!(exit.code(), Some(0 | 143)),
        "{exit}: {:?}",
        engine.tail()
    );
    let json = std::fs::read_to_string(&stats).unwrap();
    let _ = std::fs::remove_file(&stats);
    assert_eq!(stat(&json, "records") as u64, total, "{json}");
    let peak = stat(&json, "peak_rss_mb");
    let threads: u64 = proc_status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    eprintln!(
        "{PRODUCERS} producers: peak RSS {peak} MB, {threads} threads, {:?}",
        started.elapsed()
    );
    assert!(
        peak < 300.0,
        "peak RSS {peak} MB with {PRODUCERS} producers"
    );
    for i in 0..10 {
        assert_eq!(last_count(&rows, &format!("w{i}")), Some(total / 10));
    }
}

/// A port nobody listens on (bound, then released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Accepts one connection within `timeout`.
pub(crate) fn accept_within(server: &TcpListener, timeout: Duration) -> Option<TcpStream> {
    server.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        match server.accept() {
            Ok((conn, _)) => {
                conn.set_nonblocking(false).unwrap();
                return Some(conn);
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => return None,
        }
    }
}

/// Whether the peer closed `conn` within `timeout` (end of stream or reset).
pub(crate) fn closed_within(conn: &mut TcpStream, timeout: Duration) -> bool {
    use std::io::Read;
    let deadline = Instant::now() + timeout;
    conn.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0_u8; 256];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if Instant::now() >= deadline {
                    return false;
                }
            }
            Err(_) => return true,
        }
    }
}

/// The numbers in the refusal notices: producers refused one by one, and
/// the counts of those refused beyond them.
fn refusals(stderr: &[String]) -> (u64, u64) {
    let single = stderr
        .iter()
        .filter(|l| l.contains("refused producer "))
        .count() as u64;
    let counted = stderr
        .iter()
        .filter_map(|l| {
            let rest = l.split("refused ").nth(1)?;
            let (n, tail) = rest.split_once(' ')?;
            tail.starts_with("more producers")
                .then(|| n.parse::<u64>().ok())?
        })
        .sum();
    (single, counted)
}

#[test]
fn listen_caps_connections_and_logs_refusals() {
    const CAP: usize = 5;
    const OVER: usize = 300;
    let mut engine = wordcount(&["--listen", "0", "--max-connections", &CAP.to_string()]);
    let addr = engine.listening_on();
    let mut kept: Vec<TcpStream> = (0..CAP)
        .map(|_| {
            let mut s = connect(&addr);
            s.write_all(b"kept\n").unwrap();
            s
        })
        .collect();
    assert!(
        engine.wait_for(Duration::from_secs(10), |out, _| last_count(out, "kept")
            == Some(CAP as u64)),
        "{:?}",
        engine.tail()
    );
    // Over the cap: each one is closed at once, its data never read.
    for _ in 0..OVER {
        let mut s = connect(&addr);
        let _ = s.write_all(b"refused\n");
        assert!(
            closed_within(&mut s, Duration::from_secs(5)),
            "a producer over the cap was kept"
        );
    }
    // A few lines, then one count (the count comes once its period is over).
    let told = engine.wait_for(Duration::from_secs(12), |_, err| {
        let (single, counted) = refusals(err);
        single + counted == OVER as u64
    });
    let (single, counted) = refusals(&engine.err_seen);
    assert!(
        told,
        "{single} + {counted} refusals told of {OVER}: {:?}",
        engine.tail()
    );
    let lines = engine
        .err_seen
        .iter()
        .filter(|l| l.contains("refused"))
        .count();
    assert!(
        lines <= 10,
        "{lines} lines about refusals: {:?}",
        engine.tail()
    );
    // A place that frees up is taken again.
    drop(kept.pop());
    let late = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut s = connect(&addr);
            s.write_all(b"late\n").unwrap();
            if !closed_within(&mut s, Duration::from_millis(300)) {
                kept.push(s);
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
        }
    };
    assert!(late, "no place freed up: {:?}", engine.tail());
    assert!(
        engine.wait_for(Duration::from_secs(10), |out, _| last_count(out, "late")
            == Some(1)),
        "{:?}",
        engine.tail()
    );
    assert_eq!(last_count(&engine.out_seen, "refused"), None);
    assert_eq!(last_count(&engine.out_seen, "kept"), Some(CAP as u64));
}

#[test]
fn listen_idle_timeout_disconnects_a_silent_producer() {
    let mut engine = wordcount(&["--listen", "0", "--idle-timeout", "500ms"]);
    let addr = engine.listening_on();
    let mut silent = connect(&addr);
    let mut talker = connect(&addr);
    let started = Instant::now();
    // The talker sends a line every 100 ms for 1.5 s: it stays.
    for _ in 0..15 {
        talker.write_all(b"chat\n").unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        closed_within(&mut silent, Duration::from_secs(5)),
        "the silent producer was kept"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "closed too early"
    );
    assert!(
        engine.wait_for(Duration::from_secs(10), |out, err| {
            last_count(out, "chat") == Some(15)
                && err
                    .iter()
                    .any(|l| l.contains("sent nothing for 500ms: disconnected"))
        }),
        "{:?}",
        engine.tail()
    );
    talker.write_all(b"chat\n").unwrap();
    assert!(
        engine.wait_for(Duration::from_secs(10), |out, _| last_count(out, "chat")
            == Some(16)),
        "the talker was dropped: {:?}",
        engine.tail()
    );
}

/// A producer reset in the middle of a line loses that partial line only;
/// one that half-closes after a last line without newline keeps it; nothing
/// is ever joined to another producer's bytes.
#[test]
fn partial_lines_stay_with_their_producer() {
    let mut engine = wordcount(&["--listen", "0"]);
    let addr = engine.listening_on();
    let mut reset = connect(&addr);
    let mut other = connect(&addr);
    reset.write_all(b"alpha beta\npart").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    other.write_all(b"ial gamma\n").unwrap();
    // Linger 0: close sends a reset.
    socket2::SockRef::from(&reset)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(reset);
    let mut half = connect(&addr);
    half.write_all(b"delta\nomega").unwrap();
    half.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(
        closed_within(&mut half, Duration::from_secs(5)),
        "a half-closed producer stays open on the engine's side"
    );
    other.write_all(b"end\n").unwrap();
    assert!(
        engine.wait_for(Duration::from_secs(10), |out, _| {
            last_count(out, "end") == Some(1)
                && last_count(out, "omega") == Some(1)
                && last_count(out, "alpha") == Some(1)
        }),
        "{:?}",
        engine.out_seen
    );
    let out = &engine.out_seen;
    for joined in ["part", "partial", "partial gamma", "omegaend", "partend"] {
        assert_eq!(last_count(out, joined), None, "{joined}: {out:?}");
    }
    assert_eq!(last_count(out, "ial"), Some(1));
    assert_eq!(last_count(out, "gamma"), Some(1));
    assert_eq!(last_count(out, "delta"), Some(1));
}

/// A producer that sends one endless line costs at most --max-line-bytes:
/// the line is dropped and counted, the producer's next lines are read.
#[test]
fn an_endless_line_is_dropped_with_bounded_memory() {
    let stats = scratch("endless.json");
    let stats_arg = stats.to_string_lossy().into_owned();
    let mut engine = wordcount(&[
        "--listen",
        "0",
        "--max-line-bytes",
        "64KiB",
        "--stats-json",
        &stats_arg,
    ]);
    let addr = engine.listening_on();
    let mut endless = connect(&addr);
    let block = vec![b'x'; 1 << 20];
    for _ in 0..256 {
        endless.write_all(&block).unwrap();
    }
    endless.write_all(b"\nafter\n").unwrap();
    assert!(
        engine.wait_for(Duration::from_secs(20), |out, _| last_count(out, "after")
            == Some(1)),
        "{:?}",
        engine.tail()
    );
    drop(endless);
    let exit = engine.stop();
    assert!(
        matches!(exit.code(), Some(0 | 143)),
        "{exit}: {:?}",
        engine.tail()
    );
    let json = std::fs::read_to_string(&stats).unwrap();
    let _ = std::fs::remove_file(&stats);
    assert_eq!(stat(&json, "skipped") as u64, 1, "{json}");
    let peak = stat(&json, "peak_rss_mb");
    assert!(
        peak < 100.0,
        "peak RSS {peak} MB for a 256 MiB line: {json}"
    );
}

/// Out of file descriptors: accepting pauses instead of spinning, says so
/// a few times, and resumes once descriptors are free.
#[test]
fn accept_errors_do_not_spin() {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 24 || exit 99; exec \"$0\" run \"$@\"")
        .arg(env!("CARGO_BIN_EXE_engine"))
        .args(WORDCOUNT)
        .args(["--listen", "0", "--threads", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    let mut engine = Engine {
        child,
        out,
        err,
        out_seen: Vec::new(),
        err_seen: Vec::new(),
    };
    let addr = engine.listening_on();
    // More producers than descriptors: the kernel completes their
    // handshakes, the engine cannot take them all.
    let mut producers: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut s = connect(&addr);
            let _ = s.write_all(b"many\n");
            s
        })
        .collect();
    assert!(
        engine.wait_for(Duration::from_secs(10), |_, err| err
            .iter()
            .any(|l| l.contains("Too many open files"))),
        "{:?}",
        engine.tail()
    );
    let cpu = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", engine.pid())).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        // utime and stime, in clock ticks (100 per second).
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let before = cpu();
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu() - before;
    assert!(
        used < 30,
        "{used} ticks of CPU in 1 s while out of descriptors"
    );
    let told = engine
        .err_seen
        .iter()
        .filter(|l| l.contains("Too many open files"))
        .count();
    assert!(told <= 2, "{:?}", engine.tail());
    // Descriptors free again: everyone waiting is read.
    producers.drain(..30);
    assert!(
        engine.wait_for(Duration::from_secs(15), |out, _| last_count(out, "many")
            == Some(40)),
        "{:?} {:?}",
        last_count(&engine.out_seen, "many"),
        engine.tail()
    );
}

#[test]
fn ipv6_loopback_listen_and_connect() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 loopback");
        return;
    }
    let mut engine = wordcount(&["--listen", "[::1]:0"]);
    let addr = engine.listening_on();
    assert!(addr.starts_with("[::1]:"), "{addr}");
    let mut producer = connect(&addr);
    producer.write_all(b"six six\n").unwrap();
    assert!(
        engine.wait_for(Duration::from_secs(10), |out, _| last_count(out, "six")
            == Some(2)),
        "{:?}",
        engine.tail()
    );
    let server = TcpListener::bind("[::1]:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let mut engine = wordcount(&["--connect", &addr]);
    let mut conn = accept_within(&server, Duration::from_secs(10)).expect("a connection");
    conn.write_all(b"vee\n").unwrap();
    assert!(
        engine.wait_for(Duration::from_secs(10), |out, _| last_count(out, "vee")
            == Some(1)),
        "{:?}",
        engine.tail()
    );
}

#[test]
fn listening_on_a_port_in_use_exits_2_naming_it() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut engine = wordcount(&["--listen", &port.to_string()]);
    let status = engine.wait(Duration::from_secs(10));
    let err = engine.stderr();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")) && err.contains("in use"),
        "{err}"
    );
    let mut engine = wordcount(&["--listen", "0", "--max-connections", "0"]);
    assert_eq!(engine.wait(Duration::from_secs(10)).code(), Some(2));
    assert!(
        engine.stderr().contains("--max-connections"),
        "{}",
        engine.stderr()
    );
}
