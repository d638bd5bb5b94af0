//! The fast path: plain lines parsed from bitmaps of their structure,
//! simdjson style.
//!
//! **Stage 1** classifies the chunk 64 bytes at a time with [`Simd`] into
//! one bitmap per block of its *entries* (quotes, backslashes and control
//! characters, the newline included), one window of [`WINDOW`] bytes at a
//! time so that bitmaps and bytes stay in the cache for stage 2. It also
//! notes whether the window has a non-ASCII byte.
//!
//! **Stage 2** ([`super::walk`]) takes each line that ends in the window: a
//! line shaped like the previous one by comparing the bytes between its
//! values with the previous line's ([`Template`]), any other plain line by
//! walking its members ([`walk`]). A string is valid as it stands (no entry
//! between its quotes) once its bytes are valid UTF-8: checked per window,
//! only when the window has a non-ASCII byte. The filter is applied here, so
//! that filtered lines cost a count.
//!
//! Anything else (an escape, a tab, a nested value, an empty object, a
//! wanted member given twice, a malformed line, the chunk's last eight
//! bytes) goes whole to the general scanner ([`super::general`]): the fast
//! path accepts only lines the general scanner accepts, with the same
//! values, and the general scanner words every error.

use crate::simd::{Level, Simd};

use super::walk::{pattern, walk, Bytes, Members, Spans, Template, Wanted, NONE};
use crate::ingest::{parse_time, time_in_range};

/// Bytes classified per step of stage 1: small enough that the index and
/// the bytes stay in the cache for stage 2.
pub(super) const WINDOW: usize = 8 << 10;

/// How [`scan`] hands over a line.
pub(super) enum Line<'a> {
    /// A plain line, valid, that passes the filter: the values of the
    /// wanted members (`None`: absent or `null`), as raw bytes (strings have
    /// no escapes).
    Fast([Option<&'a [u8]>; 4]),
    /// This many plain lines, valid, whose filter member is absent or has
    /// other text: records, but no events.
    Filtered(u32),
    /// Any other line, without its `\n` or `\r\n`, for the general scanner.
    Slow(&'a [u8]),
}

/// Stage 1 on `bytes[from..to]` (`from` a multiple of 64): appends to
/// `masks` one bitmap of entries per 64 bytes, and says whether any byte is
/// not ASCII.
#[inline(always)]
#[allow(clippy::inline_always)] // Inlined into each level's wrapper.
fn classify<S: Simd>(bytes: &[u8], from: usize, to: usize, masks: &mut Vec<u64>) -> bool {
    let mut high = 0;
    let mut block = |block: &[u8; 64]| {
        // SAFETY: `scan` dispatches to this level only when the CPU has it.
        let (entries, not_ascii) = unsafe {
            let v = S::load(block);
            (
                S::eq(v, b'"') | S::eq(v, b'\\') | S::below(v, 0x20),
                S::high(v),
            )
        };
        high |= not_ascii;
        // Through `black_box`: LLVM otherwise turns the union of the
        // `movemask`s into a vector of 64 booleans, which it then stores
        // one bit at a time on AVX2.
        std::hint::black_box(entries)
    };
    let blocks = bytes[from..to].chunks_exact(64);
    let tail = blocks.remainder();
    // One reservation: the blocks' count is known.
    masks.extend(blocks.map(|whole| block(whole.try_into().expect("64 bytes"))));
    if !tail.is_empty() {
        let mut padded = [b' '; 64];
        padded[..tail.len()].copy_from_slice(tail);
        masks.push(block(&padded));
    }
    high != 0
}

/// A line as stage 2 leaves it for [`scan`]: a plain line that passes the
/// filter, or one for the general scanner, after `filtered` plain lines
/// that the filter rejected.
#[derive(Debug, Clone, Copy)]
struct Found {
    filtered: u32,
    /// The line: from its first byte to its newline.
    start: u32,
    newline: u32,
    /// When the line is plain, the spans of its wanted values.
    values: Spans,
    plain: bool,
}

/// What the stages keep from one window to the next.
struct State {
    /// One bitmap of entries per 64 bytes of the chunk, up to the
    /// classified bytes, and one more (zero) block.
    masks: Vec<u64>,
    /// The first line not yet parsed.
    start: usize,
    /// Whether the bytes from `start` on may hold non-ASCII bytes.
    high: bool,
    /// The shape of the last line [`walk`] took, when all its values are
    /// strings; the members of the line it took last.
    template: Option<Template>,
    members: Members,
    /// The lines parsed in the current window.
    found: Vec<Found>,
    /// Plain lines the filter rejected since the last in `found`.
    filtered: u32,
    max_line_bytes: usize,
}

/// Stages 1 and 2 on `bytes[from..to]` (`from` a multiple of 64): the
/// entries of the window, then every line that ends in it, into
/// `state.found`.
#[inline(always)]
#[allow(clippy::inline_always)] // Inlined into each level's wrapper.
fn window<S: Simd>(bytes: &[u8], from: usize, to: usize, state: &mut State, wanted: &Wanted<'_>) {
    // Drop the padding block.
    state.masks.truncate(from / 64);
    let high = classify::<S>(bytes, from, to, &mut state.masks);
    state.masks.push(0);
    state.high |= high;
    let Some(last_newline) = memchr::memrchr(b'\n', &bytes[from..to]).map(|i| from + i) else {
        return;
    };
    let mut start = state.start;
    // Lines `start..=last_newline` are parsed now: the fast path takes
    // them only when they are valid UTF-8, checked (with SIMD) only when
    // they may not be ASCII.
    let valid = !state.high || simdutf8::basic::from_utf8(&bytes[start..=last_newline]).is_ok();
    state.high = high;
    // The fast path walks the lines that end at least eight bytes before
    // the chunk's end, up to `fast_end` (the chunk's last line or two take
    // the general scanner).
    let padded = Bytes::new(bytes);
    let fast_end = padded.and_then(|padded| {
        if last_newline <= padded.limit {
            Some(last_newline)
        } else {
            let end = (padded.limit + 1).max(start);
            memchr::memrchr(b'\n', &bytes[start..end]).map(|i| start + i)
        }
    });
    let masks = &state.masks[..];
    while start <= last_newline {
        let plain = padded
            .filter(|_| fast_end.is_some_and(|end| start <= end))
            .and_then(|padded| {
                let shaped = state
                    .template
                    .as_ref()
                    .and_then(|t| t.walk(padded, masks, start));
                shaped.or_else(|| {
                    let plain = walk(padded, masks, start, wanted, &mut state.members)?;
                    state.template = Template::new(bytes, start, plain.newline, &state.members);
                    Some(plain)
                })
            })
            .filter(|plain| {
                plain.end - start <= state.max_line_bytes
                // Some line is not UTF-8: which one?
                && (valid || simdutf8::basic::from_utf8(&bytes[start..plain.end]).is_ok())
            });
        if let Some(plain) = plain {
            start = plain.newline + 1;
            let padded = padded.expect("a plain line");
            if !wanted.passes(padded, plain.values[3]) {
                state.filtered += 1;
                continue;
            }
            state.found.push(Found {
                filtered: std::mem::take(&mut state.filtered),
                start: 0,
                newline: 0,
                values: plain.values,
                plain: true,
            });
        } else {
            let newline = memchr::memchr(b'\n', &bytes[start..=last_newline])
                .map_or(last_newline, |i| start + i);
            state.found.push(Found {
                filtered: std::mem::take(&mut state.filtered),
                start: start as u32,
                newline: newline as u32,
                values: [NONE; 4],
                plain: false,
            });
            start = newline + 1;
        }
    }
    state.start = start;
}

/// Parses the lines of `bytes` (as [`lines`](crate::ingest::lines) cuts
/// them), handing each to `each`: a plain line as its wanted values, any
/// other as itself.
pub(super) fn scan<'a, E>(
    level: Level,
    bytes: &'a [u8],
    wanted: &Wanted,
    max_line_bytes: usize,
    mut each: impl FnMut(Line<'a>) -> Result<(), E>,
) -> Result<(), E> {
    if bytes.len() >= (u32::MAX as usize) - WINDOW {
        // Positions are `u32`s; the engine's pieces are far shorter.
        return crate::ingest::lines(bytes).try_for_each(|line| each(Line::Slow(line)));
    }
    let mut state = State {
        masks: Vec::with_capacity(bytes.len().div_ceil(64) + 1),
        start: 0,
        high: false,
        template: None,
        members: Vec::new(),
        found: Vec::new(),
        filtered: 0,
        max_line_bytes,
    };
    let mut classified = 0;
    while classified < bytes.len() {
        let to = (classified + WINDOW).min(bytes.len());
        state.found.clear();
        let state_now = &mut state;
        crate::simd_dispatch!(level, window(bytes: &[u8], classified: usize, to: usize, state_now: &mut State, wanted: &Wanted<'_>) -> ());
        classified = to;
        for found in &state.found {
            if found.filtered > 0 {
                each(Line::Filtered(found.filtered))?;
            }
            if found.plain {
                each(Line::Fast(
                    found.values.map(|(s, e)| bytes.get(s as usize..e as usize)),
                ))?;
            } else {
                let line = &bytes[found.start as usize..found.newline as usize];
                each(Line::Slow(line.strip_suffix(b"\r").unwrap_or(line)))?;
            }
        }
    }
    if state.filtered > 0 {
        each(Line::Filtered(state.filtered))?;
    }
    if state.start < bytes.len() {
        // A last line without a newline.
        let line = &bytes[state.start..];
        each(Line::Slow(line.strip_suffix(b"\r").unwrap_or(line)))?;
    }
    Ok(())
}

/// `b` as eight ASCII digits, the first in the low byte, if it is.
#[inline]
fn eight_digits(w: u64) -> Option<u64> {
    const HIGH_NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    // A byte is a digit iff it is 0x3X and adding 6 keeps it 0x3X (no
    // carry leaves a byte that passed the first test).
    if w & HIGH_NIBBLES != ZEROS || w.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES != ZEROS {
        return None;
    }
    let w = w & 0x0F0F_0F0F_0F0F_0F0F;
    let w = (w * 10 + (w >> 8)) & 0x00FF_00FF_00FF_00FF;
    let w = (w * 100 + (w >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((w * 10_000 + (w >> 32)) & 0xFFFF_FFFF)
}

/// [`parse_time`] of a timestamp's text, with two integer loads for the
/// usual 8 to 16 plain digits (epoch milliseconds have 13).
#[inline]
pub(super) fn time(text: &[u8]) -> Result<i64, String> {
    let len = text.len();
    if (8..=16).contains(&len) {
        let load8 = |at: usize| u64::from_le_bytes(text[at..at + 8].try_into().expect("8 bytes"));
        let last = eight_digits(load8(len - 8));
        let first = if len > 8 {
            // The first `len - 8` digits, moved up: zero bytes below them
            // count as leading zeros.
            let zeros = pattern(b"00000000")
                .checked_shr(8 * (len as u32 - 8))
                .unwrap_or(0);
            eight_digits(load8(0) << (8 * (16 - len)) | zeros)
        } else {
            Some(0)
        };
        if let (Some(first), Some(last)) = (first, last) {
            let t = (first * 100_000_000 + last) as i64;
            if time_in_range(t) {
                return Ok(t);
            }
        }
    }
    parse_time(text)
}

/// Stage 1 alone on `bytes` at `level`: the entries and whether a byte is
/// not ASCII.
#[cfg(test)]
pub(super) fn classify_for_tests(level: Level, bytes: &[u8]) -> (Vec<u32>, bool) {
    let mut masks = Vec::new();
    let (all, from, masks_now) = (bytes.len(), 0, &mut masks);
    let high = crate::simd_dispatch!(level, classify(bytes: &[u8], from: usize, all: usize, masks_now: &mut Vec<u64>) -> bool);
    let entries = (0..bytes.len() as u32)
        .filter(|&i| masks[i as usize / 64] >> (i % 64) & 1 == 1)
        .collect();
    (entries, high)
}
