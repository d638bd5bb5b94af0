//! Parsing newline-delimited input into columnar events.
//!
//! A chunk of whole lines (from a memory-mapped file, stdin or a socket) is
//! parsed into a [`Batch`]: dictionary-encoded keys, values, event times, and
//! for each event the index of the record it came from (for virtual-time
//! replays).
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
//! let keys = parsed.batch.keys();
//! assert_eq!(keys.len(), 6);
//! assert_eq!(keys[0], keys[4]); // "to"
//! # Ok::<(), engine::Error>(())
//! ```

mod buffer;
mod csv;
#[doc(hidden)]
pub mod fuzz_check;
mod intern;
mod ndjson;
mod number;
mod split;
mod text;

use std::fmt;

pub use self::csv::{check_csv_header, csv_header_fields, parse_csv_row};
pub(crate) use buffer::ParseBuffer;
pub use buffer::Parsed;
pub use number::{parse_f64, parse_i64};

pub(crate) use intern::{with_cache, KeyCache};

use crate::batch::Column;
use crate::dictionary::Dictionary;
use crate::error::Result;
use crate::window::ValueType;

/// Malformed records kept per chunk with their reasons (all are counted).
pub(crate) const REPORTED_PER_CHUNK: usize = 8;

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
    /// Arrow IPC, a file or a stream (pre-parsed columns, read by
    /// [`crate::columnar`]; needs the `columnar` feature).
    Arrow,
    /// Apache Parquet files (read by [`crate::columnar`]; needs the
    /// `columnar` feature).
    Parquet,
    /// The `datasets events --format binary` layout: 20 bytes an event
    /// (read by [`crate::columnar`]).
    Binary,
}

impl Format {
    /// The format's name, as `--format` spells it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
            Format::Arrow => "arrow",
            Format::Parquet => "parquet",
            Format::Binary => "binary",
        }
    }

    /// Whether records come as pre-parsed columns ([`crate::columnar`])
    /// rather than lines.
    #[must_use]
    pub fn is_columnar(self) -> bool {
        matches!(self, Format::Arrow | Format::Parquet | Format::Binary)
    }

    /// The format a file name's extension implies (`.csv`, `.ndjson`/`.jsonl`/
    /// `.json`, `.arrow`/`.arrows`/`.ipc`/`.feather`, `.parquet`, anything
    /// else text; binary events are never guessed).
    #[must_use]
    pub fn from_path(path: &str) -> Self {
        let extension = std::path::Path::new(path)
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        if extension.as_deref() == Some("csv") {
            Format::Csv
        } else if matches!(extension.as_deref(), Some("ndjson" | "jsonl" | "json")) {
            Format::Ndjson
        } else if matches!(
            extension.as_deref(),
            Some("arrow" | "arrows" | "ipc" | "feather")
        ) {
            Format::Arrow
        } else if extension.as_deref() == Some("parquet") {
            Format::Parquet
        } else {
            Format::Text
        }
    }
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
    /// The value, with its type ([`ValueType::I64`] or [`ValueType::F64`]),
    /// if the job aggregates one.
    pub value: Option<(Field, ValueType)>,
    /// The event time (integer ms since the epoch), if taken from the record.
    pub time: Option<Field>,
    /// CSV: the number of columns every row must have.
    pub columns: usize,
    /// Only records whose field equals this text become events; the
    /// others, and records without the field, are
    /// filtered out: records all the same, neither events nor malformed.
    pub filter: Option<(Field, String)>,
}

/// What becomes an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extract {
    /// Every whitespace-separated word of a line (a word count).
    Words,
    /// Every line containing the pattern, keyed by the pattern (a grep).
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
    pub reason: RecordError,
}

/// Why a record is malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// The line is longer than the longest line allowed: `bytes` long when
    /// the parser saw it whole, unknown when a reader dropped it unread.
    LineTooLong {
        /// The line's length, when known.
        bytes: Option<usize>,
        /// The longest line allowed.
        max: usize,
    },
    /// Anything else: invalid UTF-8 or JSON, a missing field, a number out
    /// of range, described.
    Invalid(String),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::LineTooLong {
                bytes: Some(bytes),
                max,
            } => write!(
                f,
                "line of {bytes} bytes is longer than the limit of {max} bytes"
            ),
            RecordError::LineTooLong { bytes: None, max } => {
                write!(f, "line longer than the limit of {max} bytes")
            }
            RecordError::Invalid(reason) => f.write_str(reason),
        }
    }
}

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line + 1, self.reason)
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
    extract: Extract,
    max_line_bytes: usize,
    plan: Plan,
}

/// What a parser does, its fields resolved once when it is built.
#[derive(Debug, Clone)]
enum Plan {
    Words,
    Grep(String),
    Csv(csv::Columns),
    Ndjson(ndjson::Names),
    /// An inconsistent configuration given to [`Parser::new`]: every
    /// record is malformed, for this reason.
    Invalid(String),
}

impl Plan {
    /// The plan of a consistent configuration, or what is inconsistent.
    fn of(format: Format, extract: &Extract, max_line_bytes: usize) -> Result<Self, String> {
        if max_line_bytes == 0 {
            return Err("the longest line allowed (max_line_bytes) must be positive".into());
        }
        let fields = match extract {
            Extract::Words => return Ok(Plan::Words),
            Extract::Grep(pattern) if pattern.is_empty() => {
                return Err("the grep pattern must not be empty".into())
            }
            Extract::Grep(pattern) => return Ok(Plan::Grep(pattern.clone())),
            Extract::Fields(fields) => fields,
        };
        if matches!(fields.value, Some((_, ValueType::None))) {
            return Err("a value field needs a value type, i64 or f64".into());
        }
        let all = || {
            std::iter::once(&fields.key)
                .chain(fields.value.as_ref().map(|(f, _)| f))
                .chain(fields.time.as_ref())
                .chain(fields.filter.as_ref().map(|(f, _)| f))
        };
        match format {
            Format::Text => Err("text records have no fields (csv or ndjson has)".into()),
            Format::Arrow | Format::Parquet | Format::Binary => Err(format!(
                "{} input is read as columns, not parsed from lines",
                format.name()
            )),
            Format::Csv => {
                for field in all() {
                    match field {
                        Field::Name(name) => {
                            return Err(format!(
                                "CSV fields are column indices, not names (`{name}`)"
                            ))
                        }
                        Field::Column(c) if *c >= fields.columns => {
                            return Err(format!(
                                "column {c} is out of range: the rows have {} columns",
                                fields.columns
                            ))
                        }
                        Field::Column(_) => {}
                    }
                }
                let column = |field: &Field| match field {
                    Field::Column(c) => *c,
                    Field::Name(_) => 0, // Refused above.
                };
                Ok(Plan::Csv(csv::Columns {
                    key: column(&fields.key),
                    value: fields.value.as_ref().map(|(f, _)| column(f)),
                    time: fields.time.as_ref().map(column),
                    filter: fields.filter.as_ref().map(|(f, v)| (column(f), v.clone())),
                    width: fields.columns,
                }))
            }
            Format::Ndjson => {
                let name = |field: &Field| match field {
                    Field::Name(n) => Ok(n.clone()),
                    Field::Column(c) => Err(format!(
                        "NDJSON fields are member names, not column indices ({c})"
                    )),
                };
                Ok(Plan::Ndjson(ndjson::Names {
                    key: name(&fields.key)?,
                    value: fields.value.as_ref().map(|(f, _)| name(f)).transpose()?,
                    time: fields.time.as_ref().map(name).transpose()?,
                    filter: fields
                        .filter
                        .as_ref()
                        .map(|(f, v)| Ok::<_, String>((name(f)?, v.clone())))
                        .transpose()?,
                }))
            }
        }
    }
}

impl Parser {
    /// A parser of `format` records into the events of `extract`; lines
    /// longer than `max_line_bytes` are malformed.
    ///
    /// The configuration is checked: CSV fields must be column indices
    /// below `columns`, NDJSON fields member names, text records have no
    /// fields, a grep pattern must not be empty and `max_line_bytes` must be
    /// positive.
    ///
    /// ```
    /// use engine::ingest::{Extract, Field, Fields, Format, Parser};
    /// let fields = Fields {
    ///     key: Field::Name("user".into()),
    ///     value: None,
    ///     time: None,
    ///     columns: 2,
    ///     filter: None,
    /// };
    /// let err = Parser::try_new(Format::Csv, Extract::Fields(fields), 1 << 20).unwrap_err();
    /// assert!(err.to_string().contains("CSV fields are column indices"));
    /// ```
    pub fn try_new(format: Format, extract: Extract, max_line_bytes: usize) -> Result<Self> {
        let plan =
            Plan::of(format, &extract, max_line_bytes).map_err(crate::Error::InvalidParser)?;
        Ok(Self {
            extract,
            max_line_bytes,
            plan,
        })
    }

    /// [`try_new`](Self::try_new) for a configuration known to be
    /// consistent. It never panics: given an inconsistent one, the parser
    /// counts every record as malformed, with the reason `try_new` would
    /// have returned.
    #[must_use]
    pub fn new(format: Format, extract: Extract, max_line_bytes: usize) -> Self {
        let plan = Plan::of(format, &extract, max_line_bytes).unwrap_or_else(Plan::Invalid);
        Self {
            extract,
            max_line_bytes,
            plan,
        }
    }

    /// Parses `bytes`, whole lines (a missing final newline is allowed),
    /// interning keys into `dict`. Malformed records are counted in the
    /// result; the only error is a full dictionary.
    pub fn parse(&self, bytes: &[u8], dict: &Dictionary) -> Result<Parsed> {
        Ok(self.parse_buffer(bytes, dict)?.take(dict))
    }

    /// [`parse`](Self::parse) into plain buffers (the parsers' unit tests).
    pub(crate) fn parse_buffer(&self, bytes: &[u8], dict: &Dictionary) -> Result<ParseBuffer> {
        let mut out = ParseBuffer::default();
        self.parse_into(bytes, dict, &mut out)?;
        Ok(out)
    }

    /// [`parse`](Self::parse) into reused buffers: steady streams then
    /// allocate nothing per piece.
    pub(crate) fn parse_into(
        &self,
        bytes: &[u8],
        dict: &Dictionary,
        out: &mut ParseBuffer,
    ) -> Result<()> {
        out.reset(&self.extract);
        match &self.plan {
            Plan::Words => text::words(bytes, self.max_line_bytes, dict, out)?,
            Plan::Grep(pattern) => {
                text::grep(bytes, pattern, self.max_line_bytes, dict, out)?;
            }
            Plan::Csv(columns) => csv::rows(bytes, columns, self.max_line_bytes, dict, out)?,
            Plan::Ndjson(names) => ndjson::rows(bytes, names, self.max_line_bytes, dict, out)?,
            Plan::Invalid(reason) => {
                // Unreachable from `try_new` (and the job configuration).
                out.lines = lines(bytes).count() as u64;
                out.records = out.lines;
                for line in 0..out.lines {
                    out.bad(line, || reason.clone());
                }
            }
        }
        Ok(())
    }
}

/// The UTF-8 byte-order mark, U+FEFF.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `bytes` without the UTF-8 byte-order mark it may start with: call it on
/// the first bytes of each file or stream, whatever its format (a BOM
/// elsewhere is data, which the parsers count as malformed where it breaks
/// a record).
///
/// ```
/// use engine::ingest::strip_bom;
/// assert_eq!(strip_bom(b"\xEF\xBB\xBFkey,value\n"), b"key,value\n");
/// assert_eq!(strip_bom(b"key\xEF\xBB\xBF"), b"key\xEF\xBB\xBF");
/// assert_eq!(strip_bom(b"\xEF\xBB"), b"\xEF\xBB");
/// ```
#[must_use]
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(BOM).unwrap_or(bytes)
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

/// Whether an event time lies within ±[`MAX_TIME_MS`] (not `t.abs()`, which
/// overflows for `i64::MIN`).
#[must_use]
pub fn time_in_range(t: i64) -> bool {
    (-MAX_TIME_MS..=MAX_TIME_MS).contains(&t)
}

/// A timestamp field: integer milliseconds, within ±[`MAX_TIME_MS`].
pub(crate) fn parse_time(text: &[u8]) -> std::result::Result<i64, String> {
    match parse_i64(text) {
        Some(t) if time_in_range(t) => Ok(t),
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
        assert_eq!(Format::from_path("e.Arrow"), Format::Arrow);
        assert_eq!(Format::from_path("e.parquet"), Format::Parquet);
        assert_eq!(Format::from_path("e.bin"), Format::Text);
    }

    fn fields(key: Field, columns: usize) -> Fields {
        Fields {
            key,
            value: None,
            time: None,
            columns,
            filter: None,
        }
    }

    /// `try_new` refuses the configuration with a reason containing
    /// `reason`, and `new` gives a parser that counts every record as
    /// malformed for that reason instead of panicking.
    fn assert_refused(format: Format, extract: &Extract, max_line_bytes: usize, reason: &str) {
        let err = Parser::try_new(format, extract.clone(), max_line_bytes).unwrap_err();
        assert!(
            matches!(&err, crate::Error::InvalidParser(m) if m.contains(reason)),
            "{extract:?}: {err}"
        );
        let parser = Parser::new(format, extract.clone(), max_line_bytes);
        let dict = Dictionary::new();
        let parsed = parser
            .parse_buffer(b"a,b\n{\"k\":\"a\"}\nx", &dict)
            .unwrap();
        assert_eq!((parsed.records, parsed.skipped), (3, 3));
        assert!(parsed.keys.is_empty());
        assert!(
            parsed.errors[0].reason.to_string().contains(reason),
            "{:?}",
            parsed.errors
        );
    }

    #[test]
    fn parser_with_name_field_on_csv_is_an_error() {
        let extract = Extract::Fields(fields(Field::Name("key".into()), 2));
        assert_refused(
            Format::Csv,
            &extract,
            1 << 20,
            "column indices, not names (`key`)",
        );
        let mut with_value = fields(Field::Column(0), 2);
        with_value.value = Some((Field::Name("v".into()), ValueType::I64));
        let extract = Extract::Fields(with_value);
        assert_refused(Format::Csv, &extract, 1 << 20, "not names (`v`)");
    }

    #[test]
    fn parser_with_column_past_the_row_is_an_error() {
        for (key, time, filter, columns) in [
            (2, None, None, 2),
            (0, Some(5), None, 2),
            (0, None, Some(3), 3),
            (0, None, None, 0),
        ] {
            let mut f = fields(Field::Column(key), columns);
            f.time = time.map(Field::Column);
            f.filter = filter.map(|c| (Field::Column(c), "x".to_owned()));
            let extract = Extract::Fields(f);
            assert_refused(Format::Csv, &extract, 1 << 20, "out of range");
        }
    }

    #[test]
    fn parser_with_column_field_on_ndjson_is_an_error() {
        let extract = Extract::Fields(fields(Field::Column(0), 0));
        assert_refused(
            Format::Ndjson,
            &extract,
            1 << 20,
            "member names, not column indices",
        );
    }

    #[test]
    fn parser_with_fields_on_text_is_an_error() {
        let extract = Extract::Fields(fields(Field::Name("k".into()), 0));
        assert_refused(
            Format::Text,
            &extract,
            1 << 20,
            "text records have no fields",
        );
    }

    #[test]
    fn parser_with_empty_grep_pattern_or_zero_line_bytes_is_an_error() {
        assert_refused(
            Format::Text,
            &Extract::Grep(String::new()),
            1 << 20,
            "pattern must not be empty",
        );
        assert_refused(Format::Text, &Extract::Words, 0, "must be positive");
        let extract = Extract::Fields(fields(Field::Column(0), 1));
        assert_refused(Format::Csv, &extract, 0, "must be positive");
    }

    #[test]
    fn consistent_parsers_are_built() {
        let csv = Fields {
            key: Field::Column(1),
            value: Some((Field::Column(2), ValueType::F64)),
            time: Some(Field::Column(0)),
            columns: 3,
            filter: Some((Field::Column(2), "x".into())),
        };
        assert!(Parser::try_new(Format::Csv, Extract::Fields(csv), 1).is_ok());
        let ndjson = fields(Field::Name(String::new()), 0);
        assert!(Parser::try_new(Format::Ndjson, Extract::Fields(ndjson), 1).is_ok());
        assert!(Parser::try_new(Format::Csv, Extract::Words, 1).is_ok());
        assert!(Parser::try_new(Format::Ndjson, Extract::Grep("x".into()), 1).is_ok());
    }

    #[test]
    fn bom_is_skipped_by_strip_bom_only_at_the_start() {
        assert_eq!(strip_bom(b"\xEF\xBB\xBF\xEF\xBB\xBFa"), b"\xEF\xBB\xBFa");
        assert_eq!(strip_bom(b"\xEF\xBB\xBF"), b"");
        assert_eq!(strip_bom(b""), b"");
        assert_eq!(strip_bom(b"\xEF\xBBa"), b"\xEF\xBBa");
    }

    #[test]
    fn bom_anywhere_never_panics_and_is_counted_where_it_breaks_a_record() {
        let dict = Dictionary::new();
        let bom = "\u{feff}";
        let csv = Extract::Fields(Fields {
            key: Field::Column(0),
            value: Some((Field::Column(1), ValueType::I64)),
            time: None,
            columns: 2,
            filter: None,
        });
        let ndjson = Extract::Fields(Fields {
            key: Field::Name("k".into()),
            value: Some((Field::Name("v".into()), ValueType::I64)),
            time: None,
            columns: 0,
            filter: None,
        });
        let inputs = [
            format!("{bom}a,1\na,{bom}2\n{bom}"),
            format!("{bom}{{\"k\":\"a\",\"v\":1}}\n{{\"k\":\"a{bom}\",\"v\":2}}\n{bom}"),
            format!("{bom}to be{bom}\n{bom}"),
        ];
        let parsers = [
            Parser::try_new(Format::Csv, csv, 64).unwrap(),
            Parser::try_new(Format::Ndjson, ndjson, 64).unwrap(),
            Parser::try_new(Format::Text, Extract::Words, 64).unwrap(),
            Parser::try_new(Format::Text, Extract::Grep(bom.into()), 64).unwrap(),
        ];
        for parser in &parsers {
            for input in &inputs {
                for cut in 0..=input.len() {
                    // Every prefix, cut even inside the mark.
                    let parsed = parser
                        .parse_buffer(&input.as_bytes()[..cut], &dict)
                        .unwrap();
                    assert!(parsed.skipped <= parsed.records);
                }
            }
        }
        // A mark in the middle of the stream: CSV's value and NDJSON's line
        // are malformed, NDJSON's key keeps it (it is data in a string).
        let parsed = parsers[0]
            .parse_buffer(inputs[0].as_bytes(), &dict)
            .unwrap();
        assert_eq!((parsed.records, parsed.skipped), (3, 2));
        let parsed = parsers[1]
            .parse_buffer(inputs[1].as_bytes(), &dict)
            .unwrap();
        assert_eq!((parsed.records, parsed.skipped), (3, 2));
        assert!(
            parsed.errors[0]
                .reason
                .to_string()
                .contains("byte-order mark"),
            "{:?}",
            parsed.errors
        );
        assert_eq!(dict.read().get(parsed.keys[0]), Some("a\u{feff}"));
    }
}
