//! CSV records (RFC 4180, one record per line): a header names the columns,
//! rows give a key, maybe a value and an event time.

mod fast;
#[cfg(test)]
mod props;

use super::text::line_text;
use super::{lines, with_cache, KeyCache, ParseBuffer};
use crate::dictionary::Dictionary;
use crate::error::{Error, Result};

/// The columns a CSV parser reads (checked against `columns` when the
/// parser is built).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Columns {
    pub key: usize,
    pub value: Option<usize>,
    pub time: Option<usize>,
    pub filter: Option<(usize, String)>,
    /// The number of columns every row must have.
    pub width: usize,
}

/// The fields of a header line, unquoted and trimmed (a byte-order mark
/// before the first is dropped).
#[must_use]
pub fn csv_header_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    let mut rest = line.strip_suffix('\r').unwrap_or(line);
    loop {
        let (field, tail) = match split_field(rest.as_bytes()) {
            Some((field, consumed)) => (field, &rest[consumed..]),
            None => (std::borrow::Cow::Borrowed(rest.as_bytes()), ""),
        };
        fields.push(String::from_utf8_lossy(&field).trim().to_owned());
        match tail.strip_prefix(',') {
            Some(next) => rest = next,
            None => break,
        }
    }
    fields
}

/// Checks the names of a CSV header (from [`csv_header_fields`]): a name
/// given twice is a usage error, since a column chosen by that name would
/// be ambiguous.
///
/// ```
/// use engine::ingest::{check_csv_header, csv_header_fields};
/// assert!(check_csv_header(&csv_header_fields("ts,key,value")).is_ok());
/// let err = check_csv_header(&csv_header_fields("key,value,key")).unwrap_err();
/// assert_eq!(err.to_string(), "the CSV header names column `key` twice (columns 1 and 3)");
/// ```
pub fn check_csv_header(names: &[String]) -> Result<()> {
    let mut seen = std::collections::HashMap::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if let Some(first) = seen.insert(name.as_str(), i) {
            return Err(Error::DuplicateColumn {
                name: name.clone(),
                first: first + 1,
                second: i + 1,
            });
        }
    }
    Ok(())
}

/// Every field of a CSV line, unquoted; `None` on broken quoting.
#[must_use]
pub fn parse_csv_row(line: &[u8]) -> Option<Vec<std::borrow::Cow<'_, [u8]>>> {
    let mut fields = Vec::new();
    split_row(line, &mut fields).ok()?;
    Some(fields)
}

/// One field at the start of `bytes` and how many bytes it took (not the
/// following comma): a quoted field is unquoted (`""` is a quote); `None`
/// for broken quoting (RFC 4180: no quote in an unquoted field, nothing but
/// a comma after a closing quote, no unterminated quoted field).
fn split_field(bytes: &[u8]) -> Option<(std::borrow::Cow<'_, [u8]>, usize)> {
    if bytes.first() != Some(&b'"') {
        let end = memchr::memchr(b',', bytes).unwrap_or(bytes.len());
        let field = &bytes[..end];
        return memchr::memchr(b'"', field)
            .is_none()
            .then_some((std::borrow::Cow::Borrowed(field), end));
    }
    let mut value = Vec::new();
    let mut i = 1;
    loop {
        let quote = i + memchr::memchr(b'"', &bytes[i..])?;
        value.extend_from_slice(&bytes[i..quote]);
        if bytes.get(quote + 1) == Some(&b'"') {
            value.push(b'"');
            i = quote + 2;
        } else {
            let end = quote + 1;
            // After the closing quote: a comma or the end of the line.
            return matches!(bytes.get(end), None | Some(b',')).then_some((value.into(), end));
        }
    }
}

/// All fields of a row, or why it is malformed. Rows without quotes (nearly
/// all) are split in one pass over their bytes.
fn split_row<'a>(
    line: &'a [u8],
    fields: &mut Vec<std::borrow::Cow<'a, [u8]>>,
) -> Result<(), &'static str> {
    fields.clear();
    let mut start = 0;
    for (i, &b) in line.iter().enumerate() {
        if b == b',' {
            fields.push(std::borrow::Cow::Borrowed(&line[start..i]));
            start = i + 1;
        } else if b == b'"' {
            return split_quoted_row(line, fields);
        }
    }
    fields.push(std::borrow::Cow::Borrowed(&line[start..]));
    Ok(())
}

/// [`split_row`] for rows with quoted fields.
fn split_quoted_row<'a>(
    line: &'a [u8],
    fields: &mut Vec<std::borrow::Cow<'a, [u8]>>,
) -> Result<(), &'static str> {
    fields.clear();
    let mut rest = line;
    loop {
        let (field, consumed) = split_field(rest).ok_or("broken quoting")?;
        fields.push(field);
        if consumed == rest.len() {
            return Ok(());
        }
        rest = &rest[consumed + 1..];
        if rest.is_empty() {
            fields.push(std::borrow::Cow::Borrowed(&[]));
            return Ok(());
        }
    }
}

/// Parses every data line (the header is not part of `bytes`).
pub(super) fn rows(
    bytes: &[u8],
    columns: &Columns,
    max_line_bytes: usize,
    dict: &Dictionary,
    out: &mut ParseBuffer,
) -> Result<()> {
    rows_at(
        Some(crate::simd::level()),
        bytes,
        columns,
        max_line_bytes,
        dict,
        out,
    )
}

/// [`rows`] with the fast path compiled for `level` (one this CPU
/// supports): lines without anything unusual never leave its loop, the
/// others go through [`Scalar::line`], as every line of a chunk that is
/// not UTF-8 does. Without a level, every line goes through
/// [`Scalar::line`] (the reference the fast path is tested against).
fn rows_at(
    level: Option<crate::simd::Level>,
    bytes: &[u8],
    columns: &Columns,
    max_line_bytes: usize,
    dict: &Dictionary,
    out: &mut ParseBuffer,
) -> Result<()> {
    with_cache(dict, |cache| {
        let whole = super::chunk_text(bytes);
        let mut scalar = Scalar {
            columns,
            filter: columns.filter.as_ref().map(|(c, v)| (*c, v.as_bytes())),
            max_line_bytes,
            cells: Vec::new(),
        };
        let fast = level
            .zip(whole)
            .zip(fast::Plan::new(columns, max_line_bytes));
        let Some(((level, text), plan)) = fast else {
            let estimate = bytes.len() / 24;
            out.keys.reserve(estimate);
            out.record_of.reserve(estimate);
            for raw in lines(bytes) {
                scalar.line(whole, bytes, raw, cache, dict, out)?;
            }
            return Ok(());
        };
        // Room for every line's event, so that the columns never move.
        let most = memchr::memchr_iter(b'\n', bytes).count() + 1;
        out.keys.reserve(most);
        out.record_of.reserve(most);
        if columns.time.is_some() {
            out.times.reserve(most);
        }
        match &mut out.values {
            Some(crate::batch::Column::I64(values)) => values.reserve(most),
            Some(crate::batch::Column::F64(values)) => values.reserve(most),
            None => {}
        }
        let mut from = 0;
        while let fast::Stop::Line { start, end } =
            fast::run(level, text, from, &plan, cache, dict, out)?
        {
            let raw = &bytes[start..end];
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            scalar.line(whole, bytes, raw, cache, dict, out)?;
            from = end + 1;
        }
        Ok(())
    })
}

/// The line-at-a-time parser: every line of a chunk that is not UTF-8,
/// and the lines the fast path leaves to it.
struct Scalar<'c> {
    columns: &'c Columns,
    filter: Option<(usize, &'c [u8])>,
    max_line_bytes: usize,
    /// The fields of the current line (kept for their memory).
    cells: Vec<std::borrow::Cow<'c, [u8]>>,
}

impl<'c> Scalar<'c> {
    /// Parses one line, `raw` (a slice of `bytes`, without its newline and
    /// carriage return), the next of the chunk: counts it, and pushes its
    /// event or counts it as malformed.
    fn line<'a: 'c>(
        &mut self,
        whole: Option<&'a str>,
        bytes: &'a [u8],
        raw: &'a [u8],
        cache: &mut KeyCache,
        dict: &Dictionary,
        out: &mut ParseBuffer,
    ) -> Result<()> {
        let fields = self.columns;
        let index = out.lines;
        out.lines += 1;
        if raw.is_empty() {
            return Ok(());
        }
        let record = out.records as u32;
        out.records += 1;
        let Some(line) = line_text(whole, bytes, raw, index, self.max_line_bytes, out) else {
            return Ok(());
        };
        let cells = &mut self.cells;
        if let Err(reason) = split_row(line.as_bytes(), cells) {
            out.bad(index, || reason.into());
            return Ok(());
        }
        if cells.len() != fields.width {
            let found = cells.len();
            out.bad(index, || {
                format!("{found} columns, the header has {}", fields.width)
            });
            return Ok(());
        }
        if let Some((c, wanted)) = self.filter {
            if *cells[c] != *wanted {
                return Ok(());
            }
        }
        let key = &cells[fields.key];
        if key.is_empty() {
            out.bad(index, || "empty key".into());
            return Ok(());
        }
        let time = match fields
            .time
            .map(|c| super::parse_time(&cells[c]))
            .transpose()
        {
            Ok(time) => time,
            Err(reason) => {
                out.bad(index, || reason);
                return Ok(());
            }
        };
        if let Some(c) = fields.value {
            if let Err(reason) = super::push_value(&mut out.values, &cells[c]) {
                out.bad(index, || reason);
                return Ok(());
            }
        }
        if let Some(t) = time {
            out.times.push(t);
        }
        // The line is valid UTF-8 and fields are cut at ASCII commas and
        // quotes, so a key is too; an unquoted key borrows from the line.
        let id = match key {
            std::borrow::Cow::Borrowed(b) => {
                let start = b.as_ptr() as usize - line.as_ptr() as usize;
                cache.id(&line[start..start + b.len()], dict)?
            }
            std::borrow::Cow::Owned(b) => cache.id(&String::from_utf8_lossy(b), dict)?,
        };
        out.keys.push(id);
        out.record_of.push(record);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Extract, Field, Fields, Format, Parser};
    use super::*;
    use crate::batch::Column;
    use crate::window::ValueType;

    #[test]
    fn header_fields_are_unquoted_and_trimmed() {
        assert_eq!(
            csv_header_fields("ts, key,\"va,lue\"\r"),
            ["ts", "key", "va,lue"]
        );
    }

    #[test]
    fn rows_give_keys_values_and_times_and_bad_rows_are_counted() {
        let dict = Dictionary::new();
        let fields = Fields {
            key: Field::Column(1),
            value: Some((Field::Column(2), ValueType::F64)),
            time: Some(Field::Column(0)),
            columns: 3,
            filter: None,
        };
        let parser = Parser::new(Format::Csv, Extract::Fields(fields), 1 << 20);
        let input = b"10,a,1.5\n11,\"b,\"\"x\"\"\",2\n12,a\n13,,4\nxx,a,1\n14,a,inf\n\n15,c,3\n";
        let parsed = parser.parse_buffer(input, &dict).unwrap();
        let read = dict.read();
        let keys: Vec<&str> = parsed.keys.iter().map(|&k| read.get(k).unwrap()).collect();
        assert_eq!(keys, ["a", "b,\"x\"", "c"]);
        assert_eq!(parsed.times, [10, 11, 15]);
        assert_eq!(parsed.values, Some(Column::F64(vec![1.5, 2.0, 3.0])));
        assert_eq!(parsed.record_of, [0, 1, 6]);
        assert_eq!((parsed.records, parsed.skipped, parsed.lines), (7, 4, 8));
        let reasons: Vec<String> = parsed.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            reasons,
            [
                "line 3: 2 columns, the header has 3",
                "line 4: empty key",
                "line 5: bad timestamp `xx` (integer milliseconds expected)",
                "line 6: bad value `inf` (finite number expected)",
            ]
        );
    }

    #[test]
    fn a_filter_keeps_only_rows_whose_column_matches() {
        let dict = Dictionary::new();
        let fields = Fields {
            key: Field::Column(0),
            value: None,
            time: None,
            columns: 2,
            filter: Some((Field::Column(1), "view".into())),
        };
        let parser = Parser::new(Format::Csv, Extract::Fields(fields), 1 << 20);
        let parsed = parser
            .parse_buffer(b"a,view\nb,click\nc,\"view\"\nd\n", &dict)
            .unwrap();
        let read = dict.read();
        let keys: Vec<&str> = parsed.keys.iter().map(|&k| read.get(k).unwrap()).collect();
        assert_eq!(keys, ["a", "c"]);
        assert_eq!((parsed.records, parsed.skipped), (4, 1));
    }

    #[test]
    fn duplicate_csv_header_is_an_error() {
        let names = csv_header_fields("ts,key, key ,value");
        let err = check_csv_header(&names).unwrap_err();
        assert!(matches!(&err, Error::DuplicateColumn { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the CSV header names column `key` twice (columns 2 and 3)"
        );
        let err = check_csv_header(&csv_header_fields("\"a\",b,a")).unwrap_err();
        assert!(
            err.to_string().contains("`a` twice (columns 1 and 3)"),
            "{err}"
        );
        assert!(check_csv_header(&csv_header_fields(",x,")).is_err());
        assert!(check_csv_header(&csv_header_fields("a,b,A")).is_ok());
        assert!(check_csv_header(&[]).is_ok());
    }

    #[test]
    fn bom_is_skipped_before_the_first_header_name() {
        assert_eq!(csv_header_fields("\u{feff}ts,key"), ["ts", "key"]);
        // Only at the start.
        assert_eq!(csv_header_fields("ts,\u{feff}key"), ["ts", "\u{feff}key"]);
    }

    #[test]
    fn csv_quote_inside_an_unquoted_field_is_broken_quoting() {
        for bad in [
            &b"a\"b,1"[..],
            b"1,a\"b",
            b"\"a\"x,1",
            b"\"a,1",
            b"a,\"b\"\"",
            b"a,b\"",
        ] {
            assert_eq!(parse_csv_row(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        let row = parse_csv_row(b"\"a\"\"b\",,\"\"").unwrap();
        assert_eq!(row, [&b"a\"b"[..], b"", b""]);
    }
}
