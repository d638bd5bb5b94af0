//! Dictionary encoding of keys: strings to dense `u32` ids and back, with
//! ids released when their keys are no longer held anywhere.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::error::{Error, Result};

/// A shared dictionary that maps key strings to dense `u32` ids and back.
///
/// Cloning is cheap: clones share one dictionary. Dense ids let window state
/// be indexed by id instead of hashed per event.
///
/// # Epochs: how ids are released and stay unambiguous
///
/// A stream that runs for a month sees far more keys than it holds at any
/// moment, so ids are not forever. The owner of the dictionary (a job, a
/// DStream operator) calls [`retain`](Self::retain) at a point where no id
/// is in flight outside the state it marks as held — between two batches,
/// after every window row emitted so far has been turned back into strings.
/// Every other key is removed, its id goes to a free list, and interning
/// reuses free ids (lowest-numbered last freed first) before growing, so the
/// id range stays within the peak number of keys held at once.
///
/// Each `retain` that frees anything starts a new **epoch**
/// ([`epoch`](Self::epoch)). An id names the same key for the whole of an
/// epoch; caches of ids (the parsers' per-thread key caches, the lookup
/// mapper) remember the epoch they were filled in and start afresh when it
/// changes. A freed id reads back as `None` until it is given again.
///
/// ```
/// let dict = engine::Dictionary::new();
/// let a = dict.intern("apple")?;
/// assert_eq!(dict.intern("pear")?, a + 1);
/// assert_eq!(dict.intern("apple")?, a);
/// assert_eq!(dict.read().get(a), Some("apple"));
/// // Only "pear" is still held: "apple" leaves, and its id is reused.
/// let pear = dict.lookup("pear").unwrap();
/// assert_eq!(dict.retain(|id| id == pear), 1);
/// assert_eq!(dict.read().get(a), None);
/// assert_eq!(dict.intern("plum")?, a);
/// # Ok::<(), engine::Error>(())
/// ```
#[derive(Clone)]
pub struct Dictionary {
    inner: Arc<Shared>,
}

struct Shared {
    interner: RwLock<Interner>,
    /// Bumped by every [`Dictionary::retain`] that frees an id; read without
    /// the lock by the caches on the ingestion path.
    epoch: AtomicU64,
    /// Unique for the life of the process, unlike an address: caches of
    /// ids (see `ingest`) are keyed by it.
    id: u64,
}

impl Default for Dictionary {
    fn default() -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Self {
            inner: Arc::new(Shared {
                interner: RwLock::default(),
                epoch: AtomicU64::new(0),
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            }),
        }
    }
}

/// The strings by id (`None` for a free id), a hash table of the ids of the
/// live keys, and the free ids.
///
/// Invariants: `table` holds exactly the ids `i` with `strings[i]` set;
/// `free` holds exactly the ids with `strings[i] == None`; `live` is the
/// number of ids in `table`.
#[derive(Default)]
struct Interner {
    hasher: DefaultHashBuilder,
    table: HashTable<u32>,
    strings: Vec<Option<Box<str>>>,
    free: Vec<u32>,
    live: usize,
}

impl Interner {
    fn string(&self, id: u32) -> Option<&str> {
        self.strings.get(id as usize)?.as_deref()
    }

    fn find(&self, hash: u64, key: &str) -> Option<u32> {
        self.table
            .find(hash, |&id| self.string(id) == Some(key))
            .copied()
    }

    fn intern(&mut self, key: &str) -> Result<u32> {
        let hash = self.hasher.hash_one(key);
        if let Some(id) = self.find(hash, key) {
            return Ok(id);
        }
        let id = if let Some(id) = self.free.pop() {
            self.strings[id as usize] = Some(key.into());
            id
        } else {
            let id = u32::try_from(self.strings.len())
                .ok()
                .filter(|&id| id < u32::MAX)
                .ok_or(Error::DictionaryFull(self.strings.len()))?;
            self.strings.push(Some(key.into()));
            id
        };
        self.live += 1;
        let (strings, hasher) = (&self.strings, &self.hasher);
        self.table.insert_unique(hash, id, |&other| {
            hasher.hash_one(strings[other as usize].as_deref().unwrap_or_default())
        });
        Ok(id)
    }

    /// Frees every live id for which `keep` is false; returns how many.
    fn retain(&mut self, mut keep: impl FnMut(u32) -> bool) -> usize {
        let before = self.live;
        self.table.retain(|&mut id| keep(id));
        if self.table.len() == before {
            return 0;
        }
        for (id, string) in self.strings.iter_mut().enumerate() {
            if string.is_some() && !keep(id as u32) {
                *string = None;
                self.free.push(id as u32);
            }
        }
        self.live = self.table.len();
        // Trailing free ids are dropped instead of kept for reuse, so the id
        // range shrinks back after a burst of keys.
        while self.strings.last().is_some_and(Option::is_none) {
            self.strings.pop();
        }
        let bound = self.strings.len() as u32;
        self.free.retain(|&id| id < bound);
        // Reuse low ids first: dense state indexed by id stays small.
        self.free.sort_unstable_by(|a, b| b.cmp(a));
        if self.table.capacity() > 4 * self.live.max(1024) {
            let (strings, hasher) = (&self.strings, &self.hasher);
            self.table.shrink_to(0, |&id| {
                hasher.hash_one(strings[id as usize].as_deref().unwrap_or_default())
            });
        }
        if self.strings.capacity() > 2 * self.strings.len().max(1024) {
            self.strings.shrink_to_fit();
            self.free.shrink_to_fit();
        }
        before - self.live
    }
}

impl Dictionary {
    /// An empty dictionary.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `key`, adding it if it is new.
    pub fn intern(&self, key: &str) -> Result<u32> {
        {
            let read = self.read_lock();
            let hash = read.hasher.hash_one(key);
            if let Some(id) = read.find(hash, key) {
                return Ok(id);
            }
        }
        self.write_lock().intern(key)
    }

    /// Interns many keys under one lock, appending their ids to `out`.
    pub fn intern_all<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a str>,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        let mut interner = self.write_lock();
        for key in keys {
            out.push(interner.intern(key)?);
        }
        Ok(())
    }

    /// The id of `key` if it is known.
    #[must_use]
    pub fn lookup(&self, key: &str) -> Option<u32> {
        let read = self.read_lock();
        read.find(read.hasher.hash_one(key), key)
    }

    /// Number of live keys (interned and not freed).
    #[must_use]
    pub fn len(&self) -> usize {
        self.read_lock().live
    }

    /// Whether no key is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One past the largest id in use: every live id is below it, so state
    /// indexed by id needs this many entries.
    #[must_use]
    pub fn id_bound(&self) -> usize {
        self.read_lock().strings.len()
    }

    /// Keeps the keys whose id `held` accepts and frees every other one,
    /// starting a new [epoch](Self#epochs-how-ids-are-released-and-stay-unambiguous)
    /// when any is freed. Returns the number of keys freed.
    ///
    /// Call it only where every id still in use anywhere is one that `held`
    /// accepts: ids outside it may be given to other keys afterwards.
    pub fn retain(&self, held: impl FnMut(u32) -> bool) -> usize {
        let freed = self.write_lock().retain(held);
        if freed > 0 {
            self.inner.epoch.fetch_add(1, Ordering::Release);
        }
        freed
    }

    /// The current epoch: ids keep their keys within one epoch.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::Acquire)
    }

    /// A read view for turning many ids back into strings under one lock.
    #[must_use]
    pub fn read(&self) -> DictionaryReader<'_> {
        DictionaryReader {
            guard: self.read_lock(),
        }
    }

    /// A process-unique identity of this dictionary.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    fn read_lock(&self) -> RwLockReadGuard<'_, Interner> {
        // A panic while holding the lock cannot leave the interner half-updated
        // in a way that matters: at worst a string is stored without its id.
        self.inner
            .interner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, Interner> {
        self.inner
            .interner
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Dictionary {
    /// Every live id with its string, the id range and the free ids in
    /// their order of reuse: what a checkpoint keeps, so that a restored
    /// dictionary gives every key (old and new) the id it had.
    pub(crate) fn snapshot(&self) -> crate::checkpoint::DictionaryState {
        let interner = self.read_lock();
        let mut state = crate::checkpoint::DictionaryState {
            range: interner.strings.len() as u64,
            free: interner.free.clone(),
            ..Default::default()
        };
        for (id, string) in interner.strings.iter().enumerate() {
            if let Some(string) = string {
                state.ids.push(id as u32);
                state.lengths.push(string.len() as u32);
                state.text.extend_from_slice(string.as_bytes());
            }
        }
        state
    }

    /// A dictionary holding what [`snapshot`](Self::snapshot) took.
    pub(crate) fn restored(
        state: &crate::checkpoint::DictionaryState,
    ) -> std::result::Result<Self, crate::checkpoint::codec::CodecError> {
        use crate::checkpoint::codec::CodecError;
        let dict = Self::new();
        {
            let mut interner = dict.write_lock();
            // Every id in the range is live or free: checked before the
            // range is allocated, so a damaged range cannot ask for gigabytes.
            let range = usize::try_from(state.range)
                .ok()
                .filter(|&r| u32::try_from(r).is_ok() && r == state.ids.len() + state.free.len())
                .ok_or_else(|| CodecError::Invalid("a dictionary range out of bounds".into()))?;
            interner.strings = vec![None; range];
            let mut at = 0;
            for (&id, &len) in state.ids.iter().zip(&state.lengths) {
                let bytes = &state.text[at..at + len as usize];
                at += len as usize;
                let string = std::str::from_utf8(bytes).map_err(|_| {
                    CodecError::Invalid(format!("dictionary key {id} is not UTF-8"))
                })?;
                let slot = interner
                    .strings
                    .get_mut(id as usize)
                    .filter(|slot| slot.is_none())
                    .ok_or_else(|| {
                        CodecError::Invalid(format!("dictionary id {id} twice or out of range"))
                    })?;
                *slot = Some(string.into());
            }
            let free_ok = state.free.len() + state.ids.len() == range
                && state.free.iter().all(|&id| {
                    interner
                        .strings
                        .get(id as usize)
                        .is_some_and(Option::is_none)
                });
            if !free_ok {
                return Err(CodecError::Invalid(
                    "the free dictionary ids do not match".into(),
                ));
            }
            interner.free.clone_from(&state.free);
            let Interner {
                hasher,
                table,
                strings,
                live,
                ..
            } = &mut *interner;
            for &id in &state.ids {
                let key = strings[id as usize].as_deref().unwrap_or_default();
                let hash = hasher.hash_one(key);
                if table
                    .find(hash, |&other| {
                        strings[other as usize].as_deref() == Some(key)
                    })
                    .is_some()
                {
                    return Err(CodecError::Invalid(format!(
                        "the key {key:?} twice in the dictionary"
                    )));
                }
                table.insert_unique(hash, id, |&other| {
                    hasher.hash_one(strings[other as usize].as_deref().unwrap_or_default())
                });
            }
            *live = state.ids.len();
        }
        Ok(dict)
    }
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary")
            .field("len", &self.len())
            .field("epoch", &self.epoch())
            .finish()
    }
}

/// When to release the ids of keys that nothing holds any more: a
/// [`Dictionary::retain`] once the dictionary has grown to twice the keys
/// held after the previous one (and at least [`KeyReclaimer::MIN_KEYS`]).
/// Each pass costs time in proportion to the keys, and follows at least as
/// many new keys, so the cost per key is constant, and the dictionary (and
/// every array indexed by id) holds at most about twice the keys held.
#[derive(Debug, Clone)]
pub struct KeyReclaimer {
    next_at: usize,
    held: Vec<u64>,
}

impl Default for KeyReclaimer {
    fn default() -> Self {
        Self {
            next_at: Self::MIN_KEYS,
            held: Vec::new(),
        }
    }
}

impl KeyReclaimer {
    /// Below this many keys nothing is reclaimed: small dictionaries cost
    /// little and are not worth a pass.
    pub const MIN_KEYS: usize = 1 << 16;

    /// A reclaimer that starts at [`MIN_KEYS`](Self::MIN_KEYS).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// When it next looks (a checkpoint keeps it, so that a resumed job
    /// releases ids when an uninterrupted one would).
    pub(crate) fn next_at(&self) -> usize {
        self.next_at
    }

    /// A reclaimer that first reclaims at `keys` keys (tests use small ones).
    #[must_use]
    pub fn starting_at(keys: usize) -> Self {
        Self {
            next_at: keys,
            held: Vec::new(),
        }
    }

    /// When `dict` has grown enough, frees every key that `mark_held` does
    /// not report (it is called with a function to call for each held id).
    /// Returns the number of keys freed. The caller promises what
    /// [`Dictionary::retain`] asks: no id outside those reported is in use.
    pub fn maybe_reclaim(
        &mut self,
        dict: &Dictionary,
        mark_held: impl FnOnce(&mut dyn FnMut(u32)),
    ) -> usize {
        if dict.len() < self.next_at {
            return 0;
        }
        let words = dict.id_bound().div_ceil(64);
        self.held.clear();
        self.held.resize(words, 0);
        let held = &mut self.held;
        mark_held(&mut |id: u32| {
            if let Some(word) = held.get_mut(id as usize / 64) {
                *word |= 1 << (id % 64);
            }
        });
        let held = &self.held;
        let freed = dict.retain(|id| {
            held.get(id as usize / 64)
                .is_some_and(|word| word & (1 << (id % 64)) != 0)
        });
        self.next_at = (2 * dict.len()).max(Self::MIN_KEYS.min(self.next_at));
        if self.held.capacity() > 2 * words.max(1024) {
            self.held = Vec::new();
        }
        freed
    }
}

/// A read-locked view of a [`Dictionary`].
pub struct DictionaryReader<'a> {
    guard: RwLockReadGuard<'a, Interner>,
}

impl DictionaryReader<'_> {
    /// The string of key id `id`, if the id is live.
    #[must_use]
    pub fn get(&self, id: u32) -> Option<&str> {
        self.guard.string(id)
    }

    /// Number of live keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.guard.live
    }

    /// One past the largest id in use.
    #[must_use]
    pub fn id_bound(&self) -> usize {
        self.guard.strings.len()
    }

    /// Whether the dictionary is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.guard.live == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_ids_read_as_none_and_are_reused_lowest_first() {
        let dict = Dictionary::new();
        let ids: Vec<u32> = (0..10)
            .map(|i| dict.intern(&format!("k{i}")).unwrap())
            .collect();
        assert_eq!(ids, (0..10).collect::<Vec<_>>());
        let epoch = dict.epoch();
        // Keep the even ids.
        assert_eq!(dict.retain(|id| id % 2 == 0), 5);
        assert!(dict.epoch() > epoch);
        assert_eq!(dict.len(), 5);
        // id 9 was the last one: the range shrinks to 9.
        assert_eq!(dict.id_bound(), 9);
        let read = dict.read();
        assert_eq!(read.get(3), None);
        assert_eq!(read.get(4), Some("k4"));
        drop(read);
        assert_eq!(dict.lookup("k3"), None);
        assert_eq!(dict.lookup("k4"), Some(4));
        // Freed ids come back lowest first, then the range grows again.
        let again: Vec<u32> = ["x", "y", "z", "w", "v"]
            .iter()
            .map(|k| dict.intern(k).unwrap())
            .collect();
        assert_eq!(again, [1, 3, 5, 7, 9]);
        assert_eq!(dict.intern("u").unwrap(), 10);
        assert_eq!(dict.read().get(3), Some("y"));
        // A key that left and comes back is a new key with a fresh id.
        assert_eq!(dict.intern("k1").unwrap(), 11);
    }

    #[test]
    fn retain_that_frees_nothing_keeps_the_epoch() {
        let dict = Dictionary::new();
        dict.intern("a").unwrap();
        let epoch = dict.epoch();
        assert_eq!(dict.retain(|_| true), 0);
        assert_eq!(dict.epoch(), epoch);
    }

    #[test]
    fn memory_follows_live_keys_over_many_epochs() {
        let dict = Dictionary::new();
        for round in 0..200_u32 {
            for i in 0..1_000 {
                dict.intern(&format!("session-{round}-{i}")).unwrap();
            }
            // Only this round's keys are held; the previous round's leave.
            let first = dict.lookup(&format!("session-{round}-0")).unwrap();
            let held: Vec<u32> = (0..1_000)
                .map(|i| dict.lookup(&format!("session-{round}-{i}")).unwrap())
                .collect();
            let held: std::collections::HashSet<u32> = held.into_iter().collect();
            dict.retain(|id| held.contains(&id));
            assert!(held.contains(&first));
            assert_eq!(dict.len(), 1_000);
            // The id range never exceeds two rounds of keys.
            assert!(
                dict.id_bound() <= 2_000,
                "round {round}: {}",
                dict.id_bound()
            );
        }
        let interner = dict.read_lock();
        assert!(interner.table.capacity() <= 8 * 1_024);
    }

    #[test]
    fn the_reclaimer_waits_for_the_dictionary_to_double() {
        let dict = Dictionary::new();
        let mut reclaimer = KeyReclaimer::starting_at(100);
        let keep = dict.intern("kept").unwrap();
        for i in 0..98 {
            dict.intern(&format!("k{i}")).unwrap();
        }
        let mark = |f: &mut dyn FnMut(u32)| f(keep);
        assert_eq!(
            reclaimer.maybe_reclaim(&dict, mark),
            0,
            "99 keys: too early"
        );
        dict.intern("k-last").unwrap();
        assert_eq!(reclaimer.maybe_reclaim(&dict, mark), 99);
        assert_eq!(dict.len(), 1);
        assert_eq!(dict.read().get(keep), Some("kept"));
        // Next pass at max(2 × 1, min(MIN_KEYS, 100)) = 100 keys again.
        for i in 0..50 {
            dict.intern(&format!("again{i}")).unwrap();
        }
        assert_eq!(reclaimer.maybe_reclaim(&dict, mark), 0);
    }
}
