//! NDJSON records: one JSON object per line; the key, value and time are
//! top-level members chosen by name.
//!
//! Parsing is strict (RFC 8259): every line must be one JSON object and
//! nothing else, and every member of it, wanted or not, nested or not, must
//! be valid JSON. A line that is not is a malformed record, counted with its
//! reason. In particular:
//!
//! - strings: raw control characters (bytes below 0x20) are malformed, and
//!   so are escapes other than `\" \\ \/ \b \f \n \r \t \uXXXX` (exactly
//!   four hex digits), and lone surrogates (`\ud800` without its low half,
//!   or a low half alone);
//! - bare words are not strings (`{"k":hello}`), and numbers follow JSON's
//!   grammar: `01`, `1.`, `.5`, `+1`, `NaN` and `Infinity` are malformed;
//! - a wanted member (the key, value, time or filter member) given twice is
//!   malformed: which of the two was meant is unknowable. Other members may
//!   repeat, as JSON allows;
//! - nesting depth is not limited (the scanner keeps its stack on the heap,
//!   and a line is at most `max_line_bytes` long).
//!
//! The common line (no escapes, no nested values) is parsed by a fast path
//! that makes these checks on the fly: quotes, backslashes and control
//! characters are found by one SIMD scan of each string, and bare tokens are
//! checked against JSON's grammar. Anything unusual falls back to the
//! general scanner, which also words the error.

use std::borrow::Cow;

use super::text::line_text;
use super::{lines, with_cache, ParsedChunk};
use crate::dictionary::Dictionary;
use crate::error::Result;

/// The member names an NDJSON parser looks for (checked when the parser is
/// built).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Names {
    pub key: String,
    pub value: Option<String>,
    pub time: Option<String>,
    pub filter: Option<(String, String)>,
}

/// A scalar member value: the text of a string (unescaped) or of a number or
/// literal.
#[derive(Debug, Clone, PartialEq)]
enum Scalar<'a> {
    Str(Cow<'a, str>),
    Token(&'a str),
}

impl Scalar<'_> {
    fn text(&self) -> &str {
        match self {
            Scalar::Str(s) => s,
            Scalar::Token(t) => t,
        }
    }
}

/// At most this much of a bad token is quoted in an error.
const QUOTED_BYTES: usize = 40;

/// `text`, cut to [`QUOTED_BYTES`] at a character boundary for an error.
fn quoted(text: &str) -> Cow<'_, str> {
    if text.len() <= QUOTED_BYTES {
        return Cow::Borrowed(text);
    }
    let mut end = QUOTED_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &text[..end]))
}

/// Whether `t` is a JSON number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
#[inline]
fn is_number(t: &[u8]) -> bool {
    let digits = |mut i: usize| {
        while t.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut i = usize::from(t.first() == Some(&b'-'));
    match t.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(i + 1),
        _ => return false,
    }
    if t.get(i) == Some(&b'.') {
        let start = i + 1;
        i = digits(start);
        if i == start {
            return false;
        }
    }
    if matches!(t.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(t.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        i = digits(start);
        if i == start {
            return false;
        }
    }
    i == t.len()
}

/// Whether `t` is a JSON number or literal (`true`, `false`, `null`).
#[inline]
fn is_scalar_token(t: &[u8]) -> bool {
    match t.first() {
        Some(b't') => t == b"true",
        Some(b'f') => t == b"false",
        Some(b'n') => t == b"null",
        _ => is_number(t),
    }
}

/// Why a bare token is not a JSON value.
fn bad_token(token: &str) -> String {
    if token.starts_with(|c: char| c == '-' || c == '+' || c == '.' || c.is_ascii_digit()) {
        format!("invalid number `{}`", quoted(token))
    } else {
        format!(
            "`{}` is not a JSON value (strings need double quotes)",
            quoted(token)
        )
    }
}

/// The bytes that end a bare token.
#[inline]
fn ends_token(b: u8) -> bool {
    matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n')
}

/// The error of a line malformed at byte offset `at`.
fn error_at(at: usize, what: &str) -> String {
    format!("invalid JSON at byte {}: {what}", at + 1)
}

struct Scanner<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.error(&format!("`{}` expected", byte as char)))
        }
    }

    fn error(&self, what: &str) -> String {
        error_at(self.i, what)
    }

    /// A string starting at the current `"`; escapes are checked and
    /// decoded only when there are some.
    fn string(&mut self) -> Result<Cow<'a, str>, String> {
        let bytes = self.s.as_bytes();
        let open = self.i;
        let start = open + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            let Some(at) = bytes
                .get(i..)
                .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
            else {
                return Err(error_at(open, "unterminated string"));
            };
            i += at;
            if bytes[i] == b'"' {
                break;
            }
            escaped = true;
            i += 2;
        }
        self.i = i + 1;
        // Quotes and backslashes are ASCII: both ends are char boundaries.
        let raw = &self.s[start..i];
        if let Some(at) = raw.bytes().position(|b| b < 0x20) {
            return Err(error_at(
                start + at,
                &format!(
                    "raw control character U+{:04X} in a string (escape it)",
                    raw.as_bytes()[at]
                ),
            ));
        }
        if !escaped {
            return Ok(Cow::Borrowed(raw));
        }
        unescape(raw)
            .map(Cow::Owned)
            .map_err(|(at, what)| error_at(start + at, &what))
    }

    /// A number or literal token, checked against JSON's grammar.
    fn token(&mut self) -> Result<&'a str, String> {
        let bytes = self.s.as_bytes();
        let start = self.i;
        while self.i < bytes.len() && !ends_token(bytes[self.i]) {
            self.i += 1;
        }
        if self.i == start {
            return Err(self.error("value expected"));
        }
        let token = &self.s[start..self.i];
        if is_scalar_token(token.as_bytes()) {
            Ok(token)
        } else {
            Err(error_at(start, &bad_token(token)))
        }
    }

    /// A member name and its `:`.
    fn member_name(&mut self) -> Result<Cow<'a, str>, String> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return Err(self.error("member name expected"));
        }
        let name = self.string()?;
        self.expect(b':')?;
        self.skip_ws();
        Ok(name)
    }

    fn scalar(&mut self) -> Result<Option<Scalar<'a>>, String> {
        match self.peek() {
            Some(b'"') => Ok(Some(Scalar::Str(self.string()?))),
            Some(b'{' | b'[') => {
                self.skip_value()?;
                Ok(None)
            }
            _ => {
                let token = self.token()?;
                Ok((token != "null").then_some(Scalar::Token(token)))
            }
        }
    }

    /// Checks and skips any value, nested ones included (with a stack on
    /// the heap: any depth).
    fn skip_value(&mut self) -> Result<(), String> {
        // The closing bracket of each open object or array.
        let mut open: Vec<u8> = Vec::new();
        loop {
            // A value.
            self.skip_ws();
            match self.peek() {
                Some(b'"') => drop(self.string()?),
                Some(b'{') => {
                    self.i += 1;
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                    } else {
                        open.push(b'}');
                        self.member_name()?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                    } else {
                        open.push(b']');
                        continue;
                    }
                }
                _ => drop(self.token()?),
            }
            // After a value: close what ends here, then the next element.
            loop {
                let Some(&close) = open.last() else {
                    return Ok(());
                };
                self.skip_ws();
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        if close == b'}' {
                            self.member_name()?;
                        }
                        break;
                    }
                    Some(c) if c == close => {
                        self.i += 1;
                        open.pop();
                    }
                    None if close == b'}' => return Err(self.error("unterminated object")),
                    None => return Err(self.error("unterminated array")),
                    _ if close == b'}' => return Err(self.error("`,` or `}` expected")),
                    _ => return Err(self.error("`,` or `]` expected")),
                }
            }
        }
    }
}

/// Four hex digits at `at`.
fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let digits = b.get(at..at + 4)?;
    digits.iter().try_fold(0, |code, &d| {
        let d = char::from(d).to_digit(16)?;
        Some(code << 4 | d)
    })
}

/// Decodes the escapes of a string's contents (which has at least one),
/// strictly; the error has the offset of the bad escape.
fn unescape(raw: &str) -> Result<String, (usize, String)> {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while let Some(at) = memchr::memchr(b'\\', &b[i..]) {
        // A backslash is ASCII: a char boundary.
        out.push_str(&raw[i..i + at]);
        i += at;
        let c = match b.get(i + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let Some(code) = hex4(b, i + 2) else {
                    return Err((i, "`\\u` needs exactly four hex digits".into()));
                };
                let lone = |at: usize| (at, format!("lone surrogate `\\u{code:04x}`"));
                let c = match code {
                    0xD800..=0xDBFF => {
                        let low = (b.get(i + 6..i + 8) == Some(b"\\u"))
                            .then(|| hex4(b, i + 8))
                            .flatten()
                            .filter(|low| (0xDC00..=0xDFFF).contains(low))
                            .ok_or_else(|| lone(i))?;
                        0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(lone(i)),
                    _ => code,
                };
                // Surrogates are handled above: every other code is a char.
                out.push(char::from_u32(c).ok_or_else(|| lone(i))?);
                i += if c > 0xFFFF { 12 } else { 6 };
                continue;
            }
            _ => {
                let what = raw[i + 1..]
                    .chars()
                    .next()
                    .map_or("a backslash at the end of a string".into(), |c| {
                        format!("invalid escape `\\{c}`")
                    });
                return Err((i, what));
            }
        };
        out.push(c);
        i += 2;
    }
    out.push_str(&raw[i..]);
    Ok(out)
}

/// Why a line whose wanted member `name` appears twice is malformed.
fn twice(name: &str) -> String {
    format!("member `{}` appears twice", quoted(name))
}

/// The wanted members of one object line: `[key, value, time, filter]`.
fn members<'a>(line: &'a str, names: [Option<&str>; 4]) -> Result<[Option<Scalar<'a>>; 4], String> {
    let mut found: [Option<Scalar<'a>>; 4] = [None, None, None, None];
    let mut seen = [false; 4];
    let mut sc = Scanner { s: line, i: 0 };
    if line.starts_with('\u{feff}') {
        return Err(sc.error("a byte-order mark (U+FEFF) before the object"));
    }
    sc.expect(b'{')?;
    sc.skip_ws();
    if sc.peek() == Some(b'}') {
        sc.i += 1;
        sc.skip_ws();
        return if sc.peek().is_none() {
            Ok(found)
        } else {
            Err(sc.error("trailing characters after the object"))
        };
    }
    loop {
        let name = sc.member_name()?;
        if names.contains(&Some(&*name)) {
            let at = sc.i;
            let value = sc.scalar()?;
            for (slot, wanted) in names.iter().enumerate() {
                if *wanted == Some(&*name) {
                    if seen[slot] {
                        return Err(error_at(at, &twice(&name)));
                    }
                    seen[slot] = true;
                    found[slot].clone_from(&value);
                }
            }
        } else {
            sc.skip_value()?;
        }
        sc.skip_ws();
        match sc.peek() {
            Some(b',') => sc.i += 1,
            Some(b'}') => {
                sc.i += 1;
                sc.skip_ws();
                return if sc.peek().is_none() {
                    Ok(found)
                } else {
                    Err(sc.error("trailing characters after the object"))
                };
            }
            None => return Err(sc.error("unterminated object")),
            _ => return Err(sc.error("`,` or `}` expected")),
        }
    }
}

/// Skips JSON whitespace from `i`.
#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\r' | b'\n')) {
        i += 1;
    }
    i
}

/// The offset of the first byte of `b` that ends or complicates a string:
/// a `"`, a `\` or a control character (below 0x20). 16 bytes at a time
/// with SSE2 (part of every x86-64 CPU), then 8 at a time (strings are
/// short: a call of `memchr` costs more than it saves).
#[inline]
fn find_string_end(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const QUOTES: u64 = ONES * b'"' as u64;
    const BACKSLASHES: u64 = ONES * b'\\' as u64;
    const SPACES: u64 = ONES * 0x20;
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8,
            _mm_or_si128, _mm_set1_epi8,
        };
        while i + 16 <= b.len() {
            // SAFETY: SSE2 is part of the x86-64 baseline; bytes i..i + 16
            // lie inside `b`, and the unaligned load has no alignment
            // requirement.
            #[allow(clippy::cast_ptr_alignment)] // `loadu`: any alignment.
            let mask = unsafe {
                let v = _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>());
                let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
                let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
                // v <= 0x1F (unsigned) exactly when min(v, 0x1F) == v.
                let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v);
                _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control))
            };
            if mask != 0 {
                return Some(i + mask.trailing_zeros() as usize);
            }
            i += 16;
        }
    }
    while i + 8 <= b.len() {
        let mut word = [0; 8];
        word.copy_from_slice(&b[i..i + 8]);
        let word = u64::from_le_bytes(word);
        // In each of these the lowest set bit marks the first matching byte
        // exactly (the borrows of the subtractions only reach bytes above
        // it), so the lowest bit of their union does too.
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
        let below_space = word.wrapping_sub(SPACES) & !word & HIGHS;
        let hits = zero(word ^ QUOTES) | zero(word ^ BACKSLASHES) | below_space;
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| i + p)
}

/// `a == b`, without a call of `memcmp` for the short member names of
/// typical records: two overlapping loads compare up to 16 bytes.
#[inline]
fn same_short(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let load8 = |s: &[u8], at: usize| {
        let mut word = [0; 8];
        word.copy_from_slice(&s[at..at + 8]);
        u64::from_le_bytes(word)
    };
    if (8..=16).contains(&n) {
        load8(a, 0) == load8(b, 0) && load8(a, n - 8) == load8(b, n - 8)
    } else {
        a == b
    }
}

/// The fast path of [`members`] for the common line, one without escapes,
/// control characters or nested values: the same members, found and
/// checked in one forward pass. `None` hands the line to [`members`],
/// which also words the error of a malformed line.
#[inline]
fn members_fast<'a>(line: &'a str, names: [Option<&str>; 4]) -> Option<[Option<Scalar<'a>>; 4]> {
    let b = line.as_bytes();
    let mut found: [Option<Scalar<'a>>; 4] = [None, None, None, None];
    let mut seen = 0_u8;
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return (skip_ws(b, i + 1) == b.len()).then_some(found);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let name_end = i + 1 + find_string_end(&b[i + 1..])?;
        if b[name_end] != b'"' {
            return None;
        }
        let name = &b[i + 1..name_end];
        i = skip_ws(b, name_end + 1);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        let value = match b.get(i)? {
            b'"' => {
                let end = i + 1 + find_string_end(&b[i + 1..])?;
                if b[end] != b'"' {
                    return None;
                }
                // Quotes are ASCII: both ends are character boundaries.
                let text = &line[i + 1..end];
                i = end + 1;
                Some(Scalar::Str(Cow::Borrowed(text)))
            }
            b'{' | b'[' => return None,
            _ => {
                let start = i;
                while i < b.len() && !ends_token(b[i]) {
                    i += 1;
                }
                let token = &line[start..i];
                if !is_scalar_token(token.as_bytes()) {
                    return None;
                }
                (token != "null").then_some(Scalar::Token(token))
            }
        };
        for (slot, wanted) in names.iter().enumerate() {
            if let Some(wanted) = wanted {
                // Every slot naming the member gets it (a key may be the
                // filter field too); a second time is an error.
                if same_short(wanted.as_bytes(), name) {
                    let bit = 1 << slot;
                    if seen & bit != 0 {
                        return None;
                    }
                    seen |= bit;
                    found[slot].clone_from(&value);
                }
            }
        }
        i = skip_ws(b, i);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return (skip_ws(b, i + 1) == b.len()).then_some(found),
            _ => return None,
        }
    }
}

/// Parses every line.
pub(super) fn rows(
    bytes: &[u8],
    fields: &Names,
    max_line_bytes: usize,
    dict: &Dictionary,
    out: &mut ParsedChunk,
) -> Result<()> {
    let key_name = fields.key.as_str();
    let value = fields.value.as_ref();
    let time_name = fields.time.as_deref();
    let filter = fields
        .filter
        .as_ref()
        .map(|(f, v)| (f.as_str(), v.as_str()));
    let whole = super::chunk_text(bytes);
    let names = [
        Some(key_name),
        value.map(String::as_str),
        time_name,
        filter.map(|(n, _)| n),
    ];
    with_cache(dict, |cache| {
        for (index, raw) in lines(bytes).enumerate() {
            let index = index as u64;
            out.lines += 1;
            // Blank lines (JSON whitespace only) are not records.
            if raw.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
                continue;
            }
            let record = out.records as u32;
            out.records += 1;
            let Some(line) = line_text(whole, bytes, raw, index, max_line_bytes, out) else {
                continue;
            };
            let [key, val, time, filtered] =
                match members_fast(line, names).map_or_else(|| members(line, names), Ok) {
                    Ok(found) => found,
                    Err(reason) => {
                        out.bad(index, || reason);
                        continue;
                    }
                };
            if let Some((_, wanted)) = filter {
                if filtered.as_ref().map(Scalar::text) != Some(wanted) {
                    continue;
                }
            }
            let Some(key) = key.filter(|k| !k.text().is_empty()) else {
                out.bad(index, || format!("missing or empty key `{key_name}`"));
                continue;
            };
            let time = match (time_name, time) {
                (None, _) => Ok(None),
                (Some(n), None) => Err(format!("missing time `{n}`")),
                (Some(_), Some(t)) => super::parse_time(t.text().as_bytes()).map(Some),
            };
            // The value is pushed last, once nothing else can reject the
            // record: the value column must stay aligned with the keys.
            let time = time.and_then(|t| {
                match (value, val) {
                    (None, _) => Ok(()),
                    (Some(n), None) => Err(format!("missing value `{n}`")),
                    (Some(_), Some(v)) => super::push_value(&mut out.values, v.text().as_bytes()),
                }
                .map(|()| t)
            });
            let time = match time {
                Ok(time) => time,
                Err(reason) => {
                    out.bad(index, || reason);
                    continue;
                }
            };
            if let Some(t) = time {
                out.times.push(t);
            }
            let id = match key {
                Scalar::Str(Cow::Borrowed(k)) | Scalar::Token(k) => cache.id(k, dict)?,
                Scalar::Str(Cow::Owned(k)) => cache.id(&k, dict)?,
            };
            out.keys.push(id);
            out.record_of.push(record);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Extract, Field, Fields, Format, Parser, ValueKind};
    use super::*;
    use crate::batch::Column;

    #[test]
    fn members_are_found_at_the_top_level_only() {
        let line =
            r#"{"x": {"key": "nested"}, "key": "a\"b", "arr": [1, {"v": 2}], "v": 2.5, "t": "17"}"#;
        let [k, v, t, f] = members(line, [Some("key"), Some("v"), Some("t"), Some("arr")]).unwrap();
        assert!(f.is_none(), "an array is not a scalar");
        assert_eq!(k.unwrap().text(), "a\"b");
        assert_eq!(v.unwrap().text(), "2.5");
        assert_eq!(t.unwrap().text(), "17");
    }

    #[test]
    fn a_record_rejected_for_its_time_leaves_no_value_behind() {
        let dict = Dictionary::new();
        let fields = Fields {
            key: Field::Name("k".into()),
            value: Some((Field::Name("v".into()), ValueKind::Int)),
            time: Some(Field::Name("t".into())),
            columns: 0,
            filter: None,
        };
        let parser = Parser::new(Format::Ndjson, Extract::Fields(fields), 1 << 20);
        let input = b"{\"k\":\"a\",\"v\":100}\n{\"k\":\"b\",\"v\":1,\"t\":5}\n";
        let parsed = parser.parse(input, &dict).unwrap();
        assert_eq!(parsed.values, Some(Column::I64(vec![1])));
        assert_eq!(parsed.keys.len(), 1);
    }

    #[test]
    fn bad_lines_are_counted_with_reasons() {
        let dict = Dictionary::new();
        let fields = Fields {
            key: Field::Name("k".into()),
            value: Some((Field::Name("v".into()), ValueKind::Int)),
            time: Some(Field::Name("t".into())),
            columns: 0,
            filter: None,
        };
        let parser = Parser::new(Format::Ndjson, Extract::Fields(fields), 1 << 20);
        let input = concat!(
            "{\"k\":\"a\",\"v\":1,\"t\":5}\n",
            "{\"k\":\"a\",\"v\":1\n",
            "{\"v\":2,\"t\":6}\n",
            "{\"k\":\"b\",\"v\":\"x\",\"t\":6}\n",
            "  \n",
            "{\"k\":\"\\u00e9\",\"v\":\"7\",\"t\":\"8\"}\n",
        );
        let parsed = parser.parse(input.as_bytes(), &dict).unwrap();
        let read = dict.read();
        let keys: Vec<&str> = parsed.keys.iter().map(|&k| read.get(k).unwrap()).collect();
        assert_eq!(keys, ["a", "é"]);
        assert_eq!(parsed.values, Some(Column::I64(vec![1, 7])));
        assert_eq!(parsed.times, [5, 8]);
        assert_eq!((parsed.records, parsed.skipped), (5, 3));
        assert!(
            parsed.errors[0]
                .to_string()
                .starts_with("line 2: invalid JSON"),
            "{:?}",
            parsed.errors
        );
        assert_eq!(
            parsed.errors[1].to_string(),
            "line 3: missing or empty key `k`"
        );
        assert_eq!(
            parsed.errors[2].to_string(),
            "line 4: bad value `x` (integer expected)"
        );
    }

    /// A random object line built from pieces that exercise the scanner:
    /// whitespace, tokens, `null`, nested values, escapes, duplicate and
    /// unknown names, non-ASCII text, and now and then a broken piece: bad
    /// escapes, lone surrogates, raw control characters, bare words,
    /// numbers outside JSON's grammar, broken nesting.
    fn random_line(rng: &mut datasets::Rng) -> String {
        let names = ["k", "v", "t", "f", "other", "ké", "\\u006b", "a\u{2}b"];
        let values = [
            "\"x\"",
            "\"\"",
            "12",
            "-3.5e2",
            "null",
            "true",
            "{\"k\":\"in\"}",
            "[1,{\"v\":2}]",
            "\"é ü\"",
            "\"a,b}\"",
            "\"a\\\"b\"",
            "\"\\u00e9\\n\"",
            "\"\\ud83d\\ude00\"",
            "0",
            "-0.5E+3",
            "false",
            "[]",
            "{}",
            "[[[{\"a\":[]}]]]",
            // Broken values: these must be the last ones.
            "\"",
            "",
            "\"unterminated",
            "1]",
            "]",
            "\"\\u12\"",
            "\"\\u12G4\"",
            "\"\\u+041\"",
            "hello",
            "\"a\u{1}b\"",
            "\"tab\tin\"",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "01",
            "1.",
            ".5",
            "+1",
            "-",
            "1e",
            "1e+",
            "NaN",
            "Infinity",
            "-Infinity",
            "tru",
            "nul",
            "[1,,2]",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\"}",
            "{\"a\":hello}",
            "[1}",
            "{\"a\":1]",
            "[\"\\u12\"]",
            "{\"a\\q\":1}",
            "\u{feff}\"x\"",
        ];
        let broken = 37;
        assert_eq!(values[values.len() - broken], "\"");
        let ws = ["", " ", "\t", "  "];
        let pick = |rng: &mut datasets::Rng, n: usize| rng.below(n as u64) as usize;
        let mut line = String::from(ws[pick(rng, 4)]);
        line.push('{');
        let members = pick(rng, 6);
        for m in 0..members {
            if m > 0 {
                line.push_str(if rng.below(40) == 0 { "" } else { "," });
            }
            line.push_str(ws[pick(rng, 4)]);
            line.push('"');
            line.push_str(names[pick(rng, names.len())]);
            line.push('"');
            line.push_str(ws[pick(rng, 4)]);
            line.push_str(if rng.below(40) == 0 { "" } else { ":" });
            line.push_str(ws[pick(rng, 4)]);
            // Broken values are rare.
            let v = if rng.below(20) == 0 {
                pick(rng, values.len())
            } else {
                pick(rng, values.len() - broken)
            };
            line.push_str(values[v]);
            line.push_str(ws[pick(rng, 4)]);
        }
        line.push('}');
        match rng.below(60) {
            0 => line.push_str(" x"),
            1 => line.push_str("{}"),
            2 => line.insert(0, '\u{feff}'),
            3 => drop(line.pop()),
            _ => {}
        }
        line
    }

    #[test]
    fn the_fast_path_agrees_with_the_general_scanner() {
        let names = [Some("k"), Some("v"), Some("t"), Some("f")];
        let mut rng = datasets::Rng::new(11);
        let (mut fast_hits, mut errors) = (0, 0);
        for _ in 0..50_000 {
            let line = random_line(&mut rng);
            let general = members(&line, names);
            if let Some(fast) = members_fast(&line, names) {
                fast_hits += 1;
                assert_eq!(general.as_ref(), Ok(&fast), "{line}");
            }
            if general.is_err() {
                errors += 1;
            }
        }
        assert!(fast_hits > 10_000, "the fast path is taken: {fast_hits}");
        assert!(errors > 2_000, "hostile lines are generated: {errors}");
        // Regressions: a bracket ends a bare token, and text after an empty
        // object is an error, on both paths.
        for bad in [r#"{"k":x]}"#, r#"{"k":"a","n":1]}"#, r#"{"k":]}"#, "{} x"] {
            assert!(members(bad, names).is_err(), "{bad}");
            assert!(members_fast(bad, names).is_none(), "{bad}");
        }
        let ysb = r#"{"user_id":"u1","page_id":"p","ad_id":"a9","ad_type":"mail","event_type":"view","event_time":"1700000000000","ip_address":"1.2.3.4"}"#;
        let names = [Some("ad_id"), None, Some("event_time"), Some("event_type")];
        let fast = members_fast(ysb, names).expect("a plain YSB line takes the fast path");
        assert_eq!(fast, members(ysb, names).unwrap());
        assert_eq!(fast[0].as_ref().map(Scalar::text), Some("a9"));
    }

    #[test]
    fn a_member_wanted_twice_fills_both_slots() {
        let names = [Some("type"), None, None, Some("type")];
        for line in [r#"{"type":"view"}"#, r#"{"type":"vi\u0065w"}"#] {
            let [key, _, _, filter] = members(line, names).unwrap();
            assert_eq!(key.as_ref().map(Scalar::text), Some("view"), "{line}");
            assert_eq!(filter.as_ref().map(Scalar::text), Some("view"), "{line}");
        }
        let fast = members_fast(r#"{"type":"view"}"#, names).unwrap();
        assert_eq!(fast[0], fast[3]);
    }

    #[test]
    fn quotes_backslashes_and_control_characters_are_found_at_every_offset() {
        for special in [b'"', b'\\', 0, b'\t', 0x1F] {
            for len in 0..40 {
                for at in 0..len {
                    // Bytes around 0x20 and above 0x7F are not special.
                    let mut b: Vec<u8> =
                        (0..len).map(|i| [b'a', 0x20, 0xC3, 0xFF][i % 4]).collect();
                    b[at] = special;
                    if at + 1 < len {
                        b[at + 1] = b'"';
                    }
                    assert_eq!(find_string_end(&b), Some(at), "{special} {len} {at}");
                }
                assert_eq!(find_string_end(&vec![0xC3; len]), None);
                assert_eq!(find_string_end(&vec![b' '; len]), None);
            }
        }
    }

    #[test]
    fn a_filter_keeps_only_records_whose_member_matches() {
        let dict = Dictionary::new();
        let fields = Fields {
            key: Field::Name("k".into()),
            value: None,
            time: None,
            columns: 0,
            filter: Some((Field::Name("type".into()), "view".into())),
        };
        let parser = Parser::new(Format::Ndjson, Extract::Fields(fields), 1 << 20);
        let input = concat!(
            "{\"k\":\"a\",\"type\":\"view\"}\n",
            "{\"k\":\"b\",\"type\":\"click\"}\n",
            "{\"k\":\"c\"}\n",
            "{\"type\":\"view\",\"k\":\"d\"}\n",
            "{\"type\":\"view\"\n",
        );
        let parsed = parser.parse(input.as_bytes(), &dict).unwrap();
        let read = dict.read();
        let keys: Vec<&str> = parsed.keys.iter().map(|&k| read.get(k).unwrap()).collect();
        assert_eq!(keys, ["a", "d"]);
        assert_eq!(parsed.record_of, [0, 3]);
        assert_eq!((parsed.records, parsed.skipped), (5, 1));
    }

    const NAMES: [Option<&str>; 4] = [Some("k"), Some("v"), Some("t"), Some("f")];

    /// What `rows` makes of `line`: the fast path if it takes the line (it
    /// must then agree with the general scanner), else the general scanner.
    fn verdict(line: &str) -> Result<[Option<Scalar<'_>>; 4], String> {
        let general = members(line, NAMES);
        if let Some(fast) = members_fast(line, NAMES) {
            assert_eq!(general.as_ref(), Ok(&fast), "{line}");
        }
        general
    }

    /// Asserts that every line is malformed with a reason containing
    /// `reason`, both line by line and through a parser.
    fn assert_malformed(lines: &[&str], reason: &str) {
        for line in lines {
            let err = verdict(line).expect_err(line);
            assert!(err.contains(reason), "{line}: {err}");
        }
        let dict = Dictionary::new();
        let fields = Fields {
            key: Field::Name("k".into()),
            value: Some((Field::Name("v".into()), ValueKind::Float)),
            time: None,
            columns: 0,
            filter: None,
        };
        let parser = Parser::try_new(Format::Ndjson, Extract::Fields(fields), 1 << 20).unwrap();
        let input = lines.join("\n");
        let parsed = parser.parse(input.as_bytes(), &dict).unwrap();
        assert_eq!(parsed.skipped, lines.len() as u64, "{input}");
        assert!(parsed.keys.is_empty());
    }

    fn key_of(line: &str) -> String {
        verdict(line).unwrap()[0]
            .as_ref()
            .unwrap()
            .text()
            .to_owned()
    }

    #[test]
    fn ndjson_unicode_escape_needs_four_hex_digits() {
        assert_malformed(
            &[
                r#"{"k":"\u12"}"#,
                r#"{"k":"\u12G4"}"#,
                r#"{"k":"\u+041"}"#,
                r#"{"k":"\u-41"}"#,
                r#"{"k":"\u"}"#,
                r#"{"k":"a","x":"\u12"}"#,
                r#"{"k":"a","x":["\u004"]}"#,
            ],
            "four hex digits",
        );
        assert_eq!(key_of(r#"{"k":"\u0041\u00e9\u00E9"}"#), "Aéé");
        assert_eq!(key_of(r#"{"k":"\u00411"}"#), "A1");
    }

    #[test]
    fn ndjson_bare_word_is_not_a_string() {
        assert_malformed(
            &[
                r#"{"k":hello}"#,
                r#"{"k":"a","other":hello}"#,
                r#"{"k":"a","other":[hello]}"#,
                r#"{"k":True}"#,
                r#"{"k":NaN}"#,
                r#"{"k":Infinity}"#,
                r#"{"k":nul}"#,
            ],
            "is not a JSON value",
        );
        assert_eq!(key_of(r#"{"k":true}"#), "true");
    }

    #[test]
    fn ndjson_raw_control_character_is_malformed() {
        assert_malformed(
            &[
                "{\"k\":\"a\u{1}b\"}",
                "{\"k\":\"a\tb\"}",
                "{\"k\":\"a\rb\"}",
                "{\"k\":\"a\",\"x\":\"\u{1f}\"}",
                "{\"k\u{0}\":\"a\"}",
                "{\"k\":\"a\",\"x\":[\"\u{7}\"]}",
                "{\"k\":\"a long key with a control character past sixteen bytes\u{8}\"}",
            ],
            "raw control character",
        );
        // Escaped, they are fine; and a tab between tokens is whitespace.
        assert_eq!(key_of("{\"k\":\t\"a\\tb\\u0001\"}"), "a\tb\u{1}");
    }

    #[test]
    fn ndjson_invalid_escape_is_malformed() {
        assert_malformed(
            &[
                r#"{"k":"\x41"}"#,
                r#"{"k":"\'"}"#,
                r#"{"k":"a","\q":1}"#,
                r#"{"k":"\é"}"#,
            ],
            "invalid escape",
        );
        assert_eq!(
            key_of(r#"{"k":"\"\\\/\b\f\n\r\t"}"#),
            "\"\\/\u{8}\u{c}\n\r\t"
        );
    }

    #[test]
    fn ndjson_lone_surrogate_is_malformed() {
        assert_malformed(
            &[
                r#"{"k":"\ud800"}"#,
                r#"{"k":"\ud800x"}"#,
                r#"{"k":"\ud800\u0041"}"#,
                r#"{"k":"\ud800\ud800"}"#,
                r#"{"k":"\udc00"}"#,
                r#"{"k":"\udfff\ud800"}"#,
                r#"{"\ud800":"a","k":"b"}"#,
            ],
            "lone surrogate",
        );
        assert_eq!(key_of(r#"{"k":"\ud83d\ude00!"}"#), "😀!");
        assert_eq!(key_of(r#"{"k":"\uDBFF\uDFFF"}"#), "\u{10FFFF}");
    }

    #[test]
    fn ndjson_numbers_follow_json_grammar() {
        assert_malformed(
            &[
                r#"{"k":01}"#,
                r#"{"k":1.}"#,
                r#"{"k":.5}"#,
                r#"{"k":+1}"#,
                r#"{"k":-}"#,
                r#"{"k":1e}"#,
                r#"{"k":1e+}"#,
                r#"{"k":0x10}"#,
                r#"{"k":1.5.2}"#,
                r#"{"k":-01}"#,
                r#"{"k":"a","n":00}"#,
            ],
            "invalid number",
        );
        for good in ["0", "-0", "10", "-1.25", "1e9", "1E-3", "2.5e+10"] {
            assert_eq!(key_of(&format!(r#"{{"k":{good}}}"#)), good);
        }
    }

    #[test]
    fn ndjson_duplicate_wanted_member_is_malformed() {
        assert_malformed(
            &[
                r#"{"k":"a","k":"b"}"#,
                r#"{"k":"a","k":"a"}"#,
                r#"{"k":null,"k":"a"}"#,
                r#"{"k":"a","v":1,"v":2}"#,
                r#"{"k":"a","\u006b":"b"}"#,
            ],
            "appears twice",
        );
        // Other members may repeat.
        assert_eq!(key_of(r#"{"x":1,"k":"a","x":2}"#), "a");
    }

    #[test]
    fn ndjson_trailing_garbage_and_broken_structure_are_malformed() {
        for (line, reason) in [
            (r#"{"k":"a"} x"#, "trailing characters"),
            (r#"{"k":"a"}{}"#, "trailing characters"),
            (r#"{"k":"a"},"#, "trailing characters"),
            (r#"{"k":"a""#, "unterminated object"),
            (r#"{"k":"a"#, "unterminated string"),
            (r#"{"k":"a\"}"#, "unterminated string"),
            (r#"{"k":"a",}"#, "member name expected"),
            (r#"{"k" "a"}"#, "`:` expected"),
            (r#"{"k":"a" "v":1}"#, "`,` or `}` expected"),
            (r#"{"k":"a","x":[1,2}"#, "`,` or `]` expected"),
            (r#"{"k":"a","x":{"y":1]}"#, "`,` or `}` expected"),
            (r#"{"k":"a","x":[1,,2]}"#, "value expected"),
            (r#"{"k":"a","x":{"y"}}"#, "`:` expected"),
            (r#"{"k":"a","x":[[[1]]"#, "unterminated array"),
            (r#"{"k":"a","x":{"y":{}"#, "unterminated object"),
            (r#"["k","a"]"#, "`{` expected"),
            ("\u{feff}{\"k\":\"a\"}", "byte-order mark"),
        ] {
            assert_malformed(&[line], reason);
        }
    }

    #[test]
    fn ndjson_deep_nesting_is_checked_without_recursion() {
        let depth = 200_000;
        let deep = format!(
            r#"{{"k":"a","x":{}1{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert_eq!(key_of(&deep), "a");
        let unbalanced = format!(
            r#"{{"k":"a","x":{}1{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth - 1)
        );
        assert_malformed(&[&unbalanced], "`,` or `]` expected");
        let objects = format!(
            r#"{{"k":"a","x":{}1{}}}"#,
            r#"{"y":"#.repeat(depth),
            "}".repeat(depth)
        );
        assert_eq!(key_of(&objects), "a");
    }

    #[test]
    fn ndjson_form_feed_line_is_a_malformed_record_not_a_blank_line() {
        let dict = Dictionary::new();
        let fields = Fields {
            key: Field::Name("k".into()),
            value: None,
            time: None,
            columns: 0,
            filter: None,
        };
        let parser = Parser::try_new(Format::Ndjson, Extract::Fields(fields), 1 << 20).unwrap();
        let parsed = parser
            .parse(b" \t\r\n\x0c\n{\"k\":\"a\"}\n", &dict)
            .unwrap();
        assert_eq!((parsed.lines, parsed.records, parsed.skipped), (3, 2, 1));
    }
}
