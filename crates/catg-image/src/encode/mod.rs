//! Encoders: pixels to bytes. Encoders only ever see pixels, so no EXIF, GPS, XMP, ICC or junk
//! segment of the source can reach a variant; the output is sRGB.

mod avif;
pub(crate) mod gif;
mod jpeg;
mod png;
pub(crate) mod webp;

use crate::error::{ImageError, Result};
use crate::output::OutputFormat;
use crate::pixels::Pixels;

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
        OutputFormat::Gif => {
            let still = crate::animation::AnimatedFrame { pixels: crate::animation::rgba(pixels)?, delay_ms: 0 };
            gif::encode_animation(&[still], 1)
        }
    }
}
