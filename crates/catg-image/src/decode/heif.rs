//! HEIC/HEIF and AVIF, in pure Rust, so every build (the Lambda functions' included) reads what
//! phones upload. HEIC goes through `heifer` (container, grid tiles, HEVC, crop, rotation and
//! mirror); AVIF through [`super::avif`].
//!
//! The colour is left to the colour step: the ICC profile (Display P3 on iPhones) travels with
//! the frame. A file that describes its colour with `nclx` code points only is converted to sRGB
//! by heifer here, since the colour step reads ICC profiles only.

use super::avif;
use crate::error::{ImageError, Result};
use crate::format::InputFormat;
use crate::frame::Frame;
use crate::pixels::{Layout, Pixels};
use crate::probe::heif::{container, container_error};
use crate::probe::{Orientation, Probe};

pub(crate) fn decode(data: &[u8], probe: &Probe) -> Result<Frame> {
    let max_pixels = decode_pixel_limit(probe);
    match probe.format {
        InputFormat::Avif => avif::decode(data, probe, max_pixels),
        _ => decode_heic(data, probe, max_pixels),
    }
}

/// What the decoders may allocate for one picture: the probed size plus the coding blocks'
/// padding (a coded picture is rounded up to whole 64-pixel blocks), and no less than one
/// 512×512 grid tile's worth, so a hostile stream cannot claim more than its header showed.
fn decode_pixel_limit(probe: &Probe) -> u64 {
    let padded = |side: u32| u64::from(side) + 128;
    (padded(probe.stored_width) * padded(probe.stored_height)).max(1024 * 1024)
}

fn decode_heic(data: &[u8], probe: &Probe, max_pixels: u64) -> Result<Frame> {
    let file = container(data)?;
    let icc = file.icc_profile(file.primary_id).map_err(container_error)?.map(<[u8]>::to_vec);
    // Tiles decode on up to two threads: a Lambda's vCPUs, and no more than a render's share
    // of a `catg serve` host.
    let options = heifer::Options { max_threads: 2, max_pixels };
    let image = if icc.is_some() {
        heifer::decode_rgba8(data, &options)
    } else {
        // nclx-only colour (or none): heifer converts it to sRGB. HDR transfers (PQ, HLG) are
        // not converted; they are rendered as coded, like any untagged image.
        heifer::decode_srgb_rgba8(data, &options).or_else(|e| match e {
            heifer::Error::Unsupported(_) => heifer::decode_rgba8(data, &options),
            other => Err(other),
        })
    }
    .map_err(heic_error)?;
    if (image.width, image.height) != (probe.stored_width, probe.stored_height) {
        return Err(ImageError::Corrupt(format!(
            "the HEIC image is {}x{}, its header says {}x{}",
            image.width, image.height, probe.stored_width, probe.stored_height
        )));
    }
    let pixels = Pixels::from_vec(image.width, image.height, Layout::Rgba8, image.data)?;
    Ok(Frame { pixels, orientation: Orientation::Normal, icc, cmyk_inverted: false })
}

fn heic_error(e: heifer::Error) -> ImageError {
    use heifer::heifer_hevc_dec::Error as Hevc;
    let message = e.to_string();
    match e {
        heifer::Error::Container(inner) => container_error(inner),
        heifer::Error::Hevc(Hevc::UnexpectedEof) => ImageError::Truncated(message),
        heifer::Error::Hevc(Hevc::Unimplemented(_)) | heifer::Error::Unsupported(_) => {
            ImageError::UnsupportedFormat(format!("HEIF content ({message})"))
        }
        _ => ImageError::Corrupt(message),
    }
}
