//! HEIC/HEIF and AVIF through libheif: the header probe and the decoder share one parse.

use super::{still, Probe};
use crate::error::{ImageError, Result};
use crate::format::InputFormat;
use crate::pixels::{Layout, Pixels};
use libheif_rs::{ColorProfile, ColorSpace, HeifContext, LibHeif, RgbChroma};

fn context(data: &[u8]) -> Result<HeifContext> {
    HeifContext::read_from_bytes(data).map_err(classify)
}

fn classify(e: libheif_rs::HeifError) -> ImageError {
    let message = e.message.clone();
    let lower = message.to_lowercase();
    if lower.contains("end of") || lower.contains("truncat") || lower.contains("insufficient") {
        ImageError::Truncated(message)
    } else if lower.contains("unsupported") || lower.contains("no decoding plugin") {
        ImageError::UnsupportedFormat(format!("HEIF content ({message})"))
    } else {
        ImageError::Corrupt(message)
    }
}

pub(crate) fn probe(format: InputFormat, data: &[u8]) -> Result<Probe> {
    let ctx = context(data)?;
    let handle = ctx.primary_image_handle().map_err(classify)?;
    // libheif reports the size after the container's own rotation/mirror (irot/imir), which it
    // also applies when decoding; HEIF ignores EXIF orientation, so orientation stays Normal.
    let mut probe = still(format, handle.width(), handle.height());
    probe.has_alpha = handle.has_alpha_channel();
    probe.has_icc = handle.color_profile_raw().is_some();
    Ok(probe)
}

/// Decode the primary image as 8-bit RGB(A), with its ICC profile if it has one.
pub(crate) fn decode(data: &[u8], probe: &Probe) -> Result<(Pixels, Option<Vec<u8>>)> {
    let lib = LibHeif::new();
    let ctx = context(data)?;
    let handle = ctx.primary_image_handle().map_err(classify)?;
    let (layout, chroma) =
        if probe.has_alpha { (Layout::Rgba8, RgbChroma::Rgba) } else { (Layout::Rgb8, RgbChroma::Rgb) };
    let image = lib.decode(&handle, ColorSpace::Rgb(chroma), None).map_err(classify)?;
    let planes = image.planes();
    let plane =
        planes.interleaved.ok_or_else(|| ImageError::Internal("libheif returned no interleaved plane".into()))?;
    let row = plane.width as usize * layout.channels();
    let mut pixels = Pixels::new(plane.width, plane.height, layout)?;
    for (dst, src) in pixels.data.chunks_exact_mut(row).zip(plane.data.chunks(plane.stride)) {
        dst.copy_from_slice(src.get(..row).ok_or_else(|| ImageError::Internal("short libheif row".into()))?);
    }
    let icc = handle.color_profile_raw().filter(|p| matches!(&p.profile_type().0, b"prof" | b"rICC")).map(|p| p.data);
    Ok((pixels, icc))
}
