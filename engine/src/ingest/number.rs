//! Number parsing for ingestion: no allocation, no locale, strict.

/// Parses an optionally signed decimal integer; `None` on anything else or
/// on overflow.
#[must_use]
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() {
        return None;
    }
    let leading_zeros = digits.iter().take_while(|&&b| b == b'0').count();
    let digits = &digits[leading_zeros..];
    // 19 decimal digits always fit in a u64; the sign check does the rest.
    if digits.len() > 19 {
        return None;
    }
    let mut value: u64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        value = value * 10 + u64::from(d);
    }
    signed(negative, value)
}

fn signed(negative: bool, value: u64) -> Option<i64> {
    if negative {
        0_i64.checked_sub_unsigned(value)
    } else {
        i64::try_from(value).ok()
    }
}

/// Parses a finite decimal float (integers included); `None` for anything
/// else, NaN and infinities included.
#[must_use]
pub fn parse_f64(bytes: &[u8]) -> Option<f64> {
    if let Some(i) = parse_i64(bytes) {
        if i.unsigned_abs() < (1 << 53) {
            return Some(i as f64);
        }
    }
    if let Some(value) = parse_decimal(bytes) {
        return Some(value);
    }
    // Rust's float parser accepts "inf" and "nan": only digits, signs, dots
    // and exponents are let through to it.
    if !bytes
        .iter()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    let value: f64 = std::str::from_utf8(bytes).ok()?.parse().ok()?;
    value.is_finite().then_some(value)
}

/// The powers of ten that are exact as floats, up to the most digits
/// [`parse_decimal`] reads.
const POWERS_OF_TEN: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// A plain decimal (an optional sign, digits with at most one point, 15
/// digits at most, e.g. `-12.5`) without Rust's general float parser:
/// Clinger's fast path. Its digits make an integer `m < 10^15 < 2^53` and
/// it has `k ≤ 15` digits after the point, so `m` and `10^k` are exact
/// floats and the one division `m / 10^k`, correctly rounded, is the
/// correctly rounded value of the decimal, bit for bit what Rust's parser
/// returns. `None` for anything else (no digit, more digits, exponents).
fn parse_decimal(bytes: &[u8]) -> Option<f64> {
    let (negative, rest) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let (mut mantissa, mut digits, mut point) = (0_u64, 0, None);
    for (i, &b) in rest.iter().enumerate() {
        match b {
            b'0'..=b'9' if digits < 15 => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                digits += 1;
            }
            b'.' if point.is_none() => point = Some(i),
            _ => return None,
        }
    }
    if digits == 0 {
        return None;
    }
    let scale = point.map_or(0, |p| rest.len() - p - 1);
    let value = mantissa as f64 / POWERS_OF_TEN[scale];
    Some(if negative { -value } else { value })
}

/// Bytes of eight ASCII `'0'`s.
const ZEROS: u64 = 0x3030_3030_3030_3030;

/// The value of eight ASCII digits read as a little-endian word (the first
/// digit in the lowest byte), or `None` if a byte is not a digit. No branch
/// per digit: the check and the conversion work on all eight at once
/// (Lemire's SWAR conversion, three multiplications).
#[inline(always)]
#[allow(clippy::inline_always)] // Inlined into the parsers' loops.
fn eight_digits(word: u64) -> Option<u64> {
    const HIGH_NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const PAIRS: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    // A byte is a digit iff its high nibble is 3 and adding 6 keeps it 3
    // (0x3A..=0x3F carry into 4); a byte that fails the first test may
    // carry into the next one in the second, but then the whole word fails
    // anyway.
    let high =
        (word & HIGH_NIBBLES) | ((word.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES) >> 4);
    if high != 0x3333_3333_3333_3333 {
        return None;
    }
    let mut v = word - ZEROS;
    // Pairs: byte 2k + 1 becomes 10·d(2k) + d(2k + 1) (the other bytes are
    // garbage that the masks below drop).
    v = v.wrapping_mul(10).wrapping_add(v >> 8);
    // Quadruples, then the eight digits, in the top half.
    v = ((v & PAIRS).wrapping_mul(MUL1)).wrapping_add(((v >> 16) & PAIRS).wrapping_mul(MUL2)) >> 32;
    Some(v & 0xFFFF_FFFF)
}

/// The little-endian word of `bytes[end - 8..end]` with its first
/// `8 - keep` bytes replaced by `'0'`: the last `keep` bytes (`1..=8`)
/// right-aligned behind leading zeros, ready for [`eight_digits`].
#[inline(always)]
#[allow(clippy::inline_always)] // Inlined into the parsers' loops.
fn digits_before(bytes: &[u8], end: usize, keep: usize) -> u64 {
    let word = u64::from_le_bytes(bytes[end - 8..end].try_into().expect("8 bytes"));
    let kept = u64::MAX << (8 * (8 - keep));
    (word & kept) | (ZEROS & !kept)
}

/// The most digits [`parse_i64_in`] reads: its results lie within ±2^53,
/// so that they are valid event times and exact as floats.
pub(crate) const FAST_DIGITS: usize = 15;

/// [`parse_i64`] of `bytes[start..end]` for the common case, an optional
/// sign and 1 to [`FAST_DIGITS`] digits, with whole-word loads from around
/// the field (`end ≥ 16`, so the bytes before it are read too) and no
/// branch per digit. `None` when it cannot tell, and then the field may
/// still be a number that [`parse_i64`] accepts (more digits, the start of
/// the buffer): the caller asks it.
#[inline(always)]
#[allow(clippy::inline_always)] // Inlined into the parsers' loops.
#[must_use]
pub(crate) fn parse_i64_in(bytes: &[u8], start: usize, end: usize) -> Option<i64> {
    if end < 16 || end <= start || end > bytes.len() {
        return None;
    }
    let first = bytes[start];
    let negative = first == b'-';
    let signed = usize::from(negative || first == b'+');
    let n = end - start - signed;
    let magnitude = if n.wrapping_sub(1) < 8 {
        eight_digits(digits_before(bytes, end, n))?
    } else if n.wrapping_sub(1) < FAST_DIGITS {
        let high = eight_digits(digits_before(bytes, end - 8, n - 8))?;
        let low = eight_digits(digits_before(bytes, end, 8))?;
        high * 100_000_000 + low
    } else {
        return None;
    };
    // Below 10^15 < 2^53 < 2^63.
    let value = magnitude as i64;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_strictly() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-42"), Some(-42));
        assert_eq!(parse_i64(b"+7"), Some(7));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"000000000000000000000012"), Some(12));
        for bad in [
            &b""[..],
            b"-",
            b"1.5",
            b"12a",
            b"9223372036854775808",
            b" 1",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn floats_refuse_non_finite_values() {
        assert_eq!(parse_f64(b"1.25"), Some(1.25));
        assert_eq!(parse_f64(b"-3e2"), Some(-300.0));
        assert_eq!(parse_f64(b"17"), Some(17.0));
        for bad in [
            &b"inf"[..],
            b"NaN",
            b"-infinity",
            b"1e999",
            b"",
            b"1,5",
            b"0x10",
        ] {
            assert_eq!(parse_f64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    /// `parse_i64_in` either agrees with `parse_i64` or leaves the field to
    /// it, wherever the field lies in the buffer.
    fn check_in(field: &[u8]) {
        for before in 0..20 {
            for after in 0..10 {
                let mut buffer = vec![b'7'; before];
                buffer.extend_from_slice(field);
                buffer.extend(std::iter::repeat_n(b',', after));
                let got = parse_i64_in(&buffer, before, before + field.len());
                if let Some(v) = got {
                    assert_eq!(
                        Some(v),
                        parse_i64(field),
                        "{:?}",
                        String::from_utf8_lossy(field)
                    );
                }
                // Within 15 digits and past the first 16 bytes, it tells.
                let digits = field.iter().filter(|b| b.is_ascii_digit()).count();
                if before + field.len() >= 16 && digits <= FAST_DIGITS && digits + 1 >= field.len()
                {
                    assert_eq!(
                        got,
                        parse_i64(field),
                        "{:?}",
                        String::from_utf8_lossy(field)
                    );
                }
            }
        }
    }

    #[test]
    fn word_at_a_time_integers_agree_with_parse_i64() {
        for field in [
            &b"0"[..],
            b"7",
            b"-7",
            b"+7",
            b"-",
            b"+",
            b"",
            b"12345678",
            b"123456789",
            b"-1234567890123456",
            b"9999999999999999",
            b"999999999999999",
            b"-999999999999999",
            b"99999999999999999",
            b"0000000000000000",
            b"1/",
            b"1:",
            b"/1",
            b"-0",
            b"--1",
            b"+-1",
            b"1-",
            b"12345678\xff",
            b"\xff12345",
            b"1234567 ",
            b"123456789012345 ",
        ] {
            check_in(field);
        }
        let mut rng = datasets::Rng::new(3);
        for _ in 0..20_000 {
            let len = rng.below(19) as usize;
            let field: Vec<u8> = (0..len)
                .map(|_| b"0123456789-+/:a \x80"[rng.below(17) as usize])
                .collect();
            check_in(&field);
            let digits: Vec<u8> = (0..len).map(|_| b'0' + rng.below(10) as u8).collect();
            check_in(&digits);
        }
    }

    /// `parse_f64` as it was before the decimal fast path.
    fn parse_f64_reference(bytes: &[u8]) -> Option<f64> {
        if let Some(i) = parse_i64(bytes) {
            if i.unsigned_abs() < (1 << 53) {
                return Some(i as f64);
            }
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            return None;
        }
        let value: f64 = std::str::from_utf8(bytes).ok()?.parse().ok()?;
        value.is_finite().then_some(value)
    }

    fn check_f64(text: &str) {
        assert_eq!(
            parse_f64(text.as_bytes()).map(f64::to_bits),
            parse_f64_reference(text.as_bytes()).map(f64::to_bits),
            "{text:?}"
        );
    }

    #[test]
    fn decimals_round_as_the_general_parser_rounds_them() {
        for text in [
            "0.1",
            "-0.0",
            "+0.0",
            "0.",
            ".0",
            ".",
            "-.",
            "-.5",
            "+.5",
            "5.",
            "-5.",
            "1.2.3",
            "..1",
            "1..",
            "0.30000000000000004",
            "123456789012345",
            "1234567890123456",
            "12345678901234.5",
            "1234567890123.45",
            "999999999999999.",
            ".999999999999999",
            ".0000000000000001",
            "9007199254740993",
            "9007199254740993.0",
            "-",
            "+",
            "",
            "1e5",
            "1.5e3",
            "00000000000000000001.5",
            "0000000000000.1",
            "-000.000",
            "4.35",
            "0.1234567890123",
            "98765.4321",
        ] {
            check_f64(text);
        }
        let mut rng = datasets::Rng::new(17);
        for _ in 0..200_000 {
            let int = rng.below(10_000_000_000) >> rng.below(34);
            let frac_digits = rng.below(12) as usize;
            let frac = rng.below(10_u64.pow(frac_digits as u32).max(1));
            let sign = ["", "-", "+"][rng.below(3) as usize];
            let text = if frac_digits == 0 {
                format!("{sign}{int}.")
            } else {
                format!("{sign}{int}.{frac:0frac_digits$}")
            };
            check_f64(&text);
            check_f64(&text[..text.len() - 1]);
            if let Some(stripped) = text.strip_prefix(sign) {
                check_f64(stripped.trim_start_matches('0'));
            }
        }
    }
}
