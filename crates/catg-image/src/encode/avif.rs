//! AVIF through rav1e (ravif): 8-bit 4:4:4, alpha as a second image.

use crate::error::{ImageError, Result};
use crate::pixels::{Layout, Pixels};

/// AVIF encoder speed (0 slowest … 10 fastest): a miss waits for its render. Speed 9 is 0.94x
/// speed 10's bytes at the same DSSIM for a few ms more; slower speeds double the time for a
/// few percent (docs/decisions/pipeline.md, "AVIF speed 9").
const AVIF_SPEED: u8 = 9;

/// 8-bit, as sharp's is (ravif's default is 10): faster and smaller in memory at the same bytes
/// and quality; 4:4:4, since 4:2:0 bled colour at edges (docs/decisions/pipeline.md, "AVIF 8-bit 4:4:4").
const AVIF_BIT_DEPTH: ravif::BitDepth = ravif::BitDepth::Eight;

pub(crate) fn encode(pixels: &Pixels, quality: u8) -> Result<Vec<u8>> {
    encode_with_exif(pixels, quality, None)
}

/// `encode`, with an EXIF item (TIFF structure) when given.
pub(crate) fn encode_with_exif(pixels: &Pixels, quality: u8, tiff: Option<&[u8]>) -> Result<Vec<u8>> {
    use rgb::FromSlice;
    let mut encoder = ravif::Encoder::new()
        .with_quality(f32::from(quality))
        .with_alpha_quality(f32::from(quality))
        .with_speed(AVIF_SPEED)
        .with_bit_depth(AVIF_BIT_DEPTH);
    if let Some(tiff) = tiff {
        encoder = encoder.with_exif(tiff);
    }
    let (w, h) = (pixels.width as usize, pixels.height as usize);
    let encoded = if pixels.layout == Layout::Rgba8 {
        encoder.encode_rgba(ravif::Img::new(pixels.data.as_rgba(), w, h))
    } else {
        encoder.encode_rgb(ravif::Img::new(pixels.data.as_rgb(), w, h))
    };
    Ok(encoded.map_err(|e| ImageError::encoder("AVIF", e))?.avif_file)
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

    /// AVIF variants are 8-bit 4:4:4 (the bit depth chosen by measurement, see AVIF_BIT_DEPTH),
    /// decode to the pixels encoded, and keep alpha as a second image.
    #[test]
    fn avif_is_8_bit_444_and_round_trips_colour_and_alpha() {
        let limits = Limits::default();
        for layout in [Layout::Rgb8, Layout::Rgba8] {
            let source = pattern(96, 64, layout);
            let bytes = crate::encode::encode(source.clone(), OutputFormat::Avif, 90, false).expect("encode");
            assert_eq!(av1c_flags(&bytes) & 0b1111_1100, 0, "{layout:?}: 8-bit, colour, 4:4:4");
            let probe = crate::probe(&bytes, &limits).expect("probe");
            assert_eq!((probe.width(), probe.height(), probe.has_alpha), (96, 64, layout == Layout::Rgba8));
            let decoded = crate::decode::heif::decode(&bytes, &probe).expect("decode").pixels;
            assert_eq!(decoded.layout, layout);
            let diff = mean_visible_diff(&decoded, &source);
            assert!(diff < 3.0, "{layout:?}: decoded pixels differ by {diff:.2} on average");
        }
    }
}
