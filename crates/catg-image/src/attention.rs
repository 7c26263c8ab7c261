//! Smart crop (`g=smart`): where in the image a viewer looks, so `cover` keeps it.
//!
//! The decoded, sRGB frame is reduced to a small analysis image (at most [`ANALYSIS_SIDE`]
//! pixels a side, box-averaged), turned upright and cut to the recipe's crop. Each pixel scores
//! its detail (luma edges), colourfulness and skin tones, the cues libvips' `attention` uses. The
//! kept region is the window of the crop's size with the highest total score (a summed-area
//! table makes every position one lookup); among equal windows, the one whose centre is nearest
//! the score's centre of mass, so a subject on a flat background sits in the middle. The answer
//! is a focal point, and the render goes on as with `fp`: fixed arithmetic, no randomness, one
//! answer per image and recipe.

use crate::geometry::{FocalPoint, Region};
use crate::pixels::Pixels;
use crate::probe::Orientation;
use crate::reduce::box_average;
use crate::transform::orient::orient;

/// The analysis image's longest side: enough to find a subject, small enough to cost little
/// next to the decode (192 cost a small PNG 1.4× its centred crop; 128 costs it 1.08×).
const ANALYSIS_SIDE: u32 = 128;

/// The focal point (thousandths of `kept`) that centres a `window`-sized crop on what a viewer
/// looks at. `frame` is sRGB, in stored axes, `orientation` away from upright (the recipe's turn
/// included); `upright` is its size once upright at full scale, in which `kept` (the part the
/// fit works on) and `window` are given.
pub(crate) fn focal_point(
    frame: &Pixels,
    orientation: Orientation,
    upright: (u32, u32),
    kept: Region,
    window: (f64, f64),
) -> FocalPoint {
    let centre = FocalPoint { x: 500, y: 500 };
    // Alpha multiplied in: transparent areas count as black, so as flat.
    let Some(small) = box_average(frame, ANALYSIS_SIDE).map(|small| small.premultiplied_rgb()) else { return centre };
    let Ok(small) = orient(&small, orientation) else { return centre };
    // The kept region and window in analysis pixels.
    let (sx, sy) = (f64::from(small.width) / f64::from(upright.0), f64::from(small.height) / f64::from(upright.1));
    let left = (kept.left * sx).floor().max(0.0) as usize;
    let top = (kept.top * sy).floor().max(0.0) as usize;
    let width =
        ((kept.width * sx).round() as usize).clamp(1, small.width as usize - left.min(small.width as usize - 1));
    let height =
        ((kept.height * sy).round() as usize).clamp(1, small.height as usize - top.min(small.height as usize - 1));
    let scores = score(&small, (left, top, width, height));
    let win = (((window.0 * sx).round() as usize).clamp(1, width), ((window.1 * sy).round() as usize).clamp(1, height));
    let (best_x, best_y) = best_window(&scores, width, height, win);
    // The window's centre as a fraction of the kept region.
    let fx = (best_x as f64 + win.0 as f64 / 2.0) / width as f64;
    let fy = (best_y as f64 + win.1 as f64 / 2.0) / height as f64;
    let thousandths = |f: f64| (f * 1000.0).round().clamp(0.0, 1000.0) as u16;
    FocalPoint { x: thousandths(fx), y: thousandths(fy) }
}

/// Each pixel's score in the `(left, top, width, height)` part of `image`: edge strength of the
/// luma, plus saturation, plus a bonus for skin tones.
fn score(image: &Pixels, (left, top, width, height): (usize, usize, usize, usize)) -> Vec<f64> {
    let stride = image.width as usize;
    // The part's luma, once per pixel (each pixel's edge reads it five times).
    let mut luma = Vec::with_capacity(width * height);
    for y in top..top + height {
        let pixels = &image.data[(y * stride + left) * 3..][..width * 3];
        luma.extend(
            pixels.chunks_exact(3).map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])),
        );
    }
    let mut scores = Vec::with_capacity(width * height);
    for y in 0..height {
        let row = |y: usize| &luma[y * width..(y + 1) * width];
        let (above, here, below) = (row(y.saturating_sub(1)), row(y), row((y + 1).min(height - 1)));
        let pixels = &image.data[((top + y) * stride + left) * 3..][..width * 3];
        for (x, pixel) in pixels.chunks_exact(3).enumerate() {
            // Laplacian of the luma, the edge at a border reflected inwards.
            let (l, r) = (here[x.saturating_sub(1)], here[(x + 1).min(width - 1)]);
            let edge = (4.0 * here[x] - l - r - above[x] - below[x]).abs();
            let [r, g, b] = [0, 1, 2].map(|c| f32::from(pixel[c]));
            let (max, min) = (r.max(g).max(b), r.min(g).min(b));
            let saturation = if max > 0.0 { (max - min) / max } else { 0.0 };
            // Skin: a classic RGB rule (Kovač et al.), reddish and neither too dark nor grey
            // (`&`, not `&&`: no branch per test).
            let skin =
                (r > 95.0) & (g > 40.0) & (b > 20.0) & (max - min > 15.0) & ((r - g).abs() > 15.0) & (r > g) & (r > b);
            scores.push(f64::from(edge + 48.0 * saturation * (max / 255.0) + f32::from(u8::from(skin)) * 40.0));
        }
    }
    scores
}

/// The top-left corner of the `window` with the highest total score in a `width`×`height` grid;
/// ties go to the window centred nearest the score's centre of mass.
fn best_window(scores: &[f64], width: usize, height: usize, window: (usize, usize)) -> (usize, usize) {
    // Summed-area table, one row and column of zeros in front.
    let mut table = vec![0.0f64; (width + 1) * (height + 1)];
    let (mut mass, mut mx, mut my) = (0.0, 0.0, 0.0);
    for y in 0..height {
        let mut row = 0.0;
        for x in 0..width {
            let s = scores[y * width + x];
            row += s;
            table[(y + 1) * (width + 1) + x + 1] = table[y * (width + 1) + x + 1] + row;
            mass += s;
            mx += s * (x as f64 + 0.5);
            my += s * (y as f64 + 0.5);
        }
    }
    let (cx, cy) = if mass > 0.0 { (mx / mass, my / mass) } else { (width as f64 / 2.0, height as f64 / 2.0) };
    let sum = |x: usize, y: usize| {
        let at = |x: usize, y: usize| table[y * (width + 1) + x];
        at(x + window.0, y + window.1) - at(x, y + window.1) - at(x + window.0, y) + at(x, y)
    };
    let mut best = (0, 0);
    let (mut best_sum, mut best_distance) = (f64::NEG_INFINITY, f64::INFINITY);
    for y in 0..=height - window.1 {
        for x in 0..=width - window.0 {
            let total = sum(x, y);
            let dx = x as f64 + window.0 as f64 / 2.0 - cx;
            let dy = y as f64 + window.1 as f64 / 2.0 - cy;
            let distance = dx * dx + dy * dy;
            // Equal up to rounding in the table's sums.
            let tolerance = 1e-9 * best_sum.abs().max(1.0);
            if total > best_sum + tolerance || ((total - best_sum).abs() <= tolerance && distance < best_distance) {
                (best, best_sum, best_distance) = ((x, y), total.max(best_sum), distance);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::Layout;

    /// A flat grey image with a detailed patch (a small checkerboard) somewhere.
    fn patch_at(width: u32, height: u32, at: (u32, u32), size: u32) -> Pixels {
        let data = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .flat_map(|(x, y)| {
                let inside = x >= at.0 && x < at.0 + size && y >= at.1 && y < at.1 + size;
                let v = if inside && ((x / 4 + y / 4) % 2 == 0) {
                    20
                } else if inside {
                    230
                } else {
                    128
                };
                [v, v, v]
            })
            .collect();
        Pixels::from_vec(width, height, Layout::Rgb8, data).expect("size")
    }

    fn whole(width: u32, height: u32) -> Region {
        Region { left: 0.0, top: 0.0, width: f64::from(width), height: f64::from(height) }
    }

    /// The window sits on the detailed patch wherever it is, for wide and tall images.
    #[test]
    fn a_detailed_patch_on_a_flat_background_is_kept() {
        for (size, at, window) in [
            ((800, 400), (40, 150), (400.0, 400.0)),
            ((800, 400), (700, 20), (400.0, 400.0)),
            ((800, 400), (380, 300), (400.0, 400.0)),
            ((300, 900), (100, 820), (300.0, 300.0)),
            ((300, 900), (20, 10), (300.0, 300.0)),
        ] {
            let image = patch_at(size.0, size.1, at, 60);
            let point = focal_point(&image, Orientation::Normal, size, whole(size.0, size.1), window);
            // Where the window lands once centred on the point (clamped), in image pixels.
            let place = |p: u16, side: u32, win: f64| {
                (f64::from(p) / 1000.0 * f64::from(side) - win / 2.0).clamp(0.0, f64::from(side) - win)
            };
            let (x, y) = (place(point.x, size.0, window.0), place(point.y, size.1, window.1));
            let inside =
                |start: f64, win: f64, patch: u32| start <= f64::from(patch) && f64::from(patch + 60) <= start + win;
            assert!(
                inside(x, window.0, at.0) && inside(y, window.1, at.1),
                "{size:?} patch {at:?}: window at ({x}, {y})"
            );
        }
    }

    /// On a flat image there is nothing to find: the centre.
    #[test]
    fn a_flat_image_keeps_its_centre() {
        let flat = Pixels::from_vec(400, 200, Layout::Rgb8, vec![90; 400 * 200 * 3]).expect("size");
        let point = focal_point(&flat, Orientation::Normal, (400, 200), whole(400, 200), (200.0, 200.0));
        assert_eq!(point, FocalPoint { x: 500, y: 500 });
    }

    /// The analysis follows the orientation: a patch at the stored image's left is at the
    /// upright image's top after a 90° turn.
    #[test]
    fn the_analysis_is_upright() {
        let stored = patch_at(800, 400, (20, 170), 60);
        let point = focal_point(&stored, Orientation::Rotate90, (400, 800), whole(400, 800), (400.0, 400.0));
        assert!(point.y < 300, "{point:?}");
    }
}
