//! Stage 2 of the fast path ([`super::fast`]): one line, from the bitmaps of
//! its entries (quotes, backslashes, control characters).
//!
//! [`walk`] takes any plain line: after each closing quote, the bytes up to
//! the next entry are compared as one integer (`":"` or `": "` after a
//! name; `","`, `", "` or `"}\n` after a string value), which says where
//! the next entry is, and the next entry after an opening quote is the
//! closing one (a quote, or else the line is not plain). Names are found
//! with a filter on their length and a small hash table.
//!
//! [`Template::walk`] takes a line shaped like the last one [`walk`] took:
//! same members, same order, same spacing, all values strings. Everything
//! but the values is then the same bytes, compared as integers: a member
//! costs one search of the bitmap (its value's closing quote) and a compare
//! of the bytes from there to the next value's opening quote.

use super::general::{ends_token, is_scalar_token};

/// The span of a value in the chunk (positions fit `u32`: `scan` refuses
/// longer chunks), [`NONE`] for an absent or `null` one.
pub(super) type Span = (u32, u32);

/// The span of an absent or `null` value.
pub(super) const NONE: Span = (u32::MAX, 0);

/// The spans of the wanted values of a line, `[key, value, time, filter]`.
pub(super) type Spans = [Span; 4];

/// `start..end` as a [`Span`].
#[inline(always)]
#[allow(clippy::inline_always)] // Once per member in the innermost loop.
fn span(start: usize, end: usize) -> Span {
    (start as u32, end as u32)
}

/// A plain line's wanted values and where it ends.
pub(super) struct Plain {
    pub values: Spans,
    /// Its `\r\n` or `\n`.
    pub end: usize,
    pub newline: usize,
}

/// The wanted member names, `[key, value, time, filter]`, ready for
/// comparing with integer loads: a filter on the length, then a small hash
/// table keyed by the first eight bytes.
#[derive(Debug)]
pub(super) struct Wanted<'a> {
    /// Bit `len % 64` set for the length of every wanted name.
    lengths: u64,
    /// Open addressing, linear probing; at most four names: never full.
    buckets: [Bucket<'a>; BUCKETS],
    /// The text the filter member must have, and its [`Bytes::head`].
    filter: Option<(&'a [u8], [u64; 2])>,
}

const BUCKETS: usize = 16;

#[derive(Debug, Default, Clone, Copy)]
struct Bucket<'a> {
    /// [`Bytes::head`] of the name, its length and text; the slots naming
    /// it, as bits (none: an empty bucket).
    head: [u64; 2],
    len: usize,
    text: &'a [u8],
    slots: u8,
}

/// The bucket a name's probe starts at.
#[inline(always)]
#[allow(clippy::inline_always)] // Once per member in the innermost loop.
fn bucket(first: u64, len: usize) -> usize {
    ((first ^ len as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % BUCKETS
}

impl<'a> Wanted<'a> {
    /// The names of the slots, and the text the filter member must have
    /// when there is a filter (slot 3).
    pub(super) fn new(names: [Option<&'a str>; 4], filter: Option<&'a str>) -> Self {
        let head = |text: &[u8]| {
            let mut padded = text.to_vec();
            padded.resize(text.len() + 8, 0);
            Bytes::new(&padded).map_or([0, 0], |b| b.head(0, text.len()))
        };
        let mut wanted = Self {
            lengths: 0,
            buckets: [Bucket::default(); BUCKETS],
            filter: filter.map(|text| (text.as_bytes(), head(text.as_bytes()))),
        };
        for (slot, name) in names.iter().enumerate() {
            let Some(text) = name.map(str::as_bytes) else {
                continue;
            };
            wanted.lengths |= 1 << (text.len() % 64);
            let head = head(text);
            let mut i = bucket(head[0], text.len());
            while wanted.buckets[i].slots != 0 && wanted.buckets[i].text != text {
                i = (i + 1) % BUCKETS;
            }
            let bucket = &mut wanted.buckets[i];
            *bucket = Bucket {
                head,
                len: text.len(),
                text,
                slots: bucket.slots | 1 << slot,
            };
        }
        wanted
    }

    /// The slots (bits) naming `bytes[start..end]`.
    #[inline(always)]
    #[allow(clippy::inline_always)] // Once per member in the innermost loop.
    fn slots_of(&self, bytes: Bytes, start: usize, end: usize) -> u8 {
        let len = end - start;
        if (self.lengths >> (len % 64)) & 1 == 0 {
            return 0;
        }
        let first = bytes.first(start, len);
        let mut i = bucket(first, len);
        loop {
            let bucket = &self.buckets[i];
            if bucket.slots == 0 {
                return 0;
            }
            if bucket.len == len
                && bucket.head[0] == first
                && (len <= 8 || bytes.load8(end - 8) == bucket.head[1])
                && (len <= 16 || bytes.get(start, end) == bucket.text)
            {
                return bucket.slots;
            }
            i = (i + 1) % BUCKETS;
        }
    }

    /// Whether a line whose filter member has this value becomes an event.
    #[inline(always)]
    #[allow(clippy::inline_always)] // Once per line.
    pub(super) fn passes(&self, bytes: Bytes, value: Span) -> bool {
        let Some((text, head)) = self.filter else {
            return true;
        };
        if value == NONE {
            return false;
        }
        let (start, end) = (value.0 as usize, value.1 as usize);
        end - start == text.len()
            && bytes.head(start, end) == head
            && (text.len() <= 16 || bytes.get(start, end) == text)
    }
}

/// The bytes of a chunk, for loads of eight bytes: the lines the fast path
/// walks end at least eight bytes before the chunk's end, so that every
/// load of their bytes is whole.
#[derive(Clone, Copy)]
pub(super) struct Bytes<'a> {
    pub bytes: &'a [u8],
    /// `bytes.len() - 8`: the last newline the fast path walks to.
    pub limit: usize,
}

impl<'a> Bytes<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Option<Self> {
        let limit = bytes.len().checked_sub(8)?;
        Some(Self { bytes, limit })
    }

    /// Eight bytes from `at` as a little-endian integer; zero past the end
    /// (never for the positions of a walked line).
    #[inline(always)]
    #[allow(clippy::inline_always)] // A load in the innermost loop.
    pub(super) fn load8(self, at: usize) -> u64 {
        if at <= self.limit {
            u64::from_le_bytes(self.bytes[at..at + 8].try_into().expect("8 bytes"))
        } else {
            0
        }
    }

    /// The `len` bytes from `at` as an integer, zero-padded to eight.
    #[inline(always)]
    #[allow(clippy::inline_always)] // Once per member in the innermost loop.
    fn first(self, at: usize, len: usize) -> u64 {
        let word = self.load8(at);
        if len >= 8 {
            word
        } else {
            word & ((1 << (8 * len)) - 1)
        }
    }

    /// `bytes[start..end]` as two integers: the first eight bytes
    /// (zero-padded when shorter) and, when longer, the last eight.
    #[inline(always)]
    #[allow(clippy::inline_always)] // Once per line.
    fn head(self, start: usize, end: usize) -> [u64; 2] {
        let len = end - start;
        let first = self.first(start, len);
        [first, if len > 8 { self.load8(end - 8) } else { 0 }]
    }

    fn get(self, start: usize, end: usize) -> &'a [u8] {
        &self.bytes[start..end]
    }
}

/// `text` as little-endian integer, for comparing with [`Bytes::load8`]'s.
pub(super) const fn pattern(text: &[u8]) -> u64 {
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

/// The position of the first entry after `p`: `masks` holds one bitmap per
/// 64 bytes, up to a block past the line's newline (an entry after `p`).
#[inline(always)]
#[allow(clippy::inline_always)] // Once or twice per member in the innermost loop.
pub(super) fn next_entry(masks: &[u64], p: usize) -> usize {
    let q = p + 1;
    let block = q / 64;
    let shift = q % 64;
    // The 64 positions from `q` on, across two blocks: strings are
    // usually shorter, so the branch is well predicted.
    if let Some(&[low, high]) = masks.get(block..block + 2) {
        let window = (low >> shift) | ((high << 1) << (63 - shift));
        if window != 0 {
            return q + window.trailing_zeros() as usize;
        }
    }
    far_entry(masks, q)
}

/// [`next_entry`] more than 64 bytes on: the first entry from `q` on, or
/// a position past the end.
#[cold]
#[inline(never)]
fn far_entry(masks: &[u64], q: usize) -> usize {
    let mut block = q / 64;
    let mut mask = masks.get(block).map_or(0, |&m| m & (u64::MAX << (q % 64)));
    while mask == 0 {
        block += 1;
        let Some(&next) = masks.get(block) else {
            return usize::MAX / 2;
        };
        mask = next;
    }
    block * 64 + mask.trailing_zeros() as usize
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

/// A member's value: its span (`None` for `null`) and what follows it.
/// `None`: the line is not plain.
type Value = Option<(Option<(usize, usize)>, After)>;

/// JSON whitespace the fast path allows: spaces only (a tab or `\r` is an
/// entry; such lines take the general scanner).
fn skip_spaces(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i) == Some(&b' ') {
        i += 1;
    }
    i
}

/// What follows a value ending before `from`: spaces, then `,` and the next
/// name's quote, or `}` and the end of the line. `None`: anything else.
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
                _ => None,
            }
        }
        _ => None,
    }
}

/// A string value whose opening quote is at `open`: its contents and what
/// follows it.
#[inline(always)]
#[allow(clippy::inline_always)] // Once per member in the innermost loop.
fn string_value(bytes: Bytes, masks: &[u64], open: usize) -> Value {
    let close = next_entry(masks, open);
    let w = bytes.load8(close);
    let after = if w & MASK3 == COMMA {
        After::Next(close + 2)
    } else if w & MASK4 == COMMA_SPACE {
        After::Next(close + 3)
    } else if w & MASK3 == END {
        After::End(close + 2, false)
    } else if w & 0xFF == u64::from(b'"') {
        after(bytes.bytes, close + 1)?
    } else {
        // A backslash or control character inside the string.
        return None;
    };
    Some((Some((open + 1, close)), after))
}

/// The value of a member whose name closes at `name_end` when it is not a
/// string right after `":"` or `": "`: other spacing, or a bare token.
/// `None`: a nested value, or anything not plain.
#[inline(never)]
fn other_value(padded: Bytes, masks: &[u64], name_end: usize) -> Value {
    let bytes = padded.bytes;
    if bytes[name_end] != b'"' {
        return None;
    }
    let i = skip_spaces(bytes, name_end + 1);
    if bytes.get(i) != Some(&b':') {
        return None;
    }
    let start = skip_spaces(bytes, i + 1);
    match bytes.get(start)? {
        b'"' => string_value(padded, masks, start),
        b'{' | b'[' => None,
        _ => {
            let mut end = start;
            while bytes.get(end).is_some_and(|&b| !ends_token(b)) {
                end += 1;
            }
            // A valid token holds no entry (no quote, no control).
            let token = &bytes[start..end];
            if !is_scalar_token(token) {
                return None;
            }
            let after = after(bytes, end)?;
            Some(((token != b"null").then_some((start, end)), after))
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
        for (slot, v) in values.iter_mut().enumerate() {
            if slots & (1 << slot) != 0 {
                *v = value.map_or(NONE, |(start, end)| span(start, end));
            }
        }
    }
    Some(())
}

/// The members of the line [`walk`] took last, for a [`Template`]: each
/// value's quotes (`None` for a bare token) and its slots.
pub(super) type Members = Vec<(Option<(usize, usize)>, u8)>;

/// Stage 2 on the line starting at `start`, whose newline is classified:
/// its wanted values and where it ends, and its members in `members`.
/// `None`: the line is not plain.
#[inline(always)]
#[allow(clippy::inline_always)] // Inlined into each level's wrapper.
pub(super) fn walk(
    bytes: Bytes,
    masks: &[u64],
    start: usize,
    wanted: &Wanted,
    members: &mut Members,
) -> Option<Plain> {
    members.clear();
    let mut values = [NONE; 4];
    let mut seen = 0_u8;
    // The opening quote of the current member's name.
    let mut name = if bytes.load8(start) & MASK2 == OPEN {
        start + 1
    } else {
        let raw = bytes.bytes;
        let i = skip_spaces(raw, start);
        if raw.get(i) != Some(&b'{') {
            return None;
        }
        let i = skip_spaces(raw, i + 1);
        if raw.get(i) != Some(&b'"') {
            return None;
        }
        i
    };
    loop {
        // The name's closing quote (or whatever entry comes first).
        let name_end = next_entry(masks, name);
        let w = bytes.load8(name_end);
        let (value, after) = if w & MASK3 == COLON {
            string_value(bytes, masks, name_end + 2)?
        } else if w & MASK4 == COLON_SPACE {
            string_value(bytes, masks, name_end + 3)?
        } else {
            other_value(bytes, masks, name_end)?
        };
        let slots = wanted.slots_of(bytes, name + 1, name_end);
        note(&mut values, &mut seen, slots, value)?;
        // A string's span ends at its closing quote, a token's before a
        // byte that ends a token.
        let quotes = value.filter(|&(_, end)| bytes.bytes.get(end) == Some(&b'"'));
        members.push((quotes.map(|(start, end)| (start - 1, end)), slots));
        match after {
            After::Next(next) => name = next,
            After::End(end, cr) => {
                return Some(Plain {
                    values,
                    end,
                    newline: end + usize::from(cr),
                })
            }
        }
    }
}

/// The shape of a line [`walk`] took, all of whose values are strings:
/// the bytes from the line's start to its first value's opening quote, from
/// each value's closing quote to the next one's opening quote, and from the
/// last one's to the newline; as integers.
#[derive(Debug, Default)]
pub(super) struct Template {
    segments: Vec<Segment>,
    /// The middle words of the segments longer than 24 bytes.
    words: Vec<u64>,
    /// Slots whose member is another slot's: `(from, to)`.
    aliases: Vec<(usize, usize)>,
    cr: bool,
}

/// Some bytes of a [`Template`], and the slots of the value after them (none
/// after the last).
#[derive(Debug, Clone, Copy)]
struct Segment {
    len: usize,
    /// The first eight bytes (zero-padded when shorter), the next eight
    /// and the last eight.
    first: u64,
    second: u64,
    last: u64,
    /// When longer than 24 bytes: its words from the 17th byte on, but the
    /// last, in [`Template::words`].
    middle: (usize, usize),
    /// The first slot of the value after it, or [`NO_SLOT`].
    slot: usize,
}

/// The slot of a value no slot wants: one past the four, ignored.
const NO_SLOT: usize = 7;

impl Template {
    /// The template of the line `start..=newline` that [`walk`] took with
    /// these `members`; `None` when a value is not a string.
    pub(super) fn new(
        bytes: &[u8],
        start: usize,
        newline: usize,
        members: &Members,
    ) -> Option<Self> {
        let mut template = Self {
            cr: bytes[newline - 1] == b'\r',
            ..Self::default()
        };
        let mut from = start;
        for &(quotes, slots) in members {
            let (open, close) = quotes?;
            let first = if slots == 0 {
                NO_SLOT
            } else {
                slots.trailing_zeros() as usize
            };
            template.push(&bytes[from..=open], first);
            for slot in first + 1..4 {
                if slots & (1 << slot) != 0 {
                    template.aliases.push((first, slot));
                }
            }
            from = close;
        }
        template.push(&bytes[from..=newline], NO_SLOT);
        Some(template)
    }

    fn push(&mut self, segment: &[u8], slot: usize) {
        let word = |at: usize| {
            let mut padded = [0; 8];
            let part = &segment[at..segment.len().min(at + 8)];
            padded[..part.len()].copy_from_slice(part);
            u64::from_le_bytes(padded)
        };
        let len = segment.len();
        let from = self.words.len();
        if len > 24 {
            self.words.extend((16..len - 8).step_by(8).map(word));
        }
        self.segments.push(Segment {
            len,
            first: word(0),
            second: if len > 16 { word(8) } else { 0 },
            last: word(len.saturating_sub(8)),
            middle: (from, self.words.len()),
            slot,
        });
    }

    /// Whether `bytes[at..at + segment.len]` is `segment`.
    #[inline(always)]
    #[allow(clippy::inline_always)] // Once per member in the innermost loop.
    fn matches(&self, bytes: Bytes, at: usize, segment: &Segment) -> bool {
        let len = segment.len;
        if len <= 8 {
            return bytes.first(at, len) == segment.first;
        }
        bytes.load8(at) == segment.first
            && bytes.load8(at + len - 8) == segment.last
            && (len <= 16 || bytes.load8(at + 8) == segment.second)
            && (len <= 24 || self.middle_matches(bytes, at, segment))
    }

    #[inline(never)]
    fn middle_matches(&self, bytes: Bytes, at: usize, segment: &Segment) -> bool {
        let (from, to) = segment.middle;
        self.words[from..to]
            .iter()
            .enumerate()
            .all(|(i, &word)| bytes.load8(at + 16 + 8 * i) == word)
    }

    /// The line starting at `start` when it has this shape (its newline
    /// classified): its wanted values and where it ends.
    #[inline(always)]
    #[allow(clippy::inline_always)] // Inlined into each level's wrapper.
    pub(super) fn walk(&self, bytes: Bytes, masks: &[u64], start: usize) -> Option<Plain> {
        let (first, rest) = self.segments.split_first()?;
        if !self.matches(bytes, start, first) {
            return None;
        }
        let mut values = [NONE; NO_SLOT + 1];
        debug_assert!((NO_SLOT + 1).is_power_of_two());
        // The opening quote of the next value, and its slot.
        let mut open = start + first.len - 1;
        let mut slot = first.slot;
        for segment in rest {
            // A backslash or control character in the value is the entry
            // found here; the segment starts with a quote.
            let close = next_entry(masks, open);
            if !self.matches(bytes, close, segment) {
                return None;
            }
            values[slot & NO_SLOT] = span(open + 1, close);
            slot = segment.slot;
            open = close + segment.len - 1;
        }
        for &(from, to) in &self.aliases {
            values[to] = values[from];
        }
        // `open` is the newline now.
        Some(Plain {
            values: [values[0], values[1], values[2], values[3]],
            end: open - usize::from(self.cr),
            newline: open,
        })
    }
}
