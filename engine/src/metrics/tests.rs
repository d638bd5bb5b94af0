use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

/// The value of the sample `series` (name and labels, as written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

#[test]
fn every_sample_belongs_to_a_declared_family() {
    let metrics = Metrics::new();
    metrics.set_checkpointing(true);
    metrics.set_partition_lag("t", 3, 7);
    let text = metrics.render();
    let mut declared = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                declared.insert(name.to_owned(), kind.to_owned()).is_none(),
                "{name} declared twice"
            );
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} has help but no type"
            );
        } else {
            let series = line.rsplit_once(' ').unwrap().0;
            let name = series.split('{').next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|base| declared.get(*base).is_some_and(|k| k == "histogram"))
                .unwrap_or(name);
            let kind = declared
                .get(family)
                .unwrap_or_else(|| panic!("{name} has no # TYPE before it"));
            assert!(name.starts_with("engine_"), "{name}");
            assert_eq!(
                name.ends_with("_total"),
                kind == "counter",
                "{name}: {kind}"
            );
            let value = line.rsplit_once(' ').unwrap().1;
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
    assert!(text.ends_with('\n'));
    for family in [
        "engine_records_in_total",
        "engine_bytes_in_total",
        "engine_malformed_records_total",
        "engine_late_records_total",
        "engine_unmatched_records_total",
        "engine_filtered_records_total",
        "engine_windows_out_total",
        "engine_rows_out_total",
        "engine_batch_latency_seconds",
        "engine_checkpoints_total",
        "engine_checkpoint_age_seconds",
        "engine_checkpoint_pause_seconds",
        "engine_checkpoint_max_pause_seconds",
        "engine_kafka_consumer_lag",
    ] {
        assert!(declared.contains_key(family), "{family}: {text}");
    }
}

#[test]
fn counters_are_what_was_published_last() {
    let metrics = Metrics::new();
    let counts = Counts {
        records: 1_000,
        bytes: 12_345,
        skipped: 3,
        late: 4,
        unmatched: 5,
        filtered: 6,
        after_until: 7,
        events: 980,
        windows: 9,
        rows: 90,
    };
    metrics.publish(&Counts {
        records: 1,
        ..Counts::default()
    });
    metrics.publish(&counts);
    assert_eq!(metrics.counts(), counts);
    let text = metrics.render();
    for (series, value) in [
        ("engine_records_in_total", 1_000.0),
        ("engine_bytes_in_total", 12_345.0),
        ("engine_malformed_records_total", 3.0),
        ("engine_late_records_total", 4.0),
        ("engine_unmatched_records_total", 5.0),
        ("engine_filtered_records_total", 6.0),
        ("engine_after_until_records_total", 7.0),
        ("engine_events_total", 980.0),
        ("engine_windows_out_total", 9.0),
        ("engine_rows_out_total", 90.0),
        ("engine_checkpoints_total", 0.0),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series}: {text}");
    }
    // Without checkpoints there is no checkpoint age to tell.
    assert!(!text.contains("engine_checkpoint_age_seconds"), "{text}");
    assert!(!text.contains("engine_kafka_consumer_lag"), "{text}");
    let report = metrics.report();
    assert_eq!((report.records, report.windows), (1_000, 9));
    assert_eq!(report.in_windows, 1_000 - 3 - 4 - 5 - 6 - 7);
}

#[test]
fn the_histogram_is_cumulative_and_its_count_is_the_inf_bucket() {
    let metrics = Metrics::new();
    let ms = Duration::from_millis;
    // 50 µs, exactly 1 ms (le is inclusive), 3 ms twice, 20 s (past 10 s).
    for latency in [Duration::from_micros(50), ms(1), ms(3), ms(3), ms(20_000)] {
        metrics.observe_batch(latency);
    }
    let text = metrics.render();
    let bucket = |le: &str| {
        sample(
            &text,
            &format!("engine_batch_latency_seconds_bucket{{le=\"{le}\"}}"),
        )
        .map_or_else(|| panic!("le {le}: {text}"), |count| count as u64)
    };
    assert_eq!(bucket("0.0001"), 1);
    assert_eq!(bucket("0.0005"), 1);
    assert_eq!(bucket("0.001"), 2);
    assert_eq!(bucket("0.0025"), 2);
    assert_eq!(bucket("0.005"), 4);
    assert_eq!(bucket("10"), 4);
    assert_eq!(bucket("+Inf"), 5);
    assert_eq!(
        sample(&text, "engine_batch_latency_seconds_count"),
        Some(5.0)
    );
    let sum = sample(&text, "engine_batch_latency_seconds_sum").unwrap();
    assert!((sum - 20.00705).abs() < 1e-9, "{sum}");
    // Buckets in increasing order of le, counts never decreasing.
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("engine_batch_latency_seconds_bucket{le=\""))
        .map(|rest| {
            let (le, count) = rest.split_once("\"} ").unwrap();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            (le, count.parse().unwrap())
        })
        .collect();
    assert_eq!(buckets.len(), LATENCY_BUCKETS_NS.len() + 1);
    assert!(buckets
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
    let report = metrics.report();
    assert_eq!(report.batches, 5);
    assert_eq!(report.max_batch_latency, ms(20_000));
}

#[test]
fn quantiles_are_interpolated_within_buckets() {
    let metrics = Metrics::new();
    assert_eq!(metrics.latency_quantile(0.5), Duration::ZERO);
    // 100 batches in (1 ms, 2.5 ms]: the median is at the bucket's middle.
    for _ in 0..100 {
        metrics.observe_batch(Duration::from_millis(2));
    }
    let p50 = metrics.latency_quantile(0.5);
    assert_eq!(p50, Duration::from_micros(1_750));
    // Never above the largest latency seen.
    assert_eq!(metrics.latency_quantile(1.0), Duration::from_millis(2));
    metrics.observe_batch(Duration::from_secs(60));
    assert_eq!(metrics.latency_quantile(1.0), Duration::from_secs(60));
}

#[test]
fn checkpoint_gauges_follow_the_checkpoints() {
    let metrics = Metrics::new();
    metrics.set_checkpointing(true);
    metrics.checkpoint_taken(Duration::from_millis(30), 100);
    metrics.checkpoint_taken(Duration::from_millis(10), 50);
    std::thread::sleep(Duration::from_millis(20));
    // Before the first durable checkpoint the age is the job's.
    assert!(metrics.checkpoint_age() >= Duration::from_millis(20));
    metrics.checkpoint_durable();
    assert!(metrics.checkpoint_age() < Duration::from_millis(20));
    let text = metrics.render();
    assert_eq!(sample(&text, "engine_checkpoints_total"), Some(2.0));
    assert_eq!(sample(&text, "engine_checkpoint_pause_seconds"), Some(0.01));
    assert_eq!(
        sample(&text, "engine_checkpoint_max_pause_seconds"),
        Some(0.03)
    );
    let age = sample(&text, "engine_checkpoint_age_seconds").unwrap();
    assert!((0.0..1.0).contains(&age), "{age}");
    let report = metrics.report();
    assert_eq!(report.checkpoints, 2);
    assert_eq!(report.checkpoint_max_bytes, 100);
    assert_eq!(report.checkpoint_total_pause, Duration::from_millis(40));
}

#[test]
fn partition_lag_is_labelled_escaped_and_removable() {
    let metrics = Metrics::new();
    metrics.set_partition_lag("events", 1, 5);
    metrics.set_partition_lag("events", 0, 10);
    metrics.set_partition_lag("events", 0, 12);
    metrics.set_partition_lag("we\"ird\\to\npic", 2, -1);
    let text = metrics.render();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("engine_kafka_consumer_lag{"))
        .collect();
    assert_eq!(
        lines,
        [
            "engine_kafka_consumer_lag{topic=\"events\",partition=\"0\"} 12",
            "engine_kafka_consumer_lag{topic=\"events\",partition=\"1\"} 5",
            "engine_kafka_consumer_lag{topic=\"we\\\"ird\\\\to\\npic\",partition=\"2\"} -1",
        ]
    );
    metrics.remove_partition("events", 0);
    metrics.remove_partition("events", 9);
    let text = metrics.render();
    assert!(!text.contains("partition=\"0\""), "{text}");
    assert!(text.contains("partition=\"1\"} 5"), "{text}");
    // No partition left: no family.
    metrics.remove_partition("events", 1);
    metrics.remove_partition("we\"ird\\to\npic", 2);
    let text = metrics.render();
    assert!(!text.contains("engine_kafka_consumer_lag"), "{text}");
}

/// Sends `request` and reads the whole answer (the server closes).
fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn the_server_answers_get_and_refuses_the_rest() {
    let metrics = Arc::new(Metrics::new());
    metrics.publish(&Counts {
        records: 42,
        ..Counts::default()
    });
    let server = serve("127.0.0.1:0", Arc::clone(&metrics)).unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);
    let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("\r\nContent-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(head.contains("\r\nConnection: close"), "{head}");
    assert!(
        head.contains(&format!("\r\nContent-Length: {}", body.len())),
        "{head}"
    );
    assert_eq!(sample(body, "engine_records_in_total"), Some(42.0));
    // Any path; a bare-LF request too.
    let answer = exchange(addr, b"GET / HTTP/1.0\n\n");
    assert!(answer.contains("engine_records_in_total 42\n"), "{answer}");
    let answer = exchange(addr, b"HEAD / HTTP/1.1\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "no body: {answer}");
    let answer = exchange(addr, b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
    // A request that never ends its headers is cut at the size bound.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let junk = vec![b'x'; MAX_REQUEST_BYTES * 4];
    let _ = stream.write_all(&junk);
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400 "),
        "{answer}"
    );
}

#[test]
fn a_silent_client_neither_hangs_the_server_nor_holds_it_long() {
    let metrics = Arc::new(Metrics::new());
    let server = serve("127.0.0.1:0", metrics).unwrap();
    let addr = server.local_addr();
    // Clients that connect and send nothing.
    let silent: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let started = Instant::now();
    let answer = exchange(addr, b"GET / HTTP/1.1\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    // The silent ones are closed once their time is up.
    for mut stream in silent {
        stream.set_read_timeout(Some(REQUEST_TIMEOUT * 10)).unwrap();
        let mut rest = Vec::new();
        let read = stream.read_to_end(&mut rest);
        assert!(matches!(read, Ok(0)), "{read:?} {rest:?}");
    }
    assert!(started.elapsed() < REQUEST_TIMEOUT * 10);
    drop(server);
}

#[test]
fn an_address_in_use_is_an_error_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = serve(&addr, Arc::new(Metrics::new())).unwrap_err();
    assert!(err.is_usage());
    assert_eq!(err.to_string(), format!("the metrics address {addr}"));
    for bad in ["127.0.0.1", "127.0.0.1:99999", ""] {
        let err = serve(bad, Arc::new(Metrics::new())).unwrap_err();
        assert!(err.is_usage(), "{err:?}");
        assert_eq!(err.to_string(), format!("the metrics address {bad}"));
    }
}

#[test]
fn dropping_the_server_stops_it() {
    let server = serve("127.0.0.1:0", Arc::new(Metrics::new())).unwrap();
    let addr = server.local_addr();
    drop(server);
    // The port is free again: nothing listens on it.
    assert!(std::net::TcpListener::bind(addr).is_ok());
}
