//! Sliding min and max of one key: two monotonic deques.

use std::collections::VecDeque;

use crate::aggregate::Numeric;
use crate::checkpoint::codec::{CodecError, Decoder, Encoder, Persist};

/// The sliding minimum and maximum of a FIFO of tagged `(min, max)` pairs.
///
/// # Invariants
///
/// - `maxs` holds strictly decreasing values with increasing tags: every
///   value dominated by a newer one is dropped on push, since it can never be
///   the maximum again; `mins` likewise, strictly increasing;
/// - the front of each deque is the extreme of every value pushed with a tag
///   greater than the last evicted one.
///
/// Each value is pushed and popped at most once: O(1) amortized per pane and
/// key, whatever the window length. Unlike [`super::TwoStacks`], which it
/// replaces for the built-in min/max, it keeps only the values that can still
/// be an extreme (about `ln(W/S)` of them for random data instead of `W/S`),
/// so the state of 10 000 keys stays in cache even for W/S = 3600, and no
/// slide has to flip a stack.
///
/// ```
/// use engine::window::Extremes;
/// let mut w = Extremes::default();
/// w.push(0, 3_i64, 3);
/// w.push(1, 9, 9);
/// w.push(2, 4, 4);
/// assert_eq!(w.query(), Some((3, 9)));
/// w.evict_through(1);
/// assert_eq!(w.query(), Some((4, 4)));
/// ```
#[derive(Debug, Clone)]
pub struct Extremes<V> {
    mins: VecDeque<(i64, V)>,
    maxs: VecDeque<(i64, V)>,
}

impl<V> Default for Extremes<V> {
    fn default() -> Self {
        Self {
            mins: VecDeque::new(),
            maxs: VecDeque::new(),
        }
    }
}

impl<V: Numeric> Extremes<V> {
    /// Appends a pane's `(min, max)` with tag `tag` (tags must not decrease).
    pub fn push(&mut self, tag: i64, min: V, max: V) {
        while self.maxs.back().is_some_and(|&(_, v)| v <= max) {
            self.maxs.pop_back();
        }
        self.maxs.push_back((tag, max));
        while self.mins.back().is_some_and(|&(_, v)| v >= min) {
            self.mins.pop_back();
        }
        self.mins.push_back((tag, min));
    }

    /// Forgets every pane whose tag is `<= tag`.
    pub fn evict_through(&mut self, tag: i64) {
        while self.maxs.front().is_some_and(|&(t, _)| t <= tag) {
            self.maxs.pop_front();
        }
        while self.mins.front().is_some_and(|&(t, _)| t <= tag) {
            self.mins.pop_front();
        }
    }

    /// `(min, max)` of the panes held; `None` when there is none.
    #[must_use]
    pub fn query(&self) -> Option<(V, V)> {
        Some((self.mins.front()?.1, self.maxs.front()?.1))
    }
}

impl<V: Numeric> Persist for Extremes<V> {
    fn save(&self, e: &mut Encoder) {
        self.mins.save(e);
        self.maxs.save(e);
    }

    fn load(d: &mut Decoder<'_>) -> Result<Self, CodecError> {
        Ok(Self {
            mins: VecDeque::load(d)?,
            maxs: VecDeque::load(d)?,
        })
    }
}

impl<V: Numeric> Extremes<V> {
    /// Appends the deques of many keys as a few columns (lengths, tags,
    /// values): one pass, no allocation a key.
    pub(crate) fn save_all(all: &[Self], e: &mut Encoder) {
        fn side<V>(x: &Extremes<V>, maxs: bool) -> &VecDeque<(i64, V)> {
            if maxs {
                &x.maxs
            } else {
                &x.mins
            }
        }
        for maxs in [false, true] {
            let lengths: Vec<u32> = all.iter().map(|x| side(x, maxs).len() as u32).collect();
            let entries: Vec<(i64, V)> = all
                .iter()
                .flat_map(|x| side(x, maxs).iter().copied())
                .collect();
            lengths.save(e);
            entries.save(e);
        }
    }

    /// Reads what [`save_all`](Self::save_all) wrote.
    pub(crate) fn load_all(d: &mut Decoder<'_>) -> Result<Vec<Self>, CodecError> {
        let mut sides = Vec::with_capacity(2);
        for _ in 0..2 {
            let lengths = Vec::<u32>::load(d)?;
            let entries = Vec::<(i64, V)>::load(d)?;
            let total: u64 = lengths.iter().map(|&n| u64::from(n)).sum();
            if total != entries.len() as u64 {
                return Err(CodecError::Invalid(
                    "min/max deques of the wrong length".into(),
                ));
            }
            let mut at = 0;
            let deques: Vec<VecDeque<(i64, V)>> = lengths
                .iter()
                .map(|&n| {
                    let deque = entries[at..at + n as usize].iter().copied().collect();
                    at += n as usize;
                    deque
                })
                .collect();
            sides.push(deques);
        }
        let maxs = sides.pop().expect("two sides");
        let mins = sides.pop().expect("two sides");
        if mins.len() != maxs.len() {
            return Err(CodecError::Invalid(
                "min and max deques of unequal counts".into(),
            ));
        }
        Ok(mins
            .into_iter()
            .zip(maxs)
            .map(|(mins, maxs)| Self { mins, maxs })
            .collect())
    }
}
