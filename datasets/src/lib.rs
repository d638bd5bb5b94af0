//! Deterministic, seeded generators of event streams for the engine's tests
//! and benchmarks. The same seed gives the same stream on every machine.
//!
//! ```
//! use datasets::{EventConfig, Rng};
//! let events = datasets::events(&EventConfig { keys: 100, events: 1_000, ..EventConfig::default() });
//! assert_eq!(events.keys.len(), 1_000);
//! assert!(events.keys.iter().all(|&k| k < 100));
//! assert_eq!(Rng::new(7).next_u64(), Rng::new(7).next_u64());
//! ```

/// A small, fast, seeded generator (xoshiro256++ seeded by `SplitMix64`).
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator seeded with `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform integer in `0..n` (`n > 0`), by Lemire's multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1_u64 << 53) as f64)
    }
}

/// Samples ranks `0..n` with probability proportional to `1 / (rank + 1)^s`
/// (Zipf), by binary search in a precomputed cumulative table.
#[derive(Debug, Clone)]
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    /// A Zipf distribution over `n > 0` ranks with exponent `s` (0 = uniform).
    #[must_use]
    pub fn new(n: usize, s: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (0..n.max(1))
            .map(|rank| {
                total += 1.0 / ((rank + 1) as f64).powf(s);
                total
            })
            .collect::<Vec<f64>>();
        let cumulative = cumulative.into_iter().map(|c| c / total).collect();
        Self { cumulative }
    }

    /// One rank.
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cumulative
            .partition_point(|&c| c <= u)
            .min(self.cumulative.len() - 1)
    }
}

/// Parameters of [`events`].
#[derive(Debug, Clone)]
pub struct EventConfig {
    /// Seed of the generator.
    pub seed: u64,
    /// Number of events.
    pub events: usize,
    /// Number of distinct keys (ids `0..keys`).
    pub keys: usize,
    /// Zipf exponent of key popularity; 0 is uniform.
    pub skew: f64,
    /// Events per second of event time.
    pub rate: u64,
    /// Time of the first event, ms.
    pub start_ms: i64,
    /// Values are uniform integers in `-value_range..=value_range`.
    pub value_range: i64,
}

impl Default for EventConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            events: 1_000_000,
            keys: 10_000,
            skew: 0.0,
            rate: 1_000_000,
            start_ms: 0,
            value_range: 1_000,
        }
    }
}

/// Columnar events: `times[i]`, `keys[i]`, `values[i]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Events {
    /// Event times, ms, non-decreasing.
    pub times: Vec<i64>,
    /// Key ids.
    pub keys: Vec<u32>,
    /// Integer values.
    pub values: Vec<i64>,
}

/// Generates `config.events` events in time order.
#[must_use]
pub fn events(config: &EventConfig) -> Events {
    let mut rng = Rng::new(config.seed);
    let zipf = (config.skew > 0.0).then(|| Zipf::new(config.keys, config.skew));
    let span = 2 * config.value_range.max(0) as u64 + 1;
    let mut out = Events {
        times: Vec::with_capacity(config.events),
        keys: Vec::with_capacity(config.events),
        values: Vec::with_capacity(config.events),
    };
    let rate = config.rate.max(1);
    for i in 0..config.events as u64 {
        out.times.push(config.start_ms + (i * 1_000 / rate) as i64);
        let key = match &zipf {
            Some(z) => z.sample(&mut rng),
            None => rng.below(config.keys.max(1) as u64) as usize,
        };
        out.keys.push(key as u32);
        out.values
            .push(rng.below(span) as i64 - config.value_range.max(0));
    }
    out
}

/// Lines of Zipf-distributed words over a fixed vocabulary (`w0`, `w1`, …),
/// the input of word-count jobs.
///
/// ```
/// let mut words = datasets::WordLines::new(1, 1_000, 1.0, 8);
/// let lines = words.lines(3);
/// assert_eq!(lines.len(), 3);
/// assert!(lines.iter().all(|l| l.split(' ').count() == 8));
/// ```
#[derive(Debug, Clone)]
pub struct WordLines {
    rng: Rng,
    zipf: Zipf,
    vocabulary: Vec<String>,
    words_per_line: usize,
}

impl WordLines {
    /// A generator over `vocabulary` words with Zipf exponent `skew`.
    #[must_use]
    pub fn new(seed: u64, vocabulary: usize, skew: f64, words_per_line: usize) -> Self {
        Self {
            rng: Rng::new(seed),
            zipf: Zipf::new(vocabulary.max(1), skew),
            vocabulary: (0..vocabulary.max(1)).map(|i| format!("w{i}")).collect(),
            words_per_line: words_per_line.max(1),
        }
    }

    /// The next line.
    pub fn line(&mut self) -> String {
        let mut line = String::with_capacity(self.words_per_line * 6);
        for i in 0..self.words_per_line {
            if i > 0 {
                line.push(' ');
            }
            line.push_str(&self.vocabulary[self.zipf.sample(&mut self.rng)]);
        }
        line
    }

    /// The next `n` lines.
    pub fn lines(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.line()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_other_seed_other_stream() {
        let config = EventConfig {
            events: 1_000,
            ..EventConfig::default()
        };
        assert_eq!(events(&config), events(&config));
        let other = EventConfig {
            seed: 1,
            ..config.clone()
        };
        assert_ne!(events(&config).keys, events(&other).keys);
    }

    #[test]
    fn zipf_favours_low_ranks() {
        let zipf = Zipf::new(1_000, 1.2);
        let mut rng = Rng::new(3);
        let hits = (0..10_000).filter(|_| zipf.sample(&mut rng) == 0).count();
        assert!(hits > 1_000, "rank 0 drawn {hits} times");
    }
}
