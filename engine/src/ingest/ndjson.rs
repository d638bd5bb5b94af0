//! NDJSON records: one JSON object per line; the key, value and time are
//! top-level members chosen by name. Other members are skipped without being
//! decoded.

use std::borrow::Cow;

use super::text::line_text;
use super::{lines, with_cache, Field, Fields, ParsedChunk};
use crate::dictionary::Dictionary;
use crate::error::Result;

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
        format!("invalid JSON at byte {}: {what}", self.i + 1)
    }

    /// A string starting at the current `"`; escapes are decoded only when
    /// there are some.
    fn string(&mut self) -> Result<Cow<'a, str>, String> {
        let bytes = self.s.as_bytes();
        let start = self.i + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            let Some(at) = memchr::memchr2(b'"', b'\\', &bytes[i..]) else {
                return Err(self.error("unterminated string"));
            };
            i += at;
            if bytes[i] == b'"' {
                break;
            }
            escaped = true;
            i += 2;
            if i > bytes.len() {
                return Err(self.error("unterminated string"));
            }
        }
        self.i = i + 1;
        let raw = &self.s[start..i];
        if !escaped {
            return Ok(Cow::Borrowed(raw));
        }
        unescape(raw)
            .map(Cow::Owned)
            .ok_or_else(|| self.error("bad escape"))
    }

    /// A number or literal token.
    fn token(&mut self) -> Result<&'a str, String> {
        let bytes = self.s.as_bytes();
        let start = self.i;
        while self.i < bytes.len()
            && !matches!(
                bytes[self.i],
                b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'
            )
        {
            self.i += 1;
        }
        if self.i == start {
            return Err(self.error("value expected"));
        }
        Ok(&self.s[start..self.i])
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

    /// Skips any value, nested ones included.
    fn skip_value(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'{' | b'[') => {
                let mut depth = 0_usize;
                loop {
                    match self.peek() {
                        Some(b'"') => {
                            self.string()?;
                            continue;
                        }
                        Some(b'{' | b'[') => depth += 1,
                        Some(b'}' | b']') => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Ok(());
                            }
                        }
                        Some(_) => {}
                        None => return Err(self.error("unterminated object or array")),
                    }
                    self.i += 1;
                }
            }
            _ => self.token().map(drop),
        }
    }
}

fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '/' => out.push('/'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16).ok()?;
                // Surrogate pairs decode to one character.
                let c = if (0xD800..0xDC00).contains(&code) {
                    let rest: String = chars.by_ref().take(6).collect();
                    let low = u32::from_str_radix(rest.strip_prefix("\\u")?, 16).ok()?;
                    char::from_u32(0x10000 + ((code - 0xD800) << 10) + (low.checked_sub(0xDC00)?))?
                } else {
                    char::from_u32(code)?
                };
                out.push(c);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The wanted members of one object line: `[key, value, time, filter]`.
fn members<'a>(line: &'a str, names: [Option<&str>; 4]) -> Result<[Option<Scalar<'a>>; 4], String> {
    let mut found: [Option<Scalar<'a>>; 4] = [None, None, None, None];
    let mut sc = Scanner { s: line, i: 0 };
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
        sc.skip_ws();
        if sc.peek() != Some(b'"') {
            return Err(sc.error("member name expected"));
        }
        let name = sc.string()?;
        sc.expect(b':')?;
        sc.skip_ws();
        if names.contains(&Some(&*name)) {
            let value = sc.scalar()?;
            for (slot, wanted) in names.iter().enumerate() {
                if *wanted == Some(&*name) {
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

/// The offset of the first `"` in `b`, 16 bytes at a time with SSE2 (part
/// of every x86-64 CPU), then 8 at a time (strings are short: a call of
/// `memchr` costs more than it saves).
#[inline]
fn find_quote(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const QUOTES: u64 = ONES * b'"' as u64;
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
        };
        while i + 16 <= b.len() {
            // SAFETY: SSE2 is part of the x86-64 baseline; bytes i..i + 16
            // lie inside `b`, and the unaligned load has no alignment
            // requirement.
            #[allow(clippy::cast_ptr_alignment)] // `loadu`: any alignment.
            let mask = unsafe {
                let v = _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>());
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)))
            };
            if mask != 0 {
                return Some(i + mask.trailing_zeros() as usize);
            }
            i += 16;
        }
    }
    while i + 8 <= b.len() {
        let word = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let x = word ^ QUOTES;
        // The lowest set bit marks the first zero byte of `x` exactly (the
        // borrows of the subtraction only reach bytes above it).
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(i + (zero.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..].iter().position(|&c| c == b'"').map(|p| i + p)
}

/// `a == b`, without a call of `memcmp` for the short member names of
/// typical records: two overlapping loads compare up to 16 bytes.
#[inline]
fn same_short(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let load8 =
        |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    if (8..=16).contains(&n) {
        load8(a, 0) == load8(b, 0) && load8(a, n - 8) == load8(b, n - 8)
    } else {
        a == b
    }
}

/// The fast path of [`members`] for the common line, one without escapes
/// (the caller checks there is no backslash) and without nested values:
/// the same members, found in one forward pass. `None` hands the line to
/// [`members`], which also words the error of a malformed line.
#[inline]
fn members_fast<'a>(line: &'a str, names: [Option<&str>; 4]) -> Option<[Option<Scalar<'a>>; 4]> {
    let b = line.as_bytes();
    let mut found: [Option<Scalar<'a>>; 4] = [None, None, None, None];
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
        let name_end = i + 1 + find_quote(&b[i + 1..])?;
        let name = &b[i + 1..name_end];
        i = skip_ws(b, name_end + 1);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        let value = match b.get(i)? {
            b'"' => {
                let end = i + 1 + find_quote(&b[i + 1..])?;
                // Quotes are ASCII: both ends are character boundaries.
                let text = &line[i + 1..end];
                i = end + 1;
                Some(Scalar::Str(Cow::Borrowed(text)))
            }
            b'{' | b'[' => return None,
            _ => {
                let start = i;
                while i < b.len()
                    && !matches!(b[i], b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n')
                {
                    i += 1;
                }
                if i == start {
                    return None;
                }
                let token = &line[start..i];
                (token != "null").then_some(Scalar::Token(token))
            }
        };
        for (slot, wanted) in names.iter().enumerate() {
            if let Some(wanted) = wanted {
                // Every slot naming the member gets it (a key may be the
                // filter field too).
                if same_short(wanted.as_bytes(), name) {
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
    fields: &Fields,
    max_line_bytes: usize,
    dict: &Dictionary,
    out: &mut ParsedChunk,
) -> Result<()> {
    let name = |field: &Field| match field {
        Field::Name(n) => n.clone(),
        Field::Column(_) => unreachable!("NDJSON fields are names"),
    };
    let key_name = name(&fields.key);
    let value = fields.value.as_ref().map(|(f, kind)| (name(f), *kind));
    let time_name = fields.time.as_ref().map(name);
    let filter = fields.filter.as_ref().map(|(f, v)| (name(f), v.as_str()));
    let whole = super::chunk_text(bytes);
    // Escapes are rare: without a backslash in the chunk no line has one.
    let chunk_has_escapes = memchr::memchr(b'\\', bytes).is_some();
    let names = [
        Some(key_name.as_str()),
        value.as_ref().map(|(n, _)| n.as_str()),
        time_name.as_deref(),
        filter.as_ref().map(|(n, _)| n.as_str()),
    ];
    with_cache(dict, |cache| {
        for (index, raw) in lines(bytes).enumerate() {
            let index = index as u64;
            out.lines += 1;
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let record = out.records as u32;
            out.records += 1;
            let Some(line) = line_text(whole, bytes, raw, index, max_line_bytes, out) else {
                continue;
            };
            let fast = if chunk_has_escapes && memchr::memchr(b'\\', line.as_bytes()).is_some() {
                None
            } else {
                members_fast(line, names)
            };
            let [key, val, time, filtered] = match fast.map_or_else(|| members(line, names), Ok) {
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
            let time = match (&time_name, time) {
                (None, _) => Ok(None),
                (Some(n), None) => Err(format!("missing time `{n}`")),
                (Some(_), Some(t)) => super::parse_time(t.text().as_bytes()).map(Some),
            };
            // The value is pushed last, once nothing else can reject the
            // record: the value column must stay aligned with the keys.
            let time = time.and_then(|t| {
                match (&value, val) {
                    (None, _) => Ok(()),
                    (Some((n, _)), None) => Err(format!("missing value `{n}`")),
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
    use super::super::{Extract, Format, Parser, ValueKind};
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
    /// whitespace, tokens, `null`, nested values, duplicate and unknown
    /// names, non-ASCII text, and now and then a broken piece.
    fn random_line(rng: &mut datasets::Rng) -> String {
        let names = ["k", "v", "t", "f", "other", "ké"];
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
            "\"",
            "",
            "\"unterminated",
            "1]",
            "]",
        ];
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
            // Broken values (the last five) are rare.
            let v = if rng.below(20) == 0 {
                pick(rng, values.len())
            } else {
                pick(rng, values.len() - 5)
            };
            line.push_str(values[v]);
            line.push_str(ws[pick(rng, 4)]);
        }
        line.push('}');
        if rng.below(30) == 0 {
            line.push_str(" x");
        }
        line
    }

    #[test]
    fn the_fast_path_agrees_with_the_general_scanner() {
        let names = [Some("k"), Some("v"), Some("t"), Some("f")];
        let mut rng = datasets::Rng::new(11);
        let mut fast_hits = 0;
        for _ in 0..50_000 {
            let line = random_line(&mut rng);
            if let Some(fast) = members_fast(&line, names) {
                fast_hits += 1;
                assert_eq!(members(&line, names).as_ref(), Ok(&fast), "{line}");
            }
        }
        assert!(fast_hits > 10_000, "the fast path is taken: {fast_hits}");
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
    fn quotes_are_found_at_every_offset() {
        for len in 0..40 {
            for at in 0..len {
                let mut b = vec![b'a'; len];
                b[at] = b'"';
                if at + 1 < len {
                    b[at + 1] = b'"';
                }
                assert_eq!(find_quote(&b), Some(at), "{len} {at}");
            }
            assert_eq!(find_quote(&vec![0xC3; len]), None);
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
}
