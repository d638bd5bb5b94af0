//! The checks of the fuzz targets (`fuzz/`), shared with the test that
//! replays their corpus (`tests/hardening_parse.rs`): each feeds arbitrary
//! bytes through a public parser and panics if anything is wrong. Not part
//! of the engine's API.
//!
//! The first bytes of an input choose the parser's configuration (see each
//! function), the rest is the data. Besides "no panic", each check asserts
//! the invariants of a [`ParseBuffer`] (aligned columns, counts, every key
//! id resolving in the dictionary) and that parsing is the same whether the
//! data comes in one chunk or in pieces cut at line boundaries (the engine
//! cuts files and streams anywhere between lines).

use super::{
    lines, split_at_lines, time_in_range, Extract, Field, Fields, Format, ParseBuffer, Parser,
    REPORTED_PER_CHUNK,
};
use crate::batch::Column;
use crate::dictionary::Dictionary;
use crate::lookup::{KeyMapper, Lookup};
use crate::window::ValueType;

/// Byte `i` of `data`, or 0.
fn byte(data: &[u8], i: usize) -> u8 {
    data.get(i).copied().unwrap_or(0)
}

/// The longest line from a configuration byte: small enough to be hit
/// often, or 1 MiB.
fn max_line_bytes(b: u8) -> usize {
    if b >= 0xF0 {
        1 << 20
    } else {
        1 + usize::from(b)
    }
}

/// `data[skip..]`, or nothing.
fn rest(data: &[u8], skip: usize) -> &[u8] {
    data.get(skip..).unwrap_or_default()
}

/// Text: byte 0 picks words (even) or grep (odd, the pattern is bytes 3..
/// 3 + 1 + (byte 0 >> 1) % 4, lossily UTF-8), byte 1 the longest line,
/// byte 2 the piece size; the data follows.
pub fn check_text(data: &[u8]) {
    let b0 = byte(data, 0);
    let (extract, skip) = if b0.is_multiple_of(2) {
        (Extract::Words, 3)
    } else {
        let n = 1 + usize::from(b0 >> 1) % 4;
        let pattern = String::from_utf8_lossy(rest(data, 3).get(..n).unwrap_or(b"x"));
        (Extract::Grep(pattern.into_owned()), 3 + n)
    };
    // Only an empty pattern could be refused, and it is never empty.
    let parser = match Parser::try_new(Format::Text, extract.clone(), max_line_bytes(byte(data, 1)))
    {
        Ok(parser) => parser,
        Err(e) => panic!("{extract:?} is consistent: {e}"),
    };
    let input = rest(data, skip);
    let dict = Dictionary::new();
    let parsed = check_parse(&parser, input, &dict, usize::from(byte(data, 2)));
    assert_eq!(parsed.records, parsed.lines, "text: every line is a record");
    let read = dict.read();
    for &k in &parsed.keys {
        let key = read.get(k).unwrap_or_default();
        match &extract {
            Extract::Grep(pattern) => assert_eq!(key, pattern),
            _ => assert!(
                !key.is_empty() && !key.bytes().any(|b| b" \t\n\x0c\r".contains(&b)),
                "a word is not empty and has no whitespace: {key:?}"
            ),
        }
    }
    if matches!(extract, Extract::Grep(_)) {
        assert!(parsed.keys.len() as u64 <= parsed.records);
    }
}

/// CSV: byte 0 gives the columns (1 + b % 4) and the key column, byte 1
/// which of value (int or float), time and filter (`a`) there are and their
/// columns, byte 2 the longest line, byte 3 the piece size; the data
/// follows.
pub fn check_csv(data: &[u8]) {
    let (b0, b1) = (byte(data, 0), byte(data, 1));
    let columns = 1 + usize::from(b0 % 4);
    let column = |shift: u8| Field::Column(usize::from(b0 >> shift) % columns);
    let kind = if b1 & 2 == 0 {
        ValueType::I64
    } else {
        ValueType::F64
    };
    let fields = Fields {
        key: column(2),
        value: (b1 & 1 != 0).then(|| (column(4), kind)),
        time: (b1 & 4 != 0).then(|| column(6)),
        columns,
        filter: (b1 & 8 != 0).then(|| (Field::Column(usize::from(b1 >> 4) % columns), "a".into())),
    };
    check_fields(Format::Csv, &fields, data, 2);
}

/// NDJSON: bytes 0 and 1 choose the member names of key, value (int or
/// float), time and filter (`a`) among `k v t f a ""` or none; byte 2 the
/// longest line, byte 3 the piece size; the data follows.
pub fn check_ndjson(data: &[u8]) {
    const NAMES: [&str; 6] = ["k", "v", "t", "f", "a", ""];
    let (b0, b1) = (byte(data, 0), byte(data, 1));
    let name = |b: u8| Field::Name(NAMES[usize::from(b) % NAMES.len()].to_owned());
    let kind = if b1 & 2 == 0 {
        ValueType::I64
    } else {
        ValueType::F64
    };
    let fields = Fields {
        key: name(b0),
        value: (b1 & 1 != 0).then(|| (name(b0 >> 3), kind)),
        time: (b1 & 4 != 0).then(|| name(b0 >> 5)),
        columns: 0,
        filter: (b1 & 8 != 0).then(|| (name(b1 >> 4), "a".into())),
    };
    check_fields(Format::Ndjson, &fields, data, 2);
}

/// CSV or NDJSON records: at most one event per record, with its key, time
/// and value.
fn check_fields(format: Format, fields: &Fields, data: &[u8], config: usize) {
    let has_time = fields.time.is_some();
    let has_value = fields.value.is_some();
    let parser = match Parser::try_new(
        format,
        Extract::Fields(fields.clone()),
        max_line_bytes(byte(data, config)),
    ) {
        Ok(parser) => parser,
        Err(e) => panic!("{fields:?} is consistent: {e}"),
    };
    let input = rest(data, config + 2);
    let dict = Dictionary::new();
    let parsed = check_parse(&parser, input, &dict, usize::from(byte(data, config + 1)));
    assert!(parsed.keys.len() as u64 + parsed.skipped <= parsed.records);
    assert_eq!(
        parsed.times.len(),
        if has_time { parsed.keys.len() } else { 0 }
    );
    assert_eq!(parsed.values.is_some(), has_value);
    assert!(
        parsed.record_of.windows(2).all(|w| w[0] < w[1]),
        "one event per record"
    );
    let read = dict.read();
    assert!(parsed
        .keys
        .iter()
        .all(|&k| read.get(k).is_some_and(|key| !key.is_empty())));
}

/// Parses `input` whole and in pieces of about `piece` bytes, checks the
/// invariants of both and that they agree; returns the whole parse.
fn check_parse(parser: &Parser, input: &[u8], dict: &Dictionary, piece: usize) -> ParseBuffer {
    let whole = parse(parser, input, dict);
    let mut joined = ParseBuffer {
        values: whole.values.as_ref().map(|v| match v {
            Column::I64(_) => Column::I64(Vec::new()),
            Column::F64(_) => Column::F64(Vec::new()),
        }),
        ..ParseBuffer::default()
    };
    for p in split_at_lines(input, piece.max(1)) {
        let part = parse(parser, p, dict);
        let records = joined.records as u32;
        joined.keys.extend(&part.keys);
        joined.times.extend(&part.times);
        joined
            .record_of
            .extend(part.record_of.iter().map(|r| r + records));
        match (&mut joined.values, &part.values) {
            (Some(Column::I64(a)), Some(Column::I64(b))) => a.extend(b),
            (Some(Column::F64(a)), Some(Column::F64(b))) => a.extend(b),
            (None, None) => {}
            _ => panic!("pieces have the same value column"),
        }
        let lines = joined.lines;
        joined.errors.extend(part.errors.into_iter().map(|mut e| {
            e.line += lines;
            e
        }));
        joined.records += part.records;
        joined.lines += part.lines;
        joined.skipped += part.skipped;
    }
    joined.errors.truncate(REPORTED_PER_CHUNK);
    let key_text = |c: &ParseBuffer| -> Vec<String> {
        let read = dict.read();
        c.keys
            .iter()
            .map(|&k| read.get(k).unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        key_text(&whole),
        key_text(&joined),
        "keys, whole and in pieces"
    );
    assert_eq!(whole.times, joined.times);
    assert_eq!(whole.record_of, joined.record_of);
    assert_eq!(whole.errors, joined.errors);
    assert_eq!(
        (whole.records, whole.lines, whole.skipped),
        (joined.records, joined.lines, joined.skipped)
    );
    match (&whole.values, &joined.values) {
        (Some(Column::F64(a)), Some(Column::F64(b))) => {
            assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
            assert_eq!(a.len(), b.len());
        }
        (a, b) => assert_eq!(a, b),
    }
    whole
}

/// One parse, and the invariants of its result.
fn parse(parser: &Parser, input: &[u8], dict: &Dictionary) -> ParseBuffer {
    let parsed = match parser.parse_buffer(input, dict) {
        Ok(parsed) => parsed,
        Err(e) => panic!("only a full dictionary is an error: {e}"),
    };
    let events = parsed.keys.len();
    assert_eq!(parsed.record_of.len(), events);
    assert!(parsed.times.is_empty() || parsed.times.len() == events);
    assert!(parsed.times.iter().all(|&t| time_in_range(t)));
    match &parsed.values {
        Some(Column::I64(v)) => assert_eq!(v.len(), events),
        Some(Column::F64(v)) => {
            assert_eq!(v.len(), events);
            assert!(v.iter().all(|x| x.is_finite()));
        }
        None => {}
    }
    assert_eq!(parsed.lines, lines(input).count() as u64);
    assert!(parsed.records <= parsed.lines);
    assert!(parsed.skipped <= parsed.records);
    assert_eq!(
        parsed.errors.len() as u64,
        parsed.skipped.min(REPORTED_PER_CHUNK as u64)
    );
    assert!(parsed.errors.windows(2).all(|w| w[0].line < w[1].line));
    assert!(parsed
        .errors
        .iter()
        .all(|e| e.line < parsed.lines && !e.reason.to_string().is_empty()));
    assert!(parsed.record_of.windows(2).all(|w| w[0] <= w[1]));
    assert!(parsed
        .record_of
        .last()
        .is_none_or(|&r| u64::from(r) < parsed.records));
    let read = dict.read();
    assert!(
        parsed.keys.iter().all(|&k| read.get(k).is_some()),
        "every key id resolves"
    );
    parsed
}

/// A lookup table from the bytes of a file; when it is one, its rows are
/// in it and a [`KeyMapper`] maps the ids of their keys (and of other
/// text) as the table says, keeping columns aligned. The header also goes
/// through [`csv_header_fields`](super::csv_header_fields) and
/// [`check_csv_header`](super::check_csv_header).
pub fn check_lookup(data: &[u8]) {
    let first = lines(data).next().unwrap_or_default();
    let names = super::csv_header_fields(&String::from_utf8_lossy(first));
    assert!(!names.is_empty());
    let _ = super::check_csv_header(&names);
    let Ok(table) = Lookup::from_csv_bytes(data, "fuzz") else {
        return;
    };
    assert!(!table.is_empty());
    let text = String::from_utf8_lossy(super::strip_bom(data));
    let dict = Dictionary::new();
    let mut keys = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()).skip(1) {
        let row = super::parse_csv_row(line.as_bytes()).unwrap_or_default();
        let (Some(key), Some(group)) = (row.first(), row.get(1)) else {
            panic!("an accepted table has two columns in every row: {line:?}");
        };
        let (key, group) = (String::from_utf8_lossy(key), String::from_utf8_lossy(group));
        assert_eq!(table.get(&key), Some(&*group), "{line:?}");
        keys.extend(dict.intern(&key));
        keys.extend(dict.intern(&format!("{key}?")));
    }
    let wanted: Vec<Option<String>> = {
        let read = dict.read();
        keys.iter()
            .map(|&k| {
                table
                    .get(read.get(k).unwrap_or_default())
                    .map(str::to_owned)
            })
            .collect()
    };
    let n = keys.len();
    let mut piece = crate::batch::Batch::from_valid(
        dict.clone(),
        (0..n as i64).collect(),
        keys.clone(),
        vec![Column::I64((0..n as i64).collect())],
        (0..n as u32).collect(),
    );
    let mut mapper = KeyMapper::new(table.into());
    let dropped = match mapper.apply(&mut piece) {
        Ok(dropped) => dropped,
        Err(e) => panic!("ids of this dictionary map: {e}"),
    };
    let kept: Vec<usize> = (0..n).filter(|&i| wanted[i].is_some()).collect();
    assert_eq!(dropped as usize, n - kept.len());
    assert_eq!(
        piece.records(),
        kept.iter().map(|&i| i as u32).collect::<Vec<_>>()
    );
    assert_eq!(
        piece.times(),
        kept.iter().map(|&i| i as i64).collect::<Vec<_>>()
    );
    let kept_values: Vec<i64> = kept.iter().map(|&i| i as i64).collect();
    assert!(matches!(piece.values(0), crate::Values::I64(v) if v == kept_values));
    let read = dict.read();
    for (&group, &i) in piece.keys().iter().zip(&kept) {
        assert_eq!(read.get(group), wanted[i].as_deref());
    }
}
