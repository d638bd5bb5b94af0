//! `--output kafka`'s flags, checked before any broker is reached: a build
//! without the `kafka` feature answers them with one line naming it; with
//! it, the flags that go together.

use crate::util::{stderr, TestCommand};

/// `engine run` on ten generated events with `extra` flags: exit status
/// and stderr.
fn refused(extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec![
        "--generate",
        "events",
        "--records",
        "10",
        "--key-col",
        "key",
    ];
    args.extend_from_slice(extra);
    let out = TestCommand::run(&args).output();
    (out.status.code(), stderr(&out))
}

#[cfg(not(feature = "kafka"))]
#[test]
fn a_build_without_the_feature_answers_kafka_flags_with_one_line_naming_it() {
    for extra in [
        &["--output", "kafka", "--kafka-output-topic", "out"][..],
        &["--output", "kafka"],
        &["--kafka-output-topic", "out"],
        &["--kafka-brokers", "127.0.0.1:9092"],
        &["--kafka-output-brokers", "127.0.0.1:9092"],
    ] {
        let (code, err) = refused(extra);
        assert_eq!(code, Some(2), "{extra:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{extra:?}: {err}");
        assert!(
            err.contains("needs a build with the `kafka` feature")
                && err.contains("--features kafka")
                && err.contains(extra[0]),
            "{extra:?}: {err}"
        );
    }
}

#[cfg(not(feature = "kafka"))]
#[test]
fn a_build_without_the_feature_answers_kafka_input_flags_with_one_line_naming_it() {
    for flags in [
        &["--kafka-topic", "t", "--kafka-brokers", "127.0.0.1:9092"][..],
        &[
            "--kafka-topic",
            "t",
            "--kafka-group",
            "g",
            "--kafka-brokers",
            "b:1",
        ],
    ] {
        let out = TestCommand::run(flags).output();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{flags:?}: {err}");
        assert!(
            err.contains("--kafka-topic needs a build with the `kafka` feature"),
            "{flags:?}: {err}"
        );
    }
}

#[cfg(feature = "kafka")]
#[test]
fn kafka_input_flags_that_cannot_work_are_refused() {
    for (flags, says) in [
        (
            &[
                "--kafka-topic",
                "t",
                "--kafka-brokers",
                "b:1",
                "--kafka-start",
                "latest",
                "--kafka-until-end",
            ][..],
            "reads nothing",
        ),
        (&["--kafka-topic", "t"], "needs --kafka-brokers"),
        (
            &["--input", "-", "--kafka-group", "g"],
            "go with --kafka-topic",
        ),
        (
            &[
                "--kafka-topic",
                "t",
                "--kafka-brokers",
                "b:1",
                "--format",
                "csv",
            ],
            "--header",
        ),
        (
            &[
                "--kafka-topic",
                "t",
                "--kafka-brokers",
                "b:1",
                "--kafka-option",
                "novalue",
            ],
            "KEY=VALUE",
        ),
        (
            &[
                "--input",
                "-",
                "--stage",
                "partial",
                "--time-col",
                "ts",
                "--key-col",
                "k",
                "--format",
                "csv",
            ],
            "goes with --output kafka",
        ),
        (&["--input", "-", "--stage", "final"], "--kafka-topic"),
        (
            &[
                "--input",
                "-",
                "--time-col",
                "@timestamp",
                "--key-col",
                "k",
                "--format",
                "csv",
            ],
            "Kafka record timestamp",
        ),
    ] {
        let out = TestCommand::run(flags).output();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(says), "{flags:?}: {err}");
    }
}

#[cfg(feature = "kafka")]
#[test]
fn kafka_output_flags_go_together() {
    for (extra, expected) in [
        (
            &["--kafka-output-topic", "out"][..],
            "--kafka-output-topic goes with --output kafka",
        ),
        (
            &["--output", "csv", "--kafka-output-brokers", "b:1"],
            "--kafka-output-brokers goes with --output kafka",
        ),
        (
            &["--output", "kafka", "--kafka-brokers", "b:1"],
            "--output kafka needs --kafka-output-topic",
        ),
        (
            &["--output", "kafka", "--kafka-output-topic", "out"],
            "--output kafka needs --kafka-brokers",
        ),
        (
            &[
                "--output",
                "kafka",
                "--kafka-output-topic",
                "a b",
                "--kafka-brokers",
                "b:1",
            ],
            "a Kafka topic name is",
        ),
        (
            &[
                "--output",
                "kafka",
                "--kafka-output-topic",
                "out",
                "--kafka-brokers",
                "b:1",
                "--output-file",
                "/tmp/engine-kafka-never.csv",
            ],
            "--output-file goes with the other outputs",
        ),
    ] {
        let (code, err) = refused(extra);
        assert_eq!(code, Some(2), "{extra:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{extra:?}: {err}");
        assert!(err.contains(expected), "{extra:?}: {err}");
    }
}

/// Unreachable brokers fail before any record is read (exit 2, naming
/// them), not at the first window.
#[cfg(feature = "kafka")]
#[test]
fn unreachable_brokers_are_named_at_the_start() {
    let (code, err) = refused(&[
        "--output",
        "kafka",
        "--kafka-output-topic",
        "out",
        "--kafka-brokers",
        "127.0.0.1:1",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("127.0.0.1:1") && err.contains("out"), "{err}");
}
