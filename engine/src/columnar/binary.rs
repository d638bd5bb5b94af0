//! The `datasets events --format binary` layout: [`RECORD_BYTES`] bytes an
//! event, no header, little-endian: bytes 0..8 the time (`i64`, ms), 8..12
//! the key (`u32`, whose text is `k` and the number, as the generator's
//! CSV output writes it), 12..20 the value (`i64`). Columns by name: `ts`,
//! `key`, `value`.

use super::{canonical_integer, Decoder};
use crate::batch::Column;
use crate::dictionary::Dictionary;
use crate::error::{ColumnRole, Result};
use crate::ingest::time_in_range;

/// Bytes of one binary event.
pub const RECORD_BYTES: usize = 20;

/// The binary layout's columns, in order.
const COLUMNS: [&str; 3] = ["ts", "key", "value"];

/// A field of a binary event, for the filter.
#[derive(Debug, Clone, Copy)]
enum Field {
    Time,
    Key,
    Value,
}

impl Decoder {
    /// Checks that the job's columns are the binary layout's.
    pub(crate) fn check_binary_names(&self) -> Result<()> {
        let names = &self.names;
        let check = |role: ColumnRole, name: &str, expected: &str| {
            if name == expected {
                Ok(())
            } else {
                Err(self.missing(role, name, COLUMNS.map(str::to_owned).to_vec()))
            }
        };
        check(ColumnRole::Key, &names.key, "key")?;
        if let Some(time) = &names.time {
            check(ColumnRole::Time, time, "ts")?;
        }
        if let Some((value, _)) = &names.value {
            check(ColumnRole::Value, value, "value")?;
        }
        if let Some((field, _)) = &names.filter {
            if binary_field(field).is_none() {
                return Err(self.missing(
                    ColumnRole::Filter,
                    field,
                    COLUMNS.map(str::to_owned).to_vec(),
                ));
            }
        }
        Ok(())
    }

    /// Appends the events of `bytes`, whole binary events (a multiple of
    /// [`RECORD_BYTES`]).
    pub(crate) fn binary(&mut self, bytes: &[u8], dict: &Dictionary) -> Result<()> {
        debug_assert_eq!(bytes.len() % RECORD_BYTES, 0);
        let n = bytes.len() / RECORD_BYTES;
        let base = self.keys.len();
        let records = bytes.chunks_exact(RECORD_BYTES);
        // One pass over the bytes into columns sized up front (no capacity
        // check a row), one loop per value column type.
        let (times, keys) = (&mut self.times, &mut self.keys);
        times.resize(base + n, 0);
        keys.resize(base + n, 0);
        let rows = times[base..].iter_mut().zip(&mut keys[base..]).zip(records);
        match &mut self.values {
            Some(Column::I64(values)) => {
                values.resize(base + n, 0);
                for (((t, k), r), v) in rows.zip(&mut values[base..]) {
                    (*t, *k, *v) = (time(r), key(r), value(r));
                }
            }
            Some(Column::F64(values)) => {
                values.resize(base + n, 0.0);
                for (((t, k), r), v) in rows.zip(&mut values[base..]) {
                    (*t, *k, *v) = (time(r), key(r), value(r) as f64);
                }
            }
            None => {
                for ((t, k), r) in rows {
                    (*t, *k) = (time(r), key(r));
                }
            }
        }
        if let Some((field, text)) = &self.names.filter {
            let field = binary_field(field).expect("checked by check_binary_names");
            let target = match field {
                Field::Key => text
                    .strip_prefix('k')
                    .and_then(canonical_integer)
                    .filter(|n| u32::try_from(*n).is_ok()),
                Field::Time | Field::Value => canonical_integer(text),
            };
            for (row, r) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
                let got = match field {
                    Field::Time => time(r),
                    Field::Key => i64::from(key(r)),
                    Field::Value => value(r),
                };
                if target != Some(got) {
                    self.filter_out(row);
                }
            }
        }
        // A branch-free scan first: nearly every block is clean.
        if self.names.time.is_some() && !self.times[base..].iter().all(|&t| time_in_range(t)) {
            for row in 0..n {
                let t = self.times[base + row];
                if !time_in_range(t) {
                    self.bad(row, || {
                        format!(
                            "timestamp {t} is out of range (milliseconds within ±2^53 expected)"
                        )
                    });
                }
            }
        }
        self.binary_keys.sync(dict);
        self.binary_keys.map_u32(&mut self.keys[base..], dict)?;
        self.end_block(base, n);
        Ok(())
    }
}

fn binary_field(name: &str) -> Option<Field> {
    match name {
        "ts" => Some(Field::Time),
        "key" => Some(Field::Key),
        "value" => Some(Field::Value),
        _ => None,
    }
}

#[inline]
fn time(r: &[u8]) -> i64 {
    i64::from_le_bytes(r[0..8].try_into().expect("8 bytes"))
}

#[inline]
fn key(r: &[u8]) -> u32 {
    u32::from_le_bytes(r[8..12].try_into().expect("4 bytes"))
}

#[inline]
fn value(r: &[u8]) -> i64 {
    i64::from_le_bytes(r[12..20].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Values;
    use crate::columnar::ColumnNames;
    use crate::window::ValueType;

    fn event(t: i64, k: u32, v: i64) -> Vec<u8> {
        [&t.to_le_bytes()[..], &k.to_le_bytes(), &v.to_le_bytes()].concat()
    }

    fn names(filter: Option<(&str, &str)>) -> ColumnNames {
        ColumnNames {
            key: "key".into(),
            time: Some("ts".into()),
            value: Some(("value".into(), ValueType::I64)),
            filter: filter.map(|(f, t)| (f.into(), t.into())),
        }
    }

    #[test]
    fn the_layout_is_the_datasets_binary_layout() {
        assert_eq!(RECORD_BYTES, datasets::EVENT_RECORD_BYTES);
    }

    #[test]
    fn events_decode_with_keys_as_the_csv_writes_them_and_bad_times_skipped() {
        let dict = Dictionary::new();
        let mut decoder = Decoder::new("e.bin", names(None), true);
        let bytes = [
            event(1_500, 17, -42),
            event(i64::MAX, 3, 1),
            event(1_501, 3, 7),
        ]
        .concat();
        decoder.binary(&bytes, &dict).unwrap();
        let piece = decoder.take(&dict);
        assert_eq!((piece.records, piece.skipped, piece.filtered), (3, 1, 0));
        assert_eq!(piece.errors.len(), 1);
        assert_eq!(piece.errors[0].line, 1);
        assert!(piece.errors[0].reason.to_string().contains("out of range"));
        let batch = &piece.batch;
        assert_eq!(batch.times(), [1_500, 1_501]);
        assert_eq!(batch.records(), [0, 2], "the skipped row keeps its index");
        let read = dict.read();
        let keys: Vec<&str> = batch.keys().iter().map(|&k| read.get(k).unwrap()).collect();
        assert_eq!(keys, ["k17", "k3"]);
        assert!(matches!(batch.values(0), Values::I64(&[-42, 7])));
    }

    #[test]
    fn the_filter_compares_the_fields_text() {
        let dict = Dictionary::new();
        let bytes = [event(1, 17, 5), event(2, 3, 5), event(3, 17, 6)].concat();
        for (filter, kept) in [
            (("key", "k17"), 2),
            (("value", "5"), 2),
            (("value", "05"), 0),
            (("ts", "3"), 1),
            (("key", "17"), 0),
        ] {
            let mut decoder = Decoder::new("e.bin", names(Some(filter)), false);
            decoder.check_binary_names().unwrap();
            decoder.binary(&bytes, &dict).unwrap();
            let piece = decoder.take(&dict);
            assert_eq!(piece.batch.len(), kept, "{filter:?}");
            assert_eq!(piece.filtered, 3 - kept as u64);
        }
    }

    #[test]
    fn other_column_names_are_refused_naming_the_layouts() {
        let mut wrong = names(None);
        wrong.value = Some(("price".into(), ValueType::F64));
        let err = Decoder::new("e.bin", wrong, false)
            .check_binary_names()
            .unwrap_err();
        let text = crate::error::chain(&err);
        assert!(
            text.contains("no value column `price`; the input has: ts, key, value"),
            "{text}"
        );
    }
}
