//! Word splitting 64 bytes at a time: a whitespace and a newline bitmask per
//! block (one shuffle and two compares on AVX2, see [`crate::simd`]), then
//! the word starts and ends of the block read off the masks with one bit
//! operation each, instead of a branch per byte that mispredicts at every
//! boundary.

use crate::simd::Simd;

/// ASCII whitespace as `split_ascii_whitespace` has it (space, \t, \n,
/// \x0C, \r), as [`Simd::in_nibble_set`] takes a set: entry `b & 15` is `b`
/// for each whitespace byte `b`; the others hold 0, which no byte with a
/// nonzero low nibble equals.
const WHITESPACE: [u8; 16] = [
    b' ', 0, 0, 0, 0, 0, 0, 0, 0, b'\t', b'\n', 0, 0x0C, b'\r', 0, 0,
];

/// Calls `word(start, end, line)` for every word of `bytes` (a maximal run
/// of non-whitespace bytes), in order, with its 0-based line. Returns the
/// number of lines (a final line without a newline counts).
#[inline(always)]
#[allow(clippy::inline_always)] // Inlined into each SIMD level's kernel.
pub(super) fn split_words<S: Simd, E>(
    bytes: &[u8],
    mut word: impl FnMut(usize, usize, u32) -> Result<(), E>,
) -> Result<u64, E> {
    let mut line = 0_u32;
    // The word left open (at the end of the previous block): its start
    // and line.
    let (mut open, mut open_start, mut open_line) = (false, 0_usize, 0_u32);
    // Whether the byte before the current block is whitespace.
    let mut previous_ws = 1_u64;
    let mut newlines = 0_u64;
    let mut blocks = bytes.chunks_exact(64);
    // The last block is padded with spaces, also when it is empty: every
    // word is closed inside the loop (one call site, so that `word` is
    // inlined).
    let mut padded = [b' '; 64];
    let tail = blocks.remainder();
    padded[..tail.len()].copy_from_slice(tail);
    let tail_newlines = (1_u64 << tail.len()) - 1;
    let mut base = 0;
    loop {
        let (block, last): (&[u8; 64], bool) = match blocks.next() {
            Some(full) => (full.try_into().expect("64 bytes"), false),
            None => (&padded, true),
        };
        // SAFETY: kernels generic over `S` are only run at a supported
        // level (`simd_dispatch!`).
        let (ws, nl) = unsafe {
            let v = S::load(block);
            (S::in_nibble_set(v, &WHITESPACE), S::eq(v, b'\n'))
        };
        // Bytes past the end are padding (spaces): no newline among them.
        let nl = if last { nl & tail_newlines } else { nl };
        let before_ws = (ws << 1) | previous_ws;
        let mut starts = !ws & before_ws;
        let mut ends = ws & !before_ws;
        // Starts and ends alternate: the block's first end closes the word
        // left open, if any; every other end closes the start before it.
        while ends != 0 {
            if !open {
                let s = starts.trailing_zeros();
                open_start = base + s as usize;
                open_line = line + (nl & ((1_u64 << s) - 1)).count_ones();
                starts &= starts - 1;
            }
            word(open_start, base + ends.trailing_zeros() as usize, open_line)?;
            open = false;
            ends &= ends - 1;
        }
        if starts != 0 {
            let s = starts.trailing_zeros();
            (open, open_start) = (true, base + s as usize);
            open_line = line + (nl & ((1_u64 << s) - 1)).count_ones();
        }
        let count = nl.count_ones();
        line += count;
        newlines += u64::from(count);
        previous_ws = ws >> 63;
        base += 64;
        if last {
            break;
        }
    }
    let unterminated = !bytes.is_empty() && bytes.last() != Some(&b'\n');
    Ok(newlines + u64::from(unterminated))
}

/// The length of the longest line of `bytes` (its `\r` included).
pub(super) fn longest_line(bytes: &[u8]) -> usize {
    let (mut longest, mut start) = (0, 0);
    for end in memchr::memchr_iter(b'\n', bytes) {
        longest = longest.max(end - start);
        start = end + 1;
    }
    longest.max(bytes.len() - start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Level;
    use proptest::prelude::*;

    /// The byte-at-a-time reference: the words, the lines and the longest.
    fn reference(bytes: &[u8]) -> (Vec<(usize, usize, u32)>, u64, usize) {
        let mut out = Vec::new();
        let (mut line, mut i) = (0, 0);
        while i < bytes.len() {
            if bytes[i].is_ascii_whitespace() {
                line += u32::from(bytes[i] == b'\n');
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            out.push((start, i, line));
        }
        let lengths: Vec<usize> = bytes.split(|&b| b == b'\n').map(<[u8]>::len).collect();
        let lines = lengths.len() as u64 - u64::from(bytes.is_empty() || bytes.ends_with(b"\n"));
        (out, lines, lengths.into_iter().max().unwrap_or(0))
    }

    #[inline(always)]
    #[allow(clippy::inline_always)]
    fn collect<S: Simd>(bytes: &[u8]) -> (Vec<(usize, usize, u32)>, u64) {
        let mut out = Vec::new();
        let stats = split_words::<S, ()>(bytes, |start, end, line| {
            out.push((start, end, line));
            Ok(())
        })
        .unwrap();
        (out, stats)
    }

    /// Checks every SIMD level this CPU has against the reference.
    fn check(bytes: &[u8]) {
        let (words, lines, longest) = reference(bytes);
        for level in Level::ALL.into_iter().filter(|l| l.is_supported()) {
            let (got, got_lines) = crate::simd_dispatch!(level, collect(bytes: &[u8]) -> (Vec<(usize, usize, u32)>, u64));
            assert_eq!(got, words, "{level:?}");
            assert_eq!(got_lines, lines, "{level:?}");
        }
        assert_eq!(longest_line(bytes), longest);
    }

    #[test]
    fn words_lines_and_block_edges() {
        check(b"ab  c\nd");
        check(
            &[
                b"x".repeat(63),
                b" ".to_vec(),
                b"y".repeat(70),
                b"\n\x0b".to_vec(),
            ]
            .concat(),
        );
        check(b"");
        check(&b"a".repeat(64));
        check(&b"a ".repeat(64));
        check(&[b"z".repeat(200), b"\n".to_vec()].concat());
        // More words than a batch, and a word open across the flush.
        check(&b"ab ".repeat(1000));
        check(&b"w\n".repeat(500));
    }

    proptest! {
        #[test]
        fn every_level_matches_the_byte_at_a_time_reference(bytes in proptest::collection::vec(
            prop_oneof![
                4 => b'a'..=b'z',
                2 => Just(b' '),
                1 => Just(b'\n'),
                1 => prop::sample::select(vec![b'\t', b'\r', 0x0C, 0x0B, 0x00, 0x1F, 0x21, 0x80, 0xFF, 0xA0, 0x2A, 0x3A, 0x1A]),
            ],
            0..700,
        )) {
            check(&bytes);
        }
    }
}
