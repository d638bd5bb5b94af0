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
use super::{lines, with_cache, ParseBuffer};
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
    out: &mut ParseBuffer,
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
mod tests;
