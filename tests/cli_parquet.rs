//! `--output parquet`: without the feature, a usage error naming it; with
//! it, the same rows as the CSV output and a schema that follows the job,
//! not the data.

#[cfg(feature = "parquet")]
use std::path::Path;

#[cfg(feature = "parquet")]
use crate::cli::csv_rows;
#[cfg(feature = "parquet")]
use crate::util::{p, stdout, TempDir};
use crate::util::{run, stderr};

#[cfg(not(feature = "parquet"))]
#[test]
fn parquet_output_without_the_feature_names_it() {
    let out = run(&[
        "--generate",
        "events",
        "--records",
        "10",
        "--key-col",
        "key",
        "--output",
        "parquet",
        "--output-file",
        "/tmp/x.parquet",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the `parquet` feature"),
        "{}",
        stderr(&out)
    );
}

/// The Parquet file holds exactly the rows the CSV output has (over 64 k
/// rows: several row groups, written as the job goes).
#[cfg(feature = "parquet")]
#[test]
fn parquet_output_matches_csv_output() {
    use polars::prelude::{ParquetReader, SerReader};
    let dir = TempDir::new("parquet");
    let path = dir.0.join("out.parquet");
    let job = [
        "--generate",
        "events",
        "--records",
        "150000",
        "--time-col",
        "ts",
        "--key-col",
        "key",
        "--value-col",
        "value",
        "--agg",
        "count,sum,max",
        "--batch",
        "10ms",
        "--window",
        "20ms",
        "--slide",
        "10ms",
        "--quiet",
    ];
    let csv = run(&[&job[..], &["--output", "csv"]].concat());
    assert!(csv.status.success(), "{}", stderr(&csv));
    let out = run(&[
        &job[..],
        &["--output", "parquet", "--output-file", p(&path)],
    ]
    .concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let frame = ParquetReader::new(std::fs::File::open(&path).unwrap())
        .finish()
        .unwrap();
    let names: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(names, ["window_end", "key", "count", "sum", "max"]);
    let (_, rows) = csv_rows(&stdout(&csv));
    assert!(
        rows.len() > 64 * 1024,
        "{} rows: one row group only",
        rows.len()
    );
    assert_eq!(frame.height(), rows.len());
    let ends = frame.column("window_end").unwrap().i64().unwrap();
    let keys = frame.column("key").unwrap().str().unwrap();
    let counts = frame.column("count").unwrap().u64().unwrap();
    for (i, ((end, key), values)) in rows.iter().enumerate() {
        assert_eq!(ends.get(i), Some(*end));
        assert_eq!(keys.get(i), Some(key.as_str()));
        assert_eq!(
            counts.get(i).map(|c| c.to_string()).as_deref(),
            Some(values[0].as_str())
        );
    }
}

/// The Parquet schema follows the job, not the rows: an empty result and a
/// result whose value columns are all null write the same column types as a
/// full one (integer sum, min and max stay `Int64`, count `UInt64`).
#[cfg(feature = "parquet")]
#[test]
fn parquet_schema_does_not_depend_on_the_data() {
    use polars::prelude::{ParquetReader, SerReader};
    let dir = TempDir::new("parquet-schema");
    let full = dir.file(
        "full.csv",
        b"ts,key,value\n1,a,5\n2,a,7\n3,b,-1\n1500,b,2\n",
    );
    let header_only = dir.file("empty.csv", b"ts,key,value\n");
    // One event per key and window: variance and stddev are all null.
    let nulls = dir.file("nulls.csv", b"ts,key,value\n1,a,5\n1500,b,2\n");
    let schema = |input: &Path, name: &str| {
        let path = dir.path(name);
        let out = run(&[
            "--input",
            p(input),
            "--time-col",
            "ts",
            "--key-col",
            "key",
            "--value-col",
            "value",
            "--value-type",
            "int",
            "--agg",
            "count,sum,avg,min,max,variance,stddev",
            "--output",
            "parquet",
            "--output-file",
            p(&path),
            "--quiet",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let frame = ParquetReader::new(std::fs::File::open(&path).unwrap())
            .finish()
            .unwrap();
        (frame.height(), format!("{:?}", frame.schema()))
    };
    let (full_rows, full_schema) = schema(&full, "full.parquet");
    assert_eq!(full_rows, 3);
    for column in [
        "\"count\": UInt64",
        "\"sum\": Int64",
        "\"min\": Int64",
        "\"max\": Int64",
        "\"variance\": Float64",
    ] {
        assert!(full_schema.contains(column), "{column} in {full_schema}");
    }
    assert_eq!(
        schema(&header_only, "empty.parquet"),
        (0, full_schema.clone())
    );
    assert_eq!(schema(&nulls, "nulls.parquet"), (2, full_schema));
}
