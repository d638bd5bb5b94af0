//! A brute-force window oracle: for every window end, scan every event.
//! Deliberately naive, sharing no code with the engine.

use std::collections::BTreeMap;

/// Which keys a window's output holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Keys with at least one event in the window.
    Live,
    /// Every key with an event before the window's end (Spark's inverse
    /// reduce without a filter).
    Spark,
}

/// One event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event<V> {
    pub time: i64,
    pub key: u32,
    pub value: V,
}

/// Exact aggregates of one key in one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub count: u64,
    /// Exact integer sum, when the values are integers.
    pub int_sum: Option<i128>,
    /// Correctly rounded float sum.
    pub sum: f64,
    /// Sum of absolute values, the scale of rounding errors.
    pub abs_sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub avg: Option<f64>,
    pub variance: Option<f64>,
}

/// The value types the oracle understands.
pub trait OracleValue: Copy {
    fn as_f64(self) -> f64;
    fn as_i128(self) -> Option<i128>;
}

impl OracleValue for i64 {
    fn as_f64(self) -> f64 {
        self as f64
    }
    fn as_i128(self) -> Option<i128> {
        Some(i128::from(self))
    }
}

impl OracleValue for f64 {
    fn as_f64(self) -> f64 {
        self
    }
    fn as_i128(self) -> Option<i128> {
        None
    }
}

/// Every window `(end, rows by key)` a finished stream emits, with Spark's
/// semantics: ends are the multiples of `slide` after the first event, up to
/// the last window holding an event; a window covers `[end − window, end)`.
pub fn windows<V: OracleValue>(
    events: &[Event<V>],
    window: i64,
    slide: i64,
    mode: Mode,
) -> Vec<(i64, BTreeMap<u32, Row>)> {
    let Some(first) = events.iter().map(|e| e.time).min() else {
        return Vec::new();
    };
    let last = events.iter().map(|e| e.time).max().unwrap();
    let mut out = Vec::new();
    let mut end = (first.div_euclid(slide) + 1) * slide;
    while end - window <= last {
        let mut rows = BTreeMap::new();
        let seen: Vec<u32> = match mode {
            Mode::Live => Vec::new(),
            Mode::Spark => events
                .iter()
                .filter(|e| e.time < end)
                .map(|e| e.key)
                .collect(),
        };
        for key in seen {
            rows.insert(key, aggregate::<V>(&[]));
        }
        let mut by_key: BTreeMap<u32, Vec<V>> = BTreeMap::new();
        for e in events
            .iter()
            .filter(|e| e.time >= end - window && e.time < end)
        {
            by_key.entry(e.key).or_default().push(e.value);
        }
        for (key, values) in by_key {
            rows.insert(key, aggregate(&values));
        }
        out.push((end, rows));
        end += slide;
    }
    out
}

fn aggregate<V: OracleValue>(values: &[V]) -> Row {
    let floats: Vec<f64> = values.iter().map(|v| v.as_f64()).collect();
    let n = values.len();
    let int_sum = values.iter().map(|v| v.as_i128()).sum::<Option<i128>>();
    let sum = match int_sum {
        Some(s) => s as f64,
        None => fsum(&floats),
    };
    let avg = (n > 0).then(|| sum / n as f64);
    let variance = (n > 1).then(|| {
        if let Some(s) = int_sum {
            let q: i128 = values.iter().map(|v| v.as_i128().unwrap().pow(2)).sum();
            (n as i128 * q - s * s) as f64 / (n as f64 * (n - 1) as f64)
        } else {
            let mean = sum / n as f64;
            let deviations: Vec<f64> = floats.iter().map(|x| (x - mean) * (x - mean)).collect();
            fsum(&deviations) / (n - 1) as f64
        }
    });
    Row {
        count: n as u64,
        int_sum: if n == 0 && int_sum.is_none() {
            None
        } else {
            int_sum
        },
        sum,
        abs_sum: floats.iter().map(|x| x.abs()).sum(),
        min: floats.iter().copied().reduce(f64::min),
        max: floats.iter().copied().reduce(f64::max),
        avg,
        variance,
    }
}

/// Correctly rounded sum (Shewchuk's algorithm, as Python's `math.fsum`).
pub fn fsum(values: &[f64]) -> f64 {
    let mut partials: Vec<f64> = Vec::new();
    for &x in values {
        let mut x = x;
        let mut i = 0;
        for j in 0..partials.len() {
            let mut y = partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                partials[i] = lo;
                i += 1;
            }
            x = hi;
        }
        partials.truncate(i);
        partials.push(x);
    }
    partials.iter().rev().fold(0.0, |acc, &p| acc + p)
}

#[test]
fn fsum_is_exact_where_naive_summation_is_not() {
    let values = [1e16, 1.0, -1e16, 1.0];
    assert_eq!(fsum(&values), 2.0);
    assert_ne!(values.iter().sum::<f64>(), 2.0);
}
