//! The checkpoint's encoding of values: little-endian, fixed width, every
//! sequence prefixed by its length (a `u64`). Columns of numbers are copied
//! as whole slices, so that a state of millions of keys encodes at memory
//! speed.
//!
//! A value is encoded by [`Persist::save`] and decoded by [`Persist::load`],
//! which never panics on bad input: a short or inconsistent payload is a
//! [`CodecError`] (the file's checksum catches damage first; this catches
//! a file written by another layout).

use std::collections::VecDeque;

/// What is wrong with an encoded value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The payload ended inside a value.
    #[error("it ends inside a value ({needed} more bytes needed at byte {at})")]
    Truncated {
        /// Offset where the value starts.
        at: usize,
        /// Bytes missing.
        needed: usize,
    },
    /// A value that no encoder writes (a bad tag, an impossible length).
    #[error("{0}")]
    Invalid(String),
}

/// Bytes being written.
#[derive(Default)]
pub struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes written so far.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Raw bytes, without a length.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// A length or count.
    pub fn len(&mut self, n: usize) {
        (n as u64).save(self);
    }
}

/// Bytes being read.
pub struct Decoder<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Decoder<'a> {
    /// Reads `bytes` from the start.
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    /// The next `n` bytes.
    pub fn raw(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let left = self.bytes.len() - self.at;
        if n > left {
            return Err(CodecError::Truncated {
                at: self.at,
                needed: n - left,
            });
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    /// A length written by [`Encoder::len`] of items of `item_bytes` bytes
    /// at least each: a length the rest of the payload cannot hold is an
    /// error, not an attempt to allocate it.
    pub fn len(&mut self, item_bytes: usize) -> Result<usize, CodecError> {
        let n = u64::load(self)?;
        let left = (self.bytes.len() - self.at) as u64;
        if n.saturating_mul(item_bytes.max(1) as u64) > left {
            return Err(CodecError::Invalid(format!(
                "a length of {n} at byte {} is past the end",
                self.at - 8
            )));
        }
        Ok(n as usize)
    }

    /// Whether every byte has been read.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

/// A value a checkpoint holds.
pub trait Persist: Sized {
    /// Appends the value.
    fn save(&self, e: &mut Encoder);
    /// Reads a value written by [`save`](Self::save).
    ///
    /// # Errors
    ///
    /// A payload that ends early or holds what no `save` writes.
    fn load(d: &mut Decoder<'_>) -> Result<Self, CodecError>;
}

/// Numbers: fixed width, little-endian; their vectors as one slice copy.
macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl Persist for $t {
            fn save(&self, e: &mut Encoder) {
                e.raw(&self.to_le_bytes());
            }
            fn load(d: &mut Decoder<'_>) -> Result<Self, CodecError> {
                let bytes = d.raw(std::mem::size_of::<$t>())?;
                Ok(<$t>::from_le_bytes(bytes.try_into().expect("sized")))
            }
        }

        impl PersistColumn for $t {
            fn save_column(items: &[Self], e: &mut Encoder) {
                e.len(items.len());
                e.bytes.reserve(std::mem::size_of_val(items));
                for item in items {
                    e.bytes.extend_from_slice(&item.to_le_bytes());
                }
            }
            fn load_column(d: &mut Decoder<'_>) -> Result<Vec<Self>, CodecError> {
                const SIZE: usize = std::mem::size_of::<$t>();
                let n = d.len(SIZE)?;
                let bytes = d.raw(n * SIZE)?;
                Ok(bytes
                    .chunks_exact(SIZE)
                    .map(|b| <$t>::from_le_bytes(b.try_into().expect("sized")))
                    .collect())
            }
        }
    )*};
}

/// Items whose vectors have an encoding of their own (numbers: one copy).
pub trait PersistColumn: Sized {
    /// Appends `items`, with their count.
    fn save_column(items: &[Self], e: &mut Encoder);
    /// Reads items written by [`save_column`](Self::save_column).
    ///
    /// # Errors
    ///
    /// As [`Persist::load`].
    fn load_column(d: &mut Decoder<'_>) -> Result<Vec<Self>, CodecError>;
}

numbers!(u16, u32, u64, i8, i16, i32, i64, i128, f32, f64);

impl Persist for u8 {
    fn save(&self, e: &mut Encoder) {
        e.bytes.push(*self);
    }
    fn load(d: &mut Decoder<'_>) -> Result<Self, CodecError> {
        Ok(d.raw(1)?[0])
    }
}

/// Bytes (a nested encoding, a text blob): one copy.
impl PersistColumn for u8 {
    fn save_column(items: &[Self], e: &mut Encoder) {
        e.len(items.len());
        e.raw(items);
    }
    fn load_column(d: &mut Decoder<'_>) -> Result<Vec<Self>, CodecError> {
        let n = d.len(1)?;
        Ok(d.raw(n)?.to_vec())
    }
}

impl Persist for () {
    fn save(&self, _: &mut Encoder) {}
    fn load(_: &mut Decoder<'_>) -> Result<Self, CodecError> {
        Ok(())
    }
}

impl Persist for bool {
    fn save(&self, e: &mut Encoder) {
        u8::from(*self).save(e);
    }
    fn load(d: &mut Decoder<'_>) -> Result<Self, CodecError> {
        match u8::load(d)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(CodecError::Invalid(format!("{other} is not a boolean"))),
        }
    }
}

impl Persist for usize {
    fn save(&self, e: &mut Encoder) {
        (*self as u64).save(e);
    }
    fn load(d: &mut Decoder<'_>) -> Result<Self, CodecError> {
        let n = u64::load(d)?;
        usize::try_from(n).map_err(|_| CodecError::Invalid(format!("{n} does not fit usize")))
    }
}

impl Persist for String {
    fn save(&self, e: &mut Encoder) {
        e.len(self.len());
        e.raw(self.as_bytes());
    }
    fn load(d: &mut Decoder<'_>) -> Result<Self, CodecError> {
        let n = d.len(1)?;
        let bytes = d.raw(n)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| CodecError::Invalid("a string is not UTF-8".into()))
    }
}

impl<T: Persist> Persist for Option<T> {
    fn save(&self, e: &mut Encoder) {
        self.is_some().save(e);
        if let Some(v) = self {
            v.save(e);
        }
    }
    fn load(d: &mut Decoder<'_>) -> Result<Self, CodecError> {
        Ok(if bool::load(d)? {
            Some(T::load(d)?)
        } else {
            None
        })
    }
}

impl<A: Persist, B: Persist> Persist for (A, B) {
    fn save(&self, e: &mut Encoder) {
        self.0.save(e);
        self.1.save(e);
    }
    fn load(d: &mut Decoder<'_>) -> Result<Self, CodecError> {
        Ok((A::load(d)?, B::load(d)?))
    }
}

impl<T: PersistColumn> Persist for Vec<T> {
    fn save(&self, e: &mut Encoder) {
        T::save_column(self, e);
    }
    fn load(d: &mut Decoder<'_>) -> Result<Self, CodecError> {
        T::load_column(d)
    }
}

impl<T: PersistColumn + Clone> Persist for VecDeque<T> {
    fn save(&self, e: &mut Encoder) {
        let (a, b) = self.as_slices();
        if b.is_empty() {
            T::save_column(a, e);
        } else {
            T::save_column(&[a, b].concat(), e);
        }
    }
    fn load(d: &mut Decoder<'_>) -> Result<Self, CodecError> {
        Ok(T::load_column(d)?.into())
    }
}

/// Vectors of any [`Persist`] value, item by item (structs, strings).
pub fn save_items<T: Persist>(items: impl ExactSizeIterator<Item = T>, e: &mut Encoder) {
    e.len(items.len());
    for item in items {
        item.save(e);
    }
}

/// Reads what [`save_items`] wrote (each item `min_bytes` long at least).
///
/// # Errors
///
/// As [`Persist::load`].
pub fn load_items<T: Persist>(d: &mut Decoder<'_>, min_bytes: usize) -> Result<Vec<T>, CodecError> {
    let n = d.len(min_bytes)?;
    (0..n).map(|_| T::load(d)).collect()
}

/// Pairs of numbers as columns: one copy each.
impl<A: PersistColumn + Copy, B: PersistColumn + Copy> PersistColumn for (A, B) {
    fn save_column(items: &[Self], e: &mut Encoder) {
        let firsts: Vec<A> = items.iter().map(|p| p.0).collect();
        let seconds: Vec<B> = items.iter().map(|p| p.1).collect();
        A::save_column(&firsts, e);
        B::save_column(&seconds, e);
    }
    fn load_column(d: &mut Decoder<'_>) -> Result<Vec<Self>, CodecError> {
        let firsts = A::load_column(d)?;
        let seconds = B::load_column(d)?;
        if firsts.len() != seconds.len() {
            return Err(CodecError::Invalid(
                "pair columns of unequal lengths".into(),
            ));
        }
        Ok(firsts.into_iter().zip(seconds).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Persist + PartialEq + std::fmt::Debug>(value: &T) {
        let mut e = Encoder::new();
        value.save(&mut e);
        let bytes = e.into_bytes();
        let mut d = Decoder::new(&bytes);
        assert_eq!(&T::load(&mut d).unwrap(), value);
        assert!(d.is_done());
        // Every strict prefix is an error, never a panic or a value.
        for cut in 0..bytes.len() {
            let mut d = Decoder::new(&bytes[..cut]);
            assert!(T::load(&mut d).is_err(), "prefix of {cut} bytes");
        }
    }

    #[test]
    fn values_round_trip_and_every_prefix_is_an_error() {
        round_trip(&(u64::MAX, -5_i64));
        round_trip(&vec![1_u32, 2, u32::MAX]);
        round_trip(&vec![i128::MIN, 0, i128::MAX]);
        round_trip(&vec![(3_i64, 1.5_f64), (-1, f64::MIN_POSITIVE)]);
        round_trip(&VecDeque::from(vec![(1_i64, 2_i64)]));
        round_trip(&Some("k€y".to_string()));
        round_trip(&(true, None::<u8>));
    }

    #[test]
    fn an_absurd_length_is_an_error_not_an_allocation() {
        let mut e = Encoder::new();
        e.len(usize::MAX / 2);
        let bytes = e.into_bytes();
        let err = Vec::<u64>::load(&mut Decoder::new(&bytes)).unwrap_err();
        assert!(matches!(err, CodecError::Invalid(_)), "{err:?}");
        assert!(bool::load(&mut Decoder::new(&[7])).is_err());
        assert!(String::load(&mut Decoder::new(&[1, 0, 0, 0, 0, 0, 0, 0, 0xff])).is_err());
    }
}
