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
}
