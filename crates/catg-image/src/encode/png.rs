//! PNG through the image crate: lossless, RGB or RGBA, adaptive filters.

use crate::error::{ImageError, Result};
use crate::pixels::{Layout, Pixels};

pub(crate) fn encode(pixels: &Pixels) -> Result<Vec<u8>> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::{ExtendedColorType, ImageEncoder};
    let colour = if pixels.layout == Layout::Rgba8 { ExtendedColorType::Rgba8 } else { ExtendedColorType::Rgb8 };
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Default, FilterType::Adaptive)
        .write_image(&pixels.data, pixels.width, pixels.height, colour)
        .map_err(|e| ImageError::encoder("PNG", e))?;
    Ok(out)
}
