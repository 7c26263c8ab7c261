//! Blur: a Gaussian blur of the output (`blur`), separable, in floating point, on
//! alpha-premultiplied samples so transparent pixels lend no colour. Up to a sigma of 8 the
//! kernel is exact (cut at 3 sigma); past it three box blurs of matched widths stand in for it
//! (within a few per cent of the Gaussian, at a cost that does not grow with sigma).
//!
//! It runs after the resize, on the output-sized frame the resize makes: the full-size source is
//! never held. One float copy of that frame (two past sigma 8) is its working set (the memory
//! estimate counts two).

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

    /// Filter one line (`channels` floats a pixel) from `input` into `out`, the line's ends
    /// extended by its edge pixels; `padded` is scratch space.
    fn line(&self, input: &[f32], out: &mut [f32], channels: usize, padded: &mut Vec<f32>) {
        match self {
            Filter::Kernel(weights) => {
                let radius = weights.len() / 2;
                extend(input, channels, radius, padded);
                let at = |tap: usize| &padded[tap * channels..tap * channels + input.len()];
                for (o, &v) in out.iter_mut().zip(at(radius)) {
                    *o = weights[radius] * v;
                }
                // The kernel is symmetric: one multiply per pair of taps. Each pass is a plain
                // multiply-add over the whole line, which the compiler vectorises.
                for k in 1..=radius {
                    let weight = weights[radius + k];
                    for (o, (&a, &b)) in out.iter_mut().zip(at(radius - k).iter().zip(at(radius + k))) {
                        *o += weight * (a + b);
                    }
                }
            }
            Filter::Boxes(radii) => {
                out.copy_from_slice(input);
                for &radius in radii {
                    extend(out, channels, radius, padded);
                    box_line(out, padded, channels, radius);
                }
            }
        }
    }

    /// Filter every column of `rows` (`height` rows of `stride` floats) and hand each finished
    /// row to `emit`. Whole rows are added together, so the columns need no transpose and every
    /// pass reads memory in order.
    fn columns(&self, rows: Vec<f32>, stride: usize, height: usize, mut emit: impl FnMut(usize, &[f32])) -> Result<()> {
        // Row y, rows past the top and bottom being copies of the first and last.
        fn at(rows: &[f32], y: isize, stride: usize) -> &[f32] {
            let y = y.clamp(0, (rows.len() / stride) as isize - 1) as usize;
            &rows[y * stride..(y + 1) * stride]
        }
        match self {
            Filter::Kernel(weights) => {
                let radius = weights.len() / 2;
                let mut acc = floats(stride)?;
                for y in 0..height as isize {
                    for (o, &v) in acc.iter_mut().zip(at(&rows, y, stride)) {
                        *o = weights[radius] * v;
                    }
                    for k in 1..=radius {
                        let weight = weights[radius + k];
                        let (above, below) = (at(&rows, y - k as isize, stride), at(&rows, y + k as isize, stride));
                        for (o, (&a, &b)) in acc.iter_mut().zip(above.iter().zip(below)) {
                            *o += weight * (a + b);
                        }
                    }
                    emit(y as usize, &acc);
                }
            }
            Filter::Boxes(radii) => {
                let mut src = rows;
                let mut dst = floats(src.len())?;
                let mut sum = floats(stride)?;
                for &radius in radii {
                    let scale = 1.0 / (2 * radius + 1) as f32;
                    sum.fill(0.0);
                    for i in -(radius as isize)..=radius as isize {
                        for (s, &v) in sum.iter_mut().zip(at(&src, i, stride)) {
                            *s += v;
                        }
                    }
                    // Running sums down the columns: add the row coming in, drop the one leaving.
                    for y in 0..height as isize {
                        for (o, &s) in dst[y as usize * stride..(y as usize + 1) * stride].iter_mut().zip(&sum) {
                            *o = s * scale;
                        }
                        let (leaving, coming) =
                            (at(&src, y - radius as isize, stride), at(&src, y + radius as isize + 1, stride));
                        for (s, (&l, &c)) in sum.iter_mut().zip(leaving.iter().zip(coming)) {
                            *s += c - l;
                        }
                    }
                    std::mem::swap(&mut src, &mut dst);
                }
                for y in 0..height {
                    emit(y, &src[y * stride..(y + 1) * stride]);
                }
            }
        }
        Ok(())
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

/// The pixels blurred by a Gaussian of `sigma` pixels: rows first, from bytes into one float
/// copy of the frame, then columns, from it straight back into bytes.
pub(crate) fn gaussian(src: &Pixels, sigma: f32) -> Result<Pixels> {
    let (width, height, channels) = (src.width as usize, src.height as usize, src.channels());
    let stride = width * channels;
    let filter = Filter::for_sigma(sigma);
    let premultiplied = src.layout == Layout::Rgba8;
    let mut rows = floats(stride * height)?;
    let (mut line, mut padded) = (Vec::with_capacity(stride), Vec::new());
    for (bytes, out) in src.data.chunks_exact(stride).zip(rows.chunks_exact_mut(stride)) {
        line.clear();
        for pixel in bytes.chunks_exact(channels) {
            if premultiplied {
                let alpha = f32::from(pixel[3]) / 255.0;
                line.extend(pixel[..3].iter().map(|&v| f32::from(v) * alpha));
                line.push(f32::from(pixel[3]));
            } else {
                line.extend(pixel.iter().map(|&v| f32::from(v)));
            }
        }
        filter.line(&line, out, channels, &mut padded);
    }
    let mut out = Pixels::new(src.width, src.height, src.layout)?;
    let byte = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    filter.columns(rows, stride, height, |y, blurred| {
        let row = &mut out.data[y * stride..(y + 1) * stride];
        if premultiplied {
            for (pixel, blurred) in row.chunks_exact_mut(4).zip(blurred.chunks_exact(4)) {
                let alpha = blurred[3];
                let unmultiply = if alpha > 0.0 { 255.0 / alpha } else { 0.0 };
                for c in 0..3 {
                    pixel[c] = byte(blurred[c] * unmultiply);
                }
                pixel[3] = byte(alpha);
            }
        } else {
            for (p, &b) in row.iter_mut().zip(blurred) {
                *p = byte(b);
            }
        }
    })?;
    Ok(out)
}

fn floats(len: usize) -> Result<Vec<f32>> {
    let mut data = Vec::new();
    data.try_reserve_exact(len).map_err(|_| ImageError::ResourceLimit(format!("cannot allocate {len} samples")))?;
    data.resize(len, 0.0);
    Ok(data)
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
            let dot: Vec<f32> = (0..81).map(|x| if x == 40 { 1000.0 } else { 0.0 }).collect();
            let mut line = vec![0.0; 81];
            filter.line(&dot, &mut line, 1, &mut Vec::new());
            line
        };
        let (a, b) = (profile(&exact), profile(&boxes));
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(worst < 0.1 * a[40], "profiles differ by {worst} (peak {})", a[40]);
        assert!(gaussian(&dot, 8.5).is_ok());
    }

    /// Rows and columns get the same filter: blurring the transposed image gives the
    /// transposed blur (to a rounding step), on a non-square, non-symmetric image, on both paths.
    #[test]
    fn columns_are_filtered_as_rows_are() {
        let (w, h) = (37usize, 23usize);
        let data: Vec<u8> = (0..w * h * 4).map(|i| ((i * 7919) % 251) as u8 | 1).collect();
        let transpose = |p: &Pixels| {
            let (w, h) = (p.width as usize, p.height as usize);
            let mut out = vec![0u8; w * h * 4];
            for y in 0..h {
                for x in 0..w {
                    out[(x * h + y) * 4..][..4].copy_from_slice(&p.data[(y * w + x) * 4..][..4]);
                }
            }
            Pixels::from_vec(h as u32, w as u32, Layout::Rgba8, out).expect("size")
        };
        let image = Pixels::from_vec(w as u32, h as u32, Layout::Rgba8, data).expect("size");
        for sigma in [0.7, 3.0, 12.0] {
            let a = transpose(&gaussian(&image, sigma).expect("blur"));
            let b = gaussian(&transpose(&image), sigma).expect("blur");
            let worst = a.data.iter().zip(&b.data).map(|(&x, &y)| x.abs_diff(y)).max();
            assert!(worst <= Some(1), "sigma {sigma}: differ by {worst:?}");
        }
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
