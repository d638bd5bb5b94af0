//! Two-stacks sliding aggregation: O(1) amortized insert, evict and query for
//! any associative operator, with no inverse needed.

/// A FIFO of tagged values that answers "combine of everything inside" in O(1).
///
/// # Invariants
///
/// - Tags are non-decreasing from the oldest to the newest value.
/// - `front` holds the oldest values, oldest on top (at the end of the `Vec`),
///   each with the combination of itself and every value below it (all newer
///   values in `front`).
/// - `back` holds the newest values in arrival order and `back_agg` is their
///   combination, `None` when `back` is empty.
///
/// A query combines `front`'s top aggregate with `back_agg`. Eviction pops
/// `front`; when `front` runs dry, `back` is flipped onto it, computing the
/// suffix aggregates once. Each value is moved once, so every operation is
/// O(1) amortized (Tangwongsan et al., DEBS 2017).
///
/// ```
/// use engine::window::TwoStacks;
/// let max = |a: &i64, b: &i64| *a.max(b);
/// let mut w = TwoStacks::default();
/// for (tag, v) in [(0, 3), (1, 9), (2, 4)] {
///     w.push(tag, v, max);
/// }
/// assert_eq!(w.query(max), Some(9));
/// w.evict_through(1, max); // drop tags 0 and 1
/// assert_eq!(w.query(max), Some(4));
/// ```
#[derive(Debug, Clone)]
pub struct TwoStacks<T> {
    front: Vec<(i64, T)>,
    back: Vec<(i64, T)>,
    back_agg: Option<T>,
}

impl<T> Default for TwoStacks<T> {
    fn default() -> Self {
        Self {
            front: Vec::new(),
            back: Vec::new(),
            back_agg: None,
        }
    }
}

impl<T: Clone> TwoStacks<T> {
    /// Appends `value` with `tag`; a value with the same tag as the newest one
    /// is combined into it instead of stored beside it.
    pub fn push(&mut self, tag: i64, value: T, combine: impl Fn(&T, &T) -> T) {
        if let (Some((last_tag, last)), Some(agg)) = (self.back.last_mut(), &self.back_agg) {
            debug_assert!(*last_tag <= tag, "tags must not decrease");
            if *last_tag == tag {
                *last = combine(last, &value);
                self.back_agg = Some(combine(agg, &value));
                return;
            }
        }
        self.back_agg = Some(match &self.back_agg {
            Some(agg) => combine(agg, &value),
            None => value.clone(),
        });
        self.back.push((tag, value));
    }

    /// Removes every value whose tag is `<= tag`.
    pub fn evict_through(&mut self, tag: i64, combine: impl Fn(&T, &T) -> T) {
        loop {
            if self.front.is_empty() {
                match self.back.first() {
                    Some(&(oldest, _)) if oldest <= tag => self.flip(&combine),
                    _ => return,
                }
            }
            match self.front.last() {
                Some(&(oldest, _)) if oldest <= tag => {
                    self.front.pop();
                }
                _ => return,
            }
        }
    }

    /// The combination of every value, oldest first; `None` when empty.
    #[must_use]
    pub fn query(&self, combine: impl Fn(&T, &T) -> T) -> Option<T> {
        match (self.front.last(), &self.back_agg) {
            (Some((_, front)), Some(back)) => Some(combine(front, back)),
            (Some((_, front)), None) => Some(front.clone()),
            (None, back) => back.clone(),
        }
    }

    /// Number of values held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.front.len() + self.back.len()
    }

    /// Whether nothing is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.front.is_empty() && self.back.is_empty()
    }

    fn flip(&mut self, combine: &impl Fn(&T, &T) -> T) {
        debug_assert!(self.front.is_empty());
        self.back_agg = None;
        // Walk from newest to oldest so each front entry aggregates itself and
        // everything newer, oldest ending on top.
        let mut agg: Option<T> = None;
        for (tag, value) in self.back.drain(..).rev() {
            let combined = match &agg {
                Some(newer) => combine(&value, newer),
                None => value.clone(),
            };
            agg = Some(combined.clone());
            self.front.push((tag, combined));
        }
    }
}

impl<T: Clone> TwoStacks<T> {
    /// The stored values (front stack, back stack, back aggregate) for a
    /// checkpoint: numbers go to `numbers`, values to `values`.
    pub(crate) fn export(&self, numbers: &mut Vec<i64>, values: &mut Vec<T>) {
        for stack in [&self.front, &self.back] {
            numbers.push(stack.len() as i64);
            for (tag, value) in stack {
                numbers.push(*tag);
                values.push(value.clone());
            }
        }
        numbers.push(i64::from(self.back_agg.is_some()));
        values.extend(self.back_agg.iter().cloned());
    }

    /// The stacks [`export`](Self::export) wrote, read back in order.
    pub(crate) fn import(
        numbers: &mut impl Iterator<Item = i64>,
        values: &mut impl Iterator<Item = T>,
    ) -> Option<Self> {
        let mut stacks = [Vec::new(), Vec::new()];
        for stack in &mut stacks {
            let n = usize::try_from(numbers.next()?).ok()?;
            for _ in 0..n {
                stack.push((numbers.next()?, values.next()?));
            }
        }
        let [front, back] = stacks;
        let back_agg = match numbers.next()? {
            0 => None,
            1 => Some(values.next()?),
            _ => return None,
        };
        Some(Self {
            front,
            back,
            back_agg,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_brute_force_sliding_max_and_a_non_commutative_concat() {
        let max = |a: &i64, b: &i64| *a.max(b);
        let concat = |a: &String, b: &String| format!("{a}{b}");
        let mut w = TwoStacks::default();
        let mut s = TwoStacks::default();
        let mut all: Vec<(i64, i64)> = Vec::new();
        let mut x = 7_i64;
        for tag in 0..500 {
            x = (x * 1_103_515_245 + 12_345) % 1_000_003;
            w.push(tag / 2, x, max);
            s.push(tag / 2, (tag / 2).to_string(), concat);
            all.push((tag / 2, x));
            let evict = tag / 2 - 17;
            w.evict_through(evict, max);
            s.evict_through(evict, concat);
            let live: Vec<_> = all.iter().filter(|(t, _)| *t > evict).collect();
            assert_eq!(w.query(max), live.iter().map(|(_, v)| *v).max());
            // Same-tag pushes are combined, so every push shows once, in order.
            let tags: Vec<i64> = live.iter().map(|(t, _)| *t).collect();
            let expected: String = tags.iter().map(ToString::to_string).collect();
            assert_eq!(s.query(concat).unwrap_or_default(), expected);
        }
    }
}
