//! GIF: one palette for the whole animation and ordered dithering, so that a colour that stays
//! put between frames stays the same pixel pattern (error diffusion makes still areas shimmer,
//! because each frame's error spreads differently). The palette comes from NeuQuant (the
//! `color_quant` crate, which the image crate's own GIF encoder uses), trained on a sample of
//! every frame; one entry is kept for transparency when any pixel needs it.

use crate::animation::AnimatedFrame;
use crate::error::{ImageError, Result};
use crate::pixels::Layout;
use color_quant::NeuQuant;
use std::borrow::Cow;

/// Pixels NeuQuant learns from at most: enough for a stable palette, bounded in time.
const TRAINING_PIXELS: usize = 1 << 20;
/// NeuQuant's sampling factor: 1 looks at every training pixel (best), 30 at a thirtieth.
const SAMPLE_FACTOR: i32 = 3;
/// Alpha below this is transparent; GIF has no partial transparency.
const ALPHA_CUTOFF: u8 = 128;
/// How far the ordered dither moves a channel, peak to peak: about one palette step of a
/// 256-colour cube (256 / ∛256 ≈ 40) keeps gradients smooth without visible noise.
const DITHER_SPREAD: f32 = 32.0;

/// An 8×8 Bayer matrix: thresholds 0..64 spread evenly over every 8×8 block.
const BAYER: [[u8; 8]; 8] = [
    [0, 32, 8, 40, 2, 34, 10, 42],
    [48, 16, 56, 24, 50, 18, 58, 26],
    [12, 44, 4, 36, 14, 46, 6, 38],
    [60, 28, 52, 20, 62, 30, 54, 22],
    [3, 35, 11, 43, 1, 33, 9, 41],
    [51, 19, 59, 27, 49, 17, 57, 25],
    [15, 47, 7, 39, 13, 45, 5, 37],
    [63, 31, 55, 23, 61, 29, 53, 21],
];

/// A GIF of `frames` (RGBA, all one size), each shown for its delay (GIF counts hundredths of a
/// second), played `loop_count` times (0: forever; 1: once, written without a loop extension).
pub(crate) fn encode_animation(frames: &[AnimatedFrame], loop_count: u16) -> Result<Vec<u8>> {
    let Some(first) = frames.first() else { return Err(ImageError::encoder("GIF", "an animation without frames")) };
    let (width, height) = (first.pixels.width, first.pixels.height);
    let (Ok(w16), Ok(h16)) = (u16::try_from(width), u16::try_from(height)) else {
        return Err(ImageError::encoder("GIF", "the image is too large"));
    };
    if frames.iter().any(|f| (f.pixels.width, f.pixels.height) != (width, height) || f.pixels.layout != Layout::Rgba8) {
        return Err(ImageError::encoder("GIF", "the frames differ in size or layout"));
    }
    let transparent = frames.iter().any(|f| f.pixels.data.chunks_exact(4).any(|p| p[3] < ALPHA_CUTOFF));
    let palette = Palette::train(frames, if transparent { 255 } else { 256 });
    let mut colours = palette.quant.color_map_rgb();
    let transparent_index = transparent.then(|| {
        colours.extend_from_slice(&[0, 0, 0]);
        (colours.len() / 3 - 1) as u8
    });
    let mut out = Vec::new();
    let mut encoder = gif::Encoder::new(&mut out, w16, h16, &colours).map_err(gif_error)?;
    if loop_count != 1 {
        let repeat = if loop_count == 0 { gif::Repeat::Infinite } else { gif::Repeat::Finite(loop_count) };
        encoder.set_repeat(repeat).map_err(gif_error)?;
    }
    for frame in frames {
        let indices = palette.map(&frame.pixels.data, width as usize, transparent_index);
        let gif_frame = gif::Frame {
            width: w16,
            height: h16,
            // Each frame is whole: with transparency, clear before the next so that nothing of
            // this one shows through it.
            dispose: if transparent { gif::DisposalMethod::Background } else { gif::DisposalMethod::Keep },
            transparent: transparent_index,
            delay: u16::try_from(frame.delay_ms.div_ceil(10)).unwrap_or(u16::MAX),
            buffer: Cow::Owned(indices),
            ..gif::Frame::default()
        };
        encoder.write_frame(&gif_frame).map_err(gif_error)?;
    }
    encoder.into_inner().map_err(gif_error)?;
    Ok(out)
}

fn gif_error(e: gif::EncodingError) -> ImageError {
    ImageError::encoder("GIF", e.to_string())
}

struct Palette {
    quant: NeuQuant,
    /// The palette index of every colour at 5 bits a channel: a table lookup per pixel instead
    /// of a search.
    nearest: Vec<u8>,
}

impl Palette {
    fn train(frames: &[AnimatedFrame], colours: usize) -> Palette {
        let total: usize = frames.iter().map(|f| f.pixels.data.len() / 4).sum();
        let step = total.div_ceil(TRAINING_PIXELS).max(1);
        // Opaque pixels teach the palette; transparent ones have their own entry.
        let mut training = Vec::with_capacity(total.min(TRAINING_PIXELS) * 4);
        for frame in frames {
            for pixel in frame.pixels.data.chunks_exact(4).step_by(step) {
                if pixel[3] >= ALPHA_CUTOFF {
                    training.extend_from_slice(&[pixel[0], pixel[1], pixel[2], 255]);
                }
            }
        }
        if training.is_empty() {
            training.extend_from_slice(&[0, 0, 0, 255]);
        }
        let quant = NeuQuant::new(SAMPLE_FACTOR, colours, &training);
        let nearest = (0..32 * 32 * 32u32)
            .map(|i| {
                let level = |shift: u32| (((i >> shift) & 31) * 255 / 31) as u8;
                quant.index_of(&[level(10), level(5), level(0), 255]) as u8
            })
            .collect();
        Palette { quant, nearest }
    }

    /// Palette indices of RGBA rows `width` wide, ordered-dithered.
    fn map(&self, rgba: &[u8], width: usize, transparent: Option<u8>) -> Vec<u8> {
        rgba.chunks_exact(4)
            .enumerate()
            .map(|(i, p)| match transparent {
                Some(index) if p[3] < ALPHA_CUTOFF => index,
                _ => {
                    let (x, y) = (i % width, i / width);
                    let offset = (f32::from(BAYER[y % 8][x % 8]) + 0.5) / 64.0 - 0.5;
                    let dithered = |c: u8| ((f32::from(c) + offset * DITHER_SPREAD).clamp(0.0, 255.0) + 0.5) as u32;
                    let five = |c: u8| (dithered(c) * 31 + 127) / 255;
                    self.nearest[((five(p[0]) << 10) | (five(p[1]) << 5) | five(p[2])) as usize]
                }
            })
            .collect()
    }
}
