//! Byte classification 64 bytes at a time, with the widest instructions the
//! CPU has: AVX-512BW, AVX2, or a portable fallback (eight bytes per `u64`
//! operation, SWAR), chosen at run time.
//!
//! The parsers' inner loops (word splitting, NDJSON and CSV structure) are
//! written once, generic over [`Simd`], and compiled once per level: each
//! level's entry point is a `#[target_feature]` function that inlines the
//! generic kernel, so the kernel's calls to [`Simd`]'s methods become single
//! instructions. [`level`] detects the CPU's level once;
//! `ENGINE_SIMD=portable|avx2|avx512` lowers it (never above what the CPU
//! has), so that tests and users can run and compare every path on one
//! machine.
//!
//! A kernel is dispatched with [`dispatch!`](crate::simd_dispatch):
//!
//! ```ignore
//! fn kernel<S: Simd>(bytes: &[u8]) -> u64 { ... }
//! let n = simd_dispatch!(kernel(bytes));
//! ```

use std::sync::atomic::{AtomicU8, Ordering};

/// The instruction sets a kernel can be compiled for, widest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Plain 64-bit integer operations: runs on every CPU.
    Portable,
    /// x86-64 AVX2 (with BMI1/2, POPCNT).
    Avx2,
    /// x86-64 AVX-512BW.
    Avx512,
}

impl Level {
    /// Every level, narrowest first.
    pub const ALL: [Level; 3] = [Level::Portable, Level::Avx2, Level::Avx512];

    /// The name `ENGINE_SIMD` takes.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Level::Portable => "portable",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run code of this level.
    #[must_use]
    pub fn is_supported(self) -> bool {
        match self {
            Level::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("bmi1")
                    && is_x86_feature_detected!("bmi2")
                    && is_x86_feature_detected!("popcnt")
            }
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => {
                Level::Avx2.is_supported()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            1 => Level::Avx2,
            2 => Level::Avx512,
            _ => Level::Portable,
        }
    }
}

const UNKNOWN: u8 = u8::MAX;
static LEVEL: AtomicU8 = AtomicU8::new(UNKNOWN);

/// The level the parsers use: the widest this CPU supports, lowered by
/// `ENGINE_SIMD` (an unknown or unsupported name is ignored).
#[must_use]
#[inline]
pub fn level() -> Level {
    let cached = LEVEL.load(Ordering::Relaxed);
    if cached != UNKNOWN {
        return Level::from_u8(cached);
    }
    let widest = Level::ALL
        .into_iter()
        .rev()
        .find(|l| l.is_supported())
        .unwrap_or(Level::Portable);
    let chosen = std::env::var("ENGINE_SIMD")
        .ok()
        .and_then(|name| Level::ALL.into_iter().find(|l| l.name() == name))
        .map_or(widest, |asked| asked.min(widest));
    LEVEL.store(chosen as u8, Ordering::Relaxed);
    chosen
}

/// 64 bytes loaded for classification, and the operations on them.
///
/// # Safety
///
/// An implementation's methods may only be called on a CPU that supports its
/// [`Simd::LEVEL`] (checked with [`Level::is_supported`]).
pub unsafe trait Simd: Copy {
    /// The instruction set.
    const LEVEL: Level;
    /// 64 bytes in registers.
    type Block: Copy;

    /// Loads 64 bytes.
    ///
    /// # Safety
    ///
    /// The CPU supports [`Simd::LEVEL`].
    unsafe fn load(bytes: &[u8; 64]) -> Self::Block;

    /// Bit `i` set where byte `i` equals `byte`.
    ///
    /// # Safety
    ///
    /// The CPU supports [`Simd::LEVEL`].
    unsafe fn eq(block: Self::Block, byte: u8) -> u64;

    /// Bit `i` set where byte `i`, unsigned, is below `bound`.
    ///
    /// # Safety
    ///
    /// The CPU supports [`Simd::LEVEL`].
    unsafe fn below(block: Self::Block, bound: u8) -> u64;

    /// Bit `i` set where byte `i` equals `table[byte_i & 15]`: membership
    /// in a set of bytes whose low nibbles differ (at most one byte per
    /// low nibble; an unused entry holds a byte whose low nibble is not its
    /// index, e.g. 0 at index 1). One shuffle on AVX2/AVX-512.
    ///
    /// # Safety
    ///
    /// The CPU supports [`Simd::LEVEL`].
    unsafe fn in_nibble_set(block: Self::Block, table: &[u8; 16]) -> u64;

    /// Bit `i` set where byte `i` is not ASCII (0x80 and above): its high
    /// bit, as `movemask` has it.
    ///
    /// # Safety
    ///
    /// The CPU supports [`Simd::LEVEL`].
    unsafe fn high(block: Self::Block) -> u64;
}

/// The portable level: eight bytes per `u64` operation.
#[derive(Debug, Clone, Copy)]
pub struct Portable;

const LOW: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of every byte of `x` that equals `byte`, exactly (no
/// borrow between bytes, unlike the classic `haszero`).
#[inline]
fn swar_eq(x: u64, byte: u8) -> u64 {
    let y = x ^ (LOW * u64::from(byte));
    // A byte's high bit ends up set iff it is nonzero; no carry crosses
    // bytes because 0x7F + 0x7F < 0x100.
    !(((y & !HIGH) + !HIGH) | y) & HIGH
}

/// The high bit of every byte of `x` that is below `bound` (unsigned).
#[inline]
fn swar_below(x: u64, bound: u8) -> u64 {
    // Bytes with the high bit set are never below a bound ≤ 0x80; below
    // that, `(b | 0x80) - bound` keeps its high bit iff b ≥ bound, and no
    // borrow crosses bytes.
    if bound == 0 {
        return 0;
    }
    if bound > 0x80 {
        let mut mask = 0;
        for i in 0..8 {
            if ((x >> (8 * i)) as u8) < bound {
                mask |= 0x80 << (8 * i);
            }
        }
        return mask;
    }
    let diff = (x | HIGH) - LOW * u64::from(bound);
    !diff & !x & HIGH
}

/// Gathers the high bit of each byte into the low 8 bits (byte k → bit k).
#[inline]
fn gather(high_bits: u64) -> u64 {
    ((high_bits >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

#[inline]
fn swar_mask(block: &[u64; 8], f: impl Fn(u64) -> u64) -> u64 {
    let mut mask = 0;
    for (lane, &x) in block.iter().enumerate() {
        mask |= gather(f(x)) << (8 * lane);
    }
    mask
}

// SAFETY: plain integer operations: every CPU supports them.
unsafe impl Simd for Portable {
    const LEVEL: Level = Level::Portable;
    type Block = [u64; 8];

    #[inline]
    unsafe fn load(bytes: &[u8; 64]) -> [u64; 8] {
        std::array::from_fn(|i| {
            u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().expect("8 bytes"))
        })
    }

    #[inline]
    unsafe fn eq(block: [u64; 8], byte: u8) -> u64 {
        swar_mask(&block, |x| swar_eq(x, byte))
    }

    #[inline]
    unsafe fn below(block: [u64; 8], bound: u8) -> u64 {
        swar_mask(&block, |x| swar_below(x, bound))
    }

    #[inline]
    unsafe fn in_nibble_set(block: [u64; 8], table: &[u8; 16]) -> u64 {
        swar_mask(&block, |x| {
            let mut hits = 0;
            for (nibble, &byte) in table.iter().enumerate() {
                if usize::from(byte & 15) == nibble {
                    hits |= swar_eq(x, byte);
                }
            }
            hits
        })
    }

    #[inline]
    unsafe fn high(block: [u64; 8]) -> u64 {
        swar_mask(&block, |x| x & HIGH)
    }
}

#[cfg(target_arch = "x86_64")]
pub use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    #[allow(clippy::wildcard_imports)] // The intrinsics.
    use std::arch::x86_64::*;

    use super::{Level, Simd};

    /// The AVX2 level: 32 bytes per instruction.
    #[derive(Debug, Clone, Copy)]
    pub struct Avx2;

    // SAFETY: every method is compiled for AVX2 and only called where the
    // trait's contract says the CPU has it.
    unsafe impl Simd for Avx2 {
        const LEVEL: Level = Level::Avx2;
        type Block = [__m256i; 2];

        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn load(bytes: &[u8; 64]) -> [__m256i; 2] {
            #[allow(clippy::cast_ptr_alignment)] // `loadu`: any alignment.
            let p = bytes.as_ptr().cast::<__m256i>();
            // SAFETY: both 32-byte loads lie inside the 64-byte array;
            // `loadu` has no alignment requirement; AVX2 per the contract.
            unsafe { [_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1))] }
        }

        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn eq(block: [__m256i; 2], byte: u8) -> u64 {
            let splat = _mm256_set1_epi8(byte as i8);
            let lo = _mm256_movemask_epi8(_mm256_cmpeq_epi8(block[0], splat)) as u32;
            let hi = _mm256_movemask_epi8(_mm256_cmpeq_epi8(block[1], splat)) as u32;
            u64::from(lo) | (u64::from(hi) << 32)
        }

        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn below(block: [__m256i; 2], bound: u8) -> u64 {
            if bound == 0 {
                return 0;
            }
            // b < bound ⇔ max(b, bound − 1) == bound − 1 (unsigned).
            let limit = _mm256_set1_epi8((bound - 1) as i8);
            let half = |v: __m256i| {
                _mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_max_epu8(v, limit), limit)) as u32
            };
            u64::from(half(block[0])) | (u64::from(half(block[1])) << 32)
        }

        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn in_nibble_set(block: [__m256i; 2], table: &[u8; 16]) -> u64 {
            // SAFETY: a 16-byte unaligned load from a 16-byte array.
            #[allow(clippy::cast_ptr_alignment)] // `loadu`: any alignment.
            let lookup = unsafe { _mm_loadu_si128(table.as_ptr().cast::<__m128i>()) };
            let lookup = _mm256_broadcastsi128_si256(lookup);
            let nibble = _mm256_set1_epi8(0x0F);
            let half = |v: __m256i| {
                let expected = _mm256_shuffle_epi8(lookup, _mm256_and_si256(v, nibble));
                _mm256_movemask_epi8(_mm256_cmpeq_epi8(expected, v)) as u32
            };
            u64::from(half(block[0])) | (u64::from(half(block[1])) << 32)
        }

        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn high(block: [__m256i; 2]) -> u64 {
            let lo = _mm256_movemask_epi8(block[0]) as u32;
            let hi = _mm256_movemask_epi8(block[1]) as u32;
            u64::from(lo) | (u64::from(hi) << 32)
        }
    }

    /// The AVX-512BW level: 64 bytes per instruction, comparisons straight
    /// into mask registers.
    #[derive(Debug, Clone, Copy)]
    pub struct Avx512;

    // SAFETY: every method is compiled for AVX-512BW and only called where
    // the trait's contract says the CPU has it.
    unsafe impl Simd for Avx512 {
        const LEVEL: Level = Level::Avx512;
        type Block = __m512i;

        #[inline]
        #[target_feature(enable = "avx512f,avx512bw")]
        unsafe fn load(bytes: &[u8; 64]) -> __m512i {
            // SAFETY: a 64-byte unaligned load of a 64-byte array.
            unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) }
        }

        #[inline]
        #[target_feature(enable = "avx512f,avx512bw")]
        unsafe fn eq(block: __m512i, byte: u8) -> u64 {
            _mm512_cmpeq_epi8_mask(block, _mm512_set1_epi8(byte as i8))
        }

        #[inline]
        #[target_feature(enable = "avx512f,avx512bw")]
        unsafe fn below(block: __m512i, bound: u8) -> u64 {
            _mm512_cmplt_epu8_mask(block, _mm512_set1_epi8(bound as i8))
        }

        #[inline]
        #[target_feature(enable = "avx512f,avx512bw")]
        unsafe fn in_nibble_set(block: __m512i, table: &[u8; 16]) -> u64 {
            // SAFETY: a 16-byte unaligned load from a 16-byte array.
            #[allow(clippy::cast_ptr_alignment)] // `loadu`: any alignment.
            let lookup = unsafe { _mm_loadu_si128(table.as_ptr().cast::<__m128i>()) };
            let lookup = _mm512_broadcast_i32x4(lookup);
            let expected =
                _mm512_shuffle_epi8(lookup, _mm512_and_si512(block, _mm512_set1_epi8(0x0F)));
            _mm512_cmpeq_epi8_mask(expected, block)
        }

        #[inline]
        #[target_feature(enable = "avx512f,avx512bw")]
        unsafe fn high(block: __m512i) -> u64 {
            _mm512_movepi8_mask(block)
        }
    }
}

/// Calls a kernel `f::<S: Simd>(args…)` compiled for a level (the portable
/// one when the CPU lacks the level asked for; normally [`level`]): the
/// expansion defines one `#[target_feature]` wrapper per level, so the
/// generic kernel (mark it `#[inline(always)]` or `#[inline]`) is inlined
/// into code compiled for that instruction set.
///
/// `simd_dispatch!(level, kernel::<GENERICS>(arg: Type, …) -> Ret)` — the
/// argument types are spelled out because the wrappers are functions.
#[macro_export]
#[doc(hidden)]
macro_rules! simd_dispatch {
    ($level:expr, $kernel:ident $(::<$($generic:ty),*>)? ($($arg:ident : $ty:ty),* $(,)?) -> $ret:ty) => {{
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,bmi1,bmi2,popcnt")]
        #[inline(never)]
        unsafe fn __avx2($($arg: $ty),*) -> $ret {
            $kernel::<$crate::simd::Avx2 $($(, $generic)*)?>($($arg),*)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512bw,avx2,bmi1,bmi2,popcnt")]
        #[inline(never)]
        unsafe fn __avx512($($arg: $ty),*) -> $ret {
            $kernel::<$crate::simd::Avx512 $($(, $generic)*)?>($($arg),*)
        }
        // A level the CPU lacks runs the portable code: never an illegal
        // instruction, whatever level the caller names.
        let level: $crate::simd::Level = $level;
        #[cfg(target_arch = "x86_64")]
        let result = match level {
            // SAFETY: the CPU supports the level (checked in the guard).
            $crate::simd::Level::Avx512 if level.is_supported() => unsafe { __avx512($($arg),*) },
            // SAFETY: as above.
            $crate::simd::Level::Avx2 if level.is_supported() => unsafe { __avx2($($arg),*) },
            _ => $kernel::<$crate::simd::Portable $($(, $generic)*)?>($($arg),*),
        };
        #[cfg(not(target_arch = "x86_64"))]
        let result = {
            let _ = level;
            $kernel::<$crate::simd::Portable $($(, $generic)*)?>($($arg),*)
        };
        result
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `check` with every level this CPU supports.
    fn each_level(mut check: impl FnMut(Level)) {
        for level in Level::ALL {
            if level.is_supported() {
                check(level);
            }
        }
    }

    #[inline(always)]
    #[allow(clippy::inline_always)] // Inlined into each level's wrapper.
    fn masks<S: Simd>(bytes: &[u8; 64], probe: u8, table: &[u8; 16]) -> [u64; 4] {
        // SAFETY: dispatched only to supported levels.
        unsafe {
            let block = S::load(bytes);
            [
                S::eq(block, probe),
                S::below(block, probe),
                S::in_nibble_set(block, table),
                S::high(block),
            ]
        }
    }

    #[test]
    fn every_level_classifies_bytes_as_the_scalar_definition() {
        let mut rng = datasets::Rng::new(11);
        // Whitespace as split_ascii_whitespace has it.
        let mut table = [0_u8; 16];
        table[0] = b' ';
        for (i, entry) in table.iter_mut().enumerate().skip(1) {
            *entry = if [9, 10, 12, 13].contains(&i) {
                i as u8
            } else {
                0
            };
        }
        let mut levels_run = Vec::new();
        each_level(|level| levels_run.push(level));
        assert!(levels_run.contains(&Level::Portable));
        for round in 0..20_000 {
            let mut bytes = [0_u8; 64];
            for b in &mut bytes {
                *b = rng.below(256) as u8;
            }
            if round % 2 == 0 {
                // Dense in the interesting bytes.
                for b in &mut bytes {
                    *b = [
                        b' ', b'\t', b'\n', 0x0B, 0x0C, b'\r', 0, 0x1F, 0x20, 0x80, 0xFF,
                    ][*b as usize % 11];
                }
            }
            let probe = [0, 1, 0x20, 0x7F, 0x80, 0x81, 0xFF, rng.below(256) as u8][round % 8];
            let expected = {
                let mut m = [0_u64; 4];
                for (i, &b) in bytes.iter().enumerate() {
                    m[0] |= u64::from(b == probe) << i;
                    m[1] |= u64::from(b < probe) << i;
                    m[2] |= u64::from(b.is_ascii_whitespace() && b != 0x0B) << i;
                    m[3] |= u64::from(!b.is_ascii()) << i;
                }
                m
            };
            let (bytes, table) = (&bytes, &table);
            each_level(|level| {
                let got = crate::simd_dispatch!(level, masks(bytes: &[u8; 64], probe: u8, table: &[u8; 16]) -> [u64; 4]);
                assert_eq!(got, expected, "{level:?} probe {probe:#x} {bytes:?}");
            });
        }
    }

    #[test]
    fn a_level_the_cpu_lacks_runs_the_portable_code_not_an_illegal_instruction() {
        let bytes = &[b'a'; 64];
        let table = &[0_u8; 16];
        let probe = b'a';
        for level in Level::ALL {
            // Whatever the CPU: the answer, never SIGILL.
            let got = crate::simd_dispatch!(level, masks(bytes: &[u8; 64], probe: u8, table: &[u8; 16]) -> [u64; 4]);
            assert_eq!(got, [u64::MAX, 0, 0, 0], "{level:?}");
        }
    }

    #[test]
    fn the_environment_can_only_lower_the_level() {
        assert!(level().is_supported());
        assert!(Level::Portable.is_supported());
    }
}
