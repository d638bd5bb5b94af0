//! Dictionary encoding of keys: strings to dense `u32` ids and back.

use std::hash::BuildHasher;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::error::{Error, Result};

/// An append-only, shared dictionary that maps key strings to dense `u32` ids
/// (`0, 1, 2, ...` in first-seen order) and back.
///
/// Cloning is cheap: clones share one dictionary. Ids never change once given,
/// so a batch's key column stays valid while the dictionary grows. Dense ids let
/// window state be indexed by id instead of hashed per event.
///
/// ```
/// let dict = engine::Dictionary::new();
/// let a = dict.intern("apple")?;
/// assert_eq!(dict.intern("pear")?, a + 1);
/// assert_eq!(dict.intern("apple")?, a);
/// assert_eq!(dict.read().get(a), Some("apple"));
/// # Ok::<(), engine::Error>(())
/// ```
#[derive(Clone)]
pub struct Dictionary {
    inner: Arc<RwLock<Interner>>,
    /// Unique for the life of the process, unlike an address: caches of
    /// ids (see `ingest`) are keyed by it.
    id: u64,
}

impl Default for Dictionary {
    fn default() -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Self {
            inner: Arc::default(),
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

#[derive(Default)]
struct Interner {
    hasher: DefaultHashBuilder,
    table: HashTable<u32>,
    strings: Vec<Box<str>>,
}

impl Interner {
    fn find(&self, hash: u64, key: &str) -> Option<u32> {
        self.table
            .find(hash, |&id| &*self.strings[id as usize] == key)
            .copied()
    }

    fn intern(&mut self, key: &str) -> Result<u32> {
        let hash = self.hasher.hash_one(key);
        if let Some(id) = self.find(hash, key) {
            return Ok(id);
        }
        let id = u32::try_from(self.strings.len())
            .ok()
            .filter(|&id| id < u32::MAX)
            .ok_or(Error::DictionaryFull(self.strings.len()))?;
        self.strings.push(key.into());
        let (strings, hasher) = (&self.strings, &self.hasher);
        self.table.insert_unique(hash, id, |&other| {
            hasher.hash_one(&*strings[other as usize])
        });
        Ok(id)
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

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.read_lock().strings.len()
    }

    /// Whether no key has been interned yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        self.id
    }

    /// Whether two handles share one dictionary.
    #[must_use]
    pub fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    fn read_lock(&self) -> RwLockReadGuard<'_, Interner> {
        // A panic while holding the lock cannot leave the interner half-updated
        // in a way that matters: at worst a string is stored without its id.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_lock(&self) -> std::sync::RwLockWriteGuard<'_, Interner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary")
            .field("len", &self.len())
            .finish()
    }
}

/// A read-locked view of a [`Dictionary`].
pub struct DictionaryReader<'a> {
    guard: RwLockReadGuard<'a, Interner>,
}

impl DictionaryReader<'_> {
    /// The string of key id `id`, if the id exists.
    #[must_use]
    pub fn get(&self, id: u32) -> Option<&str> {
        self.guard.strings.get(id as usize).map(|s| &**s)
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.guard.strings.len()
    }

    /// Whether the dictionary is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.guard.strings.is_empty()
    }
}
