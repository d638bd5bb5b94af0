//! Pre-aggregation: dense per-key accumulators and the sparse partial
//! aggregates they drain into.

use crate::aggregate::Numeric;
use crate::checkpoint::codec::{CodecError, Decoder, Encoder, Persist};

/// Which running aggregates a job keeps, decided once per job so that the
/// per-event loops carry no per-event branches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub sum: bool,
    pub squares: bool,
    pub extremes: bool,
}

/// Sparse partial aggregates, one entry per key (struct of arrays). Columns a
/// [`Layout`] does not need stay empty.
#[derive(Debug)]
pub(crate) struct Partials<V: Numeric> {
    pub keys: Vec<u32>,
    pub counts: Vec<u64>,
    pub sums: Vec<V::Sum>,
    pub squares: Vec<V::Sum>,
    pub mins: Vec<V>,
    pub maxs: Vec<V>,
}

impl<V: Numeric> Default for Partials<V> {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            counts: Vec::new(),
            sums: Vec::new(),
            squares: Vec::new(),
            mins: Vec::new(),
            maxs: Vec::new(),
        }
    }
}

impl<V: Numeric> Partials<V> {
    pub fn with_capacity(n: usize, layout: Layout) -> Self {
        let cap = |needed: bool| if needed { n } else { 0 };
        Self {
            keys: Vec::with_capacity(n),
            counts: Vec::with_capacity(n),
            sums: Vec::with_capacity(cap(layout.sum)),
            squares: Vec::with_capacity(cap(layout.squares)),
            mins: Vec::with_capacity(cap(layout.extremes)),
            maxs: Vec::with_capacity(cap(layout.extremes)),
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Empties the lists, keeping their memory for reuse.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.counts.clear();
        self.sums.clear();
        self.squares.clear();
        self.mins.clear();
        self.maxs.clear();
    }

    /// Takes the min/max columns once they have been handed to the sliding
    /// structure: a stored pane only needs what inverse-reduce subtracts.
    pub fn take_extremes(&mut self) -> (Vec<V>, Vec<V>) {
        (
            std::mem::take(&mut self.mins),
            std::mem::take(&mut self.maxs),
        )
    }
}

/// Dense accumulators indexed by a key index, plus the list of touched
/// indices so that draining costs O(touched), not O(capacity).
///
/// # Invariants
///
/// - `touched` lists exactly the indices with `counts[i] > 0`, each once;
/// - an untouched index holds the identity of every aggregate (zero sums,
///   `MIN_IDENTITY`/`MAX_IDENTITY` extremes), so the per-event loop needs no
///   first-value branch;
/// - `sums`, `squares`, `mins`, `maxs` are as long as `counts` when the layout
///   needs them and empty otherwise.
pub(crate) struct DenseAcc<V: Numeric> {
    layout: Layout,
    counts: Vec<u64>,
    sums: Vec<V::Sum>,
    squares: Vec<V::Sum>,
    mins: Vec<V>,
    maxs: Vec<V>,
    touched: Vec<u32>,
}

impl<V: Numeric> DenseAcc<V> {
    pub fn new(layout: Layout) -> Self {
        Self {
            layout,
            counts: Vec::new(),
            sums: Vec::new(),
            squares: Vec::new(),
            mins: Vec::new(),
            maxs: Vec::new(),
            touched: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.touched.is_empty()
    }

    /// Makes index `len - 1` addressable.
    pub fn reserve_index(&mut self, len: usize) {
        if len <= self.counts.len() {
            return;
        }
        // Grow geometrically: dictionaries grow a little with every batch.
        let len = len.max(self.counts.len() * 3 / 2).max(64);
        self.counts.resize(len, 0);
        if self.layout.sum {
            self.sums.resize(len, V::Sum::default());
        }
        if self.layout.squares {
            self.squares.resize(len, V::Sum::default());
        }
        if self.layout.extremes {
            self.mins.resize(len, V::MIN_IDENTITY);
            self.maxs.resize(len, V::MAX_IDENTITY);
        }
    }

    /// Adds one event per key, with its value when there is a value column.
    pub fn scatter(&mut self, keys: &[u32], values: Option<&[V]>) {
        let Some(&max) = keys.iter().max() else {
            return;
        };
        self.reserve_index(max as usize + 1);
        let Layout {
            sum,
            squares,
            extremes,
        } = self.layout;
        match values {
            None => self.scatter_counts(keys),
            Some(values) => match (sum, squares, extremes) {
                (false, false, false) => self.scatter_counts(keys),
                (true, false, false) => self.scatter_values::<true, false, false>(keys, values),
                (true, true, false) => self.scatter_values::<true, true, false>(keys, values),
                (false, false, true) => self.scatter_values::<false, false, true>(keys, values),
                (true, false, true) => self.scatter_values::<true, false, true>(keys, values),
                (true, true, true) => self.scatter_values::<true, true, true>(keys, values),
                (false, true, _) => unreachable!("squares are only kept with sums"),
            },
        }
    }

    fn scatter_counts(&mut self, keys: &[u32]) {
        // Locals, not `self.…`: otherwise every push to `touched` makes the
        // compiler reload each vector's pointer per event.
        let (counts, touched) = (&mut self.counts[..], &mut self.touched);
        for &k in keys {
            let count = &mut counts[k as usize];
            if *count == 0 {
                touched.push(k);
            }
            *count += 1;
        }
    }

    fn scatter_values<const SUM: bool, const SQUARES: bool, const EXTREMES: bool>(
        &mut self,
        keys: &[u32],
        values: &[V],
    ) {
        debug_assert_eq!(keys.len(), values.len());
        let counts = &mut self.counts[..];
        let sums = &mut self.sums[..];
        let squares = &mut self.squares[..];
        let mins = &mut self.mins[..];
        let maxs = &mut self.maxs[..];
        let touched = &mut self.touched;
        for (&k, &v) in keys.iter().zip(values) {
            let i = k as usize;
            let count = &mut counts[i];
            if *count == 0 {
                touched.push(k);
            }
            *count += 1;
            if SUM {
                V::add(&mut sums[i], v);
            }
            if SQUARES {
                V::add_square(&mut squares[i], v);
            }
            if EXTREMES {
                mins[i] = V::min(mins[i], v);
                maxs[i] = V::max(maxs[i], v);
            }
        }
    }

    /// Merges sparse partials, `index_of` mapping a key id to this
    /// accumulator's index.
    pub fn merge(&mut self, partials: &Partials<V>, index_of: impl Fn(u32) -> usize) {
        let layout = self.layout;
        for (j, &key) in partials.keys.iter().enumerate() {
            let i = index_of(key);
            if i >= self.counts.len() {
                self.reserve_index(i + 1);
            }
            if self.counts[i] == 0 {
                self.touched.push(i as u32);
            }
            self.counts[i] += partials.counts[j];
            if layout.sum {
                V::merge(&mut self.sums[i], partials.sums[j]);
            }
            if layout.squares {
                V::merge(&mut self.squares[i], partials.squares[j]);
            }
            if layout.extremes {
                self.mins[i] = V::min(self.mins[i], partials.mins[j]);
                self.maxs[i] = V::max(self.maxs[i], partials.maxs[j]);
            }
        }
    }

    /// Moves every touched entry out (in touched order) into `out[bucket(index)]`
    /// with key `key_of(index)`, resetting the entries to their identities.
    pub fn drain(
        &mut self,
        out: &mut [Partials<V>],
        bucket: impl Fn(u32) -> usize,
        key_of: impl Fn(u32) -> u32,
    ) {
        let layout = self.layout;
        for &index in &self.touched {
            let i = index as usize;
            let part = &mut out[bucket(index)];
            part.keys.push(key_of(index));
            part.counts.push(std::mem::take(&mut self.counts[i]));
            if layout.sum {
                part.sums.push(std::mem::take(&mut self.sums[i]));
            }
            if layout.squares {
                part.squares.push(std::mem::take(&mut self.squares[i]));
            }
            if layout.extremes {
                part.mins
                    .push(std::mem::replace(&mut self.mins[i], V::MIN_IDENTITY));
                part.maxs
                    .push(std::mem::replace(&mut self.maxs[i], V::MAX_IDENTITY));
            }
        }
        self.touched.clear();
    }

    /// The indices with a non-identity entry, in the order first touched.
    pub fn touched(&self) -> &[u32] {
        &self.touched
    }

    /// Number of touched entries.
    pub fn touched_len(&self) -> usize {
        self.touched.len()
    }
}

/// Column lengths of a restored state: each `n` long, or empty when the
/// layout does not keep it.
fn check_columns(n: usize, columns: &[(usize, bool)]) -> Result<(), CodecError> {
    if columns
        .iter()
        .all(|&(len, kept)| len == if kept { n } else { 0 })
    {
        Ok(())
    } else {
        Err(CodecError::Invalid(
            "aggregate columns of lengths that do not match".into(),
        ))
    }
}

impl<V: Numeric> Partials<V> {
    /// Appends the partials to a checkpoint.
    pub fn save(&self, e: &mut Encoder) {
        self.keys.save(e);
        self.counts.save(e);
        self.sums.save(e);
        self.squares.save(e);
        self.mins.save(e);
        self.maxs.save(e);
    }

    /// Reads partials saved with `layout`'s columns (min/max may have been
    /// handed to the sliding structure: then they are empty).
    pub fn load(d: &mut Decoder<'_>, layout: Layout) -> Result<Self, CodecError> {
        let partials = Self {
            keys: Vec::load(d)?,
            counts: Vec::load(d)?,
            sums: Vec::load(d)?,
            squares: Vec::load(d)?,
            mins: Vec::load(d)?,
            maxs: Vec::load(d)?,
        };
        let n = partials.keys.len();
        let extremes = layout.extremes && !partials.mins.is_empty();
        check_columns(
            n,
            &[
                (partials.counts.len(), true),
                (partials.sums.len(), layout.sum),
                (partials.squares.len(), layout.squares),
                (partials.mins.len(), extremes),
                (partials.maxs.len(), extremes),
            ],
        )?;
        Ok(partials)
    }
}

impl<V: Numeric> DenseAcc<V> {
    /// Appends the accumulators to a checkpoint.
    pub fn save(&self, e: &mut Encoder) {
        self.counts.save(e);
        self.sums.save(e);
        self.squares.save(e);
        self.mins.save(e);
        self.maxs.save(e);
        self.touched.save(e);
    }

    /// Reads accumulators saved by an operator of `layout`.
    pub fn load(d: &mut Decoder<'_>, layout: Layout) -> Result<Self, CodecError> {
        let acc = Self {
            layout,
            counts: Vec::load(d)?,
            sums: Vec::load(d)?,
            squares: Vec::load(d)?,
            mins: Vec::load(d)?,
            maxs: Vec::load(d)?,
            touched: Vec::load(d)?,
        };
        let n = acc.counts.len();
        check_columns(
            n,
            &[
                (acc.sums.len(), layout.sum),
                (acc.squares.len(), layout.squares),
                (acc.mins.len(), layout.extremes),
                (acc.maxs.len(), layout.extremes),
            ],
        )?;
        if acc.touched.iter().any(|&i| i as usize >= n) {
            return Err(CodecError::Invalid(
                "a touched index past the accumulators".into(),
            ));
        }
        Ok(acc)
    }
}
