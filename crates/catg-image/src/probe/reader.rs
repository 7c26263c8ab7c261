//! Bounds-checked reads for header parsers: running off the end is `Truncated`, never a panic.

use crate::error::{ImageError, Result};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Bytes<'a> {
    data: &'a [u8],
    what: &'static str,
}

impl<'a> Bytes<'a> {
    pub(crate) fn new(data: &'a [u8], what: &'static str) -> Self {
        Bytes { data, what }
    }

    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn slice(&self, at: usize, len: usize) -> Result<&'a [u8]> {
        at.checked_add(len).and_then(|end| self.data.get(at..end)).ok_or_else(|| ImageError::truncated(self.what))
    }

    pub(crate) fn u8(&self, at: usize) -> Result<u8> {
        Ok(self.slice(at, 1)?[0])
    }

    pub(crate) fn be16(&self, at: usize) -> Result<u16> {
        let b = self.slice(at, 2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn le16(&self, at: usize) -> Result<u16> {
        let b = self.slice(at, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn be32(&self, at: usize) -> Result<u32> {
        let b = self.slice(at, 4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn le32(&self, at: usize) -> Result<u32> {
        let b = self.slice(at, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn le24(&self, at: usize) -> Result<u32> {
        let b = self.slice(at, 3)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], 0]))
    }

    /// A 16- or 32-bit value in the byte order of a TIFF structure.
    pub(crate) fn u16_in(&self, at: usize, big_endian: bool) -> Result<u16> {
        if big_endian {
            self.be16(at)
        } else {
            self.le16(at)
        }
    }

    pub(crate) fn u32_in(&self, at: usize, big_endian: bool) -> Result<u32> {
        if big_endian {
            self.be32(at)
        } else {
            self.le32(at)
        }
    }
}
