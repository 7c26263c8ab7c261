//! Decode: bytes to pixels, strictly (a warning is an error), with shrink-on-load for JPEG.

use super::jpeg_rows::{JpegRows, Refinement};
use super::png_rows::PngRows;
use super::stream::{Header, Rows};
use super::Frame;
use crate::error::{ImageError, Result};
use crate::format::InputFormat;
use crate::limits::Limits;
use crate::pixels::{Layout, Pixels};
use crate::probe::{jpeg, Probe};
use std::io::Cursor;

/// Decode `data`, whose header gave `probe`. `min_scale` is the smallest scale (relative to the
/// stored size) the later steps can work from without losing quality; JPEG decodes at a DCT
/// scale of at least 1.5× that, and a still WebP at 3× it through libwebp's scaled decode,
/// leaving the final step to the Lanczos resampler.
pub(crate) fn decode(data: &[u8], probe: &Probe, min_scale: f64, limits: &Limits) -> Result<Frame> {
    let frame = match probe.format {
        InputFormat::Jpeg => decode_jpeg(data, min_scale, limits)?,
        InputFormat::Avif | InputFormat::Heic => decode_heif(data, probe)?,
        InputFormat::Webp if probe.frames == 1 => super::webp_frame::decode(data, probe, min_scale)?,
        _ => decode_with_image(data, probe, limits)?,
    };
    Ok(Frame { pixels: frame.pixels.drop_opaque_alpha(), ..frame })
}

#[cfg(feature = "heif")]
fn decode_heif(data: &[u8], probe: &Probe) -> Result<Frame> {
    let (pixels, icc) = crate::probe::heif::decode(data, probe)?;
    Ok(Frame { pixels, orientation: crate::probe::Orientation::Normal, icc, cmyk_inverted: false })
}

#[cfg(not(feature = "heif"))]
fn decode_heif(_data: &[u8], probe: &Probe) -> Result<Frame> {
    Err(ImageError::UnsupportedFormat(format!("{} (this build has no HEIF decoder)", probe.format)))
}

/// Start decoding a JPEG a band of rows at a time, at the shrink-on-load scale for `min_scale`.
pub(crate) fn jpeg_rows<'a>(data: &'a [u8], min_scale: f64, limits: &Limits) -> Result<(JpegRows<'a>, Header)> {
    let refinement = if limits.jpeg_fast_refinement { Refinement::Fast } else { Refinement::Libjpeg };
    jpeg_rows_with(data, shrink_on_load_eighths(min_scale), refinement, limits)
}

/// Start decoding a JPEG at 1/8 scale with every scan entropy-decoded, none skipped as unused at
/// that scale, so that damage anywhere in the data is found: ingest's proof that the whole
/// image is readable.
pub(crate) fn jpeg_rows_every_scan<'a>(data: &'a [u8], limits: &Limits) -> Result<(JpegRows<'a>, Header)> {
    let refinement = if limits.jpeg_fast_refinement { Refinement::EveryScan } else { Refinement::Libjpeg };
    jpeg_rows_with(data, 1, refinement, limits)
}

fn jpeg_rows_with<'a>(
    data: &'a [u8],
    eighths: u8,
    refinement: Refinement,
    limits: &Limits,
) -> Result<(JpegRows<'a>, Header)> {
    let header = jpeg::read_header(data, limits, true)?;
    // libjpeg may buffer what the frame header says and no more: what the render was admitted
    // with (`memory_estimate`), plus room for its small allocations, is its ceiling too.
    let ceiling = header.coefficient_bytes() + LIBJPEG_SMALL_ALLOCATIONS;
    let rows = JpegRows::start_with(data, eighths, limits.max_jpeg_scans, refinement, ceiling)?;
    let cmyk_inverted = rows.layout == Layout::Cmyk8 && header.adobe;
    Ok((rows, Header { orientation: header.orientation, icc: header.icc, cmyk_inverted }))
}

/// What libjpeg allocates besides its whole-image buffers (tables, row buffers of a 65,500-pixel
/// wide image), which counts against `max_memory_to_use` too.
const LIBJPEG_SMALL_ALLOCATIONS: u64 = 32 << 20;

/// Start decoding a PNG row by row; `None` if it is interlaced (its rows come pass by pass).
pub(crate) fn png_rows<'a>(data: &'a [u8], probe: &Probe, limits: &Limits) -> Result<Option<(PngRows<'a>, Header)>> {
    let Some((rows, icc)) = PngRows::start(data, png_buffer_limit(limits))? else { return Ok(None) };
    let size = rows.size();
    if size != (probe.stored_width, probe.stored_height) {
        return Err(header_mismatch(probe, size));
    }
    Ok(Some((rows, Header { orientation: probe.orientation, icc, cmyk_inverted: false })))
}

/// What the image crate may allocate on the whole-frame path: the frame at 16 bits × 4
/// channels, plus the decoder's own buffers. Row-by-row PNG decoding bounds the png crate's
/// buffers (compressed text, ICC profile) by the same figure.
fn image_alloc_limit(limits: &Limits) -> u64 {
    limits.max_pixels.saturating_mul(8).saturating_add(64 << 20)
}

fn png_buffer_limit(limits: &Limits) -> usize {
    usize::try_from(image_alloc_limit(limits)).unwrap_or(usize::MAX)
}

pub(crate) fn header_mismatch(probe: &Probe, (width, height): (u32, u32)) -> ImageError {
    ImageError::corrupt(format!(
        "the header says {}x{} but the image decodes as {width}x{height}",
        probe.stored_width, probe.stored_height
    ))
}

fn decode_jpeg(data: &[u8], min_scale: f64, limits: &Limits) -> Result<Frame> {
    let (mut rows, header) = jpeg_rows(data, min_scale, limits)?;
    let mut pixels = Pixels::new(rows.width, rows.height, rows.layout)?;
    rows.read_all(&mut pixels.data)?;
    Ok(Frame { pixels, orientation: header.orientation, icc: header.icc, cmyk_inverted: header.cmyk_inverted })
}

/// The scale (1/8, 1/4, 1/2 or 1) at which a JPEG is decoded for a render whose geometry can
/// work from `min_scale`.
pub(crate) fn jpeg_decode_scale(min_scale: f64) -> f64 {
    f64::from(shrink_on_load_eighths(min_scale)) / 8.0
}

/// The smallest libjpeg-turbo scale of 1/8, 1/4, 1/2 or 1 that is at least `1.5 × min_scale`, in
/// eighths.
pub(crate) fn shrink_on_load_eighths(min_scale: f64) -> u8 {
    // Measured with bench/bench.py (DSSIM against a float Lanczos3 reference, 16 photos):
    // - Only powers of two: libjpeg-turbo has SIMD IDCTs for 1×1, 2×2, 4×4 and 8×8 blocks; the
    //   3/8, 5/8, 6/8 and 7/8 scales run plain C and cost more than decoding at the next power.
    // - A 1.5× margin above the target: decoding to just above it (sharp's rule) lost to sharp
    //   at 1200 px (median DSSIM 1.50 vs 1.13 ×10⁻³); 1.5× matches or beats sharp on 14/16
    //   photos at 400 px and 12/13 at 1200 px; 2× was as good, 4-9% slower.
    let wanted = (1.5 * min_scale).min(1.0);
    [1u8, 2, 4, 8].into_iter().find(|n| f64::from(*n) / 8.0 >= wanted - 1e-9).unwrap_or(8)
}

fn decode_with_image(data: &[u8], probe: &Probe, limits: &Limits) -> Result<Frame> {
    use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
    let format = match probe.format {
        InputFormat::Png => ImageFormat::Png,
        InputFormat::Gif => ImageFormat::Gif,
        InputFormat::Webp => ImageFormat::WebP,
        InputFormat::Tiff => ImageFormat::Tiff,
        InputFormat::Bmp => ImageFormat::Bmp,
        other => return Err(ImageError::Internal(format!("{other} is not decoded by image"))),
    };
    let mut reader = ImageReader::with_format(Cursor::new(data), format);
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(probe.stored_width.max(1));
    image_limits.max_image_height = Some(probe.stored_height.max(1));
    image_limits.max_alloc = Some(image_alloc_limit(limits));
    reader.limits(image_limits);
    let mut decoder = reader.into_decoder().map_err(classify_image)?;
    let icc = decoder.icc_profile().ok().flatten().filter(|p| !p.is_empty());
    let image = DynamicImage::from_decoder(decoder).map_err(classify_image)?;
    let (width, height) = (image.width(), image.height());
    let pixels = if image.color().has_alpha() {
        Pixels::from_vec(width, height, Layout::Rgba8, image.into_rgba8().into_raw())?
    } else {
        Pixels::from_vec(width, height, Layout::Rgb8, image.into_rgb8().into_raw())?
    };
    if (width, height) != (probe.stored_width, probe.stored_height) {
        return Err(header_mismatch(probe, (width, height)));
    }
    Ok(Frame { pixels, orientation: probe.orientation, icc, cmyk_inverted: false })
}

/// A png crate error, classified as the image crate would pass it on (it wraps the same crate on
/// the whole-frame path), so both paths give the same reason.
pub(crate) fn classify_png(e: png::DecodingError) -> ImageError {
    use image::error::{DecodingError, LimitError, LimitErrorKind, ParameterError, ParameterErrorKind};
    classify_image(match e {
        png::DecodingError::IoError(io) => image::ImageError::IoError(io),
        e @ png::DecodingError::Format(_) => {
            image::ImageError::Decoding(DecodingError::new(image::ImageFormat::Png.into(), e))
        }
        e @ png::DecodingError::Parameter(_) => {
            image::ImageError::Parameter(ParameterError::from_kind(ParameterErrorKind::Generic(e.to_string())))
        }
        png::DecodingError::LimitsExceeded => {
            image::ImageError::Limits(LimitError::from_kind(LimitErrorKind::InsufficientMemory))
        }
    })
}

fn classify_image(e: image::ImageError) -> ImageError {
    use image::error::{ImageError as E, LimitErrorKind};
    match e {
        E::Limits(limit) => match limit.kind() {
            LimitErrorKind::DimensionError => {
                ImageError::ResourceLimit("the image dimensions exceed the limits".into())
            }
            _ => ImageError::ResourceLimit("decoding would need more memory than allowed".into()),
        },
        E::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::truncated("the image data ends early")
        }
        E::Unsupported(u) => ImageError::UnsupportedFormat(u.to_string()),
        E::Decoding(d) => {
            let message = short(&d.to_string());
            let lower = message.to_lowercase();
            if lower.contains("eof")
                || lower.contains("end of")
                || lower.contains("truncat")
                || lower.contains("no more data")
            {
                ImageError::Truncated(message)
            } else {
                ImageError::Corrupt(message)
            }
        }
        other => ImageError::Corrupt(short(&other.to_string())),
    }
}

/// Decoder messages can run long and quote internal structures; keep the first clause.
fn short(message: &str) -> String {
    let clause = message.split(" while ").next().unwrap_or(message);
    let mut out: String = clause.chars().take(120).collect();
    if out.len() < clause.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_on_load_leaves_1_5x_for_the_resampler_at_power_of_two_scales() {
        let eighths = shrink_on_load_eighths;
        assert_eq!(eighths(0.05), 1);
        assert_eq!(eighths(1.0 / 12.0), 1);
        assert_eq!(eighths(0.09), 2);
        assert_eq!(eighths(0.3), 4);
        assert_eq!(eighths(0.34), 8);
        assert_eq!(eighths(2.0), 8);
    }
}
