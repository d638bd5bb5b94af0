//! Sockets under stress, the connecting side: a server that comes up late,
//! never, or falls silent, and the DStream API's socket reader. Every test
//! talks to 127.0.0.1 only and is bounded in time.

use std::io::Write;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::hardening_sockets::{accept_within, closed_within, free_port, last_count, wordcount};

#[test]
fn connect_retries_until_the_server_comes_up() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let mut engine = wordcount(&["--connect", &addr]);
    assert!(
        engine.wait_for(Duration::from_secs(10), |_, err| err
            .iter()
            .any(|l| l.contains(&format!("cannot connect to {addr}")))),
        "{:?}",
        engine.tail()
    );
    // Late by well over a few attempts.
    std::thread::sleep(Duration::from_millis(1_500).saturating_sub(started.elapsed()));
    let server = TcpListener::bind(&addr).unwrap();
    let mut conn = accept_within(&server, Duration::from_secs(10)).expect("the engine connects");
    conn.write_all(b"hello world\n").unwrap();
    assert!(
        engine.wait_for(Duration::from_secs(10), |out, _| last_count(out, "hello")
            == Some(1)),
        "{:?}",
        engine.tail()
    );
    let err = engine.stderr();
    assert!(err.contains(&format!("connected to {addr} after")), "{err}");
    // Each failure is not a line: about one every 10 s.
    let failures = engine
        .err_seen
        .iter()
        .filter(|l| l.contains("cannot connect"))
        .count();
    assert!(failures <= 2, "{err}");
    assert!(engine.child.try_wait().unwrap().is_none(), "{err}");
}

#[test]
fn connect_timeout_fails_fast_when_nobody_listens() {
    let addr = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let mut engine = wordcount(&["--connect", &addr, "--connect-timeout", "1s"]);
    let status = engine.wait(Duration::from_secs(10));
    let elapsed = started.elapsed();
    let err = engine.stderr();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("cannot connect to {addr}")), "{err}");
    assert!(err.contains("gave up after 1s"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    // A bad address is still an error at once.
    let mut engine = wordcount(&["--connect", "no-port-here", "--connect-timeout", "1s"]);
    assert_eq!(engine.wait(Duration::from_secs(10)).code(), Some(2));
    assert!(
        engine.stderr().contains("no-port-here"),
        "{}",
        engine.stderr()
    );
}

#[test]
fn connect_idle_timeout_reconnects_to_a_silent_server() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let mut engine = wordcount(&["--connect", &addr, "--idle-timeout", "500ms"]);
    let mut first = accept_within(&server, Duration::from_secs(10)).expect("a connection");
    first.write_all(b"one\n").unwrap();
    // Then silence: the engine hangs up and connects again.
    assert!(
        closed_within(&mut first, Duration::from_secs(5)),
        "the silent connection was kept: {:?}",
        engine.tail()
    );
    let mut second = accept_within(&server, Duration::from_secs(10)).expect("a reconnection");
    second.write_all(b"two\n").unwrap();
    assert!(
        engine.wait_for(Duration::from_secs(10), |out, err| {
            last_count(out, "two") == Some(1)
                && err.iter().any(|l| l.contains("sent nothing for 500ms"))
        }),
        "{:?} {:?}",
        engine.out_seen.last(),
        engine.tail()
    );
    assert_eq!(last_count(&engine.out_seen, "one"), Some(1));
}

/// The DStream API's socket reader ends with its context: the server sees
/// the connection closed once the context and its streams are dropped.
#[test]
fn dstream_socket_reader_stops_when_the_context_is_dropped() {
    use engine::StreamingContext;
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let ssc = StreamingContext::with_threads(Duration::from_millis(100), 1).unwrap();
    let lines = ssc.socket_text_stream(&addr).unwrap();
    // Streams whose steps use the worker pool (they once held the context,
    // keeping it alive forever).
    let counts = lines
        .map(|l| (l, 1_i64))
        .reduce_by_key_and_window(
            |a, b| a + b,
            Duration::from_secs(1),
            Duration::from_millis(100),
        )
        .unwrap()
        .collect();
    let mut conn = accept_within(&server, Duration::from_secs(10)).expect("a connection");
    conn.write_all(b"x\n").unwrap();
    ssc.run_for(Duration::from_millis(500)).unwrap();
    assert!(counts
        .take()
        .iter()
        .any(|(_, b)| b.contains(&("x".to_string(), 1))));
    assert!(
        !closed_within(&mut conn, Duration::from_millis(300)),
        "closed while the context lives"
    );
    drop((ssc, lines));
    assert!(
        closed_within(&mut conn, Duration::from_secs(3)),
        "the reader outlived its context"
    );
    // Nobody listening: the reader retries until it is dropped, then ends
    // (the port's listener sees no more attempts).
    let port = free_port();
    let ssc = StreamingContext::with_threads(Duration::from_millis(100), 1).unwrap();
    let unreachable = ssc
        .socket_text_stream(&format!("127.0.0.1:{port}"))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop((ssc, unreachable));
    std::thread::sleep(Duration::from_millis(200));
    let late = TcpListener::bind(("127.0.0.1", port)).unwrap();
    assert!(
        accept_within(&late, Duration::from_secs(2)).is_none(),
        "the reader still tries to connect after its context is gone"
    );
}
