//! Regression tests of the hardening contract for numbers: overflow never
//! printed as NaN, inf or a wrong value, exact float variance, and lateness
//! decided in record order (checked against the brute-force oracle).

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::util::{engine, p, stat, text, TempDir, TestCommand};

#[test]
fn float_variance_of_large_values_with_a_small_spread_is_exact() {
    // The same values as integers (exact in i128) and as floats.
    let mut input = String::from("ts,key,v\n");
    let mut rng = 11_u64;
    for i in 0..3_000 {
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        writeln!(
            input,
            "{},k{},{}",
            i * 2,
            i % 3,
            1_000_000_000 + (rng >> 33) % 11
        )
        .unwrap();
    }
    let run = |value_type: &str| {
        let out = TestCommand::run(&[
            "--input",
            "-",
            "--format",
            "csv",
            "--time-col",
            "ts",
            "--key-col",
            "key",
            "--value-col",
            "v",
            "--value-type",
            value_type,
            "--agg",
            "variance",
            "--window",
            "5s",
            "--slide",
            "1s",
            "--output",
            "csv",
        ])
        .stdin_bytes(input.as_bytes());
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let (exact, float) = (run("int"), run("float"));
    let rows = |t: &str| -> Vec<f64> {
        t.lines()
            .skip(1)
            .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
            .collect()
    };
    let (exact, float) = (rows(&exact), rows(&float));
    assert_eq!(exact.len(), float.len());
    assert!(exact.iter().all(|&v| v > 5.0), "the spread is about 10");
    for (e, f) in exact.iter().zip(&float) {
        assert!((e - f).abs() <= 1e-9 * e, "float variance {f}, exact {e}");
    }
}

#[test]
fn float_sum_overflow_is_null_named_by_key_and_does_not_poison_later_windows() {
    let out = TestCommand::run(&[
        "--input",
        "-",
        "--format",
        "csv",
        "--time-col",
        "ts",
        "--key-col",
        "key",
        "--value-col",
        "value",
        "--agg",
        "count,sum,avg",
        "--window",
        "2s",
        "--slide",
        "1s",
        "--output",
        "csv",
    ])
    .stdin_bytes(b"ts,key,value\n1,e,1e308\n2,e,1e308\n1500,e,1\n2500,e,1\n3000,f,2\n");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for bad in ["NaN", "inf", "nan"] {
        assert!(!stdout.contains(bad), "{stdout}");
    }
    let rows: Vec<&str> = stdout.lines().filter(|l| l.contains(",e,")).collect();
    assert_eq!(
        rows,
        ["1000,e,2,,", "2000,e,3,,", "3000,e,2,2,1", "4000,e,1,1,1"],
        "{stdout}"
    );
    assert!(stdout.contains("4000,f,1,2,2"), "{stdout}");
    assert!(
        stderr.contains("key \"e\""),
        "the key's name, not its id: {stderr}"
    );
    assert!(stderr.contains("overflowed"), "{stderr}");
}

#[test]
fn variance_overflow_is_flagged_never_a_wrong_zero() {
    let out = TestCommand::run(&[
        "--input",
        "-",
        "--format",
        "csv",
        "--time-col",
        "ts",
        "--key-col",
        "key",
        "--value-col",
        "value",
        "--agg",
        "variance,stddev",
        "--window",
        "1s",
        "--output",
        "csv",
    ])
    .stdin_bytes(b"ts,key,value\n1,v,1e200\n2,v,-1e200\n3,w,1\n4,w,3\n");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("1000,v,,\n"), "{stdout}");
    assert!(stdout.contains("1000,w,2,1.4142135623730951\n"), "{stdout}");
    assert!(stderr.contains("variance of key \"v\""), "{stderr}");
}

#[test]
fn int_sum_overflow_of_one_key_does_not_stop_the_others() {
    let out = TestCommand::run(&[
        "--input", "-", "--format", "csv", "--time-col", "ts", "--key-col", "key",
        "--value-col", "value", "--value-type", "int", "--agg", "count,sum", "--window", "2s",
        "--slide", "1s", "--output", "csv",
    ])
    .stdin_bytes(
        b"ts,key,value\n1,big,9223372036854775807\n2,big,9223372036854775807\n3,small,5\n1500,big,-7\n",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("1000,big,2,\n"), "{stdout}");
    assert!(stdout.contains("1000,small,1,5\n"), "{stdout}");
    // Once the big values leave, the key's sum is exact again.
    assert!(stdout.contains("3000,big,1,-7\n"), "{stdout}");
    assert!(stderr.contains("sum of key \"big\""), "{stderr}");
}

/// Five squares near `i64::MAX` sum past `i128::MAX` and wrap around to a
/// positive number: the variance must be null and counted as overflowed,
/// not computed from the wrapped sum.
#[test]
fn int_variance_detects_a_sum_of_squares_that_wraps_to_a_positive_number() {
    let out = TestCommand::run(&[
        "--input",
        "-",
        "--format",
        "csv",
        "--time-col",
        "ts",
        "--key-col",
        "key",
        "--value-col",
        "value",
        "--value-type",
        "int",
        "--agg",
        "count,variance",
        "--window",
        "2s",
        "--slide",
        "1s",
        "--output",
        "csv",
    ])
    .stdin_bytes(
        b"ts,key,value\n1,big,9223372036854775807\n2,big,9223372036854775806\n\
          3,big,9223372036854775807\n4,big,9223372036854775804\n5,big,9223372036854775802\n\
          6,big,0\n7,small,1\n8,small,3\n\
          1500,big,4\n1600,big,6\n",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("1000,big,6,\n"), "{stdout}");
    assert!(stdout.contains("2000,big,8,\n"), "{stdout}");
    assert!(stdout.contains("1000,small,2,2\n"), "{stdout}");
    // Once the big values leave, the key's variance is exact again.
    assert!(stdout.contains("3000,big,2,2\n"), "{stdout}");
    assert!(stderr.contains("variance of key \"big\""), "{stderr}");
}

#[test]
fn lateness_does_not_depend_on_how_the_input_was_cut() {
    // Events out of order across panes, with late ones: the same bytes from
    // a file (one chunk) and from a pipe written a few bytes at a time.
    let mut input = String::from("ts,key,value\n");
    let mut rng = 7_u64;
    for i in 0..400_u64 {
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let jitter = (rng >> 33) % 2_500;
        let ts = (i * 20 + jitter).saturating_sub(1_000);
        writeln!(input, "{ts},k{},{}", (rng >> 20) % 5, i % 7).unwrap();
    }
    let dir = TempDir::new("chunking");
    let file = dir.file("in.csv", input.as_bytes());
    let args = |source: &str, stats: &Path| {
        vec![
            "--input".to_owned(),
            source.to_owned(),
            "--format".into(),
            "csv".into(),
            "--time-col".into(),
            "ts".into(),
            "--key-col".into(),
            "key".into(),
            "--value-col".into(),
            "value".into(),
            "--agg".into(),
            "count,sum".into(),
            "--window".into(),
            "2s".into(),
            "--slide".into(),
            "1s".into(),
            "--output".into(),
            "csv".into(),
            "--stats-json".into(),
            p(stats).to_owned(),
        ]
    };
    let from_file = engine()
        .args(args(p(&file), &dir.path("file.json")))
        .output()
        .unwrap();
    let mut child = engine()
        .args(args("-", &dir.path("pipe.json")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let bytes = input.into_bytes();
    let writer = std::thread::spawn(move || {
        for piece in bytes.chunks(97) {
            stdin.write_all(piece).unwrap();
            stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let from_pipe = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(from_file.status.code(), Some(0));
    assert_eq!(from_pipe.status.code(), Some(0));
    let late = |name: &str| stat(&std::fs::read_to_string(dir.path(name)).unwrap(), "late");
    assert!(late("file.json") > 0.0, "the input has late records");
    assert_eq!(late("file.json"), late("pipe.json"));
    assert_eq!(text(&from_file.stdout), text(&from_pipe.stdout));
}

/// A random stream in which one record in six goes back by up to 1.2 s: its
/// CSV, and the events that record-order lateness keeps with panes of
/// `pane` ms, and how many it drops.
fn disordered_stream(seed: u64, pane: i64) -> (String, Vec<crate::oracle::Event<i64>>, usize) {
    let mut rng = datasets::Rng::new(seed + 100);
    let mut csv = String::from("ts,key,value\n");
    let (mut kept, mut late) = (Vec::new(), 0);
    let mut max_pane = i64::MIN;
    let mut clock = 10_000_i64;
    for _ in 0..1_500 {
        clock += rng.below(30) as i64;
        let time = if rng.below(6) == 0 {
            clock - rng.below(1_200) as i64
        } else {
            clock
        };
        let key = rng.below(12) as u32;
        let value = rng.below(201) as i64 - 100;
        writeln!(csv, "{time},k{key},{value}").unwrap();
        if time.div_euclid(pane) >= max_pane {
            max_pane = time.div_euclid(pane);
            kept.push(crate::oracle::Event { time, key, value });
        } else {
            late += 1;
        }
    }
    (csv, kept, late)
}

/// Record-order lateness, checked against a brute-force oracle: a record is
/// late when its pane (gcd(W, S)) is before the latest pane of an earlier
/// record; the windows of the others are Spark's, in both retention modes.
#[test]
fn record_order_lateness_equals_an_oracle_on_random_disordered_streams() {
    use crate::oracle::{self, Mode};
    use std::collections::BTreeMap;
    let dir = TempDir::new("late-oracle");
    let cases = [
        (2_000_i64, 500_i64, 500_i64),
        (3_000, 1_000, 1_000),
        (1_000, 1_000, 1_000),
        (1_500, 600, 300),
    ];
    for (seed, (window, slide, pane)) in cases.into_iter().enumerate() {
        let (csv, kept, late) = disordered_stream(seed as u64, pane);
        assert!(late > 0, "seed {seed}: the stream has late records");
        let input = dir.file(&format!("in{seed}.csv"), csv.as_bytes());
        for (mode, flag) in [(Mode::Live, None), (Mode::Spark, Some("--keep-empty"))] {
            let stats = dir.path("stats.json");
            let (w, s_) = (format!("{window}ms"), format!("{slide}ms"));
            let mut args = vec![
                "--input",
                p(&input),
                "--time-col",
                "ts",
                "--key-col",
                "key",
                "--value-col",
                "value",
                "--value-type",
                "int",
                "--batch",
                "100ms",
                "--window",
                &w,
                "--slide",
                &s_,
                "--agg",
                "count,sum,min,max",
                "--output",
                "csv",
                "--quiet",
                "--stats-json",
                p(&stats),
            ];
            args.extend(flag);
            let out = TestCommand::run(&args).output();
            assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
            let json = std::fs::read_to_string(&stats).unwrap();
            assert_eq!(stat(&json, "late"), late as f64, "seed {seed}");
            let mut got = BTreeMap::new();
            for line in text(&out.stdout).lines().skip(1) {
                let f: Vec<&str> = line.split(',').collect();
                got.insert(
                    (f[0].parse::<i64>().unwrap(), f[1].to_owned()),
                    f[2..].join(","),
                );
            }
            let extreme = |x: Option<f64>| x.map(|v| (v as i64).to_string()).unwrap_or_default();
            let mut expected = BTreeMap::new();
            for (end, rows) in oracle::windows(&kept, window, slide, mode) {
                for (key, row) in rows {
                    let sum = row.int_sum.unwrap_or(0);
                    let (min, max) = (extreme(row.min), extreme(row.max));
                    expected.insert(
                        (end, format!("k{key}")),
                        format!("{},{sum},{min},{max}", row.count),
                    );
                }
            }
            assert!(expected.len() > 100, "seed {seed}: {} rows", expected.len());
            assert_eq!(got, expected, "seed {seed}, W {window} S {slide}, {flag:?}");
        }
    }
}
