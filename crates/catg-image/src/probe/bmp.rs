//! BMP header: the DIB header's size, bit depth and alpha mask.

use super::{reader::Bytes, still, Probe};
use crate::error::Result;
use crate::format::InputFormat;

pub(crate) fn probe(data: &[u8]) -> Result<Probe> {
    let bytes = Bytes::new(data, "the BMP header is cut short");
    let dib = bytes.le32(14)?;
    if dib == 12 {
        return Ok(still(InputFormat::Bmp, u32::from(bytes.le16(18)?), u32::from(bytes.le16(20)?)));
    }
    let width = bytes.le32(18)? as i32;
    // A negative height means rows are stored top-down.
    let height = bytes.le32(22)? as i32;
    let mut probe = still(InputFormat::Bmp, width.unsigned_abs(), height.unsigned_abs());
    let bits = bytes.le16(28)?;
    let compression = bytes.le32(30)?;
    const BI_ALPHABITFIELDS: u32 = 6;
    let alpha_mask = if dib >= 56 || compression == BI_ALPHABITFIELDS { bytes.le32(54).unwrap_or(0) } else { 0 };
    probe.has_alpha = bits == 32 && alpha_mask != 0;
    Ok(probe)
}
