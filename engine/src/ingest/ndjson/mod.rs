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
//!
//! The common line (no escapes, no nested values) is parsed by a fast path
//! ([`fast`]) from a structural index built with SIMD, 64 bytes at a time:
//! it makes these checks on the fly, skips the members the job does not
//! read without looking at their bytes one by one, and hands every other
//! line whole to the general scanner ([`general`]), which also words the
//! error.

mod fast;
mod general;

use self::fast::{Line, Wanted};
use self::general::members;
use super::text::check_line;
use super::{with_cache, KeyCache, ParseBuffer};
use crate::dictionary::Dictionary;
use crate::error::Result;
use crate::simd::Level;

/// The member names an NDJSON parser looks for (checked when the parser is
/// built).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Names {
    pub key: String,
    pub value: Option<String>,
    pub time: Option<String>,
    pub filter: Option<(String, String)>,
}

impl Names {
    /// `[key, value, time, filter]`, the order of the scanners' slots.
    fn slots(&self) -> [Option<&str>; 4] {
        [
            Some(self.key.as_str()),
            self.value.as_deref(),
            self.time.as_deref(),
            self.filter.as_ref().map(|(name, _)| name.as_str()),
        ]
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
    rows_at(
        crate::simd::level(),
        bytes,
        fields,
        max_line_bytes,
        dict,
        out,
    )
}

/// [`rows`] with the fast path's SIMD level chosen (the tests run each).
fn rows_at(
    level: Level,
    bytes: &[u8],
    fields: &Names,
    max_line_bytes: usize,
    dict: &Dictionary,
    out: &mut ParseBuffer,
) -> Result<()> {
    let wanted = Wanted::new(fields.slots());
    with_cache(dict, |cache| {
        let mut rows = Rows {
            fields,
            dict,
            cache,
            out,
            max_line_bytes,
        };
        fast::scan(level, bytes, &wanted, max_line_bytes, |line| {
            let index = rows.out.lines;
            rows.out.lines += 1;
            match line {
                Line::Fast(values) => {
                    let record = rows.out.records as u32;
                    rows.out.records += 1;
                    rows.event(index, record, values)
                }
                Line::Slow(raw) => rows.general(index, raw),
            }
        })
    })
}

/// [`rows`]' state: where the events go.
struct Rows<'a> {
    fields: &'a Names,
    dict: &'a Dictionary,
    cache: &'a mut KeyCache,
    out: &'a mut ParseBuffer,
    max_line_bytes: usize,
}

impl Rows<'_> {
    /// A line the fast path did not take: the general scanner's verdict.
    fn general(&mut self, index: u64, raw: &[u8]) -> Result<()> {
        // Blank lines (JSON whitespace only) are not records.
        if raw.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            return Ok(());
        }
        let record = self.out.records as u32;
        self.out.records += 1;
        let Some(line) = check_line(raw, index, self.max_line_bytes, self.out) else {
            return Ok(());
        };
        match members(line, self.fields.slots()) {
            Ok(found) => self.event(
                index,
                record,
                [0, 1, 2, 3].map(|slot| found[slot].as_ref().map(|v| v.text().as_bytes())),
            ),
            Err(reason) => {
                self.out.bad(index, || reason);
                Ok(())
            }
        }
    }

    /// The event of a valid record whose wanted members have these values
    /// (`[key, value, time, filter]`, `None` when absent or `null`), unless
    /// the filter rejects it or it lacks what the job needs.
    #[inline]
    fn event(&mut self, index: u64, record: u32, values: [Option<&[u8]>; 4]) -> Result<()> {
        let [key, value, time, filtered] = values;
        let (out, fields) = (&mut *self.out, self.fields);
        if let Some((_, wanted)) = &fields.filter {
            if filtered != Some(wanted.as_bytes()) {
                return Ok(());
            }
        }
        let Some(key) = key.filter(|k| !k.is_empty()) else {
            out.bad(index, || format!("missing or empty key `{}`", fields.key));
            return Ok(());
        };
        // Both scanners hand over bytes of valid UTF-8 cut at ASCII bytes:
        // the check cannot fail.
        let key = if key.is_ascii() {
            // SAFETY: ASCII is valid UTF-8.
            unsafe { std::str::from_utf8_unchecked(key) }
        } else if let Ok(key) = std::str::from_utf8(key) {
            key
        } else {
            out.bad(index, || "invalid UTF-8".into());
            return Ok(());
        };
        let time = match (&fields.time, time) {
            (None, _) => Ok(None),
            (Some(n), None) => Err(format!("missing time `{n}`")),
            (Some(_), Some(t)) => fast::time(t).map(Some),
        };
        // The value is pushed last, once nothing else can reject the
        // record: the value column must stay aligned with the keys.
        let time = time.and_then(|t| {
            match (&fields.value, value) {
                (None, _) => Ok(()),
                (Some(n), None) => Err(format!("missing value `{n}`")),
                (Some(_), Some(v)) => super::push_value(&mut out.values, v),
            }
            .map(|()| t)
        });
        let time = match time {
            Ok(time) => time,
            Err(reason) => {
                out.bad(index, || reason);
                return Ok(());
            }
        };
        if let Some(t) = time {
            out.times.push(t);
        }
        let id = self.cache.id(key, self.dict)?;
        out.keys.push(id);
        out.record_of.push(record);
        Ok(())
    }
}

#[cfg(test)]
mod fast_tests;
#[cfg(test)]
mod tests;
