//! The CSV fast path: the commas, newlines and quotes of 64 bytes at a
//! time as bitmasks ([`Simd`]), one step per delimiter, and rows without
//! anything unusual turned into events without leaving the loop: fields
//! located by their delimiters, numbers read a word at a time
//! ([`parse_i64_in`]), keys interned by the per-thread cache.
//!
//! Anything else (quotes, a wrong number of fields, a line too long, an
//! empty key, a number the word-at-a-time reader cannot tell) stops the
//! loop at that line, which the caller hands to the scalar parser (so
//! that errors read as they always did), and the loop resumes after it.

use super::super::number::{parse_f64, parse_i64, parse_i64_in};
use super::super::{time_in_range, KeyCache, ParseBuffer};
use super::Columns;
use crate::batch::Column;
use crate::dictionary::Dictionary;
use crate::error::Result;
use crate::simd::{Level, Simd};

/// Field delimiters kept per row: rows with more fields stop the loop.
const MAX_FIELDS: usize = 62;
/// `ends` has `MAX_FIELDS + 2` entries, a power of two.
const MASK: usize = MAX_FIELDS + 1;

/// What the fast path reads from each row, from the parser's [`Columns`].
#[derive(Debug)]
pub(super) struct Plan<'a> {
    key: usize,
    value: Option<usize>,
    time: Option<usize>,
    filter: Option<(usize, &'a [u8])>,
    width: usize,
    max_line_bytes: usize,
}

impl<'a> Plan<'a> {
    /// The plan of `columns`, or `None` if its rows are too wide for the
    /// fast path.
    pub(super) fn new(columns: &'a Columns, max_line_bytes: usize) -> Option<Self> {
        (columns.width <= MAX_FIELDS).then(|| Plan {
            key: columns.key,
            value: columns.value,
            time: columns.time,
            filter: columns.filter.as_ref().map(|(c, v)| (*c, v.as_bytes())),
            width: columns.width,
            max_line_bytes,
        })
    }
}

/// Where the fast path stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// At the end of the input.
    Done,
    /// At the line `start..end` (without its newline, which is at `end`
    /// unless that is the end of the input), not yet counted: the scalar
    /// parser takes it, and the fast path resumes at `end + 1`.
    Line { start: usize, end: usize },
}

/// Parses the lines of `text` from `from` (a line start) until one needs
/// the scalar parser, at `level`.
pub(super) fn run(
    level: Level,
    text: &str,
    from: usize,
    plan: &Plan<'_>,
    cache: &mut KeyCache,
    dict: &Dictionary,
    out: &mut ParseBuffer,
) -> Result<Stop> {
    crate::simd_dispatch!(level, lines(
        text: &str,
        from: usize,
        plan: &Plan<'_>,
        cache: &mut KeyCache,
        dict: &Dictionary,
        out: &mut ParseBuffer,
    ) -> Result<Stop>)
}

/// The commas, newlines and quotes of the 64 bytes at `at` (bytes past the
/// end count as none of them).
#[inline(always)]
#[allow(clippy::inline_always)] // Inlined into each level's loop.
fn classify<S: Simd>(bytes: &[u8], at: usize) -> (u64, u64, u64) {
    let mut padded = [0_u8; 64];
    let block: &[u8; 64] = if let Some(full) = bytes.get(at..at + 64) {
        full.try_into().expect("64 bytes")
    } else {
        padded[..bytes.len() - at].copy_from_slice(&bytes[at..]);
        &padded
    };
    // SAFETY: `run` dispatches only to levels this CPU supports.
    unsafe {
        let block = S::load(block);
        (S::eq(block, b','), S::eq(block, b'\n'), S::eq(block, b'"'))
    }
}

/// A parsed value, before it is pushed.
#[derive(Clone, Copy)]
enum Value {
    None,
    I64(i64),
    F64(f64),
}

/// The kernel of [`run`].
#[inline(always)]
#[allow(clippy::inline_always)] // Inlined into each level's wrapper.
fn lines<S: Simd>(
    text: &str,
    from: usize,
    plan: &Plan<'_>,
    cache: &mut KeyCache,
    dict: &Dictionary,
    out: &mut ParseBuffer,
) -> Result<Stop> {
    let bytes = text.as_bytes();
    let len = bytes.len();
    // `ends[k]`: the delimiter after field k − 1 (`ends[0]` is the one
    // before the row), so field k is `ends[k] + 1..ends[k + 1]`.
    let mut ends = [0_usize; MAX_FIELDS + 2];
    let mut commas_seen = 0;
    let mut row_start = from;
    ends[0] = from.wrapping_sub(1);
    // Whether the open row has a quote in the blocks before this one.
    let mut carried_quote = false;
    let mut base = from;
    while base < len {
        let (commas, newlines, quotes) = classify::<S>(bytes, base);
        // Room for an event per line end (and the last line) without a
        // reallocation inside the loop.
        let most = newlines.count_ones() as usize + 1;
        out.keys.reserve(most);
        out.record_of.reserve(most);
        if plan.time.is_some() {
            out.times.reserve(most);
        }
        match &mut out.values {
            Some(Column::I64(values)) => values.reserve(most),
            Some(Column::F64(values)) => values.reserve(most),
            None => {}
        }
        // The bits of this block that belong to the open row.
        let mut open = u64::MAX;
        let mut delimiters = commas | newlines;
        while delimiters != 0 {
            let bit = delimiters & delimiters.wrapping_neg();
            delimiters ^= bit;
            let at = base + bit.trailing_zeros() as usize;
            if newlines & bit == 0 {
                commas_seen = (commas_seen + 1).min(MAX_FIELDS);
                ends[commas_seen & MASK] = at;
                continue;
            }
            let before = bit - 1;
            if carried_quote || quotes & open & before != 0 {
                return Ok(Stop::Line {
                    start: row_start,
                    end: at,
                });
            }
            if !row(
                bytes,
                text,
                row_start,
                at,
                commas_seen,
                &mut ends,
                plan,
                cache,
                dict,
                out,
            )? {
                return Ok(Stop::Line {
                    start: row_start,
                    end: at,
                });
            }
            open = !(before | bit);
            row_start = at + 1;
            commas_seen = 0;
            ends[0] = at;
        }
        carried_quote |= quotes & open != 0;
        base += 64;
    }
    if row_start < len
        && (carried_quote
            || !row(
                bytes,
                text,
                row_start,
                len,
                commas_seen,
                &mut ends,
                plan,
                cache,
                dict,
                out,
            )?)
    {
        return Ok(Stop::Line {
            start: row_start,
            end: len,
        });
    }
    Ok(Stop::Done)
}

/// The unquoted line `start..end` (its newline at `end`, or the input's
/// end) with `commas` commas at `ends[1..=commas]`: counted, and its event
/// pushed unless it is filtered out. `false`, with nothing counted, if the
/// scalar parser must take it.
#[inline(always)]
#[allow(clippy::inline_always, clippy::too_many_arguments)] // The kernel's loop body.
fn row(
    bytes: &[u8],
    text: &str,
    start: usize,
    end: usize,
    commas: usize,
    ends: &mut [usize; MAX_FIELDS + 2],
    plan: &Plan<'_>,
    cache: &mut KeyCache,
    dict: &Dictionary,
    out: &mut ParseBuffer,
) -> Result<bool> {
    // `lines` strips one carriage return before the newline.
    let end = if end > start && bytes[end - 1] == b'\r' {
        end - 1
    } else {
        end
    };
    if end == start {
        // A blank line: not a record.
        out.lines += 1;
        return Ok(true);
    }
    if commas + 1 != plan.width || end - start > plan.max_line_bytes {
        return Ok(false);
    }
    ends[(commas + 1) & MASK] = end;
    // Columns are below `plan.width ≤ MAX_FIELDS`: the masks change no index
    // and spare the bounds checks.
    let field = |c: usize| (ends[c & MASK].wrapping_add(1), ends[(c + 1) & MASK]);
    if let Some((c, wanted)) = plan.filter {
        let (s, e) = field(c);
        if bytes[s..e] != *wanted {
            out.lines += 1;
            out.records += 1;
            return Ok(true);
        }
    }
    let (key_start, key_end) = field(plan.key);
    if key_start == key_end {
        return Ok(false);
    }
    let time = match plan.time {
        Some(c) => {
            let (s, e) = field(c);
            match parse_i64_in(bytes, s, e).or_else(|| parse_i64(&bytes[s..e])) {
                Some(t) if time_in_range(t) => Some(t),
                _ => return Ok(false),
            }
        }
        None => None,
    };
    let value = match (plan.value, &out.values) {
        (Some(c), Some(Column::I64(_))) => {
            let (s, e) = field(c);
            match parse_i64_in(bytes, s, e).or_else(|| parse_i64(&bytes[s..e])) {
                Some(v) => Value::I64(v),
                None => return Ok(false),
            }
        }
        (Some(c), Some(Column::F64(_))) => {
            let (s, e) = field(c);
            match parse_i64_in(bytes, s, e) {
                // As `parse_f64`: exact below 2^53.
                Some(v) if v.unsigned_abs() < 1 << 53 => Value::F64(v as f64),
                _ => match parse_f64(&bytes[s..e]) {
                    Some(v) => Value::F64(v),
                    None => return Ok(false),
                },
            }
        }
        _ => Value::None,
    };
    let id = cache.id_in(text, key_start, key_end, dict)?;
    match (value, &mut out.values) {
        (Value::I64(v), Some(Column::I64(values))) => values.push(v),
        (Value::F64(v), Some(Column::F64(values))) => values.push(v),
        _ => {}
    }
    if let Some(t) = time {
        out.times.push(t);
    }
    out.keys.push(id);
    out.record_of.push(out.records as u32);
    out.lines += 1;
    out.records += 1;
    Ok(true)
}
