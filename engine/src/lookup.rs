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

use crate::dictionary::Dictionary;
use crate::error::{Error, Result};
use crate::ingest::{self, ParsedChunk};
use crate::Column;

/// A static table from key to group, read from a CSV file whose first two
/// columns are the key and the group (with a header line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    groups: HashMap<String, String>,
    /// The header's first two names.
    columns: (String, String),
}

impl Lookup {
    /// Reads a CSV file: a header, then `key,group[,…]` rows.
    pub fn from_csv_file(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| Error::io(&shown, &e))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::Config(format!("{shown}: the lookup table is not UTF-8")))?;
        Self::from_csv_text(&text, &shown)
    }

    /// Parses CSV text (see [`Lookup::from_csv_file`]); `origin` names it in
    /// errors. Blank lines are ignored; a row with fewer than two columns, an
    /// empty key or a key given twice with different groups is an error.
    pub fn from_csv_text(text: &str, origin: &str) -> Result<Self> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, header)) = lines.next() else {
            return Err(Error::Config(format!(
                "{origin}: the lookup table is empty"
            )));
        };
        let names = ingest::csv_header_fields(header);
        if names.len() < 2 {
            return Err(Error::Config(format!(
                "{origin}: the lookup table needs two columns, key and group (header `{header}`)"
            )));
        }
        let mut groups = HashMap::new();
        for (index, line) in lines {
            let bad = |what: &str| Error::Config(format!("{origin} line {}: {what}", index + 1));
            // One split per row; a row with broken quoting has no columns.
            let row = ingest::parse_csv_row(line.as_bytes()).unwrap_or_default();
            let field = |i: usize| row.get(i).map(|f| String::from_utf8_lossy(f).into_owned());
            let (Some(key), Some(group)) = (field(0), field(1)) else {
                return Err(bad("two columns expected"));
            };
            if key.is_empty() {
                return Err(bad("empty key"));
            }
            if let Some(previous) = groups.get(&key) {
                if *previous != group {
                    return Err(bad(&format!(
                        "key `{key}` maps to both `{previous}` and `{group}`"
                    )));
                }
            }
            groups.insert(key, group);
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
/// Invariant: `resolved[id]` is the group id of key `id`, or [`NO_GROUP`],
/// for every id below `resolved.len()`; ids at or above it have not been
/// seen yet.
#[derive(Debug)]
pub struct KeyMapper {
    table: Arc<Lookup>,
    resolved: Vec<u32>,
}

/// A key that is not in the table.
const NO_GROUP: u32 = u32::MAX;

impl KeyMapper {
    /// A mapper through `table`.
    #[must_use]
    pub fn new(table: Arc<Lookup>) -> Self {
        Self {
            table,
            resolved: Vec::new(),
        }
    }

    /// The group id of key id `id` of `dict`, interning the group; `None`
    /// for a key that is not in the table.
    pub fn map(&mut self, id: u32, dict: &Dictionary) -> Result<Option<u32>> {
        if id as usize >= self.resolved.len() {
            self.resolve_up_to(id, dict)?;
        }
        let group = self.resolved[id as usize];
        Ok((group != NO_GROUP).then_some(group))
    }

    /// Resolves every id up to `id` (group names are interned after the
    /// dictionary's reader is released).
    fn resolve_up_to(&mut self, id: u32, dict: &Dictionary) -> Result<()> {
        let groups: Vec<Option<String>> = {
            let read = dict.read();
            (self.resolved.len() as u32..=id)
                .map(|k| {
                    let key = read.get(k).expect("ids come from this dictionary");
                    self.table.get(key).map(str::to_owned)
                })
                .collect()
        };
        for group in groups {
            let mapped = match group {
                Some(g) => dict.intern(&g)?,
                None => NO_GROUP,
            };
            self.resolved.push(mapped);
        }
        Ok(())
    }

    /// Re-keys the events of `piece` in place, dropping (and returning the
    /// number of) events whose key is not in the table; times, values and
    /// record indices stay aligned with the keys.
    pub fn apply(&mut self, piece: &mut ParsedChunk, dict: &Dictionary) -> Result<u64> {
        if let Some(&max) = piece.keys.iter().max() {
            if max as usize >= self.resolved.len() {
                self.resolve_up_to(max, dict)?;
            }
        }
        let has_times = !piece.times.is_empty();
        let mut kept = 0;
        for i in 0..piece.keys.len() {
            let group = self.resolved[piece.keys[i] as usize];
            if group == NO_GROUP {
                continue;
            }
            piece.keys[kept] = group;
            piece.record_of[kept] = piece.record_of[i];
            if has_times {
                piece.times[kept] = piece.times[i];
            }
            match &mut piece.values {
                Some(Column::I64(v)) => v[kept] = v[i],
                Some(Column::F64(v)) => v[kept] = v[i],
                None => {}
            }
            kept += 1;
        }
        let dropped = (piece.keys.len() - kept) as u64;
        piece.keys.truncate(kept);
        piece.record_of.truncate(kept);
        if has_times {
            piece.times.truncate(kept);
        }
        match &mut piece.values {
            Some(Column::I64(v)) => v.truncate(kept),
            Some(Column::F64(v)) => v.truncate(kept),
            None => {}
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn apply_keeps_columns_aligned_and_counts_dropped_events() {
        let dict = Dictionary::new();
        let table = Lookup::from_csv_text("k,g\na,G\nc,H\n", "t").unwrap();
        let [ka, kb, kc] = ["a", "b", "c"].map(|k| dict.intern(k).unwrap());
        let mut piece = ParsedChunk {
            keys: vec![ka, kb, kc, kb, ka],
            values: Some(Column::I64(vec![1, 2, 3, 4, 5])),
            times: vec![10, 20, 30, 40, 50],
            record_of: vec![0, 1, 2, 3, 4],
            ..ParsedChunk::default()
        };
        let mut mapper = KeyMapper::new(Arc::new(table));
        assert_eq!(mapper.apply(&mut piece, &dict).unwrap(), 2);
        let (big_g, big_h) = (dict.lookup("G").unwrap(), dict.lookup("H").unwrap());
        assert_eq!(piece.keys, [big_g, big_h, big_g]);
        assert_eq!(piece.values, Some(Column::I64(vec![1, 3, 5])));
        assert_eq!(piece.times, [10, 30, 50]);
        assert_eq!(piece.record_of, [0, 2, 4]);
        // Ids interned later (the group names) resolve too.
        assert_eq!(mapper.map(big_g, &dict).unwrap(), None);
    }
}
