//! Interning keys on the ingestion path: a per-thread cache from key bytes
//! to dictionary ids, in front of the shared [`Dictionary`].
//!
//! Every word of a text chunk goes through here, so this is the tokenizer's
//! inner loop: an open-addressing table whose slots keep a key's hash,
//! length, first 16 bytes and dictionary id inline. Keys of up to 16 bytes
//! (nearly all words) are found with two integer comparisons, never
//! `memcmp`, and without touching the shared dictionary or its lock; the
//! dictionary is consulted only for keys this thread has not seen yet.

use std::cell::RefCell;

use super::Dictionary;
use crate::error::Result;

/// One table slot (16 bytes, so that the probed array stays small): a key
/// of up to 8 bytes is identified by the slot alone (its bytes and length)
/// and `value` is its dictionary id; a longer key's `value` indexes
/// `entries`. `len == EMPTY` marks a free slot.
#[derive(Clone, Copy)]
struct Slot {
    head: u64,
    len: u32,
    value: u32,
}

/// A cached key longer than 8 bytes.
#[derive(Clone, Copy)]
struct Entry {
    /// Bytes 8..16 of the head (see [`head`]).
    head_high: u64,
    /// Dictionary id of the key.
    global: u32,
    /// Keys longer than 16 bytes: offset of their bytes in the arena.
    tail: u32,
}

const EMPTY: u32 = u32::MAX;
const FREE: Slot = Slot {
    head: 0,
    len: EMPTY,
    value: 0,
};

/// Keys a thread caches before it starts afresh: memory stays bounded on
/// streams of ever-new keys (about 16 MiB of slots per thread).
const MAX_CACHED: usize = 1 << 18;

/// Bytes of long keys a thread caches before it starts afresh.
const MAX_ARENA_BYTES: usize = 64 << 20;

/// The 16-byte head of a key, loaded so that `(head, len)` identifies keys
/// of up to 16 bytes: overlapping loads cover every byte, as wyhash-style
/// hashers read short inputs. A key shorter than 8 bytes has its bytes,
/// zero-padded, in `head[0]` (little-endian), which [`KeyCache::stage`]
/// gets with one masked load.
#[inline]
fn head(key: &[u8]) -> [u64; 2] {
    let n = key.len();
    let load8 = |at: usize| u64::from_le_bytes(key[at..at + 8].try_into().expect("8 bytes"));
    let load4 = |at: usize| {
        u64::from(u32::from_le_bytes(
            key[at..at + 4].try_into().expect("4 bytes"),
        ))
    };
    if n >= 16 {
        [load8(0), load8(8)]
    } else if n >= 8 {
        [load8(0), load8(n - 8)]
    } else if n >= 4 {
        // The two loads overlap on equal bytes: OR keeps them.
        [load4(0) | (load4(n - 4) << (8 * (n - 4))), 0]
    } else if n > 0 {
        let at = |i: usize| u64::from(key[i]) << (8 * i);
        [at(0) | at(n / 2) | at(n - 1), 0]
    } else {
        [0, 0]
    }
}

/// Asks the CPU to start loading `slot` into the cache (no effect on
/// other architectures): the lookups of a batch overlap their misses.
#[inline(always)]
#[allow(clippy::inline_always)]
fn prefetch(slot: *const Slot) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults, whatever the address,
    // and SSE is part of the x86-64 baseline.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(slot.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = slot;
}

/// A folded 64×64→128-bit multiply: a fast, well-mixing combiner.
#[inline]
fn mix(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

const SEED: [u64; 3] = [
    0x243F_6A88_85A3_08D3,
    0x1319_8A2E_0370_7344,
    0xA409_3822_299F_31D0,
];

#[inline]
fn hash(key: &[u8], head: [u64; 2]) -> u64 {
    let mut h = mix(head[0] ^ SEED[0], head[1] ^ SEED[1] ^ key.len() as u64);
    if key.len() > 16 {
        for chunk in key[16..].chunks(8) {
            let mut buf = [0_u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            h = mix(h ^ u64::from_le_bytes(buf), SEED[2]);
        }
    }
    h
}

/// [`hash`] of a key shorter than 8 bytes, from its head.
#[inline(always)]
#[allow(clippy::inline_always)]
fn hash_short(head: u64, len: usize) -> u64 {
    mix(head ^ SEED[0], SEED[1] ^ len as u64)
}

/// The head of `bytes[start..end]` when the key is shorter than 8 bytes and
/// not at the very end of `bytes`: one load and a mask, without branching
/// on its length (which words change at random).
#[inline(always)]
#[allow(clippy::inline_always)]
fn short_head(bytes: &[u8], start: usize, end: usize) -> Option<u64> {
    let n = end - start;
    if n < 8 && start + 8 <= bytes.len() {
        let word = u64::from_le_bytes(bytes[start..start + 8].try_into().expect("8 bytes"));
        Some(word & ((1_u64 << (8 * n)) - 1))
    } else {
        None
    }
}

/// A word whose lookup has been started ([`KeyCache::stage`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Staged {
    /// The first 8 bytes of the key's head.
    head: u64,
    hash: u64,
    start: usize,
    len: u32,
}

/// A thread's cache of key ids for one dictionary.
pub(crate) struct KeyCache {
    /// The dictionary (by [`Dictionary::id`]) and the epoch the cached ids
    /// belong to: a dictionary that released ids starts a new epoch, and
    /// ids cached before it may name other keys now.
    dictionary: Option<(u64, u64)>,
    slots: Vec<Slot>,
    /// Hash of the key in each used slot, for growing the table.
    hashes: Vec<(u64, usize)>,
    /// Keys longer than 8 bytes.
    entries: Vec<Entry>,
    /// Bytes of the cached keys longer than 16 bytes.
    arena: Vec<u8>,
}

thread_local! {
    static CACHE: RefCell<KeyCache> = const {
        RefCell::new(KeyCache {
            dictionary: None,
            slots: Vec::new(),
            hashes: Vec::new(),
            entries: Vec::new(),
            arena: Vec::new(),
        })
    };
}

/// Runs `f` with this thread's key cache for `dict`.
pub(crate) fn with_cache<R>(dict: &Dictionary, f: impl FnOnce(&mut KeyCache) -> R) -> R {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let current = (dict.id(), dict.epoch());
        if cache.dictionary != Some(current)
            || cache.hashes.len() >= MAX_CACHED
            || cache.arena.len() >= MAX_ARENA_BYTES
        {
            cache.reset(current);
        }
        f(&mut cache)
    })
}

impl KeyCache {
    fn reset(&mut self, dictionary: (u64, u64)) {
        self.dictionary = Some(dictionary);
        self.slots.clear();
        self.slots.resize(1024, FREE);
        self.hashes.clear();
        self.entries.clear();
        self.arena.clear();
    }

    /// The dictionary id of `key`, interning it on a miss.
    #[inline]
    pub fn id(&mut self, key: &str, dict: &Dictionary) -> Result<u32> {
        self.find(key, head(key.as_bytes()), dict)
    }

    /// Starts the lookup of the word `text[start..end]`: hashes it (a
    /// short word with one masked load) and asks the CPU to bring its slot
    /// into the cache. [`resolve`](Self::resolve) it a few words later, so
    /// that the lookups of consecutive words overlap their cache misses.
    #[inline(always)]
    #[allow(clippy::inline_always)] // Inlined into each SIMD level's kernel.
    pub fn stage(&self, bytes: &[u8], start: usize, end: usize) -> Staged {
        let (head, hash) = if let Some(short) = short_head(bytes, start, end) {
            (short, hash_short(short, end - start))
        } else {
            let key = &bytes[start..end];
            let head = head(key);
            (head[0], hash(key, head))
        };
        // Only a hint: a wrapped pointer is never read.
        let slot = self
            .slots
            .as_ptr()
            .wrapping_add(hash as usize & (self.slots.len().wrapping_sub(1)));
        prefetch(slot);
        Staged {
            head,
            hash,
            start,
            len: (end - start) as u32,
        }
    }

    /// The dictionary id of a staged word of `text` (the text it was staged
    /// from), interning it on a miss.
    #[inline(always)]
    #[allow(clippy::inline_always)] // Inlined into each SIMD level's kernel.
    pub fn resolve(&mut self, text: &str, word: &Staged, dict: &Dictionary) -> Result<u32> {
        // The common case inline: a short key found at its first or second
        // probe; anything else (a miss, a longer key) goes the general way.
        let mask = self.slots.len() - 1;
        let at = word.hash as usize & mask;
        if word.len <= 8 {
            // Up to four probes: at most 70 % full, a hot key's run is
            // rarely longer, and the slots after the first are mostly in
            // the cache line it brought.
            for probe in 0..4 {
                let slot = self.slots[(at + probe) & mask];
                if slot.len == word.len && slot.head == word.head {
                    return Ok(slot.value);
                }
                if slot.len == EMPTY {
                    break;
                }
            }
        }
        let (start, end) = (word.start, word.start + word.len as usize);
        self.find_outlined(text, start, end, word.hash, dict)
    }

    #[inline]
    fn find(&mut self, key: &str, head: [u64; 2], dict: &Dictionary) -> Result<u32> {
        self.find_hashed(key, 0, key.len(), head, hash(key.as_bytes(), head), dict)
    }

    /// [`find_hashed`](Self::find_hashed), kept out of the word loop of
    /// [`resolve`](Self::resolve), which handles the common case itself.
    #[inline(never)]
    fn find_outlined(
        &mut self,
        text: &str,
        start: usize,
        end: usize,
        hash: u64,
        dict: &Dictionary,
    ) -> Result<u32> {
        let head = head(&text.as_bytes()[start..end]);
        self.find_hashed(text, start, end, head, hash, dict)
    }

    /// The id of `text[start..end]`, whose head and hash are given. The
    /// key is read as bytes (no character-boundary checks) except when it
    /// is new.
    #[inline]
    fn find_hashed(
        &mut self,
        text: &str,
        start: usize,
        end: usize,
        head: [u64; 2],
        hash: u64,
        dict: &Dictionary,
    ) -> Result<u32> {
        let len = (end - start) as u32;
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot.len == EMPTY {
                return self.insert(&text[start..end], head, hash, i, dict);
            }
            if slot.len == len && slot.head == head[0] {
                if len <= 8 {
                    return Ok(slot.value);
                }
                let entry = &self.entries[slot.value as usize];
                if entry.head_high == head[1]
                    && (len <= 16 || self.long_key(entry, len) == &text.as_bytes()[start..end])
                {
                    return Ok(entry.global);
                }
            }
            i = (i + 1) & mask;
        }
    }

    #[cold]
    fn insert(
        &mut self,
        key: &str,
        head: [u64; 2],
        hash: u64,
        slot: usize,
        dict: &Dictionary,
    ) -> Result<u32> {
        let bytes = key.as_bytes();
        let len = bytes.len() as u32;
        let global = dict.intern(key)?;
        let value = if len <= 8 {
            global
        } else {
            let tail = if len > 16 {
                let at = self.arena.len() as u32;
                self.arena.extend_from_slice(bytes);
                at
            } else {
                0
            };
            self.entries.push(Entry {
                head_high: head[1],
                global,
                tail,
            });
            (self.entries.len() - 1) as u32
        };
        self.slots[slot] = Slot {
            head: head[0],
            len,
            value,
        };
        self.hashes.push((hash, slot));
        // At most 70 % full: the slots of 10 000 keys (256 KiB) stay in L2.
        if self.hashes.len() * 10 > self.slots.len() * 7 {
            self.grow();
        }
        Ok(global)
    }

    fn long_key(&self, entry: &Entry, len: u32) -> &[u8] {
        &self.arena[entry.tail as usize..(entry.tail + len) as usize]
    }

    fn grow(&mut self) {
        let mut slots = vec![FREE; self.slots.len() * 2];
        let mask = slots.len() - 1;
        for (hash, old) in &mut self.hashes {
            let mut i = *hash as usize & mask;
            while slots[i].len != EMPTY {
                i = (i + 1) & mask;
            }
            slots[i] = self.slots[*old];
            *old = i;
        }
        self.slots = slots;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_every_length_get_their_dictionary_ids() {
        let words: Vec<String> = (0..40)
            .flat_map(|len| ["a", "b", "é"].map(|c| c.repeat(len)))
            .chain((0..3_000).map(|i| format!("word{i}")))
            .chain((0..300).map(|i| format!("a rather long key number {i}")))
            .collect();
        let dict = Dictionary::new();
        let ids: Vec<u32> = with_cache(&dict, |c| {
            words.iter().map(|w| c.id(w, &dict).unwrap()).collect()
        });
        let again: Vec<u32> = with_cache(&dict, |c| {
            words.iter().map(|w| c.id(w, &dict).unwrap()).collect()
        });
        assert_eq!(ids, again);
        let read = dict.read();
        for (word, id) in words.iter().zip(&ids) {
            assert_eq!(read.get(*id), Some(word.as_str()));
        }
        drop(read);
        // Keys read in place from a larger text get the same ids.
        let text: String = words.iter().flat_map(|w| [w.as_str(), " "]).collect();
        let in_place: Vec<u32> = with_cache(&dict, |c| {
            let mut at = 0;
            words
                .iter()
                .map(|w| {
                    let staged = c.stage(text.as_bytes(), at, at + w.len());
                    at += w.len() + 1;
                    c.resolve(&text, &staged, &dict).unwrap()
                })
                .collect()
        });
        assert_eq!(ids, in_place);
        for len in 0..8 {
            let key = "abcdefgh".get(..len).unwrap();
            assert_eq!(head(key.as_bytes())[0], {
                let mut padded = [0_u8; 8];
                padded[..len].copy_from_slice(key.as_bytes());
                u64::from_le_bytes(padded)
            });
        }
        // Another dictionary on the same thread starts a fresh cache.
        let other = Dictionary::new();
        let first = with_cache(&other, |c| c.id("word7", &other).unwrap());
        assert_eq!(first, 0);
    }

    #[test]
    fn a_new_epoch_empties_the_cache_so_reused_ids_are_never_stale() {
        let dict = Dictionary::new();
        let old = with_cache(&dict, |c| c.id("old-key", &dict).unwrap());
        // The key leaves; its id goes to another key.
        dict.retain(|_| false);
        let new = dict.intern("new-key").unwrap();
        assert_eq!(new, old, "the freed id is reused");
        // The cache must not answer the old key with the reused id.
        let again = with_cache(&dict, |c| c.id("old-key", &dict).unwrap());
        assert_ne!(again, new);
        assert_eq!(dict.read().get(again), Some("old-key"));
    }
}
