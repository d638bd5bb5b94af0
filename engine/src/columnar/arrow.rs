//! Arrow record batches (from Arrow IPC or Parquet) into the decoder's
//! buffers, column by column: the job's columns found by name once per
//! schema ([`Plan`]), keys to dictionary ids, times to ms, values to the
//! job's value type, and every null or unfit cell a malformed row.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowDictionaryKeyType, Date64Type, Float32Type, Float64Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{
    downcast_dictionary_array, downcast_integer_array, Array, ArrayAccessor, ArrayRef,
    DictionaryArray, RecordBatch,
};
use arrow_buffer::{ArrowNativeType, NullBuffer};
use arrow_schema::{DataType, SchemaRef, TimeUnit};

use super::{canonical_integer, ColumnarProblem, Decoder};
use crate::batch::Column;
use crate::dictionary::Dictionary;
use crate::error::{ColumnRole, Error, Result};
use crate::ingest::{time_in_range, with_cache};

/// A row whose key is null (or a dictionary index that names no value).
const NONE: u32 = u32::MAX;

/// 2^63: `i64::MIN` is `-TWO_63` exactly; `TWO_63` is past `i64::MAX`.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

/// What each role takes.
const KEY_TYPES: &str = "text (Utf8, LargeUtf8, Utf8View, a dictionary of Utf8) or an integer";
const TIME_TYPES: &str = "integer milliseconds, a Timestamp or a Date64";
const VALUE_TYPES: &str = "an integer or a float";

/// Where the job's columns are in one schema, and the last dictionary of
/// the key column with its ids.
pub(crate) struct Plan {
    schema: SchemaRef,
    key: usize,
    time: Option<usize>,
    value: Option<usize>,
    filter: Option<usize>,
    dictionary: Option<Mapped>,
}

/// A dictionary's values mapped to ids, for a dictionary and epoch.
struct Mapped {
    values: ArrayRef,
    owner: (u64, u64),
    ids: Vec<u32>,
}

fn is_integer(t: &DataType) -> bool {
    t.is_integer()
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_key(t: &DataType) -> bool {
    match t {
        DataType::Dictionary(_, values) => matches!(**values, DataType::Utf8 | DataType::LargeUtf8),
        t => is_text(t) || is_integer(t),
    }
}

fn is_time(t: &DataType) -> bool {
    is_integer(t) || matches!(t, DataType::Timestamp(..) | DataType::Date64)
}

fn is_value(t: &DataType) -> bool {
    is_integer(t) || matches!(t, DataType::Float32 | DataType::Float64)
}

impl Decoder {
    /// Finds the job's columns in `schema` and checks their types; a
    /// schema seen last time is not checked again.
    pub(crate) fn arrow_schema(&mut self, schema: &SchemaRef) -> Result<()> {
        if self
            .plan
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(&p.schema, schema) || p.schema == *schema)
        {
            return Ok(());
        }
        let find = |role, name: &str, accepts: fn(&DataType) -> bool, expected| {
            let Ok(i) = schema.index_of(name) else {
                let available = schema.fields().iter().map(|f| f.name().clone()).collect();
                return Err(self.missing(role, name, available));
            };
            let found = schema.field(i).data_type();
            if accepts(found) {
                Ok(i)
            } else {
                Err(self.problem(ColumnarProblem::WrongType {
                    role,
                    name: name.to_owned(),
                    found: found.to_string(),
                    expected,
                }))
            }
        };
        let names = &self.names;
        let plan = Plan {
            schema: Arc::clone(schema),
            key: find(ColumnRole::Key, &names.key, is_key, KEY_TYPES)?,
            time: (names.time.as_deref())
                .map(|t| find(ColumnRole::Time, t, is_time, TIME_TYPES))
                .transpose()?,
            value: (names.value.as_ref())
                .map(|(v, _)| find(ColumnRole::Value, v, is_value, VALUE_TYPES))
                .transpose()?,
            filter: (names.filter.as_ref())
                .map(|(f, _)| find(ColumnRole::Filter, f, is_key, KEY_TYPES))
                .transpose()?,
            dictionary: None,
        };
        self.plan = Some(plan);
        Ok(())
    }

    /// Appends the rows of `batch`.
    pub(crate) fn arrow(&mut self, batch: &RecordBatch, dict: &Dictionary) -> Result<()> {
        self.arrow_schema(&batch.schema())?;
        let mut plan = self.plan.take().expect("resolved above");
        let outcome = self.arrow_rows(&mut plan, batch, dict);
        self.plan = Some(plan);
        outcome
    }

    fn arrow_rows(
        &mut self,
        plan: &mut Plan,
        batch: &RecordBatch,
        dict: &Dictionary,
    ) -> Result<()> {
        let n = batch.num_rows();
        let base = self.keys.len();
        if let (Some(at), Some((_, text))) = (plan.filter, self.names.filter.clone()) {
            self.filter(batch.column(at).as_ref(), &text);
        }
        self.int_keys.sync(dict);
        self.arrow_keys(batch.column(plan.key), &mut plan.dictionary, dict)?;
        if let Some(at) = plan.time {
            self.arrow_times(batch.column(at).as_ref())?;
        }
        if let Some(at) = plan.value {
            self.arrow_values(batch.column(at).as_ref())?;
        }
        debug_assert_eq!(self.keys.len(), base + n);
        self.end_block(base, n);
        Ok(())
    }

    /// A column whose type changed under its schema: refused, not a panic.
    fn unexpected(&self, role: ColumnRole, column: &dyn Array, expected: &'static str) -> Error {
        self.problem(ColumnarProblem::WrongType {
            role,
            name: String::new(),
            found: column.data_type().to_string(),
            expected,
        })
    }

    fn arrow_keys(
        &mut self,
        column: &ArrayRef,
        mapped: &mut Option<Mapped>,
        dict: &Dictionary,
    ) -> Result<()> {
        let base = self.keys.len();
        let nulls = column.logical_nulls();
        let out = &mut self.keys;
        match column.data_type() {
            DataType::Utf8 => text_ids(column.as_string::<i32>(), nulls.as_ref(), dict, out)?,
            DataType::LargeUtf8 => {
                text_ids(column.as_string::<i64>(), nulls.as_ref(), dict, out)?;
            }
            DataType::Utf8View => text_ids(column.as_string_view(), nulls.as_ref(), dict, out)?,
            DataType::Dictionary(..) => downcast_dictionary_array!(
                column => gather(column, mapped, dict, out)?,
                _ => return Err(self.unexpected(ColumnRole::Key, column, KEY_TYPES)),
            ),
            _ => {
                let keys = &mut self.int_keys;
                downcast_integer_array!(
                    column => {
                        out.reserve(column.len());
                        for (i, v) in column.values().iter().enumerate() {
                            let valid = nulls.as_ref().is_none_or(|n| n.is_valid(i));
                            out.push(match v.to_i64() {
                                Some(v) if valid => keys.id(v, dict)?,
                                // u64 keys past i64: their text all the same.
                                None if valid => dict.intern(&v.to_string())?,
                                _ => NONE,
                            });
                        }
                    },
                    _ => return Err(self.unexpected(ColumnRole::Key, column, KEY_TYPES)),
                );
            }
        }
        if self.keys[base..].contains(&NONE) {
            let name = self.names.key.clone();
            for row in 0..self.keys.len() - base {
                if self.keys[base + row] == NONE {
                    self.bad(row, || format!("null key in column `{name}`"));
                }
            }
        }
        Ok(())
    }

    fn arrow_times(&mut self, column: &dyn Array) -> Result<()> {
        let base = self.times.len();
        let out = &mut self.times;
        match column.data_type() {
            DataType::Int64 => out.extend_from_slice(column.as_primitive::<Int64Type>().values()),
            DataType::Date64 => out.extend_from_slice(column.as_primitive::<Date64Type>().values()),
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                out.extend_from_slice(column.as_primitive::<TimestampMillisecondType>().values());
            }
            DataType::Timestamp(TimeUnit::Second, _) => out.extend(
                (column.as_primitive::<TimestampSecondType>().values().iter())
                    .map(|s| s.checked_mul(1_000).unwrap_or(i64::MIN)),
            ),
            DataType::Timestamp(TimeUnit::Microsecond, _) => out.extend(
                (column
                    .as_primitive::<TimestampMicrosecondType>()
                    .values()
                    .iter())
                .map(|us| us.div_euclid(1_000)),
            ),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => out.extend(
                (column
                    .as_primitive::<TimestampNanosecondType>()
                    .values()
                    .iter())
                .map(|ns| ns.div_euclid(1_000_000)),
            ),
            _ => downcast_integer_array!(
                column => out.extend(column.values().iter().map(|v| v.to_i64().unwrap_or(i64::MIN))),
                _ => return Err(self.unexpected(ColumnRole::Time, column, TIME_TYPES)),
            ),
        }
        let name = self.names.time.clone().unwrap_or_default();
        for row in null_rows(column) {
            self.bad(row, || format!("null time in column `{name}`"));
        }
        if !self.times[base..].iter().all(|&t| time_in_range(t)) {
            for row in 0..self.times.len() - base {
                let t = self.times[base + row];
                if !time_in_range(t) {
                    self.bad(row, || {
                        format!("time in column `{name}` is out of range (±2^53 ms)")
                    });
                }
            }
        }
        Ok(())
    }

    fn arrow_values(&mut self, column: &dyn Array) -> Result<()> {
        let name = self.names.value.as_ref().map(|(v, _)| v.clone());
        let name = name.unwrap_or_default();
        let mut unfit: Vec<(usize, String)> = Vec::new();
        match &mut self.values {
            Some(Column::I64(out)) => match column.data_type() {
                DataType::Int64 => {
                    out.extend_from_slice(column.as_primitive::<Int64Type>().values());
                }
                DataType::Float32 | DataType::Float64 => {
                    for (row, v) in floats(column).enumerate() {
                        let integral = v.fract() == 0.0 && (-TWO_63..TWO_63).contains(&v);
                        out.push(if integral { v as i64 } else { 0 });
                        if !integral {
                            unfit.push((
                                row,
                                format!("value {v} in column `{name}` is not an integer"),
                            ));
                        }
                    }
                }
                _ => downcast_integer_array!(
                    column => for (row, v) in column.values().iter().enumerate() {
                        out.push(v.to_i64().unwrap_or_else(|| {
                            unfit.push((row, format!("value {v} in column `{name}` does not fit 64 bits")));
                            0
                        }));
                    },
                    _ => return Err(self.unexpected(ColumnRole::Value, column, VALUE_TYPES)),
                ),
            },
            Some(Column::F64(out)) => {
                let base = out.len();
                match column.data_type() {
                    DataType::Float64 => {
                        out.extend_from_slice(column.as_primitive::<Float64Type>().values());
                    }
                    DataType::Float32 => out.extend(floats(column)),
                    _ => downcast_integer_array!(
                        column => out.extend(column.values().iter().map(|&v| {
                            v.to_i64().map_or_else(|| v.as_usize() as f64, |x| x as f64)
                        })),
                        _ => return Err(self.unexpected(ColumnRole::Value, column, VALUE_TYPES)),
                    ),
                }
                if !out[base..].iter().all(|v| v.is_finite()) {
                    for (row, v) in out[base..].iter_mut().enumerate() {
                        if !v.is_finite() {
                            unfit
                                .push((row, format!("value {v} in column `{name}` is not finite")));
                            *v = 0.0;
                        }
                    }
                }
            }
            None => return Ok(()),
        }
        for row in null_rows(column) {
            self.bad(row, || format!("null value in column `{name}`"));
        }
        for (row, reason) in unfit {
            self.bad(row, || reason);
        }
        Ok(())
    }

    /// Marks the rows whose `column` does not read as `text` (nulls never
    /// do) as filtered.
    fn filter(&mut self, column: &dyn Array, text: &str) {
        let nulls = column.logical_nulls();
        let mut out = Vec::new();
        let mut check = |row: usize, matches: bool| {
            if !matches || nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                out.push(row);
            }
        };
        match column.data_type() {
            DataType::Utf8 => column
                .as_string::<i32>()
                .iter()
                .enumerate()
                .for_each(|(i, v)| check(i, v == Some(text))),
            DataType::LargeUtf8 => column
                .as_string::<i64>()
                .iter()
                .enumerate()
                .for_each(|(i, v)| check(i, v == Some(text))),
            DataType::Utf8View => column
                .as_string_view()
                .iter()
                .enumerate()
                .for_each(|(i, v)| check(i, v == Some(text))),
            DataType::Dictionary(..) => downcast_dictionary_array!(
                column => {
                    let values = column.values();
                    let hits: Vec<bool> = match values.data_type() {
                        DataType::Utf8 => values.as_string::<i32>().iter().map(|v| v == Some(text)).collect(),
                        DataType::LargeUtf8 => values.as_string::<i64>().iter().map(|v| v == Some(text)).collect(),
                        _ => Vec::new(),
                    };
                    for (i, k) in column.keys().values().iter().enumerate() {
                        check(i, hits.get(k.as_usize()).copied().unwrap_or(false));
                    }
                },
                _ => (0..column.len()).for_each(|i| check(i, false)),
            ),
            _ => {
                let target = canonical_integer(text);
                downcast_integer_array!(
                    column => for (i, v) in column.values().iter().enumerate() {
                        check(i, target.is_some() && v.to_i64() == target);
                    },
                    _ => (0..column.len()).for_each(|i| check(i, false)),
                );
            }
        }
        for row in out {
            self.filter_out(row);
        }
    }
}

/// Appends the id of each text (NONE for nulls), through the parsers'
/// per-thread key cache.
fn text_ids<'a, A: ArrayAccessor<Item = &'a str> + Copy>(
    column: A,
    nulls: Option<&NullBuffer>,
    dict: &Dictionary,
    out: &mut Vec<u32>,
) -> Result<()> {
    out.reserve(column.len());
    with_cache(dict, |cache| {
        for i in 0..column.len() {
            if nulls.is_some_and(|n| n.is_null(i)) {
                out.push(NONE);
            } else {
                out.push(cache.id(column.value(i), dict)?);
            }
        }
        Ok(())
    })
}

/// Dictionary-encoded keys: the dictionary's values mapped to ids once
/// (again only when the batch brings another dictionary or ids were
/// released), then each row's index gathered.
fn gather<K: ArrowDictionaryKeyType>(
    column: &DictionaryArray<K>,
    mapped: &mut Option<Mapped>,
    dict: &Dictionary,
    out: &mut Vec<u32>,
) -> Result<()> {
    let values = column.values();
    let owner = (dict.id(), dict.epoch());
    let fresh = mapped
        .as_ref()
        .is_some_and(|m| m.owner == owner && Arc::ptr_eq(&m.values, values));
    if !fresh {
        let mut ids = Vec::with_capacity(values.len());
        let nulls = values.logical_nulls();
        match values.data_type() {
            DataType::Utf8 => text_ids(values.as_string::<i32>(), nulls.as_ref(), dict, &mut ids)?,
            DataType::LargeUtf8 => {
                text_ids(values.as_string::<i64>(), nulls.as_ref(), dict, &mut ids)?;
            }
            // Refused by the plan; every row reads as a null key.
            _ => ids.resize(values.len(), NONE),
        }
        *mapped = Some(Mapped {
            values: Arc::clone(values),
            owner,
            ids,
        });
    }
    let ids = &mapped.as_ref().expect("mapped above").ids;
    let keys = column.keys();
    let lookup = |k: K::Native| ids.get(k.as_usize()).copied().unwrap_or(NONE);
    match keys.nulls() {
        None => out.extend(keys.values().iter().map(|&k| lookup(k))),
        Some(nulls) => out.extend((keys.values().iter().enumerate()).map(|(i, &k)| {
            if nulls.is_valid(i) {
                lookup(k)
            } else {
                NONE
            }
        })),
    }
    Ok(())
}

/// The rows of `column` that are null.
fn null_rows(column: &dyn Array) -> Vec<usize> {
    match column.logical_nulls() {
        Some(nulls) if nulls.null_count() > 0 => {
            (0..column.len()).filter(|&i| nulls.is_null(i)).collect()
        }
        _ => Vec::new(),
    }
}

/// A float column's values as `f64`.
fn floats(column: &dyn Array) -> Box<dyn Iterator<Item = f64> + '_> {
    match column.data_type() {
        DataType::Float32 => {
            Box::new((column.as_primitive::<Float32Type>().values().iter()).map(|&v| f64::from(v)))
        }
        _ => Box::new(
            column
                .as_primitive::<Float64Type>()
                .values()
                .iter()
                .copied(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::{Float64Array, Int64Array, StringArray};
    use arrow_schema::{Field, Schema};

    use super::*;
    use crate::batch::Values;
    use crate::columnar::ColumnNames;
    use crate::window::ValueType;

    fn names() -> ColumnNames {
        ColumnNames {
            key: "key".into(),
            time: Some("ts".into()),
            value: Some(("value".into(), ValueType::F64)),
            filter: None,
        }
    }

    fn batch(keys: ArrayRef, values: Vec<Option<f64>>) -> RecordBatch {
        let n = keys.len() as i64;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(0..n)),
            keys,
            Arc::new(Float64Array::from(values)),
        ];
        let fields: Vec<Field> = ["ts", "key", "value"]
            .iter()
            .zip(&columns)
            .map(|(name, c)| Field::new(*name, c.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    #[test]
    fn dictionary_keys_are_mapped_once_and_null_keys_are_malformed_rows() {
        let dict = Dictionary::new();
        let values: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), None, Some("b")]));
        // Rows: a, a null index, the null value, b, a.
        let indices = arrow_array::Int32Array::from(vec![Some(0), None, Some(1), Some(2), Some(0)]);
        let keys: ArrayRef = Arc::new(DictionaryArray::new(indices, Arc::clone(&values)));
        let one = batch(Arc::clone(&keys), vec![Some(1.0); 5]);
        let mut decoder = Decoder::new("t", names(), false);
        decoder.arrow(&one, &dict).unwrap();
        let mapped = decoder.plan.as_ref().unwrap().dictionary.as_ref().unwrap();
        let first = mapped.ids.as_ptr();
        decoder.arrow(&one, &dict).unwrap();
        let mapped = decoder.plan.as_ref().unwrap().dictionary.as_ref().unwrap();
        assert_eq!(
            mapped.ids.as_ptr(),
            first,
            "the same dictionary is not mapped again"
        );
        let piece = decoder.take(&dict);
        assert_eq!((piece.records, piece.skipped), (10, 4));
        let read = dict.read();
        let got: Vec<&str> = piece
            .batch
            .keys()
            .iter()
            .map(|&k| read.get(k).unwrap())
            .collect();
        assert_eq!(got, ["a", "b", "a", "a", "b", "a"]);
        assert_eq!(piece.errors[0].line, 1);
        assert!(piece.errors[0]
            .reason
            .to_string()
            .contains("null key in column `key`"));
        assert_eq!(piece.batch.times(), [0, 3, 4, 0, 3, 4]);
    }

    #[test]
    fn a_float_value_that_is_not_an_integer_is_malformed_for_integer_jobs() {
        let dict = Dictionary::new();
        let mut ints = names();
        ints.value = Some(("value".into(), ValueType::I64));
        let mut decoder = Decoder::new("t", ints, false);
        let keys: ArrayRef = Arc::new(StringArray::from(vec!["a", "a", "a", "a"]));
        let rows = batch(
            keys,
            vec![Some(2.0), Some(2.5), Some(f64::INFINITY), Some(-3.0)],
        );
        decoder.arrow(&rows, &dict).unwrap();
        let piece = decoder.take(&dict);
        assert_eq!(piece.skipped, 2);
        assert!(matches!(piece.batch.values(0), Values::I64(&[2, -3])));
        assert!(piece.errors[0]
            .reason
            .to_string()
            .contains("2.5 in column `value` is not an integer"));
    }
}
