//! AVIF through libaom (built from source into every binary): all-intra AV1, 10-bit 4:2:0
//! YCbCr (BT.601, full range), alpha as a second, monochrome image; the HEIF container by
//! avif-serialize.
#![allow(unsafe_code)] // The FFI to libaom's encoder; every call is wrapped here.

use crate::error::{ImageError, Result};
use crate::pixels::{Layout, Pixels};
use libaom_sys as aom;
use std::ffi::c_int;

/// libaom's speed (0 slowest … 9 fastest for stills): a miss waits for its render, but each
/// variant is rendered once and downloaded many times. Speed 5 is sharp's (effort 4) and needs
/// about 5% fewer bytes than speed 6 at the same DSSIM, for about 4× the encoding time, so it is
/// spent where that time is small; speed 6 up to 1 MP; beyond that speed 6 grows faster than the
/// pixels, so speed 8 (docs/decisions/pipeline.md, "AVIF through libaom").
const AVIF_SPEED_SMALL: c_int = 5;
const AVIF_SPEED: c_int = 6;
const AVIF_SPEED_LARGE: c_int = 8;
/// Output pixels up to which AVIF_SPEED_SMALL applies: 512×512, about 0.45 s of encoding.
const AVIF_SMALL_PIXELS: usize = 1 << 18;
/// Output pixels above which AVIF_SPEED_LARGE applies: about 1200×870.
const AVIF_LARGE_PIXELS: usize = 1 << 20;

/// libaom's SSIM tuning: 5% fewer bytes than its default (PSNR) at the same DSSIM.
const AVIF_TUNING: c_int = aom::AOM_TUNE_SSIM as c_int;

/// One thread a render, as the other encoders: renders already run side by side.
const AVIF_THREADS: u32 = 1;

/// 10 bits a sample from 8-bit sources: AV1 predicts and filters more finely, so the same DSSIM
/// takes 3–5% fewer bytes than at 8 bits, for about 10% more encoding time. Every AVIF decoder
/// reads 10-bit 4:2:0 (AV1's Main profile).
const AVIF_BIT_DEPTH: u8 = 10;
const MAX_SAMPLE: f32 = ((1 << AVIF_BIT_DEPTH) - 1) as f32;
const CHROMA_ZERO: f32 = (1 << (AVIF_BIT_DEPTH - 1)) as f32;

/// AV1's matrix_coefficients code for BT.601, which the conversion below uses.
const MATRIX_BT601: u8 = 6;

pub(crate) fn encode(pixels: &Pixels, quality: u8) -> Result<Vec<u8>> {
    encode_with_exif(pixels, quality, None)
}

/// `encode`, with an EXIF item (TIFF structure) when given.
pub(crate) fn encode_with_exif(pixels: &Pixels, quality: u8, tiff: Option<&[u8]>) -> Result<Vec<u8>> {
    let (width, height) = (pixels.width as usize, pixels.height as usize);
    let channels = pixels.layout.channels();
    if !matches!(pixels.layout, Layout::Rgb8 | Layout::Rgba8) || pixels.data.len() < width * height * channels {
        return Err(ImageError::encoder("AVIF", "the pixel buffer does not match its size"));
    }
    let level = cq_level(quality);
    let speed = match width * height {
        n if n <= AVIF_SMALL_PIXELS => AVIF_SPEED_SMALL,
        n if n <= AVIF_LARGE_PIXELS => AVIF_SPEED,
        _ => AVIF_SPEED_LARGE,
    };
    let colour = av1_still(&mut ycbcr_420(pixels), width, height, level, speed)?;
    let alpha = if pixels.layout == Layout::Rgba8 {
        let alpha = || pixels.data.chunks_exact(4).take(width * height).map(|px| px[3]);
        if alpha().all(|a| a == 255) {
            None
        } else {
            let luma = alpha().map(|a| to_sample(f32::from(a))).collect();
            Some(av1_still(&mut Planes { luma, chroma: None }, width, height, level, speed)?)
        }
    } else {
        None
    };
    let mut container = avif_serialize::Aviffy::new();
    container
        .matrix_coefficients(avif_serialize::constants::MatrixCoefficients::Bt601)
        .full_color_range(true)
        .premultiplied_alpha(false)
        .set_seq_profile(0)
        .set_chroma_subsampling((true, true));
    if let Some(tiff) = tiff {
        container.set_exif(tiff.to_vec());
    }
    Ok(container.to_vec(&colour, alpha.as_deref(), pixels.width, pixels.height, AVIF_BIT_DEPTH))
}

/// The samples of one AV1 image: full-size luma, and half-size (rounded up) Cb and Cr unless
/// the image is monochrome.
struct Planes {
    luma: Vec<u16>,
    chroma: Option<[Vec<u16>; 2]>,
}

/// An 8-bit value (0-255) at AVIF_BIT_DEPTH, full range.
fn to_sample(value: f32) -> u16 {
    (value * (MAX_SAMPLE / 255.0)).round().clamp(0.0, MAX_SAMPLE) as u16
}

/// BT.601 full-range YCbCr, chroma averaged over each 2×2 block (fewer bytes at the same DSSIM
/// than 4:4:4: chroma detail costs bits the eye barely sees; sharp's default too).
fn ycbcr_420(pixels: &Pixels) -> Planes {
    let (width, height) = (pixels.width as usize, pixels.height as usize);
    let channels = pixels.layout.channels();
    let chroma_width = width.div_ceil(2);
    let chroma_len = chroma_width * height.div_ceil(2);
    let mut luma = vec![0u16; width * height];
    let (mut cb_sums, mut cr_sums, mut counts) =
        (vec![0f32; chroma_len], vec![0f32; chroma_len], vec![0u8; chroma_len]);
    for (row, line) in pixels.data.chunks_exact(width * channels).take(height).enumerate() {
        for (column, px) in line.chunks_exact(channels).enumerate() {
            let (r, g, b) = (f32::from(px[0]), f32::from(px[1]), f32::from(px[2]));
            let y = 0.299 * r + 0.587 * g + 0.114 * b;
            luma[row * width + column] = to_sample(y);
            let at = (row / 2) * chroma_width + column / 2;
            cb_sums[at] += (b - y) / 1.772;
            cr_sums[at] += (r - y) / 1.402;
            counts[at] += 1;
        }
    }
    let average = |sums: Vec<f32>| -> Vec<u16> {
        sums.iter()
            .zip(&counts)
            .map(|(&sum, &n)| {
                (sum / f32::from(n) * (MAX_SAMPLE / 255.0) + CHROMA_ZERO).round().clamp(0.0, MAX_SAMPLE) as u16
            })
            .collect()
    };
    Planes { luma, chroma: Some([average(cb_sums), average(cr_sums)]) }
}

/// catg's quality (1-100, higher is better) to libaom's constant-quality level (0-63, lower is
/// better), on libavif's scale.
fn cq_level(quality: u8) -> u32 {
    (u32::from(100 - quality.clamp(1, 100)) * 63 + 50) / 100
}

/// libaom's encoder context, destroyed on every path.
struct Encoder(aom::aom_codec_ctx_t);

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: initialised by aom_codec_enc_init_ver; destroyed only here.
        unsafe { aom::aom_codec_destroy(&mut self.0) };
    }
}

/// One AV1 key frame (its OBUs) of `planes`, at AVIF_BIT_DEPTH: 4:2:0, or monochrome when they
/// hold no chroma.
fn av1_still(planes: &mut Planes, width: usize, height: usize, level: u32, speed: c_int) -> Result<Vec<u8>> {
    let fail = |what: &str, code: aom::aom_codec_err_t| {
        if code == aom::AOM_CODEC_MEM_ERROR {
            ImageError::ResourceLimit("not enough memory to encode the AVIF".into())
        } else {
            ImageError::encoder("AVIF", format!("libaom {what}: {code}"))
        }
    };
    let (Ok(w), Ok(h)) = (u32::try_from(width), u32::try_from(height)) else {
        return Err(ImageError::encoder("AVIF", "the image is too large"));
    };
    let monochrome = planes.chroma.is_none();
    let chroma_width = width.div_ceil(2);
    // A monochrome image still names two chroma planes, which libaom does not read.
    let mut neutral = if monochrome { vec![CHROMA_ZERO as u16; chroma_width * height.div_ceil(2)] } else { Vec::new() };
    let [cb, cr] = match &mut planes.chroma {
        Some([cb, cr]) => [cb.as_mut_ptr(), cr.as_mut_ptr()],
        None => [neutral.as_mut_ptr(); 2],
    };
    // SAFETY: every libaom call gets initialised structures; the image wraps `planes` (and
    // `neutral`), which outlive the encoder; packets are copied out before the next call into
    // libaom.
    unsafe {
        let iface = aom::aom_codec_av1_cx();
        let mut config = std::mem::zeroed::<aom::aom_codec_enc_cfg_t>();
        let code = aom::aom_codec_enc_config_default(iface, &mut config, aom::AOM_USAGE_ALL_INTRA);
        if code != aom::AOM_CODEC_OK {
            return Err(fail("configuration", code));
        }
        config.g_w = w;
        config.g_h = h;
        config.g_bit_depth = aom::AOM_BITS_10;
        config.g_input_bit_depth = u32::from(AVIF_BIT_DEPTH);
        config.g_threads = AVIF_THREADS;
        config.g_limit = 1;
        config.g_lag_in_frames = 0;
        config.g_profile = 0; // Main: 4:2:0 and monochrome, 8 or 10 bits
        config.monochrome = u32::from(monochrome);
        config.rc_end_usage = aom::AOM_Q;
        config.rc_min_quantizer = 0;
        config.rc_max_quantizer = 63;
        let mut encoder = Encoder(std::mem::zeroed());
        let code = aom::aom_codec_enc_init_ver(
            &mut encoder.0,
            iface,
            &config,
            aom::AOM_CODEC_USE_HIGHBITDEPTH as aom::aom_codec_flags_t,
            aom::AOM_ENCODER_ABI_VERSION as c_int,
        );
        if code != aom::AOM_CODEC_OK {
            // Nothing to destroy: a failed init leaves no state behind.
            std::mem::forget(encoder);
            return Err(fail("initialisation", code));
        }
        let controls: [(u32, c_int); 6] = [
            (aom::AOME_SET_CPUUSED, speed),
            // Filter-intra search: 5% of the time at speed 5, for 0.5% of the bytes on photos.
            (aom::AV1E_SET_ENABLE_FILTER_INTRA, 0),
            (aom::AOME_SET_CQ_LEVEL, level as c_int),
            (aom::AOME_SET_TUNING, AVIF_TUNING),
            (aom::AV1E_SET_COLOR_RANGE, aom::AOM_CR_FULL_RANGE as c_int),
            (aom::AV1E_SET_MATRIX_COEFFICIENTS, c_int::from(MATRIX_BT601)),
        ];
        for (control, value) in controls {
            let code = aom::aom_codec_control(&mut encoder.0, control as c_int, value);
            if code != aom::AOM_CODEC_OK {
                return Err(fail("control", code));
            }
        }
        let mut image = std::mem::zeroed::<aom::aom_image_t>();
        let format = aom::AOM_IMG_FMT_I420 | aom::AOM_IMG_FMT_HIGHBITDEPTH;
        let luma = planes.luma.as_mut_ptr();
        if aom::aom_img_wrap(&mut image, format, w, h, 1, luma.cast()).is_null() {
            return Err(ImageError::encoder("AVIF", "libaom refused the image"));
        }
        image.planes = [luma.cast(), cb.cast(), cr.cast()];
        let bytes_per_sample = std::mem::size_of::<u16>();
        image.stride = [
            (width * bytes_per_sample) as c_int,
            (chroma_width * bytes_per_sample) as c_int,
            (chroma_width * bytes_per_sample) as c_int,
        ];
        image.bit_depth = u32::from(AVIF_BIT_DEPTH);
        image.range = aom::AOM_CR_FULL_RANGE;
        image.monochrome = c_int::from(monochrome);
        let mut obus = Vec::new();
        for frame in [&image as *const aom::aom_image_t, std::ptr::null()] {
            // The null frame flushes the encoder.
            let code = aom::aom_codec_encode(&mut encoder.0, frame, 0, 1, 0);
            if code != aom::AOM_CODEC_OK {
                return Err(fail("encoding", code));
            }
            let mut iter = std::ptr::null();
            loop {
                let packet = aom::aom_codec_get_cx_data(&mut encoder.0, &mut iter);
                if packet.is_null() {
                    break;
                }
                if (*packet).kind == aom::AOM_CODEC_CX_FRAME_PKT {
                    let frame = (*packet).data.frame;
                    obus.extend_from_slice(std::slice::from_raw_parts(frame.buf as *const u8, frame.sz));
                }
            }
        }
        if obus.is_empty() {
            return Err(ImageError::encoder("AVIF", "libaom wrote no frame"));
        }
        Ok(obus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;
    use crate::output::OutputFormat;

    /// A smooth colour field with a hard diagonal edge: what photos and graphics both hold.
    fn pattern(width: u32, height: u32, layout: Layout) -> Pixels {
        let mut pixels = Pixels::new(width, height, layout).expect("pixels");
        let channels = layout.channels();
        for (i, px) in pixels.data.chunks_exact_mut(channels).enumerate() {
            let (x, y) = (i as u32 % width, i as u32 / width);
            px[0] = (x * 255 / width) as u8;
            px[1] = (y * 255 / height) as u8;
            px[2] = if x > y { 220 } else { 30 };
            if channels == 4 {
                px[3] = if x < width / 4 { 0 } else { (y * 255 / height) as u8 };
            }
        }
        pixels
    }

    /// The av1C box's flags byte: high_bitdepth, twelve_bit, monochrome, subsampling x and y.
    fn av1c_flags(avif: &[u8]) -> u8 {
        let at = avif.windows(4).position(|w| w == b"av1C").expect("an av1C box");
        avif[at + 6]
    }

    /// Over what a viewer sees: colour weighted by alpha (the encoder may change the colour of
    /// transparent pixels, which compresses better), and alpha itself.
    fn mean_visible_diff(a: &Pixels, b: &Pixels) -> f64 {
        let channels = a.channels();
        let visible = |px: &[u8]| -> Vec<f64> {
            let alpha = if channels == 4 { f64::from(px[3]) / 255.0 } else { 1.0 };
            px.iter().enumerate().map(|(c, &v)| if c < 3 { f64::from(v) * alpha } else { f64::from(v) }).collect()
        };
        let total: f64 = a
            .data
            .chunks_exact(channels)
            .zip(b.data.chunks_exact(channels))
            .map(|(p, q)| visible(p).iter().zip(visible(q)).map(|(x, y)| (x - y).abs()).sum::<f64>())
            .sum();
        total / a.data.len() as f64
    }

    /// AVIF variants are 10-bit 4:2:0 (chosen by measurement, see AVIF_BIT_DEPTH and
    /// ycbcr_420), decode to the pixels encoded, and keep alpha as a second image.
    #[test]
    fn avif_is_10_bit_420_and_round_trips_colour_and_alpha() {
        let limits = Limits::default();
        // Odd sizes too: the last chroma row and column average fewer pixels.
        for (layout, (width, height)) in
            [(Layout::Rgb8, (96, 64)), (Layout::Rgba8, (96, 64)), (Layout::Rgba8, (97, 63))]
        {
            let source = pattern(width, height, layout);
            let bytes = crate::encode::encode(source.clone(), OutputFormat::Avif, 90, false).expect("encode");
            assert_eq!(av1c_flags(&bytes) & 0b1111_1100, 0b0100_1100, "{layout:?}: 10-bit, colour, 4:2:0");
            let probe = crate::probe(&bytes, &limits).expect("probe");
            assert_eq!((probe.width(), probe.height(), probe.has_alpha), (width, height, layout == Layout::Rgba8));
            let decoded = crate::decode::heif::decode(&bytes, &probe).expect("decode").pixels;
            assert_eq!(decoded.layout, layout);
            let diff = mean_visible_diff(&decoded, &source);
            assert!(diff < 3.0, "{layout:?} {width}×{height}: decoded pixels differ by {diff:.2} on average");
        }
    }
}
