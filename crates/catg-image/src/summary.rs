//! What ingest learns about an image from the one decode it makes anyway: a ThumbHash (a
//! placeholder of about 25 bytes a browser can draw), the colour a placeholder box should take,
//! and a perceptual hash that finds the same picture resized or re-encoded.
//!
//! All three come from one small box-averaged copy of the upright, sRGB frame, so they cost a
//! pass over the decoded pixels and then only work on at most 100×100 pixels.

use crate::pixels::Pixels;
use crate::reduce::box_average;

/// ThumbHash's largest input side (its encoder refuses more).
const THUMBHASH_SIDE: u32 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The ThumbHash's bytes (callers spell them in base64).
    pub thumbhash: Vec<u8>,
    /// The most common colour, `[r, g, b]`: see [`dominant_colour`].
    pub dominant_colour: [u8; 3],
    /// A 64-bit DCT perceptual hash: see [`perceptual_hash`].
    pub phash: u64,
}

impl Summary {
    /// `#rrggbb`.
    pub fn dominant_colour_hex(&self) -> String {
        let [r, g, b] = self.dominant_colour;
        format!("#{r:02x}{g:02x}{b:02x}")
    }

    /// 16 lowercase hex digits.
    pub fn phash_hex(&self) -> String {
        phash_hex(self.phash)
    }
}

/// A perceptual hash as stored and indexed: 16 lowercase hex digits.
pub fn phash_hex(phash: u64) -> String {
    format!("{phash:016x}")
}

/// The summary of an upright, sRGB frame (RGB or RGBA). `None` for an empty frame.
pub fn summarise(frame: &Pixels) -> Option<Summary> {
    let small = box_average(frame, THUMBHASH_SIDE)?;
    let straight = small.unpremultiplied();
    let thumbhash = thumbhash::rgba_to_thumb_hash(straight.width as usize, straight.height as usize, &straight.data);
    Some(Summary { thumbhash, dominant_colour: dominant_colour(&straight), phash: perceptual_hash(&small) })
}

/// The colour a placeholder box should take: pixels are put in buckets of 16 levels per
/// channel, weighted by their alpha, and the answer is the mean colour of the fullest bucket
/// (the first one on a tie), so a flat image gives its own colour exactly and a photo the
/// colour most of it has, not a muddy average. A fully transparent image gives black.
fn dominant_colour(straight: &Pixels) -> [u8; 3] {
    let mut buckets = vec![[0u64; 4]; 16 * 16 * 16];
    for p in straight.data.chunks_exact(4) {
        let weight = u64::from(p[3]);
        let bucket =
            &mut buckets[(usize::from(p[0] >> 4) << 8) | (usize::from(p[1] >> 4) << 4) | usize::from(p[2] >> 4)];
        for c in 0..3 {
            bucket[c] += u64::from(p[c]) * weight;
        }
        bucket[3] += weight;
    }
    let mut fullest = &buckets[0];
    for bucket in &buckets {
        if bucket[3] > fullest[3] {
            fullest = bucket;
        }
    }
    if fullest[3] == 0 {
        return [0, 0, 0];
    }
    [0, 1, 2].map(|c| ((fullest[c] + fullest[3] / 2) / fullest[3]) as u8)
}

/// The side of the grey image the hash's DCT runs on.
const DCT_SIDE: usize = 32;

/// A 64-bit perceptual hash (the DCT hash of pHash): the luma, premultiplied (transparent is
/// black), resampled to 32×32, its 2-D DCT, and one bit per coefficient of the 8×8 lowest
/// frequencies after the constant term, set when the coefficient is above their median. Bit 63
/// is the first coefficient, row by row. Resizing, re-encoding and mild colour changes keep
/// most bits; different pictures differ in about half.
fn perceptual_hash(premultiplied: &Pixels) -> u64 {
    let grey = resample_luma(premultiplied, DCT_SIDE);
    // Separable DCT-II: rows, then columns; only the first 9 frequencies are needed.
    let basis: Vec<[f64; DCT_SIDE]> = (0..9)
        .map(|u| {
            let mut row = [0.0; DCT_SIDE];
            for (x, value) in row.iter_mut().enumerate() {
                *value = (std::f64::consts::PI / DCT_SIDE as f64 * (x as f64 + 0.5) * u as f64).cos();
            }
            row
        })
        .collect();
    let mut rows = vec![[0.0f64; 9]; DCT_SIDE];
    for (y, out) in rows.iter_mut().enumerate() {
        for (u, weights) in basis.iter().enumerate() {
            out[u] = (0..DCT_SIDE).map(|x| grey[y * DCT_SIDE + x] * weights[x]).sum();
        }
    }
    let mut coefficients = Vec::with_capacity(64);
    for weights in &basis[1..9] {
        for u in 1..9 {
            coefficients.push(rows.iter().zip(weights).map(|(row, weight)| row[u] * weight).sum::<f64>());
        }
    }
    let mut sorted = coefficients.clone();
    sorted.sort_by(f64::total_cmp);
    let median = (sorted[31] + sorted[32]) / 2.0;
    coefficients.iter().fold(0u64, |hash, &c| (hash << 1) | u64::from(c > median))
}

/// The luma of `image` (RGBA) resampled to `side`×`side` (its aspect ratio dropped, as pHash
/// does), each output pixel the bilinear sample at its centre.
fn resample_luma(image: &Pixels, side: usize) -> Vec<f64> {
    let (w, h) = (image.width as usize, image.height as usize);
    let luma = |x: usize, y: usize| {
        let p = &image.data[(y * w + x) * 4..][..3];
        0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
    };
    let sample = |at: f64, size: usize| {
        let at = (at - 0.5).clamp(0.0, (size - 1) as f64);
        let low = at.floor() as usize;
        (low, (low + 1).min(size - 1), at - low as f64)
    };
    let mut out = Vec::with_capacity(side * side);
    for oy in 0..side {
        let (y0, y1, fy) = sample((oy as f64 + 0.5) * h as f64 / side as f64, h);
        for ox in 0..side {
            let (x0, x1, fx) = sample((ox as f64 + 0.5) * w as f64 / side as f64, w);
            let top = luma(x0, y0) * (1.0 - fx) + luma(x1, y0) * fx;
            let bottom = luma(x0, y1) * (1.0 - fx) + luma(x1, y1) * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

/// The number of bits two perceptual hashes differ in.
pub fn hamming_distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::Layout;

    fn flat(width: u32, height: u32, rgb: [u8; 3]) -> Pixels {
        Pixels::from_vec(width, height, Layout::Rgb8, rgb.repeat((width * height) as usize)).expect("size")
    }

    /// A picture with structure at several scales: gradients, a disc and stripes.
    fn scene(width: u32, height: u32, variant: u32) -> Pixels {
        let data = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .flat_map(|(x, y)| {
                let (fx, fy) = (f64::from(x) / f64::from(width), f64::from(y) / f64::from(height));
                let (cx, cy) = if variant == 0 { (0.35, 0.4) } else { (0.7, 0.65) };
                let disc = ((fx - cx).powi(2) + (fy - cy).powi(2)).sqrt() < 0.2;
                let stripes = ((fx * if variant == 0 { 6.0 } else { 3.0 }).floor() as u32) % 2 == 0;
                let base = if variant == 0 { 40.0 + 150.0 * fx } else { 200.0 - 150.0 * fy };
                let v = if disc {
                    230.0
                } else if stripes {
                    base
                } else {
                    base * 0.6
                };
                [v as u8, (v * 0.8) as u8, (255.0 - v) as u8]
            })
            .collect();
        Pixels::from_vec(width, height, Layout::Rgb8, data).expect("size")
    }

    /// A flat image's dominant colour is its colour, and its ThumbHash decodes to that mean
    /// colour and to the image's aspect ratio.
    #[test]
    fn a_flat_image_gives_its_colour_and_its_aspect() {
        let summary = summarise(&flat(400, 200, [200, 30, 90])).expect("summary");
        assert_eq!(summary.dominant_colour_hex(), "#c81e5a");
        let (r, g, b, a) = thumbhash::thumb_hash_to_average_rgba(&summary.thumbhash).expect("decodes");
        let close = |v: f32, want: u8| (v * 255.0 - f32::from(want)).abs() < 6.0;
        assert!(close(r, 200) && close(g, 30) && close(b, 90) && a == 1.0, "mean {r} {g} {b} {a}");
        let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&summary.thumbhash).expect("ratio");
        assert!((ratio - 2.0).abs() < 0.3, "aspect {ratio}");
        let tall = summarise(&flat(100, 300, [0, 0, 0])).expect("summary");
        let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&tall.thumbhash).expect("ratio");
        assert!((ratio - 1.0 / 3.0).abs() < 0.1, "aspect {ratio}");
    }

    /// The dominant colour is the colour most of the image has, not the average.
    #[test]
    fn the_dominant_colour_is_the_most_common_one() {
        let mut image = flat(100, 100, [10, 120, 220]);
        for pixel in image.data.chunks_exact_mut(3).take(4000) {
            pixel.copy_from_slice(&[250, 250, 0]);
        }
        let summary = summarise(&image).expect("summary");
        assert_eq!(summary.dominant_colour, [10, 120, 220]);
        // Transparent pixels do not count.
        let mut data = [255u8, 0, 0, 0].repeat(100 * 100);
        for pixel in data.chunks_exact_mut(4).take(3000) {
            pixel.copy_from_slice(&[0, 0, 255, 255]);
        }
        let summary = summarise(&Pixels::from_vec(100, 100, Layout::Rgba8, data).expect("size")).expect("summary");
        assert_eq!(summary.dominant_colour, [0, 0, 255]);
    }

    /// The perceptual hash barely moves when the picture is resized or its colours shift a
    /// little, and differs in about half its bits for another picture.
    #[test]
    fn the_perceptual_hash_survives_resizing_and_tells_pictures_apart() {
        let original = summarise(&scene(640, 480, 0)).expect("summary").phash;
        let smaller = summarise(&scene(320, 240, 0)).expect("summary").phash;
        let mut brighter = scene(640, 480, 0);
        brighter.data.iter_mut().for_each(|v| *v = v.saturating_add(12));
        let brighter = summarise(&brighter).expect("summary").phash;
        let other = summarise(&scene(640, 480, 1)).expect("summary").phash;
        assert!(hamming_distance(original, smaller) <= 4, "resized: {}", hamming_distance(original, smaller));
        assert!(hamming_distance(original, brighter) <= 4, "brighter: {}", hamming_distance(original, brighter));
        assert!(hamming_distance(original, other) >= 20, "other picture: {}", hamming_distance(original, other));
        assert_eq!(summarise(&scene(640, 480, 0)).expect("summary").phash, original, "deterministic");
    }

    /// On real photos: a half-size, quality-60 JPEG re-encode of a sample is a near duplicate,
    /// and the samples are not near duplicates of each other.
    #[test]
    fn a_re_encoded_photo_is_near_and_other_photos_are_far() {
        use crate::pipeline::{decode_full, render, RenderSpec};
        use crate::{probe, Effects, Limits, OutputFormat, Resize};
        let limits = Limits::default();
        let summary_of = |data: &[u8]| {
            let probe = probe(data, &limits).expect("probe");
            summarise(&decode_full(data, &probe, &limits).expect("decode")).expect("summary")
        };
        let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples");
        let read = |name: &str| std::fs::read(samples.join(name)).expect("sample");
        let names = ["coffee.jpg", "chelsea.png", "astronaut.jpg", "seeding.jpg"];
        let hashes: Vec<u64> = names.iter().map(|name| summary_of(&read(name)).phash).collect();
        for (i, name) in names.iter().enumerate() {
            let data = read(name);
            let probe = probe(&data, &limits).expect("probe");
            let resize = Resize { width: Some(probe.width() / 2), ..Resize::default() };
            let spec = RenderSpec {
                resize,
                effects: Effects::default(),
                format: OutputFormat::Jpeg,
                quality: 60,
                animate: true,
                progressive: false,
            };
            let copy = render(&data, &spec, &limits).expect("render").bytes;
            let distance = hamming_distance(hashes[i], summary_of(&copy).phash);
            assert!(distance <= 4, "{name}: its half-size q60 copy is {distance} bits away");
            for (j, other) in names.iter().enumerate().skip(i + 1) {
                let distance = hamming_distance(hashes[i], hashes[j]);
                assert!(distance >= 16, "{name} and {other} are only {distance} bits apart");
            }
        }
    }
}
