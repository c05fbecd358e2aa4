//! The compact binary encoding shared by every type: LEB128 varints, length-prefixed
//! bytes, a 4-byte magic, a version byte and a type tag (see `docs/crdt-encoding.md`).

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not this encoding (wrong magic).
    #[error("not a mesh-crdt encoding")]
    BadMagic,
    /// An encoding version this crate does not read.
    #[error("unsupported encoding version {0}")]
    UnsupportedVersion(u8),
    /// The bytes encode another type.
    #[error("expected type tag {expected}, found {found}")]
    WrongType {
        /// The tag of the type being decoded.
        expected: u8,
        /// The tag in the bytes.
        found: u8,
    },
    /// The bytes end early.
    #[error("truncated input")]
    Truncated,
    /// A value is out of range or inconsistent.
    #[error("invalid data: {0}")]
    Invalid(&'static str),
}

pub(crate) const MAGIC: &[u8; 4] = b"MCRD";
pub(crate) const VERSION: u8 = 1;
/// The version of the text document's compressed, column-wise body.
pub(crate) const TEXT_VERSION: u8 = 2;

/// Type tags.
pub(crate) mod tag {
    pub(crate) const VECTOR_CLOCK: u8 = 1;
    pub(crate) const G_COUNTER: u8 = 2;
    pub(crate) const PN_COUNTER: u8 = 3;
    pub(crate) const LWW_REGISTER: u8 = 4;
    pub(crate) const MV_REGISTER: u8 = 5;
    pub(crate) const OR_SET: u8 = 6;
    pub(crate) const TEXT: u8 = 7;
    pub(crate) const STATE: u8 = 8;
    pub(crate) const TEXT_OPS: u8 = 9;
    pub(crate) const STATE_OPS: u8 = 10;
}

/// Appends to a buffer.
/// Appends encoded values (an implementation detail of [`Atom`]).
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(type_tag: u8) -> Self {
        Self::versioned(type_tag, VERSION)
    }

    pub(crate) fn versioned(type_tag: u8, version: u8) -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(MAGIC);
        buf.push(version);
        buf.push(type_tag);
        Self { buf }
    }

    /// A writer with no header, for a part of a body.
    pub(crate) fn bare() -> Self {
        Self::default()
    }

    pub(crate) fn u64(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(byte);
                return;
            }
            self.buf.push(byte | 0x80);
        }
    }

    pub(crate) fn i64(&mut self, v: i64) {
        self.u64(((v << 1) ^ (v >> 63)) as u64); // zigzag
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads encoded values (an implementation detail of [`Atom`]).
#[doc(hidden)]
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], type_tag: u8) -> Result<Self, DecodeError> {
        Ok(Self::versioned(buf, type_tag, VERSION)?.0)
    }

    /// Reads the header of an encoding of version 1 to `newest`; the body's reader and
    /// the version.
    pub(crate) fn versioned(
        buf: &'a [u8],
        type_tag: u8,
        newest: u8,
    ) -> Result<(Self, u8), DecodeError> {
        if buf.len() < 6 {
            return Err(if buf.starts_with(&MAGIC[..buf.len().min(4)]) {
                DecodeError::Truncated
            } else {
                DecodeError::BadMagic
            });
        }
        if &buf[..4] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        if !(VERSION..=newest).contains(&buf[4]) {
            return Err(DecodeError::UnsupportedVersion(buf[4]));
        }
        if buf[5] != type_tag {
            return Err(DecodeError::WrongType {
                expected: type_tag,
                found: buf[5],
            });
        }
        Ok((Self { buf: &buf[6..] }, buf[4]))
    }

    /// A reader of bytes with no header (a part of a body).
    pub(crate) fn bare(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// The bytes not read yet, all of them.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.buf.split_first().ok_or(DecodeError::Truncated)?;
            self.buf = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Invalid("varint too long"))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.u64()?).map_err(|_| DecodeError::Invalid("value out of range"))
    }

    pub(crate) fn usize(&mut self, max: usize) -> Result<usize, DecodeError> {
        let v = self.u64()?;
        if v > max as u64 {
            return Err(DecodeError::Invalid("length out of range"));
        }
        Ok(v as usize)
    }

    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        let v = self.u64()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u64()?;
        if len > self.buf.len() as u64 {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.buf.split_at(len as usize);
        self.buf = rest;
        Ok(head)
    }

    pub(crate) fn str(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| DecodeError::Invalid("not UTF-8"))
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn end(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Invalid("trailing bytes"))
        }
    }
}

/// Values the registers and sets can encode.
pub trait Atom: Clone + PartialEq + Sized {
    /// Appends the value.
    #[doc(hidden)]
    fn write(&self, w: &mut Writer);
    /// Reads a value.
    #[doc(hidden)]
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

impl Atom for String {
    fn write(&self, w: &mut Writer) {
        w.bytes(self.as_bytes());
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.str()?.to_owned())
    }
}

impl Atom for Vec<u8> {
    fn write(&self, w: &mut Writer) {
        w.bytes(self);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.bytes()?.to_vec())
    }
}

impl Atom for i64 {
    fn write(&self, w: &mut Writer) {
        w.i64(*self);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.i64()
    }
}

impl Atom for u64 {
    fn write(&self, w: &mut Writer) {
        w.u64(*self);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.u64()
    }
}

impl Atom for bool {
    fn write(&self, w: &mut Writer) {
        w.u64(u64::from(*self));
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.u64()? != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        let mut w = Writer::new(9);
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            w.u64(v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            w.i64(v);
        }
        w.bytes(b"hi");
        let bytes = w.finish();
        let mut r = Reader::new(&bytes, 9).unwrap();
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(r.u64().unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(r.i64().unwrap(), v);
        }
        assert_eq!(r.bytes().unwrap(), b"hi");
        r.end().unwrap();
        assert_eq!(
            Reader::new(&bytes, 8).unwrap_err(),
            DecodeError::WrongType {
                expected: 8,
                found: 9
            }
        );
        assert_eq!(
            Reader::new(b"XXXX\x01\x09", 9).unwrap_err(),
            DecodeError::BadMagic
        );
        assert!(Reader::new(&bytes[..8], 9).unwrap().u64().is_ok());
    }
}
