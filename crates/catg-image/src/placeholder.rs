//! A placeholder image drawn from a ThumbHash: what a browser shows while a variant renders.
//!
//! It never touches the source: the ThumbHash (about 25 bytes, recorded at ingest) holds a
//! blurred picture of at most 32 pixels a side, which is stretched to the variant's aspect and
//! encoded. That costs well under a millisecond, so a waiting viewer gets it at once.

use crate::encode::encode;
use crate::error::{ImageError, Result};
use crate::output::OutputFormat;
use crate::pixels::{Layout, Pixels};

/// The placeholder's longer side: the ThumbHash holds no more detail than this.
pub const PLACEHOLDER_SIDE: u32 = 32;

/// Quality for lossy placeholders: a blur needs few bits, and artefacts on it are invisible.
const PLACEHOLDER_QUALITY: u8 = 70;

/// The size of a placeholder for a `width`×`height` variant: its aspect, longer side at most
/// [`PLACEHOLDER_SIDE`], neither side below one pixel.
pub fn placeholder_size(width: u32, height: u32) -> (u32, u32) {
    let (width, height) = (width.max(1), height.max(1));
    let longer = width.max(height);
    if longer <= PLACEHOLDER_SIDE {
        return (width, height);
    }
    let scale = |side: u32| {
        ((u64::from(side) * u64::from(PLACEHOLDER_SIDE) + u64::from(longer) / 2) / u64::from(longer)).max(1) as u32
    };
    (scale(width), scale(height))
}

/// The picture in `thumbhash`, stretched to [`placeholder_size`] of the variant's `size`, as
/// `format` bytes. Transparency is kept where the format holds it.
pub fn placeholder(thumbhash: &[u8], size: (u32, u32), format: OutputFormat) -> Result<Vec<u8>> {
    let (hash_w, hash_h, rgba) =
        thumbhash::thumb_hash_to_rgba(thumbhash).map_err(|()| ImageError::Internal("a ThumbHash too short".into()))?;
    let (width, height) = placeholder_size(size.0, size.1);
    let pixels = stretch(&rgba, (hash_w, hash_h), (width as usize, height as usize));
    let opaque = pixels.chunks_exact(4).all(|p| p[3] == 255);
    let pixels = Pixels::from_vec(width, height, Layout::Rgba8, pixels)?;
    let pixels = if opaque || !format.supports_alpha() { pixels.flatten([255, 255, 255]) } else { pixels };
    encode(pixels, format, PLACEHOLDER_QUALITY, false)
}

/// Bilinear resampling of RGBA samples, pixel centres aligned: enough for a picture that is
/// all low frequencies.
fn stretch(rgba: &[u8], (src_w, src_h): (usize, usize), (dst_w, dst_h): (usize, usize)) -> Vec<u8> {
    let mut out = Vec::with_capacity(dst_w * dst_h * 4);
    let source = |n: usize, of: usize, into: usize| {
        let x = ((n as f32 + 0.5) * of as f32 / into as f32 - 0.5).clamp(0.0, (of - 1) as f32);
        let low = x.floor() as usize;
        (low, (low + 1).min(of - 1), x - low as f32)
    };
    for y in 0..dst_h {
        let (y0, y1, fy) = source(y, src_h, dst_h);
        for x in 0..dst_w {
            let (x0, x1, fx) = source(x, src_w, dst_w);
            for c in 0..4 {
                let at = |px: usize, py: usize| f32::from(rgba[(py * src_w + px) * 4 + c]);
                let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
                let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
                out.push((top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(colour: [u8; 4], width: usize, height: usize) -> Vec<u8> {
        let rgba: Vec<u8> = std::iter::repeat_n(colour, width * height).flatten().collect();
        thumbhash::rgba_to_thumb_hash(width, height, &rgba)
    }

    #[test]
    fn sizes_keep_the_aspect_within_the_side() {
        assert_eq!(placeholder_size(800, 600), (32, 24));
        assert_eq!(placeholder_size(600, 800), (24, 32));
        assert_eq!(placeholder_size(10_000, 10), (32, 1));
        assert_eq!(placeholder_size(20, 10), (20, 10));
        assert_eq!(placeholder_size(0, 0), (1, 1));
    }

    #[test]
    fn a_flat_picture_gives_a_flat_placeholder_of_its_colour() {
        let hash = flat([200, 40, 40, 255], 60, 40);
        let png = placeholder(&hash, (300, 200), OutputFormat::Png).expect("png");
        let decoded = image::load_from_memory(&png).expect("decodes").to_rgba8();
        assert_eq!(decoded.dimensions(), (32, 21));
        for pixel in decoded.pixels() {
            let [r, g, b, a] = pixel.0;
            assert!(r.abs_diff(200) <= 12 && g.abs_diff(40) <= 12 && b.abs_diff(40) <= 12 && a == 255, "{:?}", pixel.0);
        }
    }

    #[test]
    fn every_format_encodes_and_transparency_stays_where_it_can() {
        let hash = flat([0, 0, 255, 0], 20, 20);
        for format in [OutputFormat::Png, OutputFormat::Webp, OutputFormat::Jpeg, OutputFormat::Avif] {
            let bytes = placeholder(&hash, (100, 100), format).expect("encodes");
            assert!(crate::sniff(&bytes).is_ok(), "{format} placeholder is an image");
        }
        let png = placeholder(&hash, (100, 100), OutputFormat::Png).expect("png");
        let decoded = image::load_from_memory(&png).expect("decodes").to_rgba8();
        assert!(decoded.pixels().all(|p| p.0[3] < 16), "transparent stays transparent");
    }

    #[test]
    fn a_broken_hash_is_an_error_not_a_panic() {
        assert!(placeholder(&[1, 2], (10, 10), OutputFormat::Png).is_err());
    }
}
