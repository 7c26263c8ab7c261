//! Every other format (GIF, TIFF, BMP, animated WebP's first frame, interlaced PNG) through the
//! image crate, whole frame, with its allocations bounded by the limits.

use crate::error::{classify_image, ImageError, Result};
use crate::format::InputFormat;
use crate::frame::Frame;
use crate::limits::Limits;
use crate::pixels::{Layout, Pixels};
use crate::probe::Probe;
use std::io::Cursor;

pub(crate) fn decode(data: &[u8], probe: &Probe, limits: &Limits) -> Result<Frame> {
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
    image_limits.max_alloc = Some(alloc_limit(limits));
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
        return Err(ImageError::header_mismatch((probe.stored_width, probe.stored_height), (width, height)));
    }
    Ok(Frame { pixels, orientation: probe.orientation, icc, cmyk_inverted: false })
}

/// What the image crate may allocate: the frame at 16 bits × 4 channels, plus the decoder's own
/// buffers. Row-by-row PNG decoding bounds the png crate's buffers by the same figure.
pub(crate) fn alloc_limit(limits: &Limits) -> u64 {
    limits.max_pixels.saturating_mul(8).saturating_add(64 << 20)
}
