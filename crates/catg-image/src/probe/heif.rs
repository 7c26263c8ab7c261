//! HEIC/HEIF and AVIF through libheif: the header probe and the decoder share one parse.

use super::{still, Probe};
use crate::error::{ImageError, Result};
use crate::format::InputFormat;
use libheif_rs::HeifContext;

pub(crate) fn context(data: &[u8]) -> Result<HeifContext> {
    HeifContext::read_from_bytes(data).map_err(classify)
}

pub(crate) fn classify(e: libheif_rs::HeifError) -> ImageError {
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
