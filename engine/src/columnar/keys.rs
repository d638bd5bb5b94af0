//! Integer keys to dictionary ids: a binary event's `u32` key (text
//! `k17`, as the CSV output of the same generator writes it) or an
//! integer key column of Arrow or Parquet (text `17`).
//!
//! Small non-negative keys (nearly all of them: generators and surrogate
//! keys count from 0) are looked up in a dense array indexed by the key,
//! one load a row; others in a hash map. Either way the dictionary is
//! consulted once per key and epoch, with the key's text formatted then.

use std::fmt::Write as _;

use hashbrown::HashMap;

use crate::dictionary::Dictionary;
use crate::error::Result;

/// No id cached for this key (dictionary ids stay below `u32::MAX`).
const NONE: u32 = u32::MAX;

/// Keys below this are cached densely (16 MiB of ids at most).
const DENSE_KEYS: u64 = 1 << 22;

/// Sparse keys cached before the cache starts afresh (memory stays
/// bounded on a stream of ever-new keys).
const MAX_SPARSE: usize = 1 << 20;

/// The ids of integer keys, for one dictionary and epoch.
#[derive(Debug)]
pub(crate) struct IntKeys {
    /// Written before the number: `k` for binary events.
    prefix: &'static str,
    /// The dictionary (its process-unique id) and epoch the ids belong to.
    owner: Option<(u64, u64)>,
    dense: Vec<u32>,
    sparse: HashMap<i64, u32>,
    text: String,
}

impl IntKeys {
    /// Keys written as `prefix` and then the number.
    pub fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            owner: None,
            dense: Vec::new(),
            sparse: HashMap::new(),
            text: String::new(),
        }
    }

    /// Forgets the cached ids unless they belong to `dict` as it is now
    /// (its epoch changes when ids are released). Call it before each
    /// piece: ids are only released between pieces.
    pub fn sync(&mut self, dict: &Dictionary) {
        let now = Some((dict.id(), dict.epoch()));
        if self.owner != now {
            self.owner = now;
            self.dense.clear();
            self.sparse.clear();
        }
    }

    /// The key's text, as the dictionary holds it.
    pub fn text(&mut self, key: i64) -> &str {
        self.text.clear();
        self.text.push_str(self.prefix);
        let _ = write!(self.text, "{key}");
        &self.text
    }

    /// Replaces every key of `keys` (a `u32` key each) by its dictionary
    /// id, in place.
    pub fn map_u32(&mut self, keys: &mut [u32], dict: &Dictionary) -> Result<()> {
        // The common case, a known small key: one load a row.
        for key in keys {
            *key = match self.dense.get(*key as usize) {
                Some(&id) if id != NONE => id,
                _ => self.id(i64::from(*key), dict)?,
            };
        }
        Ok(())
    }

    /// The id of `key`, interning its text if it is new.
    #[inline]
    pub fn id(&mut self, key: i64, dict: &Dictionary) -> Result<u32> {
        if let Ok(at) = u64::try_from(key) {
            if at < DENSE_KEYS {
                let at = at as usize;
                if let Some(&id) = self.dense.get(at) {
                    if id != NONE {
                        return Ok(id);
                    }
                } else {
                    let len = (at + 1).next_power_of_two().max(1024);
                    self.dense.resize(len, NONE);
                }
                let id = self.intern(key, dict)?;
                self.dense[at] = id;
                return Ok(id);
            }
        }
        if let Some(&id) = self.sparse.get(&key) {
            return Ok(id);
        }
        if self.sparse.len() >= MAX_SPARSE {
            self.sparse.clear();
        }
        let id = self.intern(key, dict)?;
        self.sparse.insert(key, id);
        Ok(id)
    }

    fn intern(&mut self, key: i64, dict: &Dictionary) -> Result<u32> {
        let text = self.text(key);
        let id = dict.intern(text)?;
        debug_assert_ne!(id, NONE);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_get_the_ids_of_their_text_dense_or_sparse() {
        let dict = Dictionary::new();
        let mut keys = IntKeys::new("k");
        keys.sync(&dict);
        let mut column = vec![17, 3, 17, 5_000_000, u32::MAX, 3];
        keys.map_u32(&mut column, &dict).unwrap();
        let read = dict.read();
        let texts: Vec<&str> = column.iter().map(|&id| read.get(id).unwrap()).collect();
        assert_eq!(texts, ["k17", "k3", "k17", "k5000000", "k4294967295", "k3"]);
        drop(read);
        let mut plain = IntKeys::new("");
        plain.sync(&dict);
        let id = plain.id(-42, &dict).unwrap();
        assert_eq!(dict.read().get(id), Some("-42"));
    }

    #[test]
    fn a_new_epoch_forgets_ids_that_may_have_been_reused() {
        let dict = Dictionary::new();
        let mut keys = IntKeys::new("k");
        keys.sync(&dict);
        let first = keys.id(1, &dict).unwrap();
        let other = dict.intern("other").unwrap();
        // "k1" leaves; its id goes to the next new key.
        assert_eq!(dict.retain(|id| id == other), 1);
        let plum = dict.intern("plum").unwrap();
        assert_eq!(plum, first, "the id was reused");
        keys.sync(&dict);
        let again = keys.id(1, &dict).unwrap();
        assert_ne!(again, plum);
        assert_eq!(dict.read().get(again), Some("k1"));
    }
}
