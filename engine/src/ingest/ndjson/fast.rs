//! The fast path: plain lines parsed from a structural index, simdjson
//! style.
//!
//! **Stage 1** classifies the chunk 64 bytes at a time with [`Simd`] and
//! writes the position of every *entry* (a quote, a backslash or a control
//! character, the newline included) into an index, one window of
//! [`WINDOW`] bytes at a time so that index and bytes stay in the cache for
//! stage 2. It also notes whether the window holds a non-ASCII byte.
//!
//! **Stage 2** walks the entries of each line that ends in the window. In a
//! *plain* line (strings without escapes, no control character but the
//! newline, no nested value, spaces only between tokens) every entry is a
//! quote, and what lies between a closing quote and the next entry is
//! compared as one integer: `":"` or `": "` after a name, `","`, `", "` or
//! `"}\n` after a string value. So a member of strings costs two loads of
//! the index and two compares, whatever the length of its strings, and
//! the entries of a line need no reading one by one. A string is valid as
//! it stands (no entry between its quotes), once its bytes are valid UTF-8:
//! checked per window, only when the window has a non-ASCII byte. Member
//! names are compared with one or two integer loads, after a filter on
//! their length, in a small hash table; bare tokens (numbers, literals)
//! take a scalar detour that checks them against JSON's grammar.
//!
//! Anything else (an escape, a tab, a nested value, an empty object, a
//! wanted member given twice, a malformed line) makes [`walk`] give up, and
//! the line goes whole to the general scanner ([`super::general`]): the
//! fast path accepts only lines the general scanner accepts, with the same
//! values, and the general scanner words every error.

use crate::simd::{Level, Simd};

use super::general::{ends_token, is_scalar_token};
use crate::ingest::{parse_time, time_in_range};

/// Bytes classified per step of stage 1: small enough that the index and
/// the bytes stay in the cache for stage 2.
pub(super) const WINDOW: usize = 8 << 10;

/// How [`scan`] hands over a line.
pub(super) enum Line<'a> {
    /// A plain line, valid: the values of the wanted members (`None`: absent
    /// or `null`), as raw bytes (strings have no escapes).
    Fast([Option<&'a [u8]>; 4]),
    /// Any other line, without its `\n` or `\r\n`, for the general scanner.
    Slow(&'a [u8]),
}

/// The wanted member names, `[key, value, time, filter]`, ready for
/// comparing with integer loads: a filter on the length, then one probe of
/// a small hash table without collisions.
#[derive(Debug)]
pub(super) struct Wanted<'a> {
    /// Bit `min(len, 63)` set for the length of every wanted name.
    lengths: u64,
    /// The multiplier of [`Wanted::bucket`], chosen so that distinct
    /// names land in distinct buckets.
    multiplier: u64,
    buckets: [Bucket<'a>; BUCKETS],
}

const BUCKETS: usize = 16;

// Odd 64-bit constants (digits of π, e, √2, …); four names or
// fewer almost always part with the first or second.
const MULTIPLIERS: [u64; 8] = [
    0x9E37_79B9_7F4A_7C15,
    0x243F_6A88_85A3_08D3,
    0xB7E1_5162_8AED_2A6B,
    0x6A09_E667_F3BC_C909,
    0xBB67_AE85_84CA_A73B,
    0x3C6E_F372_FE94_F82B,
    0xA54F_F53A_5F1D_36F1,
    0x510E_527F_ADE6_82D1,
];

#[derive(Debug, Default, Clone, Copy)]
struct Bucket<'a> {
    /// [`name_head`] of the name, its length and text; the slots naming
    /// it, as bits (none: an empty bucket).
    head: [u64; 2],
    len: usize,
    text: &'a [u8],
    slots: u8,
}

impl<'a> Wanted<'a> {
    pub(super) fn new(names: [Option<&'a str>; 4]) -> Self {
        let mut lengths = 0;
        for name in names.iter().flatten() {
            lengths |= 1 << name.len().min(63);
        }
        'multipliers: for multiplier in MULTIPLIERS {
            let mut wanted = Self {
                lengths,
                multiplier,
                buckets: [Bucket::default(); BUCKETS],
            };
            for (slot, name) in names.iter().enumerate() {
                let Some(text) = name.map(str::as_bytes) else {
                    continue;
                };
                let head = name_head(text, 0, text.len());
                let bucket = &mut wanted.buckets[wanted.bucket(head, text.len())];
                if bucket.slots == 0 {
                    *bucket = Bucket {
                        head,
                        len: text.len(),
                        text,
                        slots: 0,
                    };
                } else if bucket.text != text {
                    continue 'multipliers;
                }
                bucket.slots |= 1 << slot;
            }
            return wanted;
        }
        // Names that agree on their length and first and last eight bytes
        // collide whatever the multiplier: the general scanner takes every
        // line naming a member of a wanted length.
        Self {
            lengths,
            multiplier: 0,
            buckets: [Bucket::default(); BUCKETS],
        }
    }

    #[inline(always)]
    #[allow(clippy::inline_always)] // Once per member in the innermost loop.
    fn bucket(&self, head: [u64; 2], len: usize) -> usize {
        ((head[0] ^ head[1] ^ len as u64).wrapping_mul(self.multiplier) >> 60) as usize % BUCKETS
    }

    /// The slots (bits) naming `bytes[start..end]`, or `None` when the
    /// fast path cannot tell.
    #[inline(always)]
    #[allow(clippy::inline_always)] // Once per member in the innermost loop.
    fn slots_of(&self, bytes: &[u8], start: usize, end: usize) -> Option<u8> {
        let len = end - start;
        if (self.lengths >> len.min(63)) & 1 == 0 {
            return Some(0);
        }
        if self.multiplier == 0 {
            return None;
        }
        let head = name_head(bytes, start, end);
        let bucket = &self.buckets[self.bucket(head, len)];
        let hit = bucket.len == len
            && bucket.head == head
            && (len <= 16 || &bytes[start..end] == bucket.text);
        Some(if hit { bucket.slots } else { 0 })
    }
}

/// `bytes[start..end]` as two integers: the first eight bytes (zero-padded
/// when shorter) and, when longer, the last eight.
#[inline]
fn name_head(bytes: &[u8], start: usize, end: usize) -> [u64; 2] {
    let len = end - start;
    let first = load8(bytes, start);
    if len >= 8 {
        [first, if len > 8 { load8(bytes, end - 8) } else { 0 }]
    } else {
        [first & ((1 << (8 * len)) - 1), 0]
    }
}

/// Eight bytes from `at` as a little-endian integer, zero-padded past the
/// end of `bytes`.
#[inline(always)]
#[allow(clippy::inline_always)] // A load in the innermost loop.
fn load8(bytes: &[u8], at: usize) -> u64 {
    // One comparison: `at < len - 7` bounds both ends of the slice.
    if at < bytes.len().saturating_sub(7) {
        u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
    } else {
        load8_tail(bytes, at)
    }
}

#[cold]
#[inline(never)]
fn load8_tail(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    let tail = bytes.get(at..).unwrap_or_default();
    let n = tail.len().min(8);
    word[..n].copy_from_slice(&tail[..n]);
    u64::from_le_bytes(word)
}

/// `text` as little-endian integer, for comparing with [`load8`]'s.
const fn pattern(text: &[u8]) -> u64 {
    let mut word = 0;
    let mut i = 0;
    while i < text.len() {
        word |= (text[i] as u64) << (8 * i);
        i += 1;
    }
    word
}

const MASK2: u64 = 0xFFFF;
const MASK3: u64 = 0xFF_FFFF;
const MASK4: u64 = 0xFFFF_FFFF;
const OPEN: u64 = pattern(b"{\"");
const COLON: u64 = pattern(b"\":\"");
const COLON_SPACE: u64 = pattern(b"\": \"");
const COMMA: u64 = pattern(b"\",\"");
const COMMA_SPACE: u64 = pattern(b"\", \"");
const END: u64 = pattern(b"\"}\n");

/// Writes the positions of the set bits of `bits` (plus `base`) to the
/// front of `dst`, eight at a time without a branch per bit (the slots past
/// the count get junk); returns the count.
#[inline(always)]
#[allow(clippy::inline_always)] // Inlined into each level's classifier.
fn flatten(mut bits: u64, base: u32, dst: &mut [u32; 64]) -> usize {
    let count = bits.count_ones() as usize;
    let mut put = |slot: &mut u32| {
        *slot = base + bits.trailing_zeros();
        bits &= bits.wrapping_sub(1);
    };
    dst[..8].iter_mut().for_each(&mut put);
    if count > 8 {
        dst[8..16].iter_mut().for_each(&mut put);
        if count > 16 {
            dst[16..count].iter_mut().for_each(&mut put);
        }
    }
    count
}

/// Stage 1 on `bytes[from..to]` (`from` a multiple of 64): appends the
/// positions of its entries to `index[n..]` (which has room for
/// `to - from + 64` more), returns the new count and whether any byte is
/// not ASCII.
#[inline(always)]
#[allow(clippy::inline_always)] // Inlined into each level's wrapper.
fn classify<S: Simd>(
    bytes: &[u8],
    from: usize,
    to: usize,
    index: &mut [u32],
    mut n: usize,
) -> (usize, bool) {
    #[inline(always)]
    #[allow(clippy::inline_always)]
    fn block<S: Simd>(block: &[u8; 64], base: usize, index: &mut [u32], n: usize) -> (usize, u64) {
        // SAFETY: `scan` dispatches to this level only when the CPU has it.
        let (entries, not_ascii) = unsafe {
            let v = S::load(block);
            (
                S::eq(v, b'"') | S::eq(v, b'\\') | S::below(v, 0x20),
                S::high(v),
            )
        };
        let dst = (&mut index[n..n + 64]).try_into().expect("64 slots");
        (n + flatten(entries, base as u32, dst), not_ascii)
    }
    let mut high = 0;
    let blocks = bytes[from..to].chunks_exact(64);
    let tail = blocks.remainder();
    let mut at = from;
    for whole in blocks {
        let not_ascii;
        (n, not_ascii) = block::<S>(whole.try_into().expect("64 bytes"), at, index, n);
        high |= not_ascii;
        at += 64;
    }
    if !tail.is_empty() {
        let mut padded = [b' '; 64];
        padded[..tail.len()].copy_from_slice(tail);
        let not_ascii;
        (n, not_ascii) = block::<S>(&padded, at, index, n);
        high |= not_ascii;
    }
    (n, high != 0)
}

/// Where a member's value ends: at the next member's name (its opening
/// quote), or at the end of the line.
#[derive(Clone, Copy)]
enum After {
    /// The next name opens at this quote.
    Next(usize),
    /// The line ends: the position of its `\r\n` or `\n`, and whether
    /// there is a `\r`.
    End(usize, bool),
}

impl After {
    /// The entries this takes: the next name's quote, or the line end.
    fn entries(self) -> usize {
        match self {
            After::Next(_) | After::End(_, false) => 1,
            After::End(_, true) => 2,
        }
    }
}

/// A member's value: its span (`None` for `null`), what follows it, and
/// the number of entries from the name's closing quote to the next name's
/// opening quote or the line's end, both included. `None`: the line is not
/// plain.
type Value = Option<(Option<(usize, usize)>, After, usize)>;

/// JSON whitespace the fast path allows: spaces only (a tab or `\r` is an
/// entry; such lines take the general scanner).
#[inline]
fn skip_spaces(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i) == Some(&b' ') {
        i += 1;
    }
    i
}

/// What follows a value ending before `from`: spaces, then `,` and the next
/// name's quote, or `}` and the end of the line. `None`: anything else.
#[cold]
#[inline(never)]
fn after(bytes: &[u8], from: usize) -> Option<After> {
    let i = skip_spaces(bytes, from);
    match bytes.get(i)? {
        b',' => {
            let i = skip_spaces(bytes, i + 1);
            (bytes.get(i) == Some(&b'"')).then_some(After::Next(i))
        }
        b'}' => {
            let i = skip_spaces(bytes, i + 1);
            match bytes.get(i)? {
                b'\n' => Some(After::End(i, false)),
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => Some(After::End(i, true)),
                // A line at the end of the chunk has no newline: the
                // general scanner takes it.
                _ => None,
            }
        }
        _ => None,
    }
}

/// A string value whose closing quote is at `d`, the entry after its
/// opening quote `c`: see [`Value`].
#[inline(always)]
#[allow(clippy::inline_always)] // Once per member in the innermost loop.
fn string_value(bytes: &[u8], c: usize, d: usize) -> Value {
    let w = load8(bytes, d);
    let after = if w & MASK3 == COMMA {
        After::Next(d + 2)
    } else if w & MASK4 == COMMA_SPACE {
        After::Next(d + 3)
    } else if w & MASK3 == END {
        After::End(d + 2, false)
    } else if w & 0xFF == u64::from(b'"') {
        after(bytes, d + 1)?
    } else {
        // A backslash or control character inside the string.
        return None;
    };
    Some((Some((c + 1, d)), after, 3 + after.entries()))
}

/// The value of a member whose name closes at `b` (entry `j`) when it is
/// not a string right after `":"` or `": "`: other spacing, or a bare
/// token. `None`: a nested value, or anything not plain.
#[cold]
#[inline(never)]
fn other_value(bytes: &[u8], index: &[u32], j: usize, b: usize) -> Value {
    if bytes[b] != b'"' {
        return None;
    }
    let i = skip_spaces(bytes, b + 1);
    if bytes.get(i) != Some(&b':') {
        return None;
    }
    let start = skip_spaces(bytes, i + 1);
    match bytes.get(start)? {
        // Only spaces and the colon lie between the quotes: no entry.
        b'"' => string_value(bytes, start, index[j + 2] as usize),
        b'{' | b'[' => None,
        _ => {
            let mut end = start;
            while bytes.get(end).is_some_and(|&b| !ends_token(b)) {
                end += 1;
            }
            let token = &bytes[start..end];
            // A valid token holds no entry (no quote, no control).
            if !is_scalar_token(token) {
                return None;
            }
            let after = after(bytes, end)?;
            let value = (token != b"null").then_some((start, end));
            Some((value, after, 1 + after.entries()))
        }
    }
}

/// Records the value of a member named by `slots` (bits); `None` when a
/// wanted member comes twice (the general scanner says so).
#[inline(always)]
#[allow(clippy::inline_always)] // Once per member in the innermost loop.
fn note(values: &mut Spans, seen: &mut u8, slots: u8, value: Option<(usize, usize)>) -> Option<()> {
    if slots != 0 {
        if *seen & slots != 0 {
            return None;
        }
        *seen |= slots;
        if slots.is_power_of_two() {
            values[slots.trailing_zeros() as usize] = value;
        } else {
            for (slot, v) in values.iter_mut().enumerate() {
                if slots & (1 << slot) != 0 {
                    *v = value;
                }
            }
        }
    }
    Some(())
}

/// The spans of the wanted values of a line, `[key, value, time, filter]`
/// (`None`: absent or `null`).
type Spans = [Option<(usize, usize)>; 4];

/// A plain line's wanted values and where it ends.
struct Plain {
    values: Spans,
    /// Its `\r\n` or `\n`.
    end: usize,
    newline: usize,
}

impl Plain {
    fn new(values: Spans, end: usize, cr: bool) -> Self {
        Self {
            values,
            end,
            newline: end + usize::from(cr),
        }
    }
}

/// Stage 2 on the line starting at `start`, whose first entry is
/// `index[*cursor]` and whose newline is classified: the spans of the wanted
/// members' values, the line's end (its `\r\n` or `\n`) and its newline;
/// `*cursor` then is the entry after the newline. `None`: the line is not plain
/// (`*cursor` is then meaningless).
///
/// Between a name's closing quote and the next entry only `:` and spaces
/// may lie, and between a value's closing quote and the next entry only
/// `,` (or `}`) and spaces: the pattern compared at each closing quote
/// says where the next entry is, so that in a plain member of strings the
/// entries `entry..entry + 4` are the closing quote of its name, the quotes of its
/// value and the opening quote of the next name (or the newline).
#[inline(always)]
#[allow(clippy::inline_always)] // Inlined into each level's wrapper.
fn walk(
    bytes: &[u8],
    index: &[u32],
    cursor: &mut usize,
    start: usize,
    wanted: &Wanted,
) -> Option<Plain> {
    let mut values = [None; 4];
    let mut seen = 0_u8;
    // The opening quote of the current member's name.
    let mut name = if load8(bytes, start) & MASK2 == OPEN {
        start + 1
    } else {
        let i = skip_spaces(bytes, start);
        if bytes.get(i) != Some(&b'{') {
            return None;
        }
        let i = skip_spaces(bytes, i + 1);
        if bytes.get(i) != Some(&b'"') {
            return None;
        }
        i
    };
    // The first entry after `name`.
    let mut entry = *cursor + 1;
    loop {
        let &[name_end, _, value_end, _] = index.get(entry..)?.first_chunk::<4>()?;
        let (name_end, value_end) = (name_end as usize, value_end as usize);
        let w = load8(bytes, name_end);
        let value = if w & MASK3 == COLON {
            name_end + 3
        } else if w & MASK4 == COLON_SPACE {
            name_end + 4
        } else {
            // Other spacing, a bare token, or not plain.
            let (value, after, entries) = other_value(bytes, index, entry, name_end)?;
            let slots = wanted.slots_of(bytes, name + 1, name_end)?;
            note(&mut values, &mut seen, slots, value)?;
            entry += entries;
            match after {
                After::Next(next) => {
                    name = next;
                    continue;
                }
                After::End(end, cr) => {
                    *cursor = entry;
                    return Some(Plain::new(values, end, cr));
                }
            }
        };
        // A string: its closing quote is at `value_end`, unless the string
        // holds a backslash or control character (then that is not a quote).
        let slots = wanted.slots_of(bytes, name + 1, name_end)?;
        note(&mut values, &mut seen, slots, Some((value, value_end)))?;
        let w = load8(bytes, value_end);
        entry += 4;
        if w & MASK3 == COMMA {
            name = value_end + 2;
        } else if w & MASK4 == COMMA_SPACE {
            name = value_end + 3;
        } else if w & MASK3 == END {
            *cursor = entry;
            return Some(Plain::new(values, value_end + 2, false));
        } else if w & 0xFF == u64::from(b'"') {
            match after(bytes, value_end + 1)? {
                After::Next(next) => name = next,
                After::End(end, cr) => {
                    *cursor = entry + usize::from(cr);
                    return Some(Plain::new(values, end, cr));
                }
            }
        } else {
            return None;
        }
    }
}

/// A line as stage 2 leaves it for [`scan`].
#[derive(Debug, Clone, Copy)]
struct Found {
    /// The line: from its first byte to its newline.
    start: usize,
    newline: usize,
    /// When the line is plain, the spans of its wanted values.
    values: Option<Spans>,
}

/// What the stages keep from one window to the next.
struct State {
    /// The positions of the entries: `index[..n]` are classified, and
    /// `index[k..n]` not yet parsed.
    index: Vec<u32>,
    n: usize,
    /// The first line not yet parsed.
    start: usize,
    /// Whether the bytes from `start` on may hold non-ASCII bytes.
    high: bool,
    /// The lines parsed in the current window.
    found: Vec<Found>,
    max_line_bytes: usize,
}

/// Stages 1 and 2 on `bytes[from..to]` (`from` a multiple of 64): the
/// entries of the window, then every line that ends in it, into
/// `state.found`.
#[inline(always)]
#[allow(clippy::inline_always)] // Inlined into each level's wrapper.
fn window<S: Simd>(bytes: &[u8], from: usize, to: usize, state: &mut State, wanted: &Wanted<'_>) {
    let room = state.n + (to - from) + 128;
    if state.index.len() < room {
        state.index.resize(room, 0);
    }
    let high;
    (state.n, high) = classify::<S>(bytes, from, to, &mut state.index, state.n);
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
    let index = &state.index[..state.n + 64];
    let mut k = 0;
    while start <= last_newline {
        let first = k;
        let plain = walk(bytes, index, &mut k, start, wanted).filter(|plain| {
            plain.end - start <= state.max_line_bytes
                // Some line is not UTF-8: which one?
                && (valid || simdutf8::basic::from_utf8(&bytes[start..plain.end]).is_ok())
        });
        let found = if let Some(plain) = plain {
            Found {
                start,
                newline: plain.newline,
                values: Some(plain.values),
            }
        } else {
            let newline = memchr::memchr(b'\n', &bytes[start..=last_newline])
                .map_or(last_newline, |i| start + i);
            k = first;
            while k < state.n && index[k] as usize <= newline {
                k += 1;
            }
            Found {
                start,
                newline,
                values: None,
            }
        };
        state.found.push(found);
        start = found.newline + 1;
    }
    state.start = start;
    // Keep the entries of the line not yet whole.
    state.index.copy_within(k..state.n, 0);
    state.n -= k;
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
        index: Vec::new(),
        n: 0,
        start: 0,
        high: false,
        found: Vec::new(),
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
            if let Some(values) = found.values {
                each(Line::Fast(values.map(|v| v.map(|(s, e)| &bytes[s..e]))))?;
            } else {
                let line = &bytes[found.start..found.newline];
                each(Line::Slow(line.strip_suffix(b"\r").unwrap_or(line)))?;
            }
        }
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
        let last = eight_digits(load8(text, len - 8));
        let first = if len > 8 {
            // The first `len - 8` digits, moved up: zero bytes below them
            // count as leading zeros.
            let zeros = pattern(b"00000000")
                .checked_shr(8 * (len as u32 - 8))
                .unwrap_or(0);
            eight_digits(load8(text, 0) << (8 * (16 - len)) | zeros)
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
    let mut index = vec![0; bytes.len() + 128];
    let all = bytes.len();
    let from = 0;
    let n = 0;
    let slots = index.as_mut_slice();
    let (n, high) = crate::simd_dispatch!(level, classify(bytes: &[u8], from: usize, all: usize, slots: &mut [u32], n: usize) -> (usize, bool));
    index.truncate(n);
    (index, high)
}
