//! Encode: pixels to bytes. Encoders only ever see pixels, so no EXIF, GPS, XMP, ICC or junk
//! segment of the source can reach a variant; the output is sRGB.

use crate::error::{ImageError, Result};
use crate::output::OutputFormat;
use crate::pixels::{Layout, Pixels};

/// AVIF encoder speed (0 slowest … 10 fastest). A miss waits for its render, so speed matters:
/// measured at 400 px (bench/bench.py, one thread), speed 10 at q70 takes 0.2-0.35× sharp's time
/// (libaom, q50) at an equal or better DSSIM, in files 30-50% larger than sharp's; speed 6 at q60
/// took 0.66× with worse DSSIM on two of four photos, and speeds 6-8 differ little.
const AVIF_SPEED: u8 = 10;

/// JPEG has no alpha: transparent areas become white, which is what a page behind them
/// usually is.
const JPEG_BACKGROUND: [u8; 3] = [255, 255, 255];

pub(crate) fn encode(pixels: Pixels, format: OutputFormat, quality: u8) -> Result<Vec<u8>> {
    if pixels.width > format.max_dimension() || pixels.height > format.max_dimension() {
        return Err(ImageError::ResourceLimit(format!(
            "{format} cannot hold a {}x{} image (at most {} pixels a side)",
            pixels.width,
            pixels.height,
            format.max_dimension()
        )));
    }
    match format {
        OutputFormat::Jpeg => jpeg(pixels.flatten(JPEG_BACKGROUND), quality),
        OutputFormat::Png => png(&pixels),
        OutputFormat::Webp => webp(&pixels, quality),
        OutputFormat::Avif => avif(&pixels, quality),
    }
}

fn internal(what: &str, e: impl std::fmt::Display) -> ImageError {
    ImageError::Internal(format!("{what} encoder: {e}"))
}

fn jpeg(pixels: Pixels, quality: u8) -> Result<Vec<u8>> {
    let mut compressor = turbojpeg::Compressor::new().map_err(|e| internal("JPEG", e))?;
    compressor.set_quality(i32::from(quality)).map_err(|e| internal("JPEG", e))?;
    compressor.set_subsamp(turbojpeg::Subsamp::Sub2x2).map_err(|e| internal("JPEG", e))?;
    // Baseline with optimised Huffman tables: sharp's default, so sizes compare like for like,
    // and 10-15% faster to encode than progressive (measured on the bench photos).
    compressor.set_progressive(false).map_err(|e| internal("JPEG", e))?;
    compressor.set_optimize(true).map_err(|e| internal("JPEG", e))?;
    let image = turbojpeg::Image {
        pixels: &pixels.data[..],
        width: pixels.width as usize,
        pitch: pixels.width as usize * 3,
        height: pixels.height as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    compressor.compress_to_vec(image).map_err(|e| internal("JPEG", e))
}

fn png(pixels: &Pixels) -> Result<Vec<u8>> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::{ExtendedColorType, ImageEncoder};
    let colour = if pixels.layout == Layout::Rgba8 { ExtendedColorType::Rgba8 } else { ExtendedColorType::Rgb8 };
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Default, FilterType::Adaptive)
        .write_image(&pixels.data, pixels.width, pixels.height, colour)
        .map_err(|e| internal("PNG", e))?;
    Ok(out)
}

fn webp(pixels: &Pixels, quality: u8) -> Result<Vec<u8>> {
    let encoder = if pixels.layout == Layout::Rgba8 {
        webp::Encoder::from_rgba(&pixels.data, pixels.width, pixels.height)
    } else {
        webp::Encoder::from_rgb(&pixels.data, pixels.width, pixels.height)
    };
    let memory = encoder.encode_simple(false, f32::from(quality)).map_err(|e| internal("WebP", format!("{e:?}")))?;
    Ok(memory.to_vec())
}

fn avif(pixels: &Pixels, quality: u8) -> Result<Vec<u8>> {
    use rgb::FromSlice;
    let encoder = ravif::Encoder::new()
        .with_quality(f32::from(quality))
        .with_alpha_quality(f32::from(quality))
        .with_speed(AVIF_SPEED);
    let (w, h) = (pixels.width as usize, pixels.height as usize);
    let encoded = if pixels.layout == Layout::Rgba8 {
        encoder.encode_rgba(ravif::Img::new(pixels.data.as_rgba(), w, h))
    } else {
        encoder.encode_rgb(ravif::Img::new(pixels.data.as_rgb(), w, h))
    };
    Ok(encoded.map_err(|e| internal("AVIF", e))?.avif_file)
}
