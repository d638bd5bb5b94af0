//! The library's typed errors and notices, worded with the flags that
//! caused them: the library says "the key column", the user typed
//! `--key-col`.

use engine::columnar::ColumnarProblem;
use engine::ingest::RecordError;
use engine::job::Notice;
use engine::source::Limit;
use engine::ColumnRole;
use engine::Error;

/// An error and its causes on one line (`context: error: cause`, as
/// anyhow's `{:#}`), each engine error worded with flag names.
pub fn render(err: &anyhow::Error) -> String {
    err.chain()
        .map(|cause| {
            if let Some(e) = cause.downcast_ref::<Error>() {
                describe(e)
            } else if let Some(problem) = cause.downcast_ref::<ColumnarProblem>() {
                describe_columnar(problem)
            } else {
                cause.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(": ")
}

/// One engine error (not its sources) in the command line's words.
fn describe(err: &Error) -> String {
    match err {
        Error::Checkpoint(e) => describe_checkpoint(e),
        Error::FieldsNeedStructuredInput => {
            "--job aggregate reads fields: the input must be csv or ndjson (--format)".into()
        }
        Error::MissingValueColumn { aggs } => format!(
            "--agg {} needs a value column (--value-col)",
            aggs.aggs()
                .iter()
                .map(|a| a.name())
                .collect::<Vec<_>>()
                .join(",")
        ),
        Error::TimeColumnNeedsFields { column } => format!(
            "--time-col {column} reads a field: it needs --job aggregate (--key-col) on csv or \
             ndjson input"
        ),
        Error::NonPositiveRate => "--rate must be positive".into(),
        Error::UntilNeedsEventOrVirtualTime => {
            "--until works in event time (--time-col) or virtual time (--rate)".into()
        }
        Error::EmptyPattern => "--pattern must not be empty".into(),
        Error::UnknownColumn {
            role,
            name,
            available,
        } => format!(
            "unknown column `{name}` ({}); the CSV header has: {}",
            column_flag(*role),
            available.join(", ")
        ),
        Error::BadRecord {
            origin,
            line,
            reason,
        } => format!("{origin} line {line}: {}", reason_text(reason)),
        Error::FormatNeedsFeature { format, feature } => format!(
            "--format {} needs an engine built with the `{feature}` feature \
             (cargo build --release -p engine --features {feature})",
            format.name()
        ),
        other => other.to_string(),
    }
}

/// A columnar input's problem, naming the flag of the column at fault.
fn describe_columnar(problem: &ColumnarProblem) -> String {
    match problem {
        ColumnarProblem::MissingColumn {
            role,
            name,
            available,
        } => format!(
            "no column `{name}` ({}); the input has: {}",
            column_flag(*role),
            available.join(", ")
        ),
        ColumnarProblem::WrongType {
            role,
            name,
            found,
            expected,
        } => format!(
            "column `{name}` ({}) has type {found}; {expected} expected",
            column_flag(*role)
        ),
        other => other.to_string(),
    }
}

/// The flag that names a column of each role.
fn column_flag(role: ColumnRole) -> &'static str {
    match role {
        ColumnRole::Key => "--key-col",
        ColumnRole::Value => "--value-col",
        ColumnRole::Time => "--time-col",
        ColumnRole::Filter => "--where",
        // A role added to the library after this was written.
        _ => "a column flag",
    }
}

/// Why a record is malformed, in the command line's words.
pub fn reason_text(reason: &RecordError) -> String {
    match reason {
        RecordError::LineTooLong {
            bytes: Some(bytes),
            max,
        } => format!("line of {bytes} bytes is longer than --max-line-bytes {max}"),
        RecordError::LineTooLong { bytes: None, max } => {
            format!("line longer than --max-line-bytes {max}")
        }
        other => other.to_string(),
    }
}

/// A job's notice, in the command line's words.
pub fn notice_text(notice: &Notice<'_>) -> String {
    match notice {
        Notice::ProducerIgnored { origin, error } => format!(
            "ignoring {origin}: {}; its records are counted as malformed",
            render_engine(error)
        ),
        Notice::FilterMatchedNothing { field, text } => {
            format!("no record has {field} = {text:?} (--where): check the field name and the text")
        }
        Notice::Source(told) => told.text_with(&limit_flag),
        other => other.to_string(),
    }
}

/// The flag that sets each limit a source's notice mentions.
fn limit_flag(limit: Limit) -> String {
    match limit {
        Limit::IdleTimeout => "--idle-timeout".into(),
        Limit::MaxConnections(None) => "--max-connections".into(),
        Limit::MaxConnections(Some(n)) => format!("--max-connections {n}"),
        // A limit added to the library after this was written.
        _ => "a limit flag".into(),
    }
}

/// An engine error and its sources, worded as [`render`] does.
fn render_engine(err: &Error) -> String {
    let mut line = describe(err);
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

/// A checkpoint error in the command line's words.
fn describe_checkpoint(err: &engine::checkpoint::CheckpointError) -> String {
    use engine::checkpoint::CheckpointError;
    match err {
        CheckpointError::OtherJob {
            dir,
            setting,
            saved,
            now,
        } => {
            let flags = match setting.as_str() {
                "engine version" => "the engine version",
                "input" => "the input (--input, --connect, --listen, --generate)",
                "input size" => "the input file's size or modification time",
                "format" => "--format",
                "time" => "the time (--time-col, --rate)",
                "job" => "the job (--job, --key-col, --value-col, --agg, --value-type, --where, --lookup, --pattern)",
                "window" => "the window (--window, --slide, --batch)",
                "until" => "--until",
                "keep empty" => "--keep-empty",
                "key ttl" => "--key-ttl",
                "threads" => "--threads",
                "on error" => "--on-error",
                "max line bytes" => "--max-line-bytes",
                "output" => "the output (--output, --output-file, --top)",
                other => other,
            };
            format!(
                "the checkpoint in {} is of another job: {flags} differs (checkpoint: {saved}; now: {now}). \
                 Rerun with the checkpoint's settings, or add --from-scratch to start this job afresh",
                dir.display()
            )
        }
        CheckpointError::NoneIntact { .. } => format!(
            "{err}. Add --from-scratch to start the job afresh"
        ),
        CheckpointError::Unsupported { what } => format!(
            "--checkpoint does not support {what} yet"
        ),
        CheckpointError::InUse { dir } => format!(
            "the checkpoint directory {} is in use by another engine job: wait for it to end, or give this one another --checkpoint",
            dir.display()
        ),
        CheckpointError::OutputGone { path, len } => format!(
            "the output in progress {} (committed: {len} bytes) is missing or shorter: the job cannot resume its output. Add --from-scratch to start afresh",
            path.display()
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_errors_are_worded_with_flags_and_keep_their_causes() {
        let err = Error::UnknownColumn {
            role: ColumnRole::Value,
            name: "v".into(),
            available: vec!["ts".into(), "key".into()],
        };
        assert_eq!(
            err.to_string(),
            "unknown value column `v`; the CSV header has: ts, key"
        );
        assert_eq!(
            render(&anyhow::Error::new(err)),
            "unknown column `v` (--value-col); the CSV header has: ts, key"
        );
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let err = anyhow::Error::new(Error::io("data.csv", missing)).context("reading");
        assert_eq!(render(&err), "reading: data.csv: entity not found");
    }
}
