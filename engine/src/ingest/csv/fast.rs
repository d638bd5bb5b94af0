//! The CSV fast path: a line's commas, newline and quotes found at once in
//! bitmasks of the 64 bytes where it starts (shifted out of the masks of two
//! blocks classified with [`Simd`]; longer lines 64 bytes at a time), and
//! lines without anything unusual turned into events
//! without leaving the loop: fields located by their commas, numbers read
//! a word at a time ([`parse_i64_in`]), keys interned by the per-thread
//! cache.
//!
//! Anything else (quotes, a wrong number of fields, a line too long, an
//! empty key, a number the word-at-a-time reader cannot tell) stops the
//! loop at that line, which the caller hands to the scalar parser (so
//! that errors read as they always did), and the loop resumes after it.

use super::super::intern::Staged;
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
    macro_rules! dispatch {
        ($values:ty) => {
            crate::simd_dispatch!(level, lines::<$values>(
                text: &str,
                from: usize,
                plan: &Plan<'_>,
                cache: &mut KeyCache,
                dict: &Dictionary,
                out: &mut ParseBuffer,
            ) -> Result<Stop>)
        };
    }
    match (&out.values, plan.value) {
        (Some(Column::I64(_)), Some(_)) => dispatch!(I64Values),
        (Some(Column::F64(_)), Some(_)) => dispatch!(F64Values),
        _ => dispatch!(NoValues),
    }
}

/// How a kernel reads and keeps the value column: compiled once per value
/// type, so that rows do not branch on it.
trait Values {
    /// A value.
    type Item: Copy;
    /// Whether there is a value column.
    const PRESENT: bool;
    /// The column, taken from the buffer.
    fn take(values: &mut Option<Column>) -> Vec<Self::Item>;
    /// Puts the column back.
    fn put(values: &mut Option<Column>, column: Vec<Self::Item>);
    /// The field `bytes[start..end]` as a value, as the scalar parser reads
    /// it, or `None` if it is not one.
    fn parse(bytes: &[u8], start: usize, end: usize) -> Option<Self::Item>;
}

/// No value column.
struct NoValues;

impl Values for NoValues {
    type Item = ();
    const PRESENT: bool = false;
    fn take(_: &mut Option<Column>) -> Vec<()> {
        Vec::new()
    }
    fn put(_: &mut Option<Column>, _: Vec<()>) {}
    #[inline(always)]
    #[allow(clippy::inline_always)] // The kernel's loop body.
    fn parse(_: &[u8], _: usize, _: usize) -> Option<()> {
        Some(())
    }
}

/// Integer values.
struct I64Values;

impl Values for I64Values {
    type Item = i64;
    const PRESENT: bool = true;
    fn take(values: &mut Option<Column>) -> Vec<i64> {
        match values {
            Some(Column::I64(column)) => std::mem::take(column),
            _ => Vec::new(),
        }
    }
    fn put(values: &mut Option<Column>, column: Vec<i64>) {
        *values = Some(Column::I64(column));
    }
    #[inline(always)]
    #[allow(clippy::inline_always)] // The kernel's loop body.
    fn parse(bytes: &[u8], start: usize, end: usize) -> Option<i64> {
        match parse_i64_in(bytes, start, end) {
            Some(v) => Some(v),
            None => slow_i64(&bytes[start..end]),
        }
    }
}

/// Float values.
struct F64Values;

impl Values for F64Values {
    type Item = f64;
    const PRESENT: bool = true;
    fn take(values: &mut Option<Column>) -> Vec<f64> {
        match values {
            Some(Column::F64(column)) => std::mem::take(column),
            _ => Vec::new(),
        }
    }
    fn put(values: &mut Option<Column>, column: Vec<f64>) {
        *values = Some(Column::F64(column));
    }
    #[inline(always)]
    #[allow(clippy::inline_always)] // The kernel's loop body.
    fn parse(bytes: &[u8], start: usize, end: usize) -> Option<f64> {
        match parse_i64_in(bytes, start, end) {
            // Within ±2^53: exact, as `parse_f64` has it.
            Some(v) => Some(v as f64),
            None => slow_f64(&bytes[start..end]),
        }
    }
}

/// The columns a kernel fills, taken out of the [`ParseBuffer`] while it
/// runs (as locals, their lengths stay in registers).
struct Events<V: Values> {
    keys: Vec<u32>,
    times: Vec<i64>,
    values: Vec<V::Item>,
    records: Vec<u32>,
}

impl<V: Values> Events<V> {
    fn take(out: &mut ParseBuffer) -> Self {
        Events {
            keys: std::mem::take(&mut out.keys),
            times: std::mem::take(&mut out.times),
            values: V::take(&mut out.values),
            records: std::mem::take(&mut out.record_of),
        }
    }

    fn put(self, out: &mut ParseBuffer) {
        out.keys = self.keys;
        out.times = self.times;
        V::put(&mut out.values, self.values);
        out.record_of = self.records;
    }
}

/// The commas, newlines and quotes of the 64 bytes at `at` (bytes past the
/// end count as none of them).
#[inline(always)]
#[allow(clippy::inline_always)] // Inlined into each level's loop.
fn classify<S: Simd>(bytes: &[u8], at: usize) -> (u64, u64, u64) {
    match bytes.get(at..at + 64) {
        Some(block) => classify_block::<S>(block.try_into().expect("64 bytes")),
        None => classify_tail::<S>(bytes.get(at..).unwrap_or_default()),
    }
}

/// [`classify`] of the last bytes of the input, fewer than 64.
#[cold]
#[inline(never)]
fn classify_tail<S: Simd>(tail: &[u8]) -> (u64, u64, u64) {
    let mut padded = [0_u8; 64];
    padded[..tail.len()].copy_from_slice(tail);
    classify_block::<S>(&padded)
}

/// [`classify`] of 64 bytes.
#[inline(always)]
#[allow(clippy::inline_always)] // Inlined into each level's loop.
fn classify_block<S: Simd>(block: &[u8; 64]) -> (u64, u64, u64) {
    // SAFETY: `run` dispatches only to levels this CPU supports.
    unsafe {
        let block = S::load(block);
        (S::eq(block, b','), S::eq(block, b'\n'), S::eq(block, b'"'))
    }
}

/// A line's structure: where it ends and where its commas are.
struct Line {
    /// The newline after it, or the end of the input.
    newline: usize,
    /// Its commas, at `ends[1..=commas]` (saturating at [`MAX_FIELDS`]).
    commas: usize,
    /// Whether it has a quote.
    quoted: bool,
}

/// The commas, newlines and quotes of the 128 bytes from `base`, as two
/// blocks classified once each: every line starting in the first block has
/// the masks of its first 64 bytes here, and the lines of a block cost a
/// shift each, not a classification.
struct Blocks {
    base: usize,
    commas: u128,
    newlines: u128,
    quotes: u128,
}

impl Blocks {
    /// The blocks at `base` and `base + 64`.
    #[inline(always)]
    #[allow(clippy::inline_always)] // The kernel's loop body.
    fn at<S: Simd>(bytes: &[u8], base: usize) -> Self {
        let (c0, n0, q0) = classify::<S>(bytes, base);
        let (c1, n1, q1) = classify::<S>(bytes, base + 64);
        let join = |low: u64, high: u64| u128::from(low) | (u128::from(high) << 64);
        Blocks {
            base,
            commas: join(c0, c1),
            newlines: join(n0, n1),
            quotes: join(q0, q1),
        }
    }

    /// Moves on by a block, classifying the next one.
    #[inline(always)]
    #[allow(clippy::inline_always)] // The kernel's loop body.
    fn advance<S: Simd>(&mut self, bytes: &[u8]) {
        self.base += 64;
        let (c, n, q) = classify::<S>(bytes, self.base + 64);
        self.commas = (self.commas >> 64) | (u128::from(c) << 64);
        self.newlines = (self.newlines >> 64) | (u128::from(n) << 64);
        self.quotes = (self.quotes >> 64) | (u128::from(q) << 64);
    }

    /// The masks of the 64 bytes at `start`, in `base..base + 64`.
    #[inline(always)]
    #[allow(clippy::inline_always)] // The kernel's loop body.
    fn window(&self, start: usize) -> (u64, u64, u64) {
        // Below 64 (the mask spares the compiler's checks).
        let shift = (start - self.base) & 63;
        (
            (self.commas >> shift) as u64,
            (self.newlines >> shift) as u64,
            (self.quotes >> shift) as u64,
        )
    }
}

/// The structure of the line at `start` from the masks of the 64 bytes
/// there (`blocks`, moved on to `start`): nearly every line of a narrow CSV
/// ends within them.
#[inline(always)]
#[allow(clippy::inline_always)] // The kernel's loop body.
fn line<S: Simd>(
    bytes: &[u8],
    start: usize,
    blocks: &mut Blocks,
    ends: &mut [usize; MAX_FIELDS + 2],
) -> Line {
    while start >= blocks.base + 64 {
        blocks.advance::<S>(bytes);
    }
    let (commas, newlines, quotes) = blocks.window(start);
    if newlines == 0 {
        let line = long_line::<S>(bytes, start, commas, quotes, ends);
        // The next line starts far ahead: the blocks start there.
        *blocks = Blocks::at::<S>(bytes, line.newline + 1);
        return line;
    }
    let within = newlines.trailing_zeros();
    let before = !(u64::MAX << within);
    let mut commas = commas & before;
    let mut count = 0;
    while commas != 0 {
        count = (count + 1).min(MAX_FIELDS);
        ends[count & MASK] = start + commas.trailing_zeros() as usize;
        commas &= commas - 1;
    }
    Line {
        newline: start + within as usize,
        commas: count,
        quoted: quotes & before != 0,
    }
}

/// [`line`] for a line longer than 64 bytes: its commas and quotes 64
/// bytes at a time until its newline.
#[inline(always)]
#[allow(clippy::inline_always)] // Part of `line`.
fn long_line<S: Simd>(
    bytes: &[u8],
    start: usize,
    mut commas: u64,
    mut quotes: u64,
    ends: &mut [usize; MAX_FIELDS + 2],
) -> Line {
    let mut count = 0;
    let mut any_quote = false;
    let mut base = start;
    loop {
        let (next_commas, newlines, next_quotes) = if base == start {
            (commas, 0, quotes)
        } else if base < bytes.len() {
            classify::<S>(bytes, base)
        } else {
            // The input's last line, without a newline.
            return Line {
                newline: bytes.len(),
                commas: count,
                quoted: any_quote,
            };
        };
        let before = if newlines == 0 {
            u64::MAX
        } else {
            !(u64::MAX << newlines.trailing_zeros())
        };
        commas = next_commas & before;
        quotes = next_quotes & before;
        any_quote |= quotes != 0;
        while commas != 0 {
            count = (count + 1).min(MAX_FIELDS);
            ends[count & MASK] = base + commas.trailing_zeros() as usize;
            commas &= commas - 1;
        }
        if newlines != 0 {
            return Line {
                newline: base + newlines.trailing_zeros() as usize,
                commas: count,
                quoted: any_quote,
            };
        }
        base += 64;
    }
}

/// A time [`parse_i64_in`] could not tell, as `parse_time` reads it.
#[cold]
#[inline(never)]
fn slow_time(field: &[u8]) -> Option<i64> {
    parse_i64(field).filter(|&t| time_in_range(t))
}

/// A value [`parse_i64_in`] could not tell.
#[cold]
#[inline(never)]
fn slow_i64(field: &[u8]) -> Option<i64> {
    parse_i64(field)
}

/// A float value [`parse_i64_in`] could not tell.
#[cold]
#[inline(never)]
fn slow_f64(field: &[u8]) -> Option<f64> {
    parse_f64(field)
}

/// The line and record counts of the chunk so far.
struct Counts {
    lines: u64,
    records: u64,
}

/// The kernel of [`run`].
#[inline(always)]
#[allow(clippy::inline_always)] // Inlined into each level's wrapper.
fn lines<S: Simd, V: Values>(
    text: &str,
    from: usize,
    plan: &Plan<'_>,
    cache: &mut KeyCache,
    dict: &Dictionary,
    out: &mut ParseBuffer,
) -> Result<Stop> {
    let mut events = Events::<V>::take(out);
    let mut counts = Counts {
        lines: out.lines,
        records: out.records,
    };
    let stop = walk::<S, V>(text, from, plan, cache, dict, &mut events, &mut counts);
    events.put(out);
    out.lines = counts.lines;
    out.records = counts.records;
    stop
}

/// Keys whose lookups are in flight at once: enough to overlap their
/// cache misses.
const IN_FLIGHT: usize = 8;

/// Key lookups started ([`KeyCache::stage`]: hashed, slot prefetched) and
/// resolved [`IN_FLIGHT`] rows later, in order.
struct Lookups {
    ring: [Staged; 2 * IN_FLIGHT],
    staged: usize,
    resolved: usize,
}

impl Lookups {
    /// Stages the key `bytes[start..end]`; resolves the oldest one if
    /// [`IN_FLIGHT`] are pending.
    #[inline(always)]
    #[allow(clippy::inline_always)] // The kernel's loop body.
    fn push(
        &mut self,
        text: &str,
        (start, end): (usize, usize),
        cache: &mut KeyCache,
        dict: &Dictionary,
        keys: &mut Vec<u32>,
    ) -> Result<()> {
        self.ring[self.staged % (2 * IN_FLIGHT)] = cache.stage(text.as_bytes(), start, end);
        self.staged += 1;
        if self.staged - self.resolved > IN_FLIGHT {
            let oldest = &self.ring[self.resolved % (2 * IN_FLIGHT)];
            keys.push(cache.resolve(text, oldest, dict)?);
            self.resolved += 1;
        }
        Ok(())
    }

    /// Resolves every pending lookup.
    fn drain(
        &mut self,
        text: &str,
        cache: &mut KeyCache,
        dict: &Dictionary,
        keys: &mut Vec<u32>,
    ) -> Result<()> {
        while self.resolved < self.staged {
            let oldest = &self.ring[self.resolved % (2 * IN_FLIGHT)];
            keys.push(cache.resolve(text, oldest, dict)?);
            self.resolved += 1;
        }
        Ok(())
    }
}

/// [`lines`] into `events` and `counts`.
#[inline(always)]
#[allow(clippy::inline_always)] // The kernel.
fn walk<S: Simd, V: Values>(
    text: &str,
    from: usize,
    plan: &Plan<'_>,
    cache: &mut KeyCache,
    dict: &Dictionary,
    events: &mut Events<V>,
    counts: &mut Counts,
) -> Result<Stop> {
    let bytes = text.as_bytes();
    // `ends[k]`: the delimiter after field k − 1 (`ends[0]` is the one
    // before the line), so field k is `ends[k] + 1..ends[k + 1]`.
    let mut ends = [0_usize; MAX_FIELDS + 2];
    let mut lookups = Lookups {
        ring: [Staged::default(); 2 * IN_FLIGHT],
        staged: 0,
        resolved: 0,
    };
    let mut start = from;
    let mut blocks = Blocks::at::<S>(bytes, from);
    let mut stop = Stop::Done;
    while start < bytes.len() {
        let line = line::<S>(bytes, start, &mut blocks, &mut ends);
        let fast = !line.quoted
            && row::<V>(
                text,
                start,
                &line,
                &mut ends,
                plan,
                cache,
                dict,
                &mut lookups,
                events,
                counts,
            )?;
        if !fast {
            stop = Stop::Line {
                start,
                end: line.newline,
            };
            break;
        }
        start = line.newline + 1;
    }
    lookups.drain(text, cache, dict, &mut events.keys)?;
    Ok(stop)
}

/// The unquoted line at `start` (`line` has its structure, `ends` its
/// commas): counted, and its event pushed unless it is filtered out.
/// `false`, with nothing counted, if the scalar parser must take it.
#[inline(always)]
#[allow(clippy::inline_always, clippy::too_many_arguments)] // The kernel's loop body.
fn row<V: Values>(
    text: &str,
    start: usize,
    line: &Line,
    ends: &mut [usize; MAX_FIELDS + 2],
    plan: &Plan<'_>,
    cache: &mut KeyCache,
    dict: &Dictionary,
    lookups: &mut Lookups,
    events: &mut Events<V>,
    counts: &mut Counts,
) -> Result<bool> {
    let bytes = text.as_bytes();
    // `lines` strips one carriage return before the newline.
    let newline = line.newline;
    let end = if newline > start && bytes[newline - 1] == b'\r' {
        newline - 1
    } else {
        newline
    };
    if end == start {
        // A blank line: not a record.
        counts.lines += 1;
        return Ok(true);
    }
    if line.commas + 1 != plan.width || end - start > plan.max_line_bytes {
        return Ok(false);
    }
    ends[0] = start.wrapping_sub(1);
    ends[(line.commas + 1) & MASK] = end;
    // Columns are below `plan.width ≤ MAX_FIELDS`: the masks change no index
    // and spare the bounds checks.
    let field = |c: usize| (ends[c & MASK].wrapping_add(1), ends[(c + 1) & MASK]);
    if let Some((c, wanted)) = plan.filter {
        let (s, e) = field(c);
        if bytes[s..e] != *wanted {
            counts.lines += 1;
            counts.records += 1;
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
            // Within ±2^53: a valid time.
            match parse_i64_in(bytes, s, e) {
                Some(t) => Some(t),
                None => match slow_time(&bytes[s..e]) {
                    Some(t) => Some(t),
                    None => return Ok(false),
                },
            }
        }
        None => None,
    };
    let value = if V::PRESENT {
        let (s, e) = field(plan.value.unwrap_or(0));
        match V::parse(bytes, s, e) {
            Some(v) => Some(v),
            None => return Ok(false),
        }
    } else {
        None
    };
    lookups.push(text, (key_start, key_end), cache, dict, &mut events.keys)?;
    if let Some(v) = value {
        events.values.push(v);
    }
    if let Some(t) = time {
        events.times.push(t);
    }
    events.records.push(counts.records as u32);
    counts.lines += 1;
    counts.records += 1;
    Ok(true)
}
