//! A new EXIF block (Artist and Copyright only, see `probe::exif::Attribution`) placed into an
//! encoded variant, where each container keeps it: a JPEG APP1 segment, a PNG eXIf chunk, a
//! WebP EXIF chunk. (AVIF takes it through its encoder; GIF has no place for EXIF.)

use crate::error::{ImageError, Result};

/// A JPEG with an APP1 `Exif` segment after SOI and the JFIF APP0 segment, if there is one.
pub(crate) fn jpeg_with_exif(jpeg: Vec<u8>, tiff: &[u8]) -> Result<Vec<u8>> {
    let bad = || ImageError::encoder("JPEG", "unexpected encoder output");
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return Err(bad());
    }
    let mut at = 2;
    if jpeg.get(2..4) == Some(&[0xFF, 0xE0]) {
        let len = usize::from(u16::from_be_bytes([*jpeg.get(4).ok_or_else(bad)?, *jpeg.get(5).ok_or_else(bad)?]));
        at += 2 + len;
    }
    let segment_len = u16::try_from(2 + 6 + tiff.len()).map_err(|_| bad())?;
    let mut out = Vec::with_capacity(jpeg.len() + tiff.len() + 10);
    out.extend_from_slice(jpeg.get(..at).ok_or_else(bad)?);
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&segment_len.to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(tiff);
    out.extend_from_slice(&jpeg[at..]);
    Ok(out)
}

/// A PNG with an eXIf chunk right after IHDR (it must come before the image data).
pub(crate) fn png_with_exif(png: Vec<u8>, tiff: &[u8]) -> Result<Vec<u8>> {
    const IHDR_END: usize = 8 + 8 + 13 + 4;
    if png.len() < IHDR_END || &png[12..16] != b"IHDR" {
        return Err(ImageError::encoder("PNG", "unexpected encoder output"));
    }
    let mut out = Vec::with_capacity(png.len() + tiff.len() + 12);
    out.extend_from_slice(&png[..IHDR_END]);
    out.extend_from_slice(&(tiff.len() as u32).to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(b"eXIf");
    crc.update(tiff);
    out.extend_from_slice(b"eXIf");
    out.extend_from_slice(tiff);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
    out.extend_from_slice(&png[IHDR_END..]);
    Ok(out)
}

/// A WebP with an EXIF chunk at its end, in the extended format (a VP8X header flagging it).
/// A simple-format file (one VP8 or VP8L chunk) gets a VP8X header for its `width`×`height`
/// canvas first.
pub(crate) fn webp_with_exif(webp: Vec<u8>, tiff: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    const EXIF_FLAG: u8 = 0x08;
    const ALPHA_FLAG: u8 = 0x10;
    let bad = || ImageError::encoder("WebP", "unexpected encoder output");
    if webp.len() < 20 || &webp[..4] != b"RIFF" || &webp[8..12] != b"WEBP" || width == 0 || height == 0 {
        return Err(bad());
    }
    let mut out = b"RIFF\0\0\0\0WEBP".to_vec();
    match &webp[12..16] {
        b"VP8X" => {
            out.extend_from_slice(&webp[12..]);
            *out.get_mut(20).ok_or_else(bad)? |= EXIF_FLAG;
        }
        kind @ (b"VP8 " | b"VP8L") => {
            // VP8L's header says whether alpha is used (bit 28 after its signature byte).
            let alpha = kind == b"VP8L" && webp.get(24).is_some_and(|b| b & 0x10 != 0);
            out.extend_from_slice(b"VP8X");
            out.extend_from_slice(&10u32.to_le_bytes());
            out.push(EXIF_FLAG | if alpha { ALPHA_FLAG } else { 0 });
            out.extend_from_slice(&[0, 0, 0]);
            out.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
            out.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
            out.extend_from_slice(&webp[12..]);
        }
        _ => return Err(bad()),
    }
    out.extend_from_slice(b"EXIF");
    out.extend_from_slice(&(tiff.len() as u32).to_le_bytes());
    out.extend_from_slice(tiff);
    if tiff.len() % 2 == 1 {
        out.push(0);
    }
    let riff_size = u32::try_from(out.len() - 8).map_err(|_| bad())?;
    out[4..8].copy_from_slice(&riff_size.to_le_bytes());
    Ok(out)
}
