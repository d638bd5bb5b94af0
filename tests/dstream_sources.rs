//! The DStream API's real sources: a socket served on 127.0.0.1 and a file.

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use engine::StreamingContext;

/// Spark's seed example, as written: lines from a socket, split into words,
/// counted over a sliding window with an inverse function.
#[test]
fn socket_text_stream_feeds_a_windowed_word_count() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let feeder = std::thread::spawn(move || {
        let (mut conn, _) = server.accept().unwrap();
        for _ in 0..10 {
            conn.write_all(b"to be or not to be\n").unwrap();
        }
        conn.flush().unwrap();
        // Stay connected a while: a closed peer would be reconnected to.
        std::thread::sleep(Duration::from_secs(3));
    });
    let ssc = StreamingContext::with_threads(Duration::from_millis(100), 2).unwrap();
    let lines = ssc.socket_text_stream(&addr).unwrap();
    let words = lines.flat_map(|line| line.split(' ').map(str::to_owned).collect::<Vec<_>>());
    let pairs = words.map(|word| (word, 1_i64));
    let counts = pairs
        .reduce_by_key_and_window_inv(
            |a, b| a + b,
            |a, b| a - b,
            Duration::from_secs(10),
            Duration::from_millis(100),
        )
        .unwrap()
        .collect();
    ssc.run_for(Duration::from_millis(1_500)).unwrap();
    let windows = counts.take();
    assert!(
        windows.len() >= 5,
        "one window per slide: {}",
        windows.len()
    );
    // Batch times follow the wall clock, one slide apart.
    assert!(
        windows.windows(2).all(|w| w[1].0 - w[0].0 == 100),
        "{:?}",
        windows.iter().map(|w| w.0).collect::<Vec<_>>()
    );
    let mut last = windows.last().unwrap().1.clone();
    last.sort();
    assert_eq!(
        last,
        [
            ("be".to_string(), 20),
            ("not".into(), 10),
            ("or".into(), 10),
            ("to".into(), 20)
        ]
    );
    feeder.join().unwrap();
}

#[test]
fn text_file_stream_reads_a_file_into_the_first_batch() {
    let path = std::env::temp_dir().join(format!("engine-text-file-{}.txt", std::process::id()));
    std::fs::write(&path, "a b\nb\n").unwrap();
    let ssc = StreamingContext::with_threads(Duration::from_secs(1), 1).unwrap();
    let counts = ssc
        .text_file_stream(&path)
        .unwrap()
        .words()
        .count_by_value_and_window(Duration::from_secs(2), Duration::from_secs(1))
        .unwrap()
        .collect();
    ssc.run().unwrap();
    std::fs::remove_file(&path).unwrap();
    let windows = counts.take();
    assert_eq!(
        windows[0],
        (1_000, vec![("a".to_string(), 1), ("b".to_string(), 2)])
    );
    assert_eq!(
        windows.len(),
        2,
        "the file's lines leave the window after 2 s"
    );
    let missing = ssc.file_stream("/no/such/file").err().unwrap();
    assert!(missing.to_string().contains("/no/such/file"), "{missing}");
}
