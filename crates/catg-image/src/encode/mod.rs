//! Encoders: pixels to bytes. Encoders only ever see pixels, so no EXIF, GPS, XMP, ICC or junk
//! segment of the source can reach a variant; the output is sRGB.

mod avif;
pub(crate) mod gif;
mod jpeg;
mod jxl;
pub(crate) mod metadata;
mod png;
pub(crate) mod webp;

use crate::error::{ImageError, Result};
use crate::output::OutputFormat;
use crate::pixels::Pixels;

/// `encode`, with a new EXIF block (`tiff`: TIFF structure, as `Attribution::exif` writes it) in
/// formats that can hold one; GIF cannot, and is written without.
pub(crate) fn encode_with_exif(
    pixels: Pixels,
    format: OutputFormat,
    quality: u8,
    progressive: bool,
    tiff: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let Some(tiff) = tiff else { return encode(pixels, format, quality, progressive) };
    let (width, height) = (pixels.width, pixels.height);
    match format {
        OutputFormat::Avif => avif::encode_with_exif(&pixels, quality, Some(tiff)),
        OutputFormat::Jxl => jxl::encode(&pixels, quality, Some(tiff)),
        OutputFormat::Jpeg => metadata::jpeg_with_exif(encode(pixels, format, quality, progressive)?, tiff),
        OutputFormat::Png => metadata::png_with_exif(encode(pixels, format, quality, progressive)?, tiff),
        OutputFormat::Webp => {
            metadata::webp_with_exif(encode(pixels, format, quality, progressive)?, tiff, width, height)
        }
        OutputFormat::Gif => encode(pixels, format, quality, progressive),
    }
}

pub(crate) fn encode(pixels: Pixels, format: OutputFormat, quality: u8, progressive: bool) -> Result<Vec<u8>> {
    if pixels.width > format.max_dimension() || pixels.height > format.max_dimension() {
        return Err(ImageError::ResourceLimit(format!(
            "{format} cannot hold a {}x{} image (at most {} pixels a side)",
            pixels.width,
            pixels.height,
            format.max_dimension()
        )));
    }
    match format {
        OutputFormat::Jpeg => jpeg::encode(pixels, quality, progressive),
        OutputFormat::Png => png::encode(&pixels),
        OutputFormat::Webp => webp::encode(&pixels, quality),
        OutputFormat::Avif => avif::encode(&pixels, quality),
        OutputFormat::Jxl => jxl::encode(&pixels, quality, None),
        OutputFormat::Gif => {
            let still = crate::animation::AnimatedFrame { pixels: crate::animation::rgba(pixels)?, delay_ms: 0 };
            gif::encode_animation(&[still], 1)
        }
    }
}
