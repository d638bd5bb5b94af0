//! Re-keying events through a lookup table: the join of a stream with a
//! static dimension table, as the Yahoo Streaming Benchmark's ad → campaign
//! step (`engine run --lookup ads.csv`).
//!
//! A [`Lookup`] maps key text to group text. A [`KeyMapper`] applies it to
//! dictionary ids: each key id is resolved once (text → group, group
//! interned in the same dictionary) and cached in a dense table indexed by
//! id, so the hot path is one array read per event.
//!
//! ```
//! use engine::Dictionary;
//! use engine::lookup::{KeyMapper, Lookup};
//!
//! let table = Lookup::from_csv_text("ad_id,campaign_id\na1,c1\na2,c1\n", "ads.csv")?;
//! let dict = Dictionary::new();
//! let ids = [dict.intern("a2")?, dict.intern("zz")?, dict.intern("a1")?];
//! let mut mapper = KeyMapper::new(table.into());
//! let mapped: Vec<Option<u32>> = ids.iter().map(|&id| mapper.map(id, &dict)).collect::<Result<_, _>>()?;
//! let c1 = dict.lookup("c1");
//! assert_eq!(mapped, [c1, None, c1]);
//! # Ok::<(), engine::Error>(())
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::batch::Batch;
use crate::dictionary::Dictionary;
use crate::error::{Error, LookupProblem, Result};
use crate::ingest;

/// A static table from key to group, read from a CSV file whose first two
/// columns are the key and the group (with a header line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    groups: HashMap<String, String>,
    /// The header's first two names.
    columns: (String, String),
}

/// Largest lookup table read, bytes: the table is held in memory.
pub const MAX_TABLE_BYTES: u64 = 256 << 20;

impl Lookup {
    /// A short digest of the table's contents (its size and a checksum of
    /// its sorted entries): what a checkpoint compares.
    #[must_use]
    pub fn digest(&self) -> String {
        let mut entries: Vec<(&String, &String)> = self.groups.iter().collect();
        entries.sort_unstable();
        let mut hasher = crc32fast::Hasher::new();
        for (key, group) in entries {
            hasher.update(key.as_bytes());
            hasher.update(&[0]);
            hasher.update(group.as_bytes());
            hasher.update(&[0]);
        }
        format!("{} keys, crc {:08x}", self.groups.len(), hasher.finalize())
    }
    /// Reads a CSV file: a header, then `key,group[,…]` rows (see
    /// [`Lookup::from_csv_text`]).
    pub fn from_csv_file(path: &Path) -> Result<Self> {
        use std::io::Read as _;
        let shown = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| Error::io(&shown, &e))?;
        // The table is held in memory: an endless source (`/dev/zero`, a
        // FIFO that never ends) must not take all of it.
        let mut bytes = Vec::new();
        file.take(MAX_TABLE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(&shown, &e))?;
        if bytes.len() as u64 > MAX_TABLE_BYTES {
            return Err(table_error(
                &shown,
                None,
                LookupProblem::TooLarge {
                    mib: MAX_TABLE_BYTES >> 20,
                },
            ));
        }
        Self::from_csv_bytes(&bytes, &shown)
    }

    /// Parses the bytes of a CSV file (see [`Lookup::from_csv_text`]): they
    /// must be UTF-8, after a byte-order mark if there is one.
    pub fn from_csv_bytes(bytes: &[u8], origin: &str) -> Result<Self> {
        // The mark is valid UTF-8: `from_csv_text` drops it (once).
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = 1 + memchr::memchr_iter(b'\n', &bytes[..e.valid_up_to()]).count();
            table_error(origin, Some(line), LookupProblem::NotUtf8)
        })?;
        Self::from_csv_text(text, origin)
    }

    /// Parses CSV text (see [`Lookup::from_csv_file`]); `origin` names it in
    /// errors. A byte-order mark at the start and blank lines are ignored. A
    /// header with fewer than two columns or with a name given twice, no
    /// row, a row with fewer than two columns or broken quoting, an empty
    /// key or a key given twice with different groups is an error.
    pub fn from_csv_text(text: &str, origin: &str) -> Result<Self> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, header)) = lines.next() else {
            return Err(table_error(origin, None, LookupProblem::Empty));
        };
        let names = ingest::csv_header_fields(header);
        if names.len() < 2 {
            return Err(table_error(
                origin,
                None,
                LookupProblem::NeedsTwoColumns {
                    header: header.to_owned(),
                },
            ));
        }
        ingest::check_csv_header(&names).map_err(|e| match e {
            Error::DuplicateColumn {
                name,
                first,
                second,
            } => table_error(
                origin,
                None,
                LookupProblem::DuplicateColumn {
                    name,
                    first,
                    second,
                },
            ),
            other => other,
        })?;
        let mut groups: HashMap<String, String> = HashMap::new();
        for (index, line) in lines {
            let bad = |problem| table_error(origin, Some(index + 1), problem);
            // One split per row.
            let Some(row) = ingest::parse_csv_row(line.as_bytes()) else {
                return Err(bad(LookupProblem::BrokenQuoting));
            };
            // Fields are cut at ASCII commas and quotes of UTF-8 text.
            let field = |i: usize| row.get(i).map(|f| String::from_utf8_lossy(f).into_owned());
            let (Some(key), Some(group)) = (field(0), field(1)) else {
                return Err(bad(LookupProblem::TwoColumnsExpected));
            };
            if key.is_empty() {
                return Err(bad(LookupProblem::EmptyKey));
            }
            if group.is_empty() {
                // An empty key is a malformed record in the input: an empty
                // group would make one out of a good record.
                return Err(bad(LookupProblem::EmptyGroup));
            }
            if let Some(previous) = groups.get(&key) {
                if *previous != group {
                    return Err(bad(LookupProblem::ConflictingGroups {
                        key,
                        first: previous.clone(),
                        second: group,
                    }));
                }
            }
            groups.insert(key, group);
        }
        if groups.is_empty() {
            return Err(table_error(origin, None, LookupProblem::NoRows));
        }
        Ok(Self {
            groups,
            columns: (names[0].clone(), names[1].clone()),
        })
    }

    /// The group of `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.groups.get(key).map(String::as_str)
    }

    /// Keys in the table.
    #[must_use]
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether the table has no key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The names of the key and group columns.
    #[must_use]
    pub fn columns(&self) -> (&str, &str) {
        (&self.columns.0, &self.columns.1)
    }
}

/// Maps dictionary ids of keys to dictionary ids of their groups.
///
/// Invariant: for every id below `resolved.len()`, `resolved[id]` is the
/// group id of key `id`, `NO_GROUP`, or `UNRESOLVED` for an id that was
/// free when its neighbours were resolved (the dictionary may give it to a
/// new key later in the same epoch, so nothing is cached for it); ids at or
/// above `resolved.len()` have not been seen yet.
#[derive(Debug)]
pub struct KeyMapper {
    table: Arc<Lookup>,
    resolved: Vec<u32>,
    /// The dictionary epoch `resolved` was filled in: ids released since
    /// may name other keys now.
    epoch: u64,
}

/// A key that is not in the table.
const NO_GROUP: u32 = u32::MAX;

/// An id that was free when resolved: resolved again when it is used.
const UNRESOLVED: u32 = u32::MAX - 1;

impl KeyMapper {
    /// A mapper through `table`.
    #[must_use]
    pub fn new(table: Arc<Lookup>) -> Self {
        Self {
            table,
            resolved: Vec::new(),
            epoch: 0,
        }
    }

    /// Forgets what was resolved in an earlier epoch of `dict`.
    fn check_epoch(&mut self, dict: &Dictionary) {
        let epoch = dict.epoch();
        if epoch != self.epoch {
            self.epoch = epoch;
            self.resolved.clear();
        }
    }

    /// The group id of key id `id` of `dict`, interning the group; `None`
    /// for a key that is not in the table. An id that is not in `dict` is
    /// an error ([`Error::KeyOutOfRange`]); a mapper must always be used
    /// with the same dictionary.
    pub fn map(&mut self, id: u32, dict: &Dictionary) -> Result<Option<u32>> {
        self.check_epoch(dict);
        if id as usize >= self.resolved.len() {
            self.resolve_up_to(id, 0, dict)?;
        }
        if self.resolved[id as usize] == UNRESOLVED {
            self.resolve_one(id, dict)?;
        }
        let group = self.resolved[id as usize];
        Ok((group != NO_GROUP && group != UNRESOLVED).then_some(group))
    }

    /// Resolves an id that was free when it was first seen.
    fn resolve_one(&mut self, id: u32, dict: &Dictionary) -> Result<()> {
        let group = {
            let read = dict.read();
            match read.get(id) {
                Some(key) => Some(self.table.get(key).map(str::to_owned)),
                None => None,
            }
        };
        self.resolved[id as usize] = match group {
            Some(Some(g)) => dict.intern(&g)?,
            Some(None) => NO_GROUP,
            None => UNRESOLVED,
        };
        Ok(())
    }

    /// Resolves every id up to `id` (group names are interned after the
    /// dictionary's reader is released).
    /// An `id` not in `dict` is an error naming `row`.
    fn resolve_up_to(&mut self, id: u32, row: usize, dict: &Dictionary) -> Result<()> {
        let groups: Vec<Option<Option<String>>> = {
            let read = dict.read();
            if id as usize >= read.id_bound() {
                return Err(Error::KeyOutOfRange {
                    row,
                    id,
                    len: read.id_bound(),
                });
            }
            (self.resolved.len() as u32..=id)
                .map(|k| {
                    read.get(k)
                        .map(|key| self.table.get(key).map(str::to_owned))
                })
                .collect()
        };
        for group in groups {
            let mapped = match group {
                Some(Some(g)) => dict.intern(&g)?,
                Some(None) => NO_GROUP,
                None => UNRESOLVED,
            };
            self.resolved.push(mapped);
        }
        Ok(())
    }

    /// Re-keys the rows of `batch` in place (to ids of its dictionary),
    /// dropping (and returning the number of) rows whose key is not in the
    /// table; times, values and record indices stay aligned with the keys.
    pub fn apply(&mut self, batch: &mut Batch) -> Result<u64> {
        let dict = batch.dictionary().clone();
        self.check_epoch(&dict);
        if let Some((row, &max)) = batch.keys().iter().enumerate().max_by_key(|(_, &k)| k) {
            if max as usize >= self.resolved.len() {
                self.resolve_up_to(max, row, &dict)?;
            }
        }
        for &key in batch.keys() {
            if self.resolved[key as usize] == UNRESOLVED {
                self.resolve_one(key, &dict)?;
            }
        }
        let resolved = &self.resolved;
        // Keys out of the table map to NO_GROUP for a moment: the rows are
        // dropped before the batch is used. (Every key of the batch is live,
        // so none is UNRESOLVED any more.)
        batch.map_keys(|key| resolved[key as usize]);
        Ok(batch.retain(|_, key, _| key != NO_GROUP).events)
    }
}

/// A [`Error::LookupTable`] of the table `origin`.
fn table_error(origin: &str, line: Option<usize>, problem: LookupProblem) -> Error {
    Error::LookupTable {
        origin: origin.to_owned(),
        line,
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Column;

    #[test]
    fn bad_tables_are_errors_naming_the_line() {
        for (text, wanted) in [
            ("", "empty"),
            ("only\n", "two columns"),
            ("k,g\na\n", "line 2: two columns expected"),
            ("k,g\n,x\n", "line 2: empty key"),
            (
                "k,g\na,x\n\na,y\n",
                "line 4: key `a` maps to both `x` and `y`",
            ),
            ("k,g\n", "has a header but no rows"),
            ("\n\n k,g \n\n", "has a header but no rows"),
            ("k,k\na,b\n", "names column `k` twice"),
            ("k,g\n\"a,b\n", "line 2: broken quoting"),
            ("k,g\na\"x\"y,b\n", "line 2: broken quoting"),
        ] {
            let err = Lookup::from_csv_text(text, "t.csv")
                .unwrap_err()
                .to_string();
            assert!(err.contains(wanted), "{text:?}: {err}");
        }
        let ok = Lookup::from_csv_text("k,g\na,x\na,x\n\"b,1\",y\n", "t.csv").unwrap();
        assert_eq!(
            (ok.len(), ok.get("b,1"), ok.columns()),
            (2, Some("y"), ("k", "g"))
        );
    }

    #[test]
    fn lookup_table_errors_are_typed_with_origin_and_line() {
        let err = Lookup::from_csv_text("k,g\na,x\na,y\n", "t.csv").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.csv line 3: key `a` maps to both `x` and `y`"
        );
        match err {
            Error::LookupTable {
                origin,
                line: Some(3),
                problem: LookupProblem::ConflictingGroups { key, first, second },
            } => assert_eq!(
                (&*origin, &*key, &*first, &*second),
                ("t.csv", "a", "x", "y")
            ),
            other => panic!("{other:?}"),
        }
        let err = Lookup::from_csv_text("k,k\na,b\n", "t.csv").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.csv: the CSV header names column `k` twice (columns 1 and 2)"
        );
        assert!(err.is_usage());
    }

    #[test]
    fn apply_keeps_columns_aligned_and_counts_dropped_events() {
        let dict = Dictionary::new();
        let table = Lookup::from_csv_text("k,g\na,G\nc,H\n", "t").unwrap();
        let [ka, kb, kc] = ["a", "b", "c"].map(|k| dict.intern(k).unwrap());
        let mut piece = Batch::from_valid(
            dict.clone(),
            vec![10, 20, 30, 40, 50],
            vec![ka, kb, kc, kb, ka],
            vec![Column::I64(vec![1, 2, 3, 4, 5])],
            vec![0, 1, 2, 3, 4],
        );
        let mut mapper = KeyMapper::new(Arc::new(table));
        assert_eq!(mapper.apply(&mut piece).unwrap(), 2);
        let (big_g, big_h) = (dict.lookup("G").unwrap(), dict.lookup("H").unwrap());
        assert_eq!(piece.keys(), [big_g, big_h, big_g]);
        assert!(matches!(piece.values(0), crate::Values::I64(&[1, 3, 5])));
        assert_eq!(piece.times(), [10, 30, 50]);
        assert_eq!(piece.records(), [0, 2, 4]);
        // Ids interned later (the group names) resolve too.
        assert_eq!(mapper.map(big_g, &dict).unwrap(), None);
    }

    #[test]
    fn an_id_free_when_resolved_and_reused_later_is_mapped_by_its_new_key() {
        let dict = Dictionary::new();
        // `high` is its own group (an alias table), so resolving it interns nothing.
        let table = Lookup::from_csv_text("k,g\nnew,G\nhigh,high\n", "t").unwrap();
        let low = dict.intern("gone").unwrap();
        let high = dict.intern("high").unwrap();
        // `gone` leaves: its id is free while `high` is resolved.
        dict.retain(|id| id == high);
        let mut mapper = KeyMapper::new(Arc::new(table));
        assert_eq!(mapper.map(high, &dict).unwrap(), Some(high));
        // Same epoch: the free id goes to a key of the table.
        let new = dict.intern("new").unwrap();
        assert_eq!(new, low);
        assert_eq!(mapper.map(new, &dict).unwrap(), dict.lookup("G"));
        let mut batch =
            Batch::from_valid(dict.clone(), vec![], vec![new, high], vec![], vec![0, 1]);
        assert_eq!(mapper.apply(&mut batch).unwrap(), 0);
        assert_eq!(batch.keys(), [dict.lookup("G").unwrap(), high]);
    }

    #[test]
    fn lookup_file_bytes_may_start_with_a_bom_and_must_be_utf8() {
        let table = Lookup::from_csv_bytes(b"\xEF\xBB\xBFad,campaign\na1,c1\n", "t.csv").unwrap();
        assert_eq!(table.columns(), ("ad", "campaign"));
        assert_eq!(table.get("a1"), Some("c1"));
        let table = Lookup::from_csv_text("\u{feff}ad,campaign\r\na1,c1\r\n", "t.csv").unwrap();
        assert_eq!((table.columns().0, table.get("a1")), ("ad", Some("c1")));
        // Only one mark is dropped (a fuzzer's find: two were).
        let table = Lookup::from_csv_bytes(b"\xEF\xBB\xBF\xEF\xBB\xBFk,g\na,x\n", "t").unwrap();
        // (A header name never starts with the mark.)
        assert_eq!(table.columns(), ("k", "g"));
        let err = Lookup::from_csv_bytes(b"\xEF\xBB\xBF\xEF\xBB\xBF\na,y\na,x\n", "t").unwrap_err();
        assert!(err.to_string().contains("needs two columns"), "{err}");
        let err = Lookup::from_csv_bytes(b"k,g\na,b\nc,\xff\n", "t.csv").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.csv line 3: the lookup table is not UTF-8"
        );
    }

    #[test]
    fn mapping_an_id_of_another_dictionary_is_an_error_not_a_panic() {
        let dict = Dictionary::new();
        let table = Lookup::from_csv_text("k,g\na,G\n", "t").unwrap();
        let a = dict.intern("a").unwrap();
        let mut mapper = KeyMapper::new(Arc::new(table));
        assert!(matches!(
            mapper.map(7, &dict),
            Err(Error::KeyOutOfRange { id: 7, len: 1, .. })
        ));
        assert!(mapper.map(u32::MAX, &dict).is_err());
        // The mapper still works after the error.
        assert_eq!(mapper.map(a, &dict).unwrap(), dict.lookup("G"));
    }
}
