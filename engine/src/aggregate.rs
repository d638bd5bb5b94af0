//! The built-in aggregates and the arithmetic behind them.
//!
//! Invertible aggregates (count, sum, avg, variance, stddev) are kept as
//! running sums that a slide adds panes to and subtracts panes from. Integer
//! sums are exact (`i128`); float sums are compensated (Neumaier), and a window
//! that becomes empty is reset to exactly zero. Min and max are not invertible:
//! they live in a sliding structure ([`crate::window::TwoStacks`]).

use std::fmt;
use std::str::FromStr;

use crate::checkpoint::codec::{CodecError, Decoder, Encoder, PersistColumn};
use crate::error::{Error, Result};

/// One built-in aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Agg {
    /// Number of events.
    Count,
    /// Sum of values (exact for integers).
    Sum,
    /// Mean of values.
    Avg,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Sample variance (`n - 1` in the denominator), null below two events.
    Variance,
    /// Sample standard deviation, null below two events.
    Stddev,
}

impl Agg {
    /// Every aggregate, in output order.
    pub const ALL: [Agg; 7] = [
        Agg::Count,
        Agg::Sum,
        Agg::Avg,
        Agg::Min,
        Agg::Max,
        Agg::Variance,
        Agg::Stddev,
    ];

    /// The aggregate's name, which is also its output column's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Agg::Count => "count",
            Agg::Sum => "sum",
            Agg::Avg => "avg",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Variance => "variance",
            Agg::Stddev => "stddev",
        }
    }

    /// Whether the aggregate reads a value column (all but `count`).
    #[must_use]
    pub fn needs_values(self) -> bool {
        self != Agg::Count
    }
}

impl fmt::Display for Agg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Agg {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        Agg::ALL
            .into_iter()
            .find(|agg| agg.name() == lower)
            .or(match lower.as_str() {
                "mean" => Some(Agg::Avg),
                "var" => Some(Agg::Variance),
                "std" => Some(Agg::Stddev),
                _ => None,
            })
            .ok_or_else(|| Error::UnknownAggregate(s.trim().to_owned()))
    }
}

/// The aggregates one job asks for, in the order asked, without repeats.
///
/// ```
/// use engine::{Agg, AggSet};
/// let set: AggSet = "count,sum,max".parse()?;
/// assert_eq!(set.aggs(), &[Agg::Count, Agg::Sum, Agg::Max]);
/// assert!(set.needs_extremes() && !set.needs_squares());
/// # Ok::<(), engine::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggSet {
    aggs: Vec<Agg>,
}

impl AggSet {
    /// The set of `aggs`, repeats dropped; an empty list means `count`.
    #[must_use]
    pub fn new(aggs: impl IntoIterator<Item = Agg>) -> Self {
        let mut unique: Vec<Agg> = Vec::new();
        for agg in aggs {
            if !unique.contains(&agg) {
                unique.push(agg);
            }
        }
        if unique.is_empty() {
            unique.push(Agg::Count);
        }
        Self { aggs: unique }
    }

    /// The aggregates in output order.
    #[must_use]
    pub fn aggs(&self) -> &[Agg] {
        &self.aggs
    }

    /// Whether `agg` was asked for.
    #[must_use]
    pub fn contains(&self, agg: Agg) -> bool {
        self.aggs.contains(&agg)
    }

    /// Whether a running sum is needed (sum, avg, variance, stddev).
    #[must_use]
    pub fn needs_sum(&self) -> bool {
        self.aggs
            .iter()
            .any(|a| matches!(a, Agg::Sum | Agg::Avg | Agg::Variance | Agg::Stddev))
    }

    /// Whether a running sum of squares is needed (variance, stddev).
    #[must_use]
    pub fn needs_squares(&self) -> bool {
        self.aggs
            .iter()
            .any(|a| matches!(a, Agg::Variance | Agg::Stddev))
    }

    /// Whether the sliding min/max structure is needed.
    #[must_use]
    pub fn needs_extremes(&self) -> bool {
        self.aggs.iter().any(|a| matches!(a, Agg::Min | Agg::Max))
    }

    /// Whether any aggregate reads a value column.
    #[must_use]
    pub fn needs_values(&self) -> bool {
        self.aggs.iter().any(|a| a.needs_values())
    }
}

impl FromStr for AggSet {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let aggs = s
            .split(',')
            .filter(|part| !part.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Agg>>>()?;
        if aggs.is_empty() {
            return Err(Error::UnknownAggregate(s.to_owned()));
        }
        Ok(Self::new(aggs))
    }
}

/// A compensated (Neumaier) float sum: `hi + lo` carries the rounding error
/// that a plain `f64` sum would lose, so adding and later subtracting the same
/// values does not drift.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CompensatedSum {
    hi: f64,
    lo: f64,
}

/// Both halves, as two columns of `f64`: a restored sum is bit for bit the
/// saved one.
impl PersistColumn for CompensatedSum {
    fn save_column(items: &[Self], e: &mut Encoder) {
        let halves: Vec<(f64, f64)> = items.iter().map(|s| (s.hi, s.lo)).collect();
        <(f64, f64)>::save_column(&halves, e);
    }
    fn load_column(d: &mut Decoder<'_>) -> std::result::Result<Vec<Self>, CodecError> {
        Ok(<(f64, f64)>::load_column(d)?
            .into_iter()
            .map(|(hi, lo)| Self { hi, lo })
            .collect())
    }
}

impl CompensatedSum {
    /// Adds one value.
    #[inline]
    pub fn add(&mut self, x: f64) {
        let t = self.hi + x;
        // Branch-free Neumaier step: the compensation is computed from the
        // larger of the two operands.
        let big_hi = self.hi.abs() >= x.abs();
        let err = if big_hi {
            (self.hi - t) + x
        } else {
            (x - t) + self.hi
        };
        self.lo += err;
        self.hi = t;
    }

    /// Adds another compensated sum.
    #[inline]
    pub fn merge(&mut self, other: Self) {
        self.add(other.hi);
        self.lo += other.lo;
    }

    /// Subtracts another compensated sum (the inverse of [`merge`](Self::merge)).
    #[inline]
    pub fn unmerge(&mut self, other: Self) {
        self.add(-other.hi);
        self.lo -= other.lo;
    }

    /// The sum's value.
    #[inline]
    #[must_use]
    pub fn value(self) -> f64 {
        self.hi + self.lo
    }
}

/// `a · b` as an unevaluated sum `hi + lo`, exactly (by a fused multiply-add).
fn two_product(a: f64, b: f64) -> (f64, f64) {
    let hi = a * b;
    (hi, a.mul_add(b, -hi))
}

/// A value type the window operator aggregates: `i64` or `f64`.
///
/// The operator is generic over it so that the per-event loops are
/// monomorphized, with no per-event dispatch.
pub trait Numeric: Copy + Send + Sync + PartialOrd + fmt::Debug + PersistColumn + 'static {
    /// Running-sum type: exact `i128` for integers, compensated for floats.
    type Sum: Copy + Default + Send + Sync + fmt::Debug + PersistColumn;
    /// Whether sums are exact, so that the order of additions cannot change a
    /// result (and the operator may take order-free shortcuts).
    const EXACT: bool;
    /// The identity of `min`.
    const MIN_IDENTITY: Self;
    /// The identity of `max`.
    const MAX_IDENTITY: Self;
    /// Adds one value to a sum.
    fn add(sum: &mut Self::Sum, v: Self);
    /// Adds the square of one value to a sum of squares.
    fn add_square(sum: &mut Self::Sum, v: Self);
    /// Adds a partial sum.
    fn merge(sum: &mut Self::Sum, other: Self::Sum);
    /// Subtracts a partial sum.
    fn unmerge(sum: &mut Self::Sum, other: Self::Sum);
    /// The smaller value.
    fn min(a: Self, b: Self) -> Self;
    /// The larger value.
    fn max(a: Self, b: Self) -> Self;
    /// The sum as `f64` (for averages and variances).
    fn sum_to_f64(sum: Self::Sum) -> f64;
    /// Sample variance of `n >= 2` values from their sum and sum of squares.
    fn variance(n: u64, sum: Self::Sum, squares: Self::Sum) -> f64;
    /// Whether a running sum still holds an exact or finite value: a float sum
    /// that overflowed stays infinite (or NaN) under every later add and
    /// subtract, so the window state must be recomputed from its panes.
    fn sum_is_finite(sum: Self::Sum) -> bool;
}

/// An `i128` running sum whose true value left the range of `i128`.
///
/// `i128::MIN` is out of reach of any real sum (a sum of `n` values of at
/// most 2^63 each, or of squares, which are never negative), so it can mark
/// the overflow in band, with no extra state per key.
const OVERFLOWED: i128 = i128::MIN;

/// The result of a checked `i128` step: [`OVERFLOWED`] when it overflowed or
/// when either operand had already overflowed (the mark is sticky).
#[inline]
fn checked_or_overflowed(a: i128, b: i128, result: Option<i128>) -> i128 {
    match result {
        Some(r) if a != OVERFLOWED && b != OVERFLOWED => r,
        _ => OVERFLOWED,
    }
}

impl Numeric for i64 {
    type Sum = i128;
    const EXACT: bool = true;
    const MIN_IDENTITY: Self = i64::MAX;
    const MAX_IDENTITY: Self = i64::MIN;

    #[inline]
    fn add(sum: &mut i128, v: i64) {
        // Wrapping arithmetic is exact modulo 2^128, so a window's sum is exact
        // whenever its true value fits, whatever the order of adds and subtracts.
        *sum = sum.wrapping_add(i128::from(v));
    }
    #[inline]
    fn add_square(sum: &mut i128, v: i64) {
        // A square is at most 2^126, so two of them can already pass
        // i128::MAX: wrapping would hide it (five squares near i64::MAX wrap
        // around to a positive sum), so the addition is checked and an
        // overflow sticks.
        let v = i128::from(v);
        *sum = checked_or_overflowed(*sum, v * v, sum.checked_add(v * v));
    }
    #[inline]
    fn merge(sum: &mut i128, other: i128) {
        // Checked for the same reason: pane sums of squares are merged here.
        // (Sums of values cannot come near: n values of at most 2^63 each.)
        *sum = checked_or_overflowed(*sum, other, sum.checked_add(other));
    }
    #[inline]
    fn unmerge(sum: &mut i128, other: i128) {
        *sum = checked_or_overflowed(*sum, other, sum.checked_sub(other));
    }
    #[inline]
    fn min(a: i64, b: i64) -> i64 {
        Ord::min(a, b)
    }
    #[inline]
    fn max(a: i64, b: i64) -> i64 {
        Ord::max(a, b)
    }
    fn sum_to_f64(sum: i128) -> f64 {
        sum as f64
    }
    fn sum_is_finite(sum: i128) -> bool {
        // An overflowed sum stays overflowed under later adds and subtracts:
        // the window operator recomputes it from the panes left.
        sum != OVERFLOWED
    }
    fn variance(n: u64, sum: i128, squares: i128) -> f64 {
        // n·Σx² − (Σx)² is exact in i128 for any realistic window; when it is
        // not, fall back to floating point.
        if squares == OVERFLOWED || sum == OVERFLOWED || squares < 0 {
            // The sum of squares passed i128::MAX (checked, so never a
            // wrapped value): out of range, written as null and counted as
            // overflowed by the caller.
            return f64::NAN;
        }
        let n128 = i128::from(n);
        let exact = n128
            .checked_mul(squares)
            .zip(sum.checked_mul(sum))
            .and_then(|(a, b)| a.checked_sub(b));
        let denominator = n as f64 * (n - 1) as f64;
        if let Some(numerator) = exact {
            numerator as f64 / denominator
        } else {
            let mean = sum as f64 / n as f64;
            ((squares as f64 - sum as f64 * mean) / (n - 1) as f64).max(0.0)
        }
    }
}

impl Numeric for f64 {
    type Sum = CompensatedSum;
    const EXACT: bool = false;
    const MIN_IDENTITY: Self = f64::INFINITY;
    const MAX_IDENTITY: Self = f64::NEG_INFINITY;

    #[inline]
    fn add(sum: &mut CompensatedSum, v: f64) {
        sum.add(v);
    }
    #[inline]
    fn add_square(sum: &mut CompensatedSum, v: f64) {
        // v·v exactly, as hi + lo: the rounding error of the square is what
        // a variance of large values with a small spread is made of.
        let (hi, lo) = two_product(v, v);
        sum.add(hi);
        sum.lo += lo;
    }
    #[inline]
    fn merge(sum: &mut CompensatedSum, other: CompensatedSum) {
        sum.merge(other);
    }
    #[inline]
    fn unmerge(sum: &mut CompensatedSum, other: CompensatedSum) {
        sum.unmerge(other);
    }
    #[inline]
    fn min(a: f64, b: f64) -> f64 {
        if b < a {
            b
        } else {
            a
        }
    }
    #[inline]
    fn max(a: f64, b: f64) -> f64 {
        if b > a {
            b
        } else {
            a
        }
    }
    fn sum_to_f64(sum: CompensatedSum) -> f64 {
        sum.value()
    }
    fn sum_is_finite(sum: CompensatedSum) -> bool {
        sum.hi.is_finite() && sum.lo.is_finite()
    }
    fn variance(n: u64, sum: CompensatedSum, squares: CompensatedSum) -> f64 {
        if !(Self::sum_is_finite(sum) && Self::sum_is_finite(squares)) {
            // The sums overflowed: so does the variance (NaN: flagged by the
            // caller, never clamped to a wrong 0).
            return f64::NAN;
        }
        let direct = double_double_variance(n, sum, squares);
        if direct.is_finite() {
            return direct;
        }
        // n·Q or S² overflowed although Q and S did not: the same in units of
        // 2^300 (powers of two scale exactly), then scaled back, which gives
        // infinity only when the variance itself is out of range.
        let scale = 2_f64.powi(-300);
        let scaled = |s: CompensatedSum, by: f64| CompensatedSum {
            hi: s.hi * by,
            lo: s.lo * by,
        };
        double_double_variance(n, scaled(sum, scale), scaled(squares, scale * scale))
            * 2_f64.powi(300)
            * 2_f64.powi(300)
    }
}

/// (n·Q − S²) / (n(n−1)) in double-double arithmetic: when the mean is large
/// against the spread, n·Q and S² nearly cancel, and plain f64 would keep
/// only the rounding error of each. Rounding below zero gives 0; NaN stays.
fn double_double_variance(n: u64, sum: CompensatedSum, squares: CompensatedSum) -> f64 {
    let n_f = n as f64;
    let (q_hi, q_lo) = two_product(n_f, squares.hi);
    let q_lo = q_lo + n_f * squares.lo;
    let (s_sq_hi, s_sq_lo) = two_product(sum.hi, sum.hi);
    let s_sq_lo = s_sq_lo + 2.0 * sum.hi * sum.lo + sum.lo * sum.lo;
    let numerator = (q_hi - s_sq_hi) + (q_lo - s_sq_lo);
    let variance = numerator / (n_f * (n_f - 1.0));
    if variance < 0.0 {
        0.0
    } else {
        variance
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensated_sum_returns_to_zero_after_subtracting_everything() {
        let values = [0.1, 0.2, 0.3, 1e16, -1e16, 0.7];
        let mut sum = CompensatedSum::default();
        let mut parts = Vec::new();
        for v in values {
            let mut part = CompensatedSum::default();
            part.add(v);
            sum.merge(part);
            parts.push(part);
        }
        assert!((sum.value() - 1.3).abs() < 1e-15, "{}", sum.value());
        for part in parts {
            sum.unmerge(part);
        }
        assert_eq!(sum.value().to_bits(), 0.0_f64.to_bits(), "exactly zero");
    }

    #[test]
    fn integer_variance_is_exact() {
        let xs = [2_i64, 4, 4, 4, 5, 5, 7, 9];
        let (mut s, mut q) = (0, 0);
        for x in xs {
            i64::add(&mut s, x);
            i64::add_square(&mut q, x);
        }
        assert!((i64::variance(8, s, q) - 32.0 / 7.0).abs() < 1e-12);
    }

    /// Five squares near `i64::MAX` sum to about 5·2^126: past `i128::MAX`,
    /// and wrapping around to a *positive* number, which the old check
    /// (a negative sum of squares) let through as a wrong variance.
    #[test]
    fn integer_variance_detects_a_sum_of_squares_that_wraps_to_a_positive_number() {
        let xs = [
            i64::MAX,
            i64::MAX - 1,
            i64::MAX,
            i64::MAX - 3,
            i64::MAX - 5,
            0,
        ];
        let wrapped = xs.iter().fold(0_i128, |q, &x| {
            q.wrapping_add(i128::from(x) * i128::from(x))
        });
        assert!(wrapped > 0, "the case the old check missed");
        let (mut s, mut q) = (0, 0);
        for x in xs {
            i64::add(&mut s, x);
            i64::add_square(&mut q, x);
        }
        assert!(!i64::sum_is_finite(q));
        assert!(i64::variance(6, s, q).is_nan(), "flagged, never a number");
        // Merging pane sums detects it too, and the mark is sticky: removing
        // a pane leaves it (the operator recomputes from the panes left).
        let (mut a, mut b) = (0, 0);
        for &x in &xs[..3] {
            i64::add_square(&mut a, x);
        }
        for &x in &xs[3..] {
            i64::add_square(&mut b, x);
        }
        let mut window = a;
        i64::merge(&mut window, b);
        assert!(!i64::sum_is_finite(window));
        i64::unmerge(&mut window, b);
        assert!(!i64::sum_is_finite(window));
        // A sum that fits is exact under merge and unmerge.
        let mut small = 0;
        i64::add_square(&mut small, 3);
        let mut total = small;
        i64::merge(&mut total, b);
        i64::unmerge(&mut total, b);
        assert_eq!(total, 9);
    }

    #[test]
    fn agg_set_parses_names_and_rejects_unknown_ones() {
        let set: AggSet = "count, sum,avg,count".parse().unwrap();
        assert_eq!(set.aggs(), &[Agg::Count, Agg::Sum, Agg::Avg]);
        assert!(matches!(
            "count,median".parse::<AggSet>(),
            Err(Error::UnknownAggregate(name)) if name == "median"
        ));
    }
}
