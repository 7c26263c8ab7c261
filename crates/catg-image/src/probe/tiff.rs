//! TIFF header: the first IFD's size, orientation, samples and ICC tag; pages are counted by
//! following the IFD chain (bounded, and safe against loops).

use super::{exif, reader::Bytes, still, Probe};
use crate::error::{ImageError, Result};
use crate::format::InputFormat;
use crate::limits::Limits;

const WIDTH: u16 = 256;
const HEIGHT: u16 = 257;
const ORIENTATION: u16 = 274;
const EXTRA_SAMPLES: u16 = 338;
const ICC: u16 = 34675;

pub(crate) fn probe(data: &[u8], limits: &Limits) -> Result<Probe> {
    let bytes = Bytes::new(data, "the TIFF is cut short");
    let big_endian = bytes.slice(0, 2)? == b"MM";
    let first_ifd = bytes.u32_in(4, big_endian)? as usize;
    let mut probe = still(InputFormat::Tiff, 0, 0);
    let count = usize::from(bytes.u16_in(first_ifd, big_endian)?);
    for i in 0..count {
        let entry = first_ifd + 2 + i * 12;
        let tag = bytes.u16_in(entry, big_endian)?;
        let kind = bytes.u16_in(entry + 2, big_endian)?;
        let value = match kind {
            3 => u32::from(bytes.u16_in(entry + 8, big_endian)?),
            4 => bytes.u32_in(entry + 8, big_endian)?,
            _ => 0,
        };
        match tag {
            WIDTH => probe.stored_width = value,
            HEIGHT => probe.stored_height = value,
            ORIENTATION => probe.orientation = exif::Orientation::from_exif(value as u16),
            EXTRA_SAMPLES => probe.has_alpha = true,
            ICC => probe.has_icc = true,
            _ => {}
        }
    }
    probe.frames = count_pages(bytes, first_ifd, big_endian, limits.max_frames)?;
    Ok(probe)
}

fn count_pages(bytes: Bytes<'_>, first_ifd: usize, big_endian: bool, limit: u32) -> Result<u32> {
    let mut pages = 0u32;
    let mut ifd = first_ifd;
    let mut seen = std::collections::HashSet::new();
    while ifd != 0 {
        if !seen.insert(ifd) {
            return Err(ImageError::corrupt("the TIFF page chain loops"));
        }
        pages += 1;
        if pages > limit {
            return Err(ImageError::TooManyFrames { limit });
        }
        let entries = usize::from(bytes.u16_in(ifd, big_endian)?);
        ifd = bytes.u32_in(ifd + 2 + entries * 12, big_endian)? as usize;
    }
    Ok(pages)
}
