//! Blur: a Gaussian blur of the output (`blur`), separable, in floating point, on
//! alpha-premultiplied samples so transparent pixels lend no colour. Up to a sigma of 8 the
//! kernel is exact (cut at 3 sigma); past it three box blurs of matched widths stand in for it
//! (within a few per cent of the Gaussian, at a cost that does not grow with sigma).
//!
//! It runs after the resize, on the output-sized frame the resize makes: the full-size source is
//! never held. Two float copies of that frame are its working set (the memory estimate counts
//! them).

use crate::error::{ImageError, Result};
use crate::frame::{Context, Frame};
use crate::pixels::{Layout, Pixels};

pub(crate) fn apply(frame: Frame, ctx: &Context<'_>) -> Result<Frame> {
    let Some(sigma) = ctx.effects.blur else { return Ok(frame) };
    let pixels = gaussian(&frame.pixels, f32::from(sigma) / 100.0)?;
    Ok(Frame { pixels, ..frame })
}

/// The sigma past which three box blurs replace the exact kernel.
const EXACT_UP_TO: f32 = 8.0;

enum Filter {
    /// Weights of an odd-length kernel, summing to 1.
    Kernel(Vec<f32>),
    /// Radii of three box blurs run in turn.
    Boxes([usize; 3]),
}

impl Filter {
    fn for_sigma(sigma: f32) -> Filter {
        if sigma <= EXACT_UP_TO {
            let radius = (3.0 * sigma).ceil().max(1.0) as usize;
            let weights: Vec<f32> = (0..=2 * radius)
                .map(|i| {
                    let d = i as f32 - radius as f32;
                    (-d * d / (2.0 * sigma * sigma)).exp()
                })
                .collect();
            let sum: f32 = weights.iter().sum();
            return Filter::Kernel(weights.into_iter().map(|w| w / sum).collect());
        }
        // Box widths whose three-fold convolution has the Gaussian's variance (Kovesi, "Fast
        // almost-Gaussian filtering", 2010): m boxes of the lower odd width, the rest 2 wider.
        let ideal = (12.0 * sigma * sigma / 3.0 + 1.0).sqrt();
        let mut lower = ideal.floor() as usize;
        if lower % 2 == 0 {
            lower -= 1;
        }
        let l = lower as f32;
        let m = ((12.0 * sigma * sigma - 3.0 * l * l - 12.0 * l - 9.0) / (-4.0 * l - 4.0)).round() as usize;
        // `lower` is odd: its radius is lower / 2, the wider boxes' one more.
        let radius = |i: usize| lower / 2 + usize::from(i >= m);
        Filter::Boxes([radius(0), radius(1), radius(2)])
    }

    /// Filter every line (`width` pixels of `channels` floats) of `data` in place, the lines'
    /// ends extended by their edge pixels.
    fn lines(&self, data: &mut [f32], width: usize, channels: usize) {
        let mut padded = Vec::new();
        for line in data.chunks_exact_mut(width * channels) {
            match self {
                Filter::Kernel(weights) => {
                    let radius = weights.len() / 2;
                    extend(line, channels, radius, &mut padded);
                    line.fill(0.0);
                    // One pass over the line per tap: plain multiply-adds the compiler vectorises.
                    for (tap, weight) in weights.iter().enumerate() {
                        let shifted = &padded[tap * channels..tap * channels + line.len()];
                        for (out, sample) in line.iter_mut().zip(shifted) {
                            *out += weight * sample;
                        }
                    }
                }
                Filter::Boxes(radii) => {
                    for &radius in radii {
                        extend(line, channels, radius, &mut padded);
                        box_line(line, &padded, channels, radius);
                    }
                }
            }
        }
    }
}

/// `line` with `radius` copies of its first and last pixels before and after it.
fn extend(line: &[f32], channels: usize, radius: usize, padded: &mut Vec<f32>) {
    padded.clear();
    let (first, last) = (&line[..channels], &line[line.len() - channels..]);
    for _ in 0..radius {
        padded.extend_from_slice(first);
    }
    padded.extend_from_slice(line);
    for _ in 0..radius {
        padded.extend_from_slice(last);
    }
}

/// A box blur of `radius` with running sums: each output is the mean of 2·radius + 1 inputs.
fn box_line(line: &mut [f32], padded: &[f32], channels: usize, radius: usize) {
    let span = 2 * radius + 1;
    let scale = 1.0 / span as f32;
    for c in 0..channels {
        let mut sum: f32 = (0..span).map(|i| padded[i * channels + c]).sum();
        for (x, out) in line.iter_mut().skip(c).step_by(channels).enumerate() {
            *out = sum * scale;
            if x + span < padded.len() / channels {
                sum += padded[(x + span) * channels + c] - padded[x * channels + c];
            }
        }
    }
}

/// The pixels blurred by a Gaussian of `sigma` pixels.
pub(crate) fn gaussian(src: &Pixels, sigma: f32) -> Result<Pixels> {
    let (width, height, channels) = (src.width as usize, src.height as usize, src.channels());
    let filter = Filter::for_sigma(sigma);
    let premultiplied = src.layout == Layout::Rgba8;
    let mut samples = floats(width * height * channels)?;
    for (out, pixel) in samples.chunks_exact_mut(channels).zip(src.data.chunks_exact(channels)) {
        let alpha = if premultiplied { f32::from(pixel[3]) / 255.0 } else { 1.0 };
        for (c, (o, &v)) in out.iter_mut().zip(pixel).enumerate() {
            *o = if premultiplied && c < 3 { f32::from(v) * alpha } else { f32::from(v) };
        }
    }
    // Rows, then columns as the rows of the transposed image (so both passes read memory in order).
    filter.lines(&mut samples, width, channels);
    let mut columns = transpose(&samples, width, height, channels)?;
    drop(samples);
    filter.lines(&mut columns, height, channels);
    let samples = transpose(&columns, height, width, channels)?;
    drop(columns);
    let mut out = Pixels::new(src.width, src.height, src.layout)?;
    let byte = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    for (pixel, blurred) in out.data.chunks_exact_mut(channels).zip(samples.chunks_exact(channels)) {
        if premultiplied {
            let alpha = blurred[3];
            let unmultiply = if alpha > 0.0 { 255.0 / alpha } else { 0.0 };
            for c in 0..3 {
                pixel[c] = byte(blurred[c] * unmultiply);
            }
            pixel[3] = byte(alpha);
        } else {
            for (p, &b) in pixel.iter_mut().zip(blurred) {
                *p = byte(b);
            }
        }
    }
    Ok(out)
}

fn floats(len: usize) -> Result<Vec<f32>> {
    let mut data = Vec::new();
    data.try_reserve_exact(len).map_err(|_| ImageError::ResourceLimit(format!("cannot allocate {len} samples")))?;
    data.resize(len, 0.0);
    Ok(data)
}

/// A `width`×`height` image of `channels`-float pixels, transposed, in square tiles (so both
/// sides stay in cache).
fn transpose(src: &[f32], width: usize, height: usize, channels: usize) -> Result<Vec<f32>> {
    const TILE: usize = 32;
    let mut out = floats(src.len())?;
    for ty in (0..height).step_by(TILE) {
        for tx in (0..width).step_by(TILE) {
            for y in ty..(ty + TILE).min(height) {
                for x in tx..(tx + TILE).min(width) {
                    let from = (y * width + x) * channels;
                    let to = (x * height + y) * channels;
                    out[to..to + channels].copy_from_slice(&src[from..from + channels]);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkerboard(size: u32, cell: u32) -> Pixels {
        let data = (0..size)
            .flat_map(|y| (0..size).map(move |x| if (x / cell + y / cell) % 2 == 0 { 0u8 } else { 255 }))
            .flat_map(|v| [v, v, v])
            .collect();
        Pixels::from_vec(size, size, Layout::Rgb8, data).expect("size")
    }

    fn variance(pixels: &Pixels) -> f64 {
        let n = pixels.data.len() as f64;
        let mean = pixels.data.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        pixels.data.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n
    }

    /// A blur lowers a checkerboard's variance, more for a larger sigma, keeps its mean, and
    /// leaves a flat image flat, on both the exact kernel and the box path.
    #[test]
    fn blur_lowers_a_checkerboards_variance_and_keeps_flat_areas() {
        let board = checkerboard(128, 4);
        let plain = variance(&board);
        let mut last = plain;
        for sigma in [0.5, 1.0, 2.0, 8.0, 9.0, 30.0] {
            let blurred = gaussian(&board, sigma).expect("blur");
            let v = variance(&blurred);
            // Past a cell's size the pattern is gone; what is left is the edges' extension.
            if sigma <= 2.0 {
                assert!(v < last, "sigma {sigma}: variance {v} not below {last}");
            } else {
                assert!(v < plain * 0.01, "sigma {sigma}: variance {v} of {plain}");
            }
            last = v;
            let mean = blurred.data.iter().map(|&v| f64::from(v)).sum::<f64>() / blurred.data.len() as f64;
            assert!((mean - 127.5).abs() < 2.0, "sigma {sigma}: mean {mean}");
        }
        let flat = Pixels::from_vec(9, 7, Layout::Rgba8, [10, 200, 30, 255].repeat(63)).expect("size");
        for sigma in [0.3, 5.0, 50.0] {
            assert_eq!(gaussian(&flat, sigma).expect("blur"), flat, "sigma {sigma}");
        }
    }

    /// The box path stands in for the Gaussian: at sigma 8 both paths blur a single bright
    /// pixel into nearly the same profile.
    #[test]
    fn three_boxes_approximate_the_gaussian() {
        let mut data = vec![0u8; 81 * 81 * 3];
        let centre = (40 * 81 + 40) * 3;
        data[centre..centre + 3].fill(255);
        let dot = Pixels::from_vec(81, 81, Layout::Rgb8, data).expect("size");
        let exact = Filter::for_sigma(8.0);
        let boxes = Filter::for_sigma(8.0001);
        assert!(matches!(exact, Filter::Kernel(_)) && matches!(boxes, Filter::Boxes(_)));
        let profile = |filter: &Filter| {
            let mut line: Vec<f32> = (0..81).map(|x| if x == 40 { 1000.0 } else { 0.0 }).collect();
            filter.lines(&mut line, 81, 1);
            line
        };
        let (a, b) = (profile(&exact), profile(&boxes));
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(worst < 0.1 * a[40], "profiles differ by {worst} (peak {})", a[40]);
        assert!(gaussian(&dot, 8.5).is_ok());
    }

    /// Transparent pixels lend no colour: a red pixel beside transparent black stays red.
    #[test]
    fn transparent_pixels_lend_no_colour() {
        let mut data = [0u8, 0, 0, 0].repeat(25);
        data[48..52].copy_from_slice(&[255, 0, 0, 255]);
        let pixels = Pixels::from_vec(5, 5, Layout::Rgba8, data).expect("size");
        let blurred = gaussian(&pixels, 1.0).expect("blur");
        for pixel in blurred.data.chunks_exact(4).filter(|p| p[3] > 0) {
            assert!(pixel[0] >= 250 && pixel[1] == 0 && pixel[2] == 0, "{pixel:?}");
        }
    }
}
