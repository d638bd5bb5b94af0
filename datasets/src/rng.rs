//! The seeded random generator and the Zipf sampler every data set draws from.

/// A small, fast, seeded generator (xoshiro256++ seeded by `SplitMix64`).
///
/// The same seed gives the same sequence on every platform.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

/// `2^-53`: the spacing of [`Rng::unit`]'s results.
const UNIT: f64 = 1.0 / (1_u64 << 53) as f64;

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
    #[inline]
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
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A uniform float in `[0, 1)`.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * UNIT
    }
}

/// Samples ranks `0..n` with probability proportional to `1 / (rank + 1)^s`
/// (Zipf).
///
/// A sample inverts the cumulative distribution at one [`Rng::unit`] draw:
/// the rank is the number of cumulative probabilities at or below the draw.
/// A guide table (the first rank of each of `2^k` equal slices of `[0, 1)`)
/// narrows the search to a rank or two, so sampling costs about the same
/// for ten or ten million ranks, and gives exactly the ranks a binary search
/// over the whole cumulative table would.
#[derive(Debug, Clone)]
pub struct Zipf {
    /// `thresholds[r]`: the least 53-bit draw `m` (the unit draw `m / 2^53`)
    /// at or above rank `r`'s cumulative probability.
    thresholds: Vec<u64>,
    /// `guide[b]`: how many thresholds are at most `b * 2^(53 - k)`, for
    /// `b` in `0..=2^k`.
    guide: Vec<u32>,
    /// `53 - k`: turns a 53-bit draw into its slice.
    shift: u32,
}

/// Slices per rank, log 2.
const GUIDE_EXTRA_BITS: u32 = 2;
/// Most slices of a guide table: 2^20 (4 MiB of `u32`).
const MAX_GUIDE_BITS: u32 = 20;

/// The cumulative probabilities of ranks `0..n` of Zipf(`s`).
fn cumulative(n: usize, s: f64) -> Vec<f64> {
    let mut total = 0.0;
    let cumulative = (0..n.max(1))
        .map(|rank| {
            total += 1.0 / ((rank + 1) as f64).powf(s);
            total
        })
        .collect::<Vec<f64>>();
    cumulative.into_iter().map(|c| c / total).collect()
}

impl Zipf {
    /// A Zipf distribution over `n > 0` ranks with exponent `s` (0 = uniform).
    #[must_use]
    pub fn new(n: usize, s: f64) -> Self {
        // `c <= m / 2^53` exactly when `ceil(c * 2^53) <= m`: scaling by a
        // power of two is exact.
        let thresholds: Vec<u64> = cumulative(n, s)
            .into_iter()
            .map(|c| (c * (1_u64 << 53) as f64).ceil() as u64)
            .collect();
        let bits = thresholds
            .len()
            .next_power_of_two()
            .trailing_zeros()
            .saturating_add(GUIDE_EXTRA_BITS)
            .min(MAX_GUIDE_BITS);
        let shift = 53 - bits;
        let mut guide = Vec::with_capacity((1 << bits) + 1);
        let mut rank = 0;
        for b in 0..=(1_u64 << bits) {
            while rank < thresholds.len() && thresholds[rank] <= b << shift {
                rank += 1;
            }
            guide.push(rank as u32);
        }
        Self {
            thresholds,
            guide,
            shift,
        }
    }

    /// Number of ranks.
    #[must_use]
    pub fn len(&self) -> usize {
        self.thresholds.len()
    }

    /// Always false: a distribution has at least one rank.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.thresholds.is_empty()
    }

    /// One rank in `0..self.len()`.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> usize {
        // The 53 bits of `rng.unit()`, whose top bits pick the slice.
        let m = rng.next_u64() >> 11;
        let slice = (m >> self.shift) as usize;
        let (mut rank, hi) = (self.guide[slice] as usize, self.guide[slice + 1] as usize);
        // Ranks below `rank` are at most the slice's start (so at most the
        // draw), ranks from `hi` on are above its end (so above the draw).
        rank += self.thresholds[rank..hi].partition_point(|&t| t <= m);
        rank.min(self.thresholds.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_favours_low_ranks() {
        let zipf = Zipf::new(1_000, 1.2);
        let mut rng = Rng::new(3);
        let hits = (0..10_000).filter(|_| zipf.sample(&mut rng) == 0).count();
        assert!(hits > 1_000, "rank 0 drawn {hits} times");
    }

    #[test]
    fn guided_sampling_equals_a_full_binary_search() {
        for (n, s) in [
            (1, 1.0),
            (2, 0.0),
            (7, 0.5),
            (1_000, 1.0),
            (10_000, 1.3),
            (3_000_000, 0.9),
        ] {
            let zipf = Zipf::new(n, s);
            let cumulative = cumulative(n, s);
            let (mut a, mut b) = (Rng::new(n as u64), Rng::new(n as u64));
            for _ in 0..20_000 {
                let u = b.unit();
                let expected = cumulative.partition_point(|&c| c <= u).min(n - 1);
                assert_eq!(zipf.sample(&mut a), expected, "n = {n}, s = {s}, u = {u}");
            }
        }
    }

    #[test]
    fn uniform_zipf_covers_all_ranks() {
        let zipf = Zipf::new(10, 0.0);
        let mut rng = Rng::new(1);
        let mut seen = [0_u32; 10];
        for _ in 0..10_000 {
            seen[zipf.sample(&mut rng)] += 1;
        }
        assert!(seen.iter().all(|&c| (800..1_200).contains(&c)), "{seen:?}");
    }
}
