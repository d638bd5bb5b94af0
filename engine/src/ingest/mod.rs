//! Parsing newline-delimited input into columnar events.
//!
//! A chunk of whole lines (from a memory-mapped file, stdin or a socket) is
//! parsed into columns: dictionary-encoded keys, values, event times, and for
//! each event the index of the record it came from (for `--rate` replays).
//! Scanning is byte-oriented (`memchr` for line ends and delimiters), with no
//! allocation per line. Malformed records are counted and skipped, and the
//! first few are kept with their line numbers for the report.
//!
//! ```
//! use engine::ingest::{Extract, Format, Parser};
//! use engine::Dictionary;
//! let parser = Parser::new(Format::Text, Extract::Words, 1 << 20);
//! let dict = Dictionary::new();
//! let parsed = parser.parse(b"to be or\nnot to be\n", &dict)?;
//! assert_eq!(parsed.records, 2);
//! assert_eq!(parsed.keys.len(), 6);
//! assert_eq!(parsed.keys[0], parsed.keys[4]); // "to"
//! # Ok::<(), engine::Error>(())
//! ```

mod csv;
mod intern;
mod ndjson;
mod number;
mod split;
mod text;

use std::fmt;

pub use self::csv::{csv_header_fields, parse_csv_field, parse_csv_row};
pub use number::{parse_f64, parse_i64};

pub(crate) use intern::{with_cache, KeyCache};

use crate::batch::Column;
use crate::dictionary::Dictionary;
use crate::error::Result;

/// Malformed records kept per chunk with their reasons (all are counted).
pub const REPORTED_PER_CHUNK: usize = 8;

/// How records are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One record per line.
    Text,
    /// Comma-separated values with a header row (RFC 4180 quoting, one
    /// record per line).
    Csv,
    /// One JSON object per line.
    Ndjson,
}

impl Format {
    /// The format a file name's extension implies (`.csv`, `.ndjson`/`.jsonl`/
    /// `.json`, anything else text).
    #[must_use]
    pub fn from_path(path: &str) -> Self {
        let extension = std::path::Path::new(path)
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        if extension.as_deref() == Some("csv") {
            Format::Csv
        } else if matches!(extension.as_deref(), Some("ndjson" | "jsonl" | "json")) {
            Format::Ndjson
        } else {
            Format::Text
        }
    }
}

/// The type of the value column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Exact integers.
    Int,
    /// Finite floats.
    Float,
}

/// Where a field is: a CSV column index or an NDJSON member name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// Zero-based CSV column.
    Column(usize),
    /// Top-level NDJSON member.
    Name(String),
}

/// The fields of a keyed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    /// The key.
    pub key: Field,
    /// The value, with its type, if the job aggregates one.
    pub value: Option<(Field, ValueKind)>,
    /// The event time (integer ms since the epoch), if taken from the record.
    pub time: Option<Field>,
    /// CSV: the number of columns every row must have.
    pub columns: usize,
    /// Only records whose field equals this text become events (`--where
    /// FIELD=VALUE`); the others, and records without the field, are
    /// filtered out: records all the same, neither events nor malformed.
    pub filter: Option<(Field, String)>,
}

/// What becomes an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extract {
    /// Every whitespace-separated word of a line (`--job wordcount`).
    Words,
    /// Every line containing the pattern, keyed by the pattern (`--job grep`).
    Grep(String),
    /// Key, value and time fields of a CSV or NDJSON record.
    Fields(Fields),
}

/// A record that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    /// Line of the record within the chunk, 0-based.
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line + 1, self.reason)
    }
}

/// The events of one chunk, as columns.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ParsedChunk {
    /// Key ids in the dictionary passed to [`Parser::parse`].
    pub keys: Vec<u32>,
    /// Values, when the job aggregates them.
    pub values: Option<Column>,
    /// Event times, when taken from the records.
    pub times: Vec<i64>,
    /// For each event, the index of its record among the chunk's records.
    pub record_of: Vec<u32>,
    /// Records in the chunk, good and bad (blank CSV/NDJSON lines are not
    /// records).
    pub records: u64,
    /// Lines in the chunk.
    pub lines: u64,
    /// Malformed records skipped.
    pub skipped: u64,
    /// The first [`REPORTED_PER_CHUNK`] malformed records.
    pub errors: Vec<BadRecord>,
}

impl ParsedChunk {
    /// Empties the chunk for reuse, keeping its memory, with the value column
    /// `extract` needs.
    fn reset(&mut self, extract: &Extract) {
        let values = match extract {
            Extract::Fields(Fields {
                value: Some((_, ValueKind::Int)),
                ..
            }) => Some(Column::I64(Vec::new())),
            Extract::Fields(Fields {
                value: Some((_, ValueKind::Float)),
                ..
            }) => Some(Column::F64(Vec::new())),
            _ => None,
        };
        self.values = match (self.values.take(), values) {
            (Some(Column::I64(mut v)), Some(Column::I64(_))) => {
                v.clear();
                Some(Column::I64(v))
            }
            (Some(Column::F64(mut v)), Some(Column::F64(_))) => {
                v.clear();
                Some(Column::F64(v))
            }
            (_, wanted) => wanted,
        };
        self.keys.clear();
        self.times.clear();
        self.record_of.clear();
        self.errors.clear();
        self.records = 0;
        self.lines = 0;
        self.skipped = 0;
    }

    pub(crate) fn bad(&mut self, line: u64, reason: impl FnOnce() -> String) {
        self.skipped += 1;
        if self.errors.len() < REPORTED_PER_CHUNK {
            self.errors.push(BadRecord {
                line,
                reason: reason(),
            });
        }
    }
}

/// A chunk as text when it is valid UTF-8: validated once per chunk, with
/// SIMD (`simdutf8`, several times std's speed on ASCII-heavy input), so
/// that lines need no check of their own.
#[inline]
pub(super) fn chunk_text(bytes: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(bytes).ok()
}

/// Parses chunks of whole lines; shared by all workers (`Sync`).
#[derive(Debug, Clone)]
pub struct Parser {
    format: Format,
    extract: Extract,
    max_line_bytes: usize,
}

impl Parser {
    /// A parser of `format` records into the events of `extract`; lines
    /// longer than `max_line_bytes` are malformed.
    #[must_use]
    pub fn new(format: Format, extract: Extract, max_line_bytes: usize) -> Self {
        Self {
            format,
            extract,
            max_line_bytes,
        }
    }

    /// The record format.
    #[must_use]
    pub fn format(&self) -> Format {
        self.format
    }

    /// Parses `bytes`, whole lines (a missing final newline is allowed),
    /// interning keys into `dict`. Malformed records are counted in the
    /// result; the only error is a full dictionary.
    pub fn parse(&self, bytes: &[u8], dict: &Dictionary) -> Result<ParsedChunk> {
        let mut out = ParsedChunk::default();
        self.parse_into(bytes, dict, &mut out)?;
        Ok(out)
    }

    /// [`parse`](Self::parse) into a reused chunk: steady streams then
    /// allocate nothing per chunk.
    pub fn parse_into(&self, bytes: &[u8], dict: &Dictionary, out: &mut ParsedChunk) -> Result<()> {
        out.reset(&self.extract);
        match (&self.extract, self.format) {
            (Extract::Words, _) => text::words(bytes, self.max_line_bytes, dict, out)?,
            (Extract::Grep(pattern), _) => {
                text::grep(bytes, pattern, self.max_line_bytes, dict, out)?;
            }
            (Extract::Fields(fields), Format::Csv) => {
                csv::rows(bytes, fields, self.max_line_bytes, dict, out)?;
            }
            (Extract::Fields(fields), Format::Ndjson) => {
                ndjson::rows(bytes, fields, self.max_line_bytes, dict, out)?;
            }
            (Extract::Fields(_), Format::Text) => {
                // Text records have no fields: the job configuration refuses
                // this pairing before any data is read.
                out.lines = lines(bytes).count() as u64;
                out.records = out.lines;
                for line in 0..out.lines {
                    out.bad(line, || "text records have no fields".into());
                }
            }
        }
        Ok(())
    }
}

/// The lines of `bytes`, without their `\n` (or `\r\n`); a final line
/// without a newline counts, an empty tail does not.
pub fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, tail) = match memchr::memchr(b'\n', rest) {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = tail;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    })
}

/// Largest accepted |event time|, ms: 2^53, about 285 000 years. Beyond it
/// a timestamp is surely in other units, and window arithmetic on it could
/// overflow.
pub const MAX_TIME_MS: i64 = 1 << 53;

/// A timestamp field: integer milliseconds, within ±[`MAX_TIME_MS`].
pub(crate) fn parse_time(text: &[u8]) -> std::result::Result<i64, String> {
    match parse_i64(text) {
        Some(t) if (-MAX_TIME_MS..=MAX_TIME_MS).contains(&t) => Ok(t),
        Some(_) => Err(format!(
            "timestamp `{}` is out of range (milliseconds within ±2^53 expected)",
            String::from_utf8_lossy(text)
        )),
        None => Err(format!(
            "bad timestamp `{}` (integer milliseconds expected)",
            String::from_utf8_lossy(text)
        )),
    }
}

/// Parses a value field and appends it to the chunk's value column (if the
/// job has one).
pub(crate) fn push_value(
    values: &mut Option<Column>,
    text: &[u8],
) -> std::result::Result<(), String> {
    let pushed = match values {
        Some(Column::I64(v)) => parse_i64(text).map(|x| v.push(x)),
        Some(Column::F64(v)) => parse_f64(text).map(|x| v.push(x)),
        None => Some(()),
    };
    pushed.ok_or_else(|| {
        let kind = if matches!(values, Some(Column::I64(_))) {
            "integer"
        } else {
            "finite number"
        };
        format!(
            "bad value `{}` ({kind} expected)",
            String::from_utf8_lossy(text)
        )
    })
}

/// Splits `bytes` into pieces of about `target` bytes that end at line
/// boundaries (a piece holding a longer line ends after it).
#[must_use]
pub fn split_at_lines(bytes: &[u8], target: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::with_capacity(bytes.len() / target.max(1) + 1);
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.len() <= target {
            pieces.push(rest);
            break;
        }
        let end = memchr::memchr(b'\n', &rest[target..]).map_or(rest.len(), |i| target + i + 1);
        pieces.push(&rest[..end]);
        rest = &rest[end..];
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_handle_crlf_and_a_missing_final_newline() {
        let got: Vec<&[u8]> = lines(b"a\r\nb\n\nc").collect();
        assert_eq!(got, [&b"a"[..], b"b", b"", b"c"]);
        assert_eq!(lines(b"").count(), 0);
        assert_eq!(lines(b"x\n").count(), 1);
    }

    #[test]
    fn pieces_end_at_line_boundaries_and_cover_everything() {
        let text = b"aaaa\nbb\ncccccccccc\nd\n";
        let pieces = split_at_lines(text, 3);
        assert_eq!(pieces.concat(), text);
        assert!(pieces.iter().all(|p| p.ends_with(b"\n")));
        assert_eq!(pieces[1], b"bb\ncccccccccc\n");
    }

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(Format::from_path("a/b.CSV"), Format::Csv);
        assert_eq!(Format::from_path("x.jsonl"), Format::Ndjson);
        assert_eq!(Format::from_path("app.log"), Format::Text);
    }
}
