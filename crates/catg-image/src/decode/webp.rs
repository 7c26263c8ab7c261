//! WebP stills through libwebp, the library that already encodes catg's WebP variants, with its
//! scaled decode (the WebP counterpart of JPEG's shrink-on-load): libwebp rescales each row as
//! it decodes it, so a render of a large WebP never holds the full-size frame, only one at 3×
//! the size the resampler needs. Animated WebPs stay on the image crate (their first frame).
#![allow(unsafe_code)] // The FFI to libwebp's decoder; every call is wrapped here.

use crate::error::{ImageError, Result};
use crate::frame::Frame;
use crate::pixels::{Layout, Pixels};
use crate::probe::{webp::icc_profile, Probe};
use libwebp_sys::{
    VP8StatusCode, WebPBitstreamFeatures, WebPDecBuffer__bindgen_ty_1, WebPDecode, WebPDecoderConfig,
    WebPFreeDecBuffer, WebPGetFeatures, WebPRGBABuffer, WEBP_CSP_MODE,
};

/// How much larger than the render needs libwebp scales a WebP on load: its rescaler averages
/// areas, so it needs more room than JPEG's DCT scaling (docs/decisions/pipeline.md, "WebP
/// scaled decode margin").
const MARGIN: f64 = 3.0;

/// The size to decode a `width`×`height` WebP at for a render that works from `min_scale` of
/// it: [`MARGIN`] times that, never more than the stored size.
pub(crate) fn decode_size((width, height): (u32, u32), min_scale: f64) -> (u32, u32) {
    let wanted = (MARGIN * min_scale).min(1.0);
    if wanted >= 1.0 {
        return (width, height);
    }
    let scaled = |n: u32| ((f64::from(n) * wanted - 1e-9).ceil() as u32).clamp(1, n);
    (scaled(width), scaled(height))
}

/// Decode a still WebP at [`decode_size`] for `min_scale`.
pub(crate) fn decode(data: &[u8], probe: &Probe, min_scale: f64) -> Result<Frame> {
    let mut config = WebPDecoderConfig::new().map_err(|()| internal("libwebp's decoder ABI does not match"))?;
    let features: &mut WebPBitstreamFeatures = &mut config.input;
    // SAFETY: `data` is a valid slice; libwebp writes only `features`.
    check(unsafe { WebPGetFeatures(data.as_ptr(), data.len(), features) })?;
    let stored = (u32::try_from(features.width).unwrap_or(0), u32::try_from(features.height).unwrap_or(0));
    if stored != (probe.stored_width, probe.stored_height) {
        return Err(ImageError::header_mismatch((probe.stored_width, probe.stored_height), stored));
    }
    let (layout, mode) = if features.has_alpha != 0 {
        (Layout::Rgba8, WEBP_CSP_MODE::MODE_RGBA)
    } else {
        (Layout::Rgb8, WEBP_CSP_MODE::MODE_RGB)
    };
    let (width, height) = decode_size(stored, min_scale);
    if (width, height) != stored {
        config.options.use_scaling = 1;
        config.options.scaled_width = width as i32;
        config.options.scaled_height = height as i32;
    }
    let mut pixels = Pixels::new(width, height, layout)?;
    // libwebp writes straight into our buffer, whose allocation was checked.
    config.output.colorspace = mode;
    config.output.is_external_memory = 1;
    config.output.u = WebPDecBuffer__bindgen_ty_1 {
        RGBA: WebPRGBABuffer {
            rgba: pixels.data.as_mut_ptr(),
            stride: (width as usize * layout.channels()) as i32,
            size: pixels.data.len(),
        },
    };
    // SAFETY: the output buffer holds `height` rows of `stride` bytes and outlives the call;
    // libwebp reads only `data`.
    let status = unsafe { WebPDecode(data.as_ptr(), data.len(), &mut config) };
    // SAFETY: frees only what libwebp allocated itself (nothing, with external memory).
    unsafe { WebPFreeDecBuffer(&mut config.output) };
    check(status)?;
    Ok(Frame { pixels, orientation: probe.orientation, icc: icc_profile(data), cmyk_inverted: false })
}

fn check(status: VP8StatusCode) -> Result<()> {
    match status {
        VP8StatusCode::VP8_STATUS_OK => Ok(()),
        VP8StatusCode::VP8_STATUS_NOT_ENOUGH_DATA => Err(ImageError::truncated("the image data ends early")),
        VP8StatusCode::VP8_STATUS_OUT_OF_MEMORY => {
            Err(ImageError::ResourceLimit("decoding would need more memory than allowed".into()))
        }
        VP8StatusCode::VP8_STATUS_UNSUPPORTED_FEATURE => {
            Err(ImageError::UnsupportedFormat("a WebP feature libwebp does not support".into()))
        }
        VP8StatusCode::VP8_STATUS_BITSTREAM_ERROR => Err(ImageError::corrupt("the WebP bitstream is damaged")),
        other => Err(internal(format!("libwebp: {other:?}"))),
    }
}

fn internal(message: impl std::fmt::Display) -> ImageError {
    ImageError::Internal(format!("WebP decoder: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::InputFormat;
    use crate::limits::Limits;
    use crate::probe::probe;

    fn mean_and_worst(a: &[u8], b: &[u8]) -> (f64, u8) {
        let diffs = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y));
        let worst = diffs.clone().max().unwrap_or(0);
        (diffs.map(f64::from).sum::<f64>() / a.len().max(1) as f64, worst)
    }

    /// The corpus WebPs (lossy, lossless, alpha) and a larger lossy photo-like one made here.
    fn stills() -> Vec<(String, Vec<u8>)> {
        let corpus = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
        let mut out: Vec<(String, Vec<u8>)> = ["webp_lossy.webp", "webp_lossless.webp", "webp_alpha.webp"]
            .iter()
            .map(|name| {
                let data = std::fs::read(corpus.join(name))
                    .unwrap_or_else(|e| panic!("{name}: {e} (the shared corpus is needed)"));
                (name.to_string(), data)
            })
            .collect();
        let (w, h) = (900u32, 600u32);
        let rgb: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .flat_map(|(x, y)| {
                let wave = ((f64::from(x) / 23.0).sin() * (f64::from(y) / 17.0).cos() * 60.0) as i32;
                [(x * 255 / w) as i32 + wave / 2, 128 + wave, (y * 255 / h) as i32 - wave / 3]
            })
            .map(|v| v.clamp(0, 255) as u8)
            .collect();
        let pixels = Pixels::from_vec(w, h, Layout::Rgb8, rgb).expect("pixels");
        let lossy = crate::encode::webp::encode(&pixels, 85).expect("encode");
        out.push(("synthetic 900x600 lossy".into(), lossy));
        out
    }

    /// At full size libwebp gives the pixels the image crate's decoder gives (both implement
    /// the format's fancy upsampling); scaled, a render stays close to one from the full frame.
    #[test]
    fn libwebp_matches_the_image_crate_and_scaled_renders_stay_close() {
        let limits = Limits::default();
        for (name, data) in stills() {
            let probed = probe(&data, &limits).expect("probe");
            assert_eq!((probed.format, probed.frames), (InputFormat::Webp, 1), "{name}");
            let ours = decode(&data, &probed, 1.0).expect("libwebp");
            let theirs = image::load_from_memory(&data).expect("image crate");
            let theirs = if ours.pixels.layout == Layout::Rgba8 {
                theirs.into_rgba8().into_raw()
            } else {
                theirs.into_rgb8().into_raw()
            };
            let (mean, worst) = mean_and_worst(&ours.pixels.data, &theirs);
            assert!(
                mean < 0.5 && worst <= 3,
                "{name}: libwebp and the image crate differ by {mean:.2} on average, {worst} at worst"
            );

            let scaled = decode(&data, &probed, 0.1).expect("scaled");
            let expected = decode_size((probed.stored_width, probed.stored_height), 0.1);
            assert_eq!((scaled.pixels.width, scaled.pixels.height), expected, "{name}");
            let spec = crate::RenderSpec {
                effects: crate::Effects::default(),
                resize: crate::Resize { width: Some((probed.stored_width / 8).max(1)), ..Default::default() },
                format: crate::OutputFormat::Png,
                quality: 80,
                animate: true,
                progressive: false,
            };
            let rendered = crate::render_probed(&data, &probed, &spec, &limits).expect("render");
            let reference = {
                let full = crate::decode_full(&data, &probed, &limits).expect("full");
                let img = if full.layout == Layout::Rgba8 {
                    image::DynamicImage::ImageRgba8(
                        image::RgbaImage::from_raw(full.width, full.height, full.data).expect("rgba"),
                    )
                } else {
                    image::DynamicImage::ImageRgb8(
                        image::RgbImage::from_raw(full.width, full.height, full.data).expect("rgb"),
                    )
                };
                img.resize_exact(rendered.width, rendered.height, image::imageops::FilterType::Lanczos3)
            };
            let out = image::load_from_memory(&rendered.bytes).expect("png");
            // Compared as seen: colour weighted by alpha (the image crate's resize does not
            // premultiply, so its colours under transparent pixels bleed), and alpha itself.
            let seen = |img: image::DynamicImage| -> Vec<u8> {
                img.into_rgba8()
                    .pixels()
                    .flat_map(|p| {
                        let a = u16::from(p.0[3]);
                        let w = |c: u8| ((u16::from(c) * a + 127) / 255) as u8;
                        [w(p.0[0]), w(p.0[1]), w(p.0[2]), p.0[3]]
                    })
                    .collect()
            };
            let (out, reference) = (seen(out), seen(reference));
            let (mean, _) = mean_and_worst(&out, &reference);
            assert!(
                mean < 1.5,
                "{name}: a render from the scaled decode is {mean:.2} levels from the full-frame Lanczos on average"
            );
        }
    }

    /// Frames scaled by other than a power of two make the crop's arithmetic inexact; no size
    /// or fit may put the crop past the frame (the resampler refused one at 1e-13 over).
    #[test]
    fn every_size_and_fit_renders_from_a_scaled_frame() {
        let limits = Limits::default();
        let (name, data) = stills().pop().expect("synthetic");
        let probed = probe(&data, &limits).expect("probe");
        for width in (13..=301).step_by(4) {
            for fit in [crate::Fit::Cover, crate::Fit::Contain, crate::Fit::Fill] {
                let resize = crate::Resize {
                    width: Some(width),
                    height: Some(width * 2 / 3 + 1),
                    fit,
                    enlarge: false,
                    ..Default::default()
                };
                let spec = crate::RenderSpec {
                    resize,
                    effects: crate::Effects::default(),
                    format: crate::OutputFormat::Png,
                    quality: 80,
                    animate: true,
                    progressive: false,
                };
                crate::render_probed(&data, &probed, &spec, &limits)
                    .unwrap_or_else(|e| panic!("{name} {resize:?}: {e}"));
            }
        }
    }

    /// A cut-short WebP is refused as truncated (or corrupt, where the cut lands in a header),
    /// never rendered from what is there, and never a panic.
    #[test]
    fn every_truncation_is_refused() {
        let limits = Limits::default();
        for (name, data) in stills() {
            let Ok(probed) = probe(&data, &limits) else { continue };
            for cut in (40..data.len()).step_by((data.len() / 97).max(1)) {
                let cut_data = &data[..cut];
                let result = decode(cut_data, &probed, 0.0);
                assert!(
                    matches!(result, Err(ImageError::Truncated(_) | ImageError::Corrupt(_))),
                    "{name} cut at {cut}: {result:?}"
                );
            }
        }
    }

    #[test]
    fn decodes_at_3x_the_needed_scale_and_never_enlarges() {
        assert_eq!(decode_size((4000, 3000), 0.1), (1200, 900));
        assert_eq!(decode_size((4000, 3000), 0.4), (4000, 3000));
        assert_eq!(decode_size((3, 1), 0.01), (1, 1));
        assert_eq!(decode_size((3, 1), 0.0), (1, 1));
    }
}
