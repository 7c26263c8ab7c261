//! Where the output pixels come from: the fit modes (with sharp's meaning) turned into a crop
//! of the source, a scaled size and a canvas. Pure arithmetic, computed from the header alone,
//! so limits and shrink-on-load are decided before decoding.

use crate::error::{ImageError, Result};

/// How the image fits a `w`×`h` box when both are given (sharp's `fit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Fit {
    /// Fill the box exactly, cropping the overflow (centred).
    #[default]
    Cover,
    /// Fit inside the box and letterbox the rest.
    Contain,
    /// Stretch to the box, ignoring the aspect ratio.
    Fill,
    /// As large as possible while within the box; output may be smaller than the box.
    Inside,
    /// As small as possible while covering the box; output may be larger than the box.
    Outside,
}

impl Fit {
    pub const ALL: [Fit; 5] = [Fit::Cover, Fit::Contain, Fit::Fill, Fit::Inside, Fit::Outside];

    pub fn as_str(self) -> &'static str {
        match self {
            Fit::Cover => "cover",
            Fit::Contain => "contain",
            Fit::Fill => "fill",
            Fit::Inside => "inside",
            Fit::Outside => "outside",
        }
    }

    pub fn parse(s: &str) -> Option<Fit> {
        Fit::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// The resize part of a recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Resize {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Fit,
    /// Allow scaling past the source's own resolution.
    pub enlarge: bool,
}

/// A rectangle of the (oriented) source, in source pixels; fractional edges are fine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

/// The plan for one render.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    /// The part of the oriented source that is used.
    pub source: Region,
    /// The size that region is resampled to.
    pub scaled: (u32, u32),
    /// The output size: equal to `scaled` except for `contain`, which letterboxes.
    pub canvas: (u32, u32),
    /// Where the scaled image sits on the canvas.
    pub offset: (u32, u32),
}

impl Geometry {
    /// The largest factor by which the source is reduced along either axis (≤ 1 when shrinking).
    /// Shrink-on-load may decode at any scale not below this.
    pub fn scale(&self) -> f64 {
        let sx = f64::from(self.scaled.0) / self.source.width;
        let sy = f64::from(self.scaled.1) / self.source.height;
        sx.max(sy)
    }
}

fn dim(x: f64) -> u32 {
    // Output sizes round to the nearest pixel, and never reach 0.
    x.round().clamp(1.0, f64::from(u32::MAX)) as u32
}

/// Plan the output for a `src_w`×`src_h` source (after orientation).
pub fn plan(src_w: u32, src_h: u32, resize: &Resize, max_output_pixels: u64) -> Result<Geometry> {
    let (w, h) = (f64::from(src_w), f64::from(src_h));
    let full = Region { left: 0.0, top: 0.0, width: w, height: h };
    let uniform = |s: f64| -> Geometry {
        let scaled = (dim(w * s), dim(h * s));
        Geometry { source: full, scaled, canvas: scaled, offset: (0, 0) }
    };
    let clamp = |s: f64| if resize.enlarge { s } else { s.min(1.0) };
    let geometry = match (resize.width, resize.height) {
        (None, None) => uniform(1.0),
        (Some(tw), None) => uniform(clamp(f64::from(tw) / w)),
        (None, Some(th)) => uniform(clamp(f64::from(th) / h)),
        (Some(tw), Some(th)) => {
            let (tw, th) = (f64::from(tw), f64::from(th));
            let (sx, sy) = (tw / w, th / h);
            // Without enlargement, a box that would need upscaling shrinks by the same factor,
            // so the requested aspect ratio holds while the source stays at 1:1 at most.
            let shrink_box = |s: f64| if !resize.enlarge && s > 1.0 { s } else { 1.0 };
            match resize.fit {
                Fit::Inside => uniform(clamp(sx.min(sy))),
                Fit::Outside => uniform(clamp(sx.max(sy))),
                Fit::Fill => {
                    let k = shrink_box(sx.max(sy));
                    let scaled = (dim(tw / k), dim(th / k));
                    Geometry { source: full, scaled, canvas: scaled, offset: (0, 0) }
                }
                Fit::Cover => {
                    let s = sx.max(sy);
                    let k = shrink_box(s);
                    let (bw, bh) = (dim(tw / k), dim(th / k));
                    let s = s / k;
                    // The box, mapped back into source pixels and centred.
                    let (rw, rh) = ((f64::from(bw) / s).min(w), (f64::from(bh) / s).min(h));
                    let source = Region { left: (w - rw) / 2.0, top: (h - rh) / 2.0, width: rw, height: rh };
                    Geometry { source, scaled: (bw, bh), canvas: (bw, bh), offset: (0, 0) }
                }
                Fit::Contain => {
                    let s = sx.min(sy);
                    let k = shrink_box(s);
                    let (bw, bh) = (dim(tw / k), dim(th / k));
                    let s = s / k;
                    let scaled = (dim(w * s).min(bw), dim(h * s).min(bh));
                    let offset = ((bw - scaled.0) / 2, (bh - scaled.1) / 2);
                    Geometry { source: full, scaled, canvas: (bw, bh), offset }
                }
            }
        }
    };
    let pixels = u64::from(geometry.canvas.0) * u64::from(geometry.canvas.1);
    if pixels > max_output_pixels {
        return Err(ImageError::ResourceLimit(format!(
            "the output would be {}x{} pixels, over the limit of {max_output_pixels}",
            geometry.canvas.0, geometry.canvas.1
        )));
    }
    Ok(geometry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(src: (u32, u32), w: Option<u32>, h: Option<u32>, fit: Fit, enlarge: bool) -> (u32, u32) {
        plan(src.0, src.1, &Resize { width: w, height: h, fit, enlarge }, u64::MAX).expect("plan").canvas
    }

    #[test]
    fn fits_match_sharp_when_shrinking() {
        let src = (4000, 3000);
        assert_eq!(out(src, Some(400), Some(400), Fit::Cover, false), (400, 400));
        assert_eq!(out(src, Some(400), Some(400), Fit::Contain, false), (400, 400));
        assert_eq!(out(src, Some(400), Some(400), Fit::Fill, false), (400, 400));
        assert_eq!(out(src, Some(400), Some(400), Fit::Inside, false), (400, 300));
        assert_eq!(out(src, Some(400), Some(400), Fit::Outside, false), (533, 400));
        assert_eq!(out(src, Some(400), None, Fit::Cover, false), (400, 300));
        assert_eq!(out(src, None, Some(300), Fit::Contain, false), (400, 300));
        assert_eq!(out(src, None, None, Fit::Cover, false), (4000, 3000));
    }

    #[test]
    fn cover_crops_the_centre_and_contain_letterboxes() {
        let g = plan(
            4000,
            3000,
            &Resize { width: Some(300), height: Some(300), fit: Fit::Cover, enlarge: false },
            u64::MAX,
        )
        .expect("plan");
        assert_eq!(g.source, Region { left: 500.0, top: 0.0, width: 3000.0, height: 3000.0 });
        let g = plan(
            4000,
            3000,
            &Resize { width: Some(400), height: Some(400), fit: Fit::Contain, enlarge: false },
            u64::MAX,
        )
        .expect("plan");
        assert_eq!((g.scaled, g.canvas, g.offset), ((400, 300), (400, 400), (0, 50)));
    }

    #[test]
    fn without_enlarge_nothing_is_upscaled_and_the_box_keeps_its_ratio() {
        let src = (200, 100);
        assert_eq!(out(src, Some(800), None, Fit::Cover, false), (200, 100));
        assert_eq!(out(src, Some(800), None, Fit::Cover, true), (800, 400));
        assert_eq!(out(src, Some(400), Some(400), Fit::Cover, false), (100, 100));
        assert_eq!(out(src, Some(400), Some(400), Fit::Contain, false), (200, 200));
        assert_eq!(out(src, Some(400), Some(400), Fit::Fill, false), (100, 100));
        assert_eq!(out(src, Some(400), Some(400), Fit::Inside, false), (200, 100));
        assert_eq!(out(src, Some(400), Some(400), Fit::Inside, true), (400, 200));
        for fit in Fit::ALL {
            let g = plan(src.0, src.1, &Resize { width: Some(400), height: Some(400), fit, enlarge: false }, u64::MAX)
                .expect("plan");
            assert!(g.scale() <= 1.0 + 1e-9, "{fit:?} upscaled by {}", g.scale());
        }
    }

    #[test]
    fn extreme_aspect_ratios_never_produce_a_zero_dimension() {
        assert_eq!(out((8000, 2), Some(100), None, Fit::Cover, false), (100, 1));
        assert_eq!(out((2, 8000), Some(50), Some(50), Fit::Contain, false), (50, 50));
        assert_eq!(out((2, 8000), Some(50), Some(50), Fit::Inside, false), (1, 50));
    }

    #[test]
    fn output_pixel_limit_is_enforced() {
        let resize = Resize { width: Some(1000), height: Some(1000), fit: Fit::Fill, enlarge: true };
        assert!(plan(10, 10, &resize, 1_000_000).is_ok());
        assert!(matches!(plan(10, 10, &resize, 999_999), Err(ImageError::ResourceLimit(_))));
    }
}
