//! HEIC/HEIF and AVIF through the system libheif (feature `heif`); without it both formats are
//! refused as `unsupported_format`. libheif applies the container's rotation and mirror itself.

use crate::error::Result;
use crate::frame::Frame;
use crate::probe::Probe;

#[cfg(feature = "heif")]
pub(crate) fn decode(data: &[u8], probe: &Probe) -> Result<Frame> {
    let (pixels, icc) = with_libheif::decode(data, probe)?;
    Ok(Frame { pixels, orientation: crate::probe::Orientation::Normal, icc, cmyk_inverted: false })
}

#[cfg(not(feature = "heif"))]
pub(crate) fn decode(_data: &[u8], probe: &Probe) -> Result<Frame> {
    Err(crate::error::ImageError::UnsupportedFormat(format!("{} (this build has no HEIF decoder)", probe.format)))
}

/// For tests that check what the encoders wrote.
#[cfg(all(test, feature = "heif"))]
pub(crate) use with_libheif::decode as decode_pixels;

#[cfg(feature = "heif")]
mod with_libheif {
    use crate::error::{ImageError, Result};
    use crate::pixels::{Layout, Pixels};
    use crate::probe::heif::{classify, context};
    use crate::probe::Probe;
    use libheif_rs::{ColorProfile, ColorSpace, LibHeif, RgbChroma};

    /// The primary image as 8-bit RGB(A), with its ICC profile if it has one.
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
        let icc =
            handle.color_profile_raw().filter(|p| matches!(&p.profile_type().0, b"prof" | b"rICC")).map(|p| p.data);
        Ok((pixels, icc))
    }
}
