//! Arrow IPC and Parquet input (feature `columnar`): fixtures written here
//! with arrow-rs, in several encodings of the same events (text,
//! dictionary and integer keys; ms, µs and ns timestamps; integer and
//! float values), each giving the CSV run's output.

use std::path::Path;
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Float64Array, Int32Array, Int64Array, LargeStringArray, RecordBatch,
    StringArray, TimestampMicrosecondArray, TimestampNanosecondArray, UInt32Array,
};
use arrow_schema::{Field, Schema};
use datasets::{Event, EventStream};

use super::{config, generated, output, JOB};
use crate::util::{p, run, stat, stderr, stdout, TempDir, TestCommand};

fn events(n: usize) -> Vec<Event> {
    EventStream::new(&config()).take(n).collect()
}

/// A batch of `ts`, `key`, `value` columns made by the three functions.
fn batch(
    events: &[Event],
    time: fn(&[Event]) -> ArrayRef,
    key: fn(&[Event]) -> ArrayRef,
    value: fn(&[Event]) -> ArrayRef,
) -> RecordBatch {
    let columns = [time(events), key(events), value(events)];
    let fields: Vec<Field> = ["ts", "key", "value"]
        .iter()
        .zip(&columns)
        .map(|(name, c)| Field::new(*name, c.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.to_vec()).unwrap()
}

fn ms(e: &[Event]) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(e.iter().map(|e| e.time)))
}
fn micros(e: &[Event]) -> ArrayRef {
    Arc::new(
        TimestampMicrosecondArray::from_iter_values(e.iter().map(|e| e.time * 1_000))
            .with_timezone("UTC"),
    )
}
fn nanos(e: &[Event]) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from_iter_values(
        e.iter().map(|e| e.time * 1_000_000),
    ))
}
fn text_keys(e: &[Event]) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(
        e.iter().map(|e| format!("k{}", e.key)),
    ))
}
fn large_keys(e: &[Event]) -> ArrayRef {
    Arc::new(LargeStringArray::from_iter_values(
        e.iter().map(|e| format!("k{}", e.key)),
    ))
}
fn dictionary_keys(e: &[Event]) -> ArrayRef {
    let texts: Vec<String> = e.iter().map(|e| format!("k{}", e.key)).collect();
    let keys: DictionaryArray<Int32Type> = texts.iter().map(String::as_str).collect();
    Arc::new(keys)
}
fn integer_keys(e: &[Event]) -> ArrayRef {
    Arc::new(UInt32Array::from_iter_values(e.iter().map(|e| e.key)))
}
fn int_values(e: &[Event]) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(e.iter().map(|e| e.value)))
}
fn int32_values(e: &[Event]) -> ArrayRef {
    Arc::new(Int32Array::from_iter_values(
        e.iter().map(|e| e.value as i32),
    ))
}
fn float_values(e: &[Event]) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(
        e.iter().map(|e| e.value as f64),
    ))
}

fn ipc_file(path: &Path, batches: &[RecordBatch]) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer = arrow_ipc::writer::FileWriter::try_new(file, &batches[0].schema()).unwrap();
    for b in batches {
        writer.write(b).unwrap();
    }
    writer.finish().unwrap();
}

fn ipc_stream(path: &Path, batches: &[RecordBatch]) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer = arrow_ipc::writer::StreamWriter::try_new(file, &batches[0].schema()).unwrap();
    for b in batches {
        writer.write(b).unwrap();
    }
    writer.finish().unwrap();
}

fn parquet_file(path: &Path, batches: &[RecordBatch]) {
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(
            parquet::basic::ZstdLevel::default(),
        ))
        .set_max_row_group_row_count(Some(8_192))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batches[0].schema(), Some(props)).unwrap();
    for b in batches {
        writer.write(b).unwrap();
    }
    writer.close().unwrap();
}

/// `events` in batches of 4 096 rows.
fn batches(
    events: &[Event],
    time: fn(&[Event]) -> ArrayRef,
    key: fn(&[Event]) -> ArrayRef,
    value: fn(&[Event]) -> ArrayRef,
) -> Vec<RecordBatch> {
    events
        .chunks(4_096)
        .map(|c| batch(c, time, key, value))
        .collect()
}

#[test]
fn arrow_files_streams_and_parquet_give_the_csv_runs_output() {
    let dir = TempDir::new("columnar-arrow");
    let n = 30_000;
    let (csv, _) = generated(&dir, n as u64);
    let expected = output(&csv, "csv", &["--quiet"]);
    assert!(expected.lines().count() > 500);
    let events = events(n);
    let file = dir.path("e.arrow");
    ipc_file(&file, &batches(&events, ms, text_keys, int_values));
    let stream = dir.path("e.arrows");
    ipc_stream(
        &stream,
        &batches(&events, micros, dictionary_keys, float_values),
    );
    let pq = dir.path("e.parquet");
    parquet_file(&pq, &batches(&events, nanos, large_keys, int32_values));
    for (path, format) in [(&file, "arrow"), (&stream, "arrow"), (&pq, "parquet")] {
        assert_eq!(
            output(path, format, &["--quiet"]),
            expected,
            "{}",
            path.display()
        );
    }
    // From the extension, and from a pipe: a stream, and a file's bytes.
    assert_eq!(output(&pq, "parquet", &["--quiet"]), expected);
    for path in [&file, &stream] {
        let out = TestCommand::run(
            &[&["--input", "-", "--format", "arrow", "--quiet"], &JOB[..]].concat(),
        )
        .cmd_with_stdin_file(path);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), expected, "stdin {}", path.display());
    }
}

#[test]
fn integer_key_columns_read_as_their_decimal_text() {
    let dir = TempDir::new("columnar-int-keys");
    let events = events(10_000);
    let csv: String = std::iter::once("ts,key,value\n".to_owned())
        .chain(
            events
                .iter()
                .map(|e| format!("{},{},{}\n", e.time, e.key, e.value)),
        )
        .collect();
    let csv = dir.file("e.csv", csv.as_bytes());
    let pq = dir.path("e.parquet");
    parquet_file(&pq, &batches(&events, ms, integer_keys, int_values));
    let expected = output(&csv, "csv", &["--quiet", "--where", "key=17"]);
    assert!(expected.lines().count() > 5, "{expected}");
    assert_eq!(
        output(&pq, "parquet", &["--quiet", "--where", "key=17"]),
        expected
    );
}

/// A schema of nullable columns with the given rows.
fn nullable(ts: Vec<Option<i64>>, key: Vec<Option<&str>>, value: Vec<Option<f64>>) -> RecordBatch {
    let columns: [ArrayRef; 3] = [
        Arc::new(Int64Array::from(ts)),
        Arc::new(StringArray::from(key)),
        Arc::new(Float64Array::from(value)),
    ];
    let fields: Vec<Field> = ["ts", "key", "value"]
        .iter()
        .zip(&columns)
        .map(|(name, c)| Field::new(*name, c.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.to_vec()).unwrap()
}

const SUM: [&str; 10] = [
    "--key-col",
    "key",
    "--time-col",
    "ts",
    "--value-col",
    "value",
    "--agg",
    "sum",
    "--output",
    "csv",
];

#[test]
fn nulls_and_non_finite_values_are_counted_malformed_records() {
    let dir = TempDir::new("columnar-nulls");
    let rows = nullable(
        vec![Some(0), Some(1), None, Some(3), Some(4), Some(5)],
        vec![Some("a"), None, Some("a"), Some("b"), Some("b"), Some("a")],
        vec![
            Some(1.0),
            Some(2.0),
            Some(3.0),
            None,
            Some(f64::NAN),
            Some(4.5),
        ],
    );
    for (name, write) in [
        ("e.arrow", ipc_file as fn(&Path, &[RecordBatch])),
        ("e.parquet", parquet_file),
    ] {
        let path = dir.path(name);
        write(&path, std::slice::from_ref(&rows));
        let out = run(&[
            &[
                "--input",
                p(&path),
                "--stats-json",
                "-",
                "--output-file",
                p(&dir.path("out.csv")),
            ],
            &SUM[..8],
        ]
        .concat());
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let json = stdout(&out);
        assert_eq!(
            (stat(&json, "records"), stat(&json, "skipped")),
            (6.0, 4.0),
            "{name}"
        );
        let err = stderr(&out);
        for reason in [
            "line 2: null key in column `key`",
            "line 3: null time in column `ts`",
            "line 4: null value",
            "line 5: value NaN in column `value` is not finite",
        ] {
            assert!(err.contains(reason), "{name}: {reason}: {err}");
        }
        let rows = std::fs::read_to_string(dir.path("out.csv")).unwrap();
        assert_eq!(rows, "window_end,key,sum\n1000,a,5.5\n", "{name}");
    }
}

#[test]
fn unreadable_inputs_and_unfit_columns_are_one_clear_line() {
    let dir = TempDir::new("columnar-bad");
    let events = events(20_000);
    let good = dir.path("e.arrow");
    ipc_file(&good, &batches(&events, ms, text_keys, int_values));
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.file("cut.arrow", &bytes[..bytes.len() / 2]);
    let pq = dir.path("e.parquet");
    parquet_file(&pq, &batches(&events, ms, text_keys, int_values));
    let pq_bytes = std::fs::read(&pq).unwrap();
    let cut_pq = dir.file("cut.parquet", &pq_bytes[..pq_bytes.len() - 100]);
    let not_arrow = dir.file("e.csv", b"ts,key,value\n1,a,2\n");
    let float_keys = dir.path("float-keys.arrow");
    ipc_file(&float_keys, &batches(&events, ms, float_values, int_values));
    let cases: [(&Path, &str, &[&str], &str); 6] = [
        (&cut, "arrow", &[], "cannot read it as Arrow IPC"),
        (&not_arrow, "arrow", &[], "cannot read it as Arrow IPC"),
        (&cut_pq, "parquet", &[], "cannot read it as Parquet"),
        (
            &float_keys,
            "arrow",
            &[],
            "column `key` (--key-col) has type Float64; text",
        ),
        (
            &good,
            "arrow",
            &["--value-col", "price"],
            "no column `price` (--value-col); the input has: ts, key, value",
        ),
        (
            &pq,
            "parquet",
            &["--time-col", "time"],
            "no column `time` (--time-col); the input has: ts, key, value",
        ),
    ];
    for (path, format, extra, message) in cases {
        let out = run(&[
            &[
                "--input",
                p(path),
                "--format",
                format,
                "--key-col",
                "key",
                "--quiet",
            ],
            extra,
        ]
        .concat());
        let err = stderr(&out);
        assert!(
            matches!(out.status.code(), Some(1 | 2)),
            "{}: {err}",
            path.display()
        );
        assert!(err.contains(message), "{}: {err}", path.display());
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let out = TestCommand::run(&["--input", "-", "--format", "parquet", "--key-col", "key"])
        .cmd_with_stdin_file(&pq);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("parquet input is read from a file"),
        "{}",
        stderr(&out)
    );
}
