//! The general scanner: any line, any JSON, checked strictly (see the
//! module docs of [`super`]), with the wording of every error. The fast
//! path ([`super::fast`]) hands it every line that is not plain.

use std::borrow::Cow;

use crate::error::Result;

/// A scalar member value: the text of a string (unescaped) or of a number or
/// literal.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar<'a> {
    Str(Cow<'a, str>),
    Token(&'a str),
}

impl Scalar<'_> {
    pub(super) fn text(&self) -> &str {
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
pub(super) fn is_scalar_token(t: &[u8]) -> bool {
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
pub(super) fn ends_token(b: u8) -> bool {
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
pub(super) fn members<'a>(
    line: &'a str,
    names: [Option<&str>; 4],
) -> Result<[Option<Scalar<'a>>; 4], String> {
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
