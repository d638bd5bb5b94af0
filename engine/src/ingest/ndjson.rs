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
#[derive(Debug, PartialEq)]
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
        return Ok(found);
    }
    loop {
        sc.skip_ws();
        if sc.peek() != Some(b'"') {
            return Err(sc.error("member name expected"));
        }
        let name = sc.string()?;
        sc.expect(b':')?;
        sc.skip_ws();
        match names.iter().position(|n| *n == Some(&*name)) {
            Some(slot) => found[slot] = sc.scalar()?,
            None => sc.skip_value()?,
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
    let whole = std::str::from_utf8(bytes).ok();
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
            let [key, val, time, filtered] = match members(line, names) {
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
