//! Decimal integers appended to a byte buffer without allocating.

/// `"00" "01" … "99"`: two digits at a time.
const PAIRS: [u8; 200] = {
    let mut pairs = [0; 200];
    let mut i = 0;
    while i < 100 {
        pairs[2 * i] = b'0' + (i / 10) as u8;
        pairs[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    pairs
};

/// Appends `v` in decimal.
#[inline]
pub(crate) fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let len = v.checked_ilog10().map_or(1, |d| d as usize + 1);
    let start = out.len();
    // A fixed-size copy then a cut: cheaper than a copy of `len` bytes.
    out.extend_from_slice(&[0; 20]);
    let digits = &mut out[start..start + len];
    let mut i = len;
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        digits[i - 2..i].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        digits[i - 1] = b'0' + v as u8;
    }
    out.truncate(start + len);
}

/// Appends `v` in decimal, with a leading `-` if negative.
#[inline]
pub(crate) fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

/// The decimal texts of the integers `first..first + count`, each in a
/// 16-byte slot (its length in the last byte), appended by one fixed-size
/// copy: no digit loop and no branch on the number of digits.
#[derive(Debug, Clone)]
pub(crate) struct DecimalTable {
    first: i64,
    slots: Vec<[u8; 16]>,
}

impl DecimalTable {
    /// Most integers of a table: 2^16 (1 MiB).
    pub(crate) const MAX: u64 = 1 << 16;

    /// The table of `first..first + count`, if `count` is at most
    /// [`Self::MAX`].
    pub(crate) fn new(first: i64, count: u64) -> Option<Self> {
        (count <= Self::MAX).then(|| {
            let mut text = Vec::with_capacity(24);
            let slots = (0..count as i64)
                .map(|i| {
                    text.clear();
                    push_i64(&mut text, first + i);
                    let mut slot = [0; 16];
                    slot[..text.len()].copy_from_slice(&text);
                    slot[15] = text.len() as u8;
                    slot
                })
                .collect();
            Self { first, slots }
        })
    }

    /// Appends `value`, which must be in the table's range.
    #[inline]
    pub(crate) fn push(&self, out: &mut Vec<u8>, value: i64) {
        let slot = &self.slots[(value - self.first) as usize];
        let end = out.len() + usize::from(slot[15]);
        out.extend_from_slice(slot);
        out.truncate(end);
    }
}

/// Appends `value` by `table` if there is one, else by [`push_i64`].
#[inline]
pub(crate) fn push_by(table: Option<&DecimalTable>, out: &mut Vec<u8>, value: i64) {
    match table {
        Some(table) => table.push(out, value),
        None => push_i64(out, value),
    }
}

/// The decimal bytes of the last number pushed, reused while the number
/// stays the same (event times change every few records only).
#[derive(Debug, Clone)]
pub(crate) struct CachedDecimal {
    value: i64,
    bytes: [u8; 24],
    len: usize,
}

impl CachedDecimal {
    pub(crate) fn new() -> Self {
        let mut cache = Self {
            value: 0,
            bytes: [0; 24],
            len: 0,
        };
        cache.set(0);
        cache
    }

    fn set(&mut self, value: i64) {
        let mut digits = [0_u8; 20];
        let mut rest = value.unsigned_abs();
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let sign = usize::from(value < 0);
        self.bytes[0] = b'-';
        self.bytes[sign..sign + digits.len() - i].copy_from_slice(&digits[i..]);
        self.len = sign + digits.len() - i;
        self.value = value;
    }

    /// Appends `value` in decimal.
    #[inline]
    pub(crate) fn push(&mut self, out: &mut Vec<u8>, value: i64) {
        if value != self.value {
            self.set(value);
        }
        let end = out.len() + self.len;
        out.extend_from_slice(&self.bytes);
        out.truncate(end);
    }
}

/// Event times at a rate: tick `i` is `start_ms + i * 1000 / rate`
/// (rounded down), computed without a division per tick.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    next: i64,
    /// `(i * 1000) % rate`.
    remainder: u64,
    whole: i64,
    fraction: u64,
    rate: u64,
}

impl Clock {
    /// Ticks from `start_ms` at `rate` (at least 1) a second.
    pub(crate) fn new(start_ms: i64, rate: u64) -> Self {
        let rate = rate.max(1);
        Self {
            next: start_ms,
            remainder: 0,
            whole: (1_000 / rate) as i64,
            fraction: 1_000 % rate,
            rate,
        }
    }

    /// The time of the next tick.
    #[inline]
    pub(crate) fn tick(&mut self) -> i64 {
        let now = self.next;
        self.next += self.whole;
        self.remainder += self.fraction;
        if self.remainder >= self.rate {
            self.remainder -= self.rate;
            self.next += 1;
        }
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_print_as_display_does() {
        let mut out = Vec::new();
        for v in [
            0,
            7,
            10,
            99,
            100,
            101,
            12_345,
            -1,
            -10,
            -987_654,
            i64::MIN,
            i64::MAX,
        ] {
            out.clear();
            push_i64(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
        out.clear();
        push_u64(&mut out, u64::MAX);
        assert_eq!(out, u64::MAX.to_string().as_bytes());
        let mut v = 1_u64;
        while let Some(next) = v.checked_mul(3) {
            for w in [v - 1, v, v + 1] {
                out.clear();
                out.extend_from_slice(b"x,");
                push_u64(&mut out, w);
                assert_eq!(out, format!("x,{w}").as_bytes());
            }
            v = next;
        }
    }

    #[test]
    fn decimal_tables_print_as_display_does() {
        let table = DecimalTable::new(-1_000, 2_001).unwrap();
        let mut out = Vec::new();
        for v in -1_000..=1_000 {
            out.clear();
            out.push(b'k');
            push_by(Some(&table), &mut out, v);
            assert_eq!(out, format!("k{v}").as_bytes());
        }
        assert!(DecimalTable::new(0, DecimalTable::MAX + 1).is_none());
        let big = DecimalTable::new(1_000, DecimalTable::MAX).unwrap();
        out.clear();
        push_by(Some(&big), &mut out, 1_000 + 65_535);
        assert_eq!(out, b"66535");
    }

    #[test]
    fn cached_decimals_follow_their_values() {
        let mut cache = CachedDecimal::new();
        let mut out = Vec::new();
        let values = [
            0,
            0,
            5,
            5,
            -5,
            1_700_000_000_000,
            1_700_000_000_000,
            i64::MIN,
            0,
        ];
        for v in values {
            cache.push(&mut out, v);
            out.push(b',');
        }
        let expected: Vec<String> = values.iter().map(|v| format!("{v},")).collect();
        assert_eq!(String::from_utf8(out).unwrap(), expected.concat());
    }

    #[test]
    fn clock_ticks_at_the_rate() {
        for rate in [1, 3, 7, 999, 1_000, 1_001, 33_333, 1_000_000, 10_000_000] {
            let mut clock = Clock::new(-5, rate);
            for i in 0..100_000_u64 {
                assert_eq!(
                    clock.tick(),
                    -5 + (i * 1_000 / rate) as i64,
                    "rate {rate}, tick {i}"
                );
            }
        }
    }
}
