//! The `engine` binary on sockets: a server that drops and comes back, a
//! quiet socket, two producers at once (test servers on 127.0.0.1).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::{engine, stderr};

/// Starts a socket job: `source` (`--connect ADDR` or `--listen PORT`), a
/// word count over 100 ms batches in `output` format, stopped after at most
/// 30 s; stdout and stderr piped.
fn spawn_wordcount(source: [&str; 2], window: &str, output: &str) -> Child {
    engine()
        .args(source)
        .args([
            "--job",
            "wordcount",
            "--batch",
            "100ms",
            "--window",
            window,
            "--slide",
            "100ms",
        ])
        .args(["--output", output, "--run-for", "30s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the child's stdout on a thread, line by line.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits until `pred` holds for the lines seen so far.
fn wait_for(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    timeout: Duration,
    pred: impl Fn(&[String]) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    while !pred(seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => return pred(seen),
        }
    }
    true
}

/// The count of `word` in the most recent window that has it.
fn last_count(lines: &[String], word: &str) -> Option<u64> {
    lines.iter().rev().find_map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        (f.len() == 3 && f[1] == word)
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

#[test]
fn socket_wordcount_survives_the_server_dropping_and_coming_back() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let mut child = spawn_wordcount(["--connect", &addr], "60s", "csv");
    let rx = lines_of(&mut child);
    // First connection: 50 lines, then the server goes away.
    let (mut conn, _) = server.accept().unwrap();
    for _ in 0..50 {
        conn.write_all(b"alpha beta\n").unwrap();
    }
    drop(conn);
    // The engine reconnects; the second connection brings 70 more.
    let (mut conn, _) = server.accept().unwrap();
    for _ in 0..70 {
        conn.write_all(b"alpha\n").unwrap();
    }
    conn.flush().unwrap();
    let mut seen = Vec::new();
    let ok = wait_for(&rx, &mut seen, Duration::from_secs(10), |l| {
        last_count(l, "alpha") == Some(120)
    });
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        ok,
        "alpha never reached 120: {:?}",
        &seen[seen.len().saturating_sub(5)..]
    );
    assert_eq!(last_count(&seen, "beta"), Some(50));
    assert!(stderr(&out).contains("reconnect"), "{}", stderr(&out));
    drop(conn);
}

#[test]
fn a_quiet_socket_still_yields_its_windows() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let mut child = spawn_wordcount(["--connect", &addr], "300ms", "table");
    let rx = lines_of(&mut child);
    let (mut conn, _) = server.accept().unwrap();
    conn.write_all(b"hello hello world\n").unwrap();
    // The server stays connected and says nothing more: windows must still
    // close on schedule, show the words, then go empty.
    let mut seen = Vec::new();
    let headers_after_data = |lines: &[String]| {
        let first = lines.iter().position(|l| l == "(hello,2)");
        first.is_some_and(|i| {
            lines[i..]
                .iter()
                .filter(|l| l.starts_with("Time: "))
                .count()
                >= 6
        })
    };
    let ok = wait_for(&rx, &mut seen, Duration::from_secs(10), headers_after_data);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "windows stalled without new data: {seen:?}");
    drop(conn);
}

#[test]
fn a_listening_engine_takes_two_producers_at_once() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = spawn_wordcount(["--listen", &port.to_string()], "60s", "csv");
    let rx = lines_of(&mut child);
    let connect = || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => return s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("the engine does not listen: {e}"),
            }
        }
    };
    let (mut a, mut b) = (connect(), connect());
    for i in 0..100 {
        a.write_all(if i % 2 == 0 { b"x y\n" } else { b"x\n" })
            .unwrap();
        b.write_all(b"x z\n").unwrap();
    }
    drop((a, b));
    let mut seen = Vec::new();
    // Every word's final count, whichever producer's words were seen first
    // (that decides the order of a window's rows).
    let ok = wait_for(&rx, &mut seen, Duration::from_secs(20), |l| {
        last_count(l, "x") == Some(200)
            && last_count(l, "z") == Some(100)
            && last_count(l, "y") == Some(50)
    });
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        ok,
        "{:?}\nstderr: {}",
        &seen[seen.len().saturating_sub(5)..],
        stderr(&out)
    );
    assert_eq!(last_count(&seen, "y"), Some(50));
}
