//! JPEG through libjpeg-turbo: 4:2:0, baseline, optimised Huffman tables.

use crate::error::{ImageError, Result};
use crate::pixels::Pixels;

/// JPEG has no alpha: transparent areas become white, which is what a page behind them
/// usually is.
const BACKGROUND: [u8; 3] = [255, 255, 255];

pub(crate) fn encode(pixels: Pixels, quality: u8, progressive: bool) -> Result<Vec<u8>> {
    let pixels = pixels.flatten(BACKGROUND);
    let mut compressor = turbojpeg::Compressor::new().map_err(|e| ImageError::encoder("JPEG", e))?;
    compressor.set_quality(i32::from(quality)).map_err(|e| ImageError::encoder("JPEG", e))?;
    compressor.set_subsamp(turbojpeg::Subsamp::Sub2x2).map_err(|e| ImageError::encoder("JPEG", e))?;
    // Baseline with optimised Huffman tables by default: sharp's default, so sizes compare like
    // for like, and faster to encode and decode than progressive (docs/performance.md).
    compressor.set_progressive(progressive).map_err(|e| ImageError::encoder("JPEG", e))?;
    compressor.set_optimize(true).map_err(|e| ImageError::encoder("JPEG", e))?;
    let image = turbojpeg::Image {
        pixels: &pixels.data[..],
        width: pixels.width as usize,
        pitch: pixels.width as usize * 3,
        height: pixels.height as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    compressor.compress_to_vec(image).map_err(|e| ImageError::encoder("JPEG", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::Layout;

    /// Baseline by default (a SOF0 frame header), progressive when asked (SOF2).
    #[test]
    fn progressive_only_when_asked() {
        let data: Vec<u8> = (0..64 * 48 * 3).map(|i| (i * 7 % 251) as u8).collect();
        let pixels = || Pixels::from_vec(64, 48, Layout::Rgb8, data.clone()).expect("pixels");
        // The frame header's marker: walk the segments from SOI to the first SOFn.
        let frame = |bytes: &[u8]| {
            let mut pos = 2;
            loop {
                let marker = bytes[pos + 1];
                if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
                    return marker;
                }
                pos += 2 + usize::from(u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]));
            }
        };
        assert_eq!(frame(&encode(pixels(), 80, false).expect("baseline")), 0xC0);
        let progressive = encode(pixels(), 80, true).expect("progressive");
        assert_eq!(frame(&progressive), 0xC2);
        let decoded = turbojpeg::decompress(&progressive, turbojpeg::PixelFormat::RGB).expect("decodes");
        assert_eq!((decoded.width, decoded.height), (64, 48));
    }
}
