//! Word splitting 64 bytes at a time: a whitespace bitmask per block (SWAR:
//! eight bytes per `u64` operation) and one step per word boundary, instead
//! of a branch per byte that mispredicts at every boundary.

/// ASCII whitespace as `split_ascii_whitespace` has it: space, \t, \n,
/// \x0C and \r.
#[cfg(any(test, not(target_arch = "x86_64")))]
const WHITESPACE: [u8; 5] = [b' ', b'\t', b'\n', 0x0C, b'\r'];

#[cfg(any(test, not(target_arch = "x86_64")))]
const LOW: u64 = 0x0101_0101_0101_0101;
#[cfg(any(test, not(target_arch = "x86_64")))]
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of every byte of `x` that equals `byte`, exactly (no
/// borrow between bytes, unlike the classic `haszero`).
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline]
fn eq_bytes(x: u64, byte: u8) -> u64 {
    let y = x ^ (LOW * u64::from(byte));
    // A byte's high bit ends up set iff it is nonzero; no carry crosses
    // bytes because 0x7F + 0x7F < 0x100.
    !(((y & !HIGH) + !HIGH) | y) & HIGH
}

/// Gathers the high bit of each byte into the low 8 bits (byte k → bit k).
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline]
fn gather(high_bits: u64) -> u64 {
    ((high_bits >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// Bit k of the results: byte k of `block` is whitespace, a newline. Bytes
/// past the block's end count as whitespace (not newlines).
#[inline]
fn masks(block: &[u8]) -> (u64, u64) {
    let mut padded = [b' '; 64];
    let bytes: &[u8; 64] = if let Ok(full) = block.try_into() {
        full
    } else {
        padded[..block.len()].copy_from_slice(block);
        &padded
    };
    block_masks(bytes)
}

/// The whitespace and newline masks of 64 bytes, 16 at a time with SSE2
/// (part of every x86-64 CPU).
#[cfg(target_arch = "x86_64")]
#[inline]
fn block_masks(bytes: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let (mut ws, mut nl) = (0, 0);
    for lane in 0..4 {
        // SAFETY: SSE2 is part of the x86-64 baseline, so these intrinsics
        // exist on every CPU this code runs on; bytes 16·lane..16·lane + 16
        // lie inside the 64-byte array, and the unaligned load has no
        // alignment requirement.
        #[allow(clippy::cast_ptr_alignment)] // `loadu`: any alignment.
        let (space, newline) = unsafe {
            let v = _mm_loadu_si128(bytes.as_ptr().add(16 * lane).cast::<__m128i>());
            let newline = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8));
            let space = _mm_or_si128(
                _mm_or_si128(newline, _mm_cmpeq_epi8(v, _mm_set1_epi8(b' ' as i8))),
                _mm_or_si128(
                    _mm_or_si128(
                        _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\t' as i8)),
                        _mm_cmpeq_epi8(v, _mm_set1_epi8(0x0C)),
                    ),
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\r' as i8)),
                ),
            );
            (_mm_movemask_epi8(space), _mm_movemask_epi8(newline))
        };
        ws |= u64::from(space as u16) << (16 * lane);
        nl |= u64::from(newline as u16) << (16 * lane);
    }
    (ws, nl)
}

/// The whitespace and newline masks of 64 bytes, eight at a time (SWAR).
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn block_masks(bytes: &[u8; 64]) -> (u64, u64) {
    block_masks_swar(bytes)
}

/// [`block_masks`] with plain 64-bit integer operations: the portable
/// version, and the reference the SIMD one is tested against.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn block_masks_swar(bytes: &[u8; 64]) -> (u64, u64) {
    let (mut ws, mut nl) = (0, 0);
    for (lane, chunk) in bytes.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let newline = eq_bytes(x, b'\n');
        let space = WHITESPACE
            .iter()
            .fold(newline, |acc, &w| acc | eq_bytes(x, w));
        ws |= gather(space) << (8 * lane);
        nl |= gather(newline) << (8 * lane);
    }
    (ws, nl)
}

/// Calls `word(start, end, line)` for every maximal run of non-whitespace
/// bytes in `bytes`, in order; `line` is the 0-based line of the word.
pub(super) fn split_words<E>(
    bytes: &[u8],
    mut word: impl FnMut(usize, usize, u32) -> Result<(), E>,
) -> Result<(), E> {
    let mut line = 0_u32;
    // The open word: its start and line.
    let mut open: Option<(usize, u32)> = None;
    // Whether the byte before the current block is whitespace.
    let mut previous_ws = true;
    for (b, block) in bytes.chunks(64).enumerate() {
        let base = b * 64;
        let (ws, nl) = masks(block);
        // Class changes: bit i is set where byte i differs from byte i − 1.
        let mut changes = ws ^ ((ws << 1) | u64::from(previous_ws));
        while changes != 0 {
            let i = changes.trailing_zeros();
            changes &= changes - 1;
            if ws & (1 << i) == 0 {
                let below = nl & ((1_u64 << i) - 1);
                open = Some((base + i as usize, line + below.count_ones()));
            } else if let Some((start, at)) = open.take() {
                word(start, base + i as usize, at)?;
            }
        }
        line += nl.count_ones();
        previous_ws = ws >> 63 == 1;
    }
    if let Some((start, at)) = open {
        word(start, bytes.len(), at)?;
    }
    Ok(())
}

/// The number of lines of `bytes` (a final line without a newline counts)
/// and the length of the longest.
pub(super) fn line_stats(bytes: &[u8]) -> (u64, usize) {
    let (mut lines, mut longest, mut start) = (0, 0, 0);
    for end in memchr::memchr_iter(b'\n', bytes) {
        lines += 1;
        longest = longest.max(end - start);
        start = end + 1;
    }
    if start < bytes.len() {
        lines += 1;
        longest = longest.max(bytes.len() - start);
    }
    (lines, longest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The byte-at-a-time reference.
    fn reference(bytes: &[u8]) -> Vec<(usize, usize, u32)> {
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
        out
    }

    fn split(bytes: &[u8]) -> Vec<(usize, usize, u32)> {
        let mut out = Vec::new();
        split_words::<()>(bytes, |s, e, l| {
            out.push((s, e, l));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn words_lines_and_block_edges() {
        assert_eq!(split(b"ab  c\nd"), [(0, 2, 0), (4, 5, 0), (6, 7, 1)]);
        let long = [
            b"x".repeat(63),
            b" ".to_vec(),
            b"y".repeat(70),
            b"\n\x0b".to_vec(),
        ]
        .concat();
        assert_eq!(split(&long), reference(&long));
        assert_eq!(split(b""), []);
    }

    #[test]
    fn simd_and_swar_masks_agree() {
        let mut rng = datasets::Rng::new(5);
        let alphabet = [
            b' ', b'\t', b'\n', 0x0B, 0x0C, b'\r', b'a', 0x00, 0x80, 0xFF, 0xA0, 0x85,
        ];
        for _ in 0..20_000 {
            let mut block = [0_u8; 64];
            for b in &mut block {
                *b = alphabet[rng.below(alphabet.len() as u64) as usize];
            }
            assert_eq!(block_masks(&block), block_masks_swar(&block), "{block:?}");
        }
    }

    proptest! {
        #[test]
        fn matches_the_byte_at_a_time_reference(bytes in proptest::collection::vec(
            prop_oneof![
                4 => b'a'..=b'z',
                2 => Just(b' '),
                1 => Just(b'\n'),
                1 => prop::sample::select(vec![b'\t', b'\r', 0x0C, 0x0B, 0x00, 0x1F, 0x21, 0x80, 0xFF, 0xA0]),
            ],
            0..400,
        )) {
            prop_assert_eq!(split(&bytes), reference(&bytes));
        }
    }
}
