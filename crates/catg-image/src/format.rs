//! Format sniffing from magic bytes, and only from magic bytes: file names and Content-Type
//! headers lie (see the corpus' `mismatch_png_named.jpg` and `html_named.png`).

use crate::error::{ImageError, Result};
use std::fmt;

/// An input format catg decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputFormat {
    Jpeg,
    Png,
    Gif,
    Webp,
    Tiff,
    Bmp,
    Avif,
    Heic,
}

impl InputFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            InputFormat::Jpeg => "jpeg",
            InputFormat::Png => "png",
            InputFormat::Gif => "gif",
            InputFormat::Webp => "webp",
            InputFormat::Tiff => "tiff",
            InputFormat::Bmp => "bmp",
            InputFormat::Avif => "avif",
            InputFormat::Heic => "heic",
        }
    }
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many leading bytes [`sniff`] looks at. Callers that stream may pass just this much.
pub const SNIFF_LEN: usize = 4096;

/// Identify the format from the first bytes of the input (at most [`SNIFF_LEN`] are read).
///
/// Known non-image or unsupported formats (SVG, PDF, ZIP, PSD, ...) are `UnsupportedFormat`, so
/// they can never reach a renderer; everything unrecognised is `NotAnImage`.
pub fn sniff(head: &[u8]) -> Result<InputFormat> {
    let head = &head[..head.len().min(SNIFF_LEN)];
    if head.is_empty() {
        return Err(ImageError::Empty);
    }
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(InputFormat::Jpeg);
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(InputFormat::Png);
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return Ok(InputFormat::Gif);
    }
    if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Ok(InputFormat::Webp);
    }
    if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        return Ok(InputFormat::Tiff);
    }
    if is_bmp(head) {
        return Ok(InputFormat::Bmp);
    }
    if let Some(format) = sniff_isobmff(head)? {
        return Ok(format);
    }
    if let Some(name) = unsupported_format_name(head) {
        return Err(ImageError::UnsupportedFormat(name.to_string()));
    }
    Err(ImageError::NotAnImage)
}

/// "BM" alone is too weak (plenty of text starts with it): also require a known DIB header size.
fn is_bmp(head: &[u8]) -> bool {
    if head.len() < 18 || !head.starts_with(b"BM") {
        return false;
    }
    let dib = u32::from_le_bytes([head[14], head[15], head[16], head[17]]);
    matches!(dib, 12 | 40 | 52 | 56 | 64 | 108 | 124)
}

/// ISO base media files (HEIF family): the `ftyp` box names the brands.
fn sniff_isobmff(head: &[u8]) -> Result<Option<InputFormat>> {
    if head.len() < 12 || &head[4..8] != b"ftyp" {
        return Ok(None);
    }
    let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let end = size.clamp(8, head.len());
    let major = &head[8..12];
    // Compatible brands follow the 4-byte minor version.
    let compatible = if end > 16 { &head[16..end] } else { &[][..] };
    let brands = std::iter::once(major).chain(compatible.chunks_exact(4));
    let mut heif = false;
    let mut video = false;
    for brand in brands {
        match brand {
            b"avif" | b"avis" => return Ok(Some(InputFormat::Avif)),
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1" => heif = true,
            b"isom" | b"mp41" | b"mp42" | b"qt  " | b"M4V " | b"M4A " | b"3gp4" | b"3gp5" => video = true,
            _ => {}
        }
    }
    if heif {
        return Ok(Some(InputFormat::Heic));
    }
    let name = if video { "video (ISO BMFF)" } else { "an ISO BMFF file" };
    Err(ImageError::UnsupportedFormat(name.to_string()))
}

/// Recognisable formats that catg deliberately does not decode.
fn unsupported_format_name(head: &[u8]) -> Option<&'static str> {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"%PDF-", "PDF"),
        (b"PK\x03\x04", "ZIP"),
        (b"PK\x05\x06", "ZIP"),
        (b"\x1f\x8b", "gzip"),
        (b"8BPS", "PSD"),
        (b"\x00\x00\x01\x00", "ICO"),
        (b"\xff\x0a", "JPEG XL"),
        (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
        (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
        (b"\xff\x4f\xff\x51", "JPEG 2000"),
        (b"%!PS", "PostScript"),
        (b"\x76\x2f\x31\x01", "OpenEXR"),
        (b"#?RADIANCE", "Radiance HDR"),
    ];
    if let Some((_, name)) = MAGIC.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some(name);
    }
    if looks_like_svg(head) {
        return Some("SVG");
    }
    None
}

/// SVG is XML text whose root element is `<svg`. It is refused, never rendered: SVG renderers
/// fetch external entities and run scripts (see the corpus' `vector.svg`).
fn looks_like_svg(head: &[u8]) -> bool {
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let trimmed = text.iter().position(|b| !b.is_ascii_whitespace()).map_or(&[][..], |i| &text[i..]);
    if !trimmed.starts_with(b"<") {
        return false;
    }
    let lower: Vec<u8> = trimmed.iter().map(u8::to_ascii_lowercase).collect();
    let is_html = lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html");
    !is_html && lower.windows(4).any(|w| w == b"<svg")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RejectKind;

    fn kind(bytes: &[u8]) -> Result<InputFormat, RejectKind> {
        sniff(bytes).map_err(|e| e.reject_kind().expect("sniff only rejects"))
    }

    #[test]
    fn recognises_every_supported_magic() {
        assert_eq!(kind(b"\xFF\xD8\xFF\xE0rest"), Ok(InputFormat::Jpeg));
        assert_eq!(kind(b"\x89PNG\r\n\x1a\n...."), Ok(InputFormat::Png));
        assert_eq!(kind(b"GIF89a...."), Ok(InputFormat::Gif));
        assert_eq!(kind(b"RIFF\0\0\0\0WEBPVP8 "), Ok(InputFormat::Webp));
        assert_eq!(kind(b"II*\0\x08\0\0\0"), Ok(InputFormat::Tiff));
        assert_eq!(kind(b"MM\0*\0\0\0\x08"), Ok(InputFormat::Tiff));
        let mut bmp = b"BM".to_vec();
        bmp.extend_from_slice(&[0; 12]);
        bmp.extend_from_slice(&40u32.to_le_bytes());
        assert_eq!(kind(&bmp), Ok(InputFormat::Bmp));
        assert_eq!(kind(b"\0\0\0\x1cftypheic\0\0\0\0mif1heicmiaf"), Ok(InputFormat::Heic));
        assert_eq!(kind(b"\0\0\0\x20ftypavif\0\0\0\0avifmif1miafMA1B"), Ok(InputFormat::Avif));
        // mif1 major brand with avif among the compatible brands is AVIF, not HEIC.
        assert_eq!(kind(b"\0\0\0\x18ftypmif1\0\0\0\0mif1avif"), Ok(InputFormat::Avif));
    }

    #[test]
    fn refuses_known_non_images_as_unsupported() {
        assert_eq!(kind(b"%PDF-1.7\n"), Err(RejectKind::UnsupportedFormat));
        assert_eq!(kind(b"PK\x03\x04\x14\0"), Err(RejectKind::UnsupportedFormat));
        assert_eq!(kind(b"<?xml version=\"1.0\"?>\n<svg xmlns=\"...\"/>"), Err(RejectKind::UnsupportedFormat));
        assert_eq!(kind(b"  <svg width=\"1\"></svg>"), Err(RejectKind::UnsupportedFormat));
        assert_eq!(kind(b"\0\0\0\x18ftypisom\0\0\0\0isomiso2"), Err(RejectKind::UnsupportedFormat));
    }

    #[test]
    fn everything_else_is_not_an_image() {
        assert_eq!(kind(b""), Err(RejectKind::Empty));
        assert_eq!(kind(b"<!DOCTYPE html><html><svg></svg></html>"), Err(RejectKind::NotAnImage));
        assert_eq!(kind(b"hello world"), Err(RejectKind::NotAnImage));
        assert_eq!(kind(b"BMhello, this is text, not a bitmap"), Err(RejectKind::NotAnImage));
        assert_eq!(kind(b"\xFF\xD8"), Err(RejectKind::NotAnImage));
    }
}
