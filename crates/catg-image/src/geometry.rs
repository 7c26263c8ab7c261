//! Where the output pixels come from: the fit modes (with sharp's meaning) turned into a crop
//! of the source, a scaled size and a canvas. Pure arithmetic, computed from the header alone,
//! so limits and shrink-on-load are decided before decoding.

use crate::error::{ImageError, Result};
use crate::probe::Orientation;

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

/// Which part of the image `cover` keeps when it crops: a side or corner of it, or its centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Gravity {
    #[default]
    Centre,
    North,
    NorthEast,
    East,
    SouthEast,
    South,
    SouthWest,
    West,
    NorthWest,
}

impl Gravity {
    pub const ALL: [Gravity; 9] = [
        Gravity::Centre,
        Gravity::North,
        Gravity::NorthEast,
        Gravity::East,
        Gravity::SouthEast,
        Gravity::South,
        Gravity::SouthWest,
        Gravity::West,
        Gravity::NorthWest,
    ];

    /// The recipe's spelling (`g=ne`).
    pub fn as_str(self) -> &'static str {
        match self {
            Gravity::Centre => "c",
            Gravity::North => "n",
            Gravity::NorthEast => "ne",
            Gravity::East => "e",
            Gravity::SouthEast => "se",
            Gravity::South => "s",
            Gravity::SouthWest => "sw",
            Gravity::West => "w",
            Gravity::NorthWest => "nw",
        }
    }

    pub fn parse(s: &str) -> Option<Gravity> {
        Gravity::ALL.into_iter().find(|g| g.as_str() == s)
    }

    /// Where the kept region sits in the slack along each axis: 0 at the left or top edge, 1 at
    /// the right or bottom.
    fn fractions(self) -> (f64, f64) {
        match self {
            Gravity::Centre => (0.5, 0.5),
            Gravity::North => (0.5, 0.0),
            Gravity::NorthEast => (1.0, 0.0),
            Gravity::East => (1.0, 0.5),
            Gravity::SouthEast => (1.0, 1.0),
            Gravity::South => (0.5, 1.0),
            Gravity::SouthWest => (0.0, 1.0),
            Gravity::West => (0.0, 0.5),
            Gravity::NorthWest => (0.0, 0.0),
        }
    }
}

/// A point of the oriented source, in thousandths of its width and height (0…1000): whole
/// numbers, so that recipes holding one compare and hash exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FocalPoint {
    pub x: u16,
    pub y: u16,
}

/// Where a cropping fit keeps the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Anchor {
    Gravity(Gravity),
    /// Centre the kept region on this point, as far as the image allows.
    Focal(FocalPoint),
    /// Keep what a viewer looks at (`g=smart`): found in the decoded pixels (`attention.rs`),
    /// then placed as a focal point. Planned from the header alone, it keeps the centre.
    Smart,
}

impl Default for Anchor {
    fn default() -> Anchor {
        Anchor::Gravity(Gravity::Centre)
    }
}

impl Anchor {
    /// The top-left corner of a `kept`-sized region of a `whole`-sized image.
    fn place(self, whole: (f64, f64), kept: (f64, f64)) -> (f64, f64) {
        let slack = (whole.0 - kept.0, whole.1 - kept.1);
        match self {
            Anchor::Gravity(gravity) => {
                let (fx, fy) = gravity.fractions();
                (slack.0 * fx, slack.1 * fy)
            }
            Anchor::Smart => (slack.0 / 2.0, slack.1 / 2.0),
            Anchor::Focal(point) => {
                let centre = |at: u16, size: f64, kept: f64, slack: f64| {
                    (f64::from(at) / 1000.0 * size - kept / 2.0).clamp(0.0, slack.max(0.0))
                };
                (centre(point.x, whole.0, kept.0, slack.0), centre(point.y, whole.1, kept.1, slack.1))
            }
        }
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
    /// Where `cover` keeps the image (the others use all of it).
    pub anchor: Anchor,
    /// A turn or flip after the EXIF orientation (`rot`, `flip`), before the fit: the box, the
    /// anchor and the output are in the turned image's axes.
    pub turn: Orientation,
    /// A part of the image as EXIF orientation leaves it (`crop`), cut before the turn and the fit.
    pub crop: Option<Crop>,
}

/// A rectangle of the image as EXIF orientation leaves it, in whole pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Crop {
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
}

impl Crop {
    /// The part of this crop inside a `width`×`height` image: cut at the image's edges; `None`
    /// when none of it is inside.
    pub fn within(self, width: u32, height: u32) -> Option<Crop> {
        if self.left >= width || self.top >= height || self.width == 0 || self.height == 0 {
            return None;
        }
        Some(Crop { width: self.width.min(width - self.left), height: self.height.min(height - self.top), ..self })
    }

    /// Whether it keeps all of a `width`×`height` image.
    pub fn is_whole(self, width: u32, height: u32) -> bool {
        (self.left, self.top, self.width, self.height) == (0, 0, width, height)
    }
}

impl Resize {
    /// The size of a `width`×`height` image (as EXIF orientation leaves it) once turned.
    pub fn turned_size(&self, width: u32, height: u32) -> (u32, u32) {
        if self.turn.swaps_axes() {
            (height, width)
        } else {
            (width, height)
        }
    }

    /// The part of a turned `width`×`height` image the fit works on, in its (turned) axes: the
    /// crop, turned with the image, or all of it.
    pub(crate) fn kept(&self, width: u32, height: u32) -> Result<Region> {
        let (w, h) = (f64::from(width), f64::from(height));
        let Some(crop) = self.crop else {
            return Ok(Region { left: 0.0, top: 0.0, width: w, height: h });
        };
        // The crop is in the axes before the turn.
        let (before_w, before_h) = self.turned_size(width, height);
        let crop = crop.within(before_w, before_h).ok_or_else(|| {
            ImageError::ResourceLimit(format!("the crop lies outside the {before_w}x{before_h} image"))
        })?;
        let region = Region {
            left: f64::from(crop.left),
            top: f64::from(crop.top),
            width: f64::from(crop.width),
            height: f64::from(crop.height),
        };
        // Undoing the turn takes the turned image to the one the crop names.
        Ok(stored_region(self.turn.inverse(), region, (w, h)))
    }
}

/// A rectangle of the (oriented) source, in source pixels; fractional edges are fine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

/// The size, in stored axes, of something that is `size` once upright.
pub(crate) fn stored_size<T>(orientation: Orientation, size: (T, T)) -> (T, T) {
    if orientation.swaps_axes() {
        (size.1, size.0)
    } else {
        size
    }
}

/// The rectangle of a stored image (`stored` = its width and height in stored axes) that
/// becomes `upright` once the orientation is applied.
pub(crate) fn stored_region(orientation: Orientation, upright: Region, stored: (f64, f64)) -> Region {
    let Region { left: l, top: t, width: w, height: h } = upright;
    let (sw, sh) = stored;
    // Each arm follows the pixel map in `orient` below: upright (x, y) ← stored (sx, sy).
    let (left, top, width, height) = match orientation {
        Orientation::Normal => (l, t, w, h),
        Orientation::FlipHorizontal => (sw - l - w, t, w, h),
        Orientation::Rotate180 => (sw - l - w, sh - t - h, w, h),
        Orientation::FlipVertical => (l, sh - t - h, w, h),
        Orientation::Transpose => (t, l, h, w),
        Orientation::Rotate90 => (t, sh - l - w, h, w),
        Orientation::Transverse => (sw - t - h, sh - l - w, h, w),
        Orientation::Rotate270 => (sw - t - h, l, h, w),
    };
    Region { left, top, width, height }
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

/// Plan the output for a `src_w`×`src_h` source (after orientation and the recipe's turn).
pub fn plan(src_w: u32, src_h: u32, resize: &Resize, max_output_pixels: u64) -> Result<Geometry> {
    // With a crop, everything below works inside it.
    let full = resize.kept(src_w, src_h)?;
    let (w, h) = (full.width, full.height);
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
                    // The box, mapped back into source pixels and placed per the anchor.
                    let (rw, rh) = ((f64::from(bw) / s).min(w), (f64::from(bh) / s).min(h));
                    let (left, top) = resize.anchor.place((w, h), (rw, rh));
                    let source = Region { left: full.left + left, top: full.top + top, width: rw, height: rh };
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
        plan(src.0, src.1, &Resize { width: w, height: h, fit, enlarge, ..Resize::default() }, u64::MAX)
            .expect("plan")
            .canvas
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
            &Resize { width: Some(300), height: Some(300), fit: Fit::Cover, enlarge: false, ..Resize::default() },
            u64::MAX,
        )
        .expect("plan");
        assert_eq!(g.source, Region { left: 500.0, top: 0.0, width: 3000.0, height: 3000.0 });
        let g = plan(
            4000,
            3000,
            &Resize { width: Some(400), height: Some(400), fit: Fit::Contain, enlarge: false, ..Resize::default() },
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
            let g = plan(
                src.0,
                src.1,
                &Resize { width: Some(400), height: Some(400), fit, enlarge: false, ..Resize::default() },
                u64::MAX,
            )
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
        let resize =
            Resize { width: Some(1000), height: Some(1000), fit: Fit::Fill, enlarge: true, ..Resize::default() };
        assert!(plan(10, 10, &resize, 1_000_000).is_ok());
        assert!(matches!(plan(10, 10, &resize, 999_999), Err(ImageError::ResourceLimit(_))));
    }

    /// A 4000×3000 source covered by a 300×300 box keeps a 3000×3000 region: the gravity puts
    /// it at a side or corner, the focal point centres it where the image allows.
    #[test]
    fn cover_keeps_the_side_the_anchor_names() {
        let region = |anchor: Anchor| {
            let resize = Resize { width: Some(300), height: Some(300), anchor, ..Resize::default() };
            let g = plan(4000, 3000, &resize, u64::MAX).expect("plan");
            (g.source.left, g.source.top, g.source.width, g.source.height)
        };
        let lefts = [
            (Gravity::Centre, 500.0),
            (Gravity::West, 0.0),
            (Gravity::NorthWest, 0.0),
            (Gravity::SouthWest, 0.0),
            (Gravity::East, 1000.0),
            (Gravity::NorthEast, 1000.0),
            (Gravity::SouthEast, 1000.0),
            (Gravity::North, 500.0),
            (Gravity::South, 500.0),
        ];
        for (gravity, left) in lefts {
            assert_eq!(region(Anchor::Gravity(gravity)), (left, 0.0, 3000.0, 3000.0), "{gravity:?}");
        }
        let focal = |x, y| region(Anchor::Focal(FocalPoint { x, y }));
        assert_eq!(focal(500, 500), region(Anchor::default()));
        assert_eq!(focal(450, 500).0, 300.0, "centred on x = 1800 px");
        assert_eq!(focal(0, 0).0, 0.0, "clamped at the left edge");
        assert_eq!(focal(1000, 1000).0, 1000.0, "clamped at the right edge");
        // On a portrait source the slack is vertical.
        let resize = Resize {
            width: Some(300),
            height: Some(300),
            anchor: Anchor::Gravity(Gravity::South),
            ..Resize::default()
        };
        let g = plan(3000, 4000, &resize, u64::MAX).expect("plan");
        assert_eq!((g.source.left, g.source.top), (0.0, 1000.0));
        // Fits that keep the whole image ignore the anchor.
        for fit in [Fit::Contain, Fit::Fill, Fit::Inside, Fit::Outside] {
            let anchored = Resize {
                width: Some(300),
                height: Some(300),
                fit,
                anchor: Anchor::Gravity(Gravity::East),
                ..Resize::default()
            };
            let plain = Resize { anchor: Anchor::default(), ..anchored };
            assert_eq!(plan(4000, 3000, &anchored, u64::MAX).ok(), plan(4000, 3000, &plain, u64::MAX).ok(), "{fit:?}");
        }
    }
}
