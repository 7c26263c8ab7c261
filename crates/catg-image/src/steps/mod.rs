//! The pipeline's steps, in their one fixed order:
//! decode → colour → resize → orient → encode.
//!
//! Decode turns bytes into a [`Frame`], encode turns a frame into bytes; every step between is a
//! [`Transform`] from frame to frame. Adding an operation means one file here and one variant of
//! `Transform`, placed in [`TRANSFORMS`]. For JPEG, `stream.rs` runs decode and the steps up to
//! the resize band by band; a step placed after the resize needs nothing more (a test in
//! `pipeline.rs` says so if one is placed before it).

pub(crate) mod colour;
pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod jpeg_rows;
pub(crate) mod orient;
pub(crate) mod png_rows;
pub(crate) mod resize;
pub(crate) mod stream;
pub(crate) mod webp_encode;
pub(crate) mod webp_frame;

use crate::error::Result;
use crate::geometry::Geometry;
use crate::pixels::Pixels;
use crate::probe::Orientation;

/// Decoded pixels plus what the decoder learned but has not yet applied.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) pixels: Pixels,
    /// Orientation still to apply (`Normal` once oriented).
    pub(crate) orientation: Orientation,
    /// Embedded ICC profile still to apply (`None` once the pixels are sRGB).
    pub(crate) icc: Option<Vec<u8>>,
    /// CMYK samples are stored inverted (Adobe APP14 JPEGs).
    pub(crate) cmyk_inverted: bool,
}

/// What the frame-to-frame steps may consult.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub(crate) geometry: &'a Geometry,
    /// Size of the source after orientation, in which `geometry` is expressed (the frame itself
    /// stays in stored axes until the orient step).
    pub(crate) oriented_size: (u32, u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transform {
    Orient,
    Colour,
    Resize,
}

/// The order is part of the output: colour conversion before resampling keeps the filter's
/// arithmetic in the output colour space. Orientation is planned first (the geometry is in the
/// orientation users see, and the resize maps it onto the stored axes) but applied last, to the
/// fewest pixels: on a rotated 10 MP photo that halved a 1200 px render.
pub(crate) const TRANSFORMS: [Transform; 3] = [Transform::Colour, Transform::Resize, Transform::Orient];

impl Transform {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Transform::Orient => "orient",
            Transform::Colour => "colour",
            Transform::Resize => "resize",
        }
    }

    pub(crate) fn apply(self, frame: Frame, ctx: &Context<'_>) -> Result<Frame> {
        match self {
            Transform::Orient => orient::apply(frame),
            Transform::Colour => colour::apply(frame),
            Transform::Resize => resize::apply(frame, ctx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{plan, Fit, Resize};
    use crate::pixels::Layout;

    /// A smooth, asymmetric test image (every quadrant differs), so a wrong crop, offset or
    /// turn shows up as a large difference while resampling round-off stays small.
    fn gradient(width: u32, height: u32) -> Pixels {
        let data = (0..height)
            .flat_map(|y| (0..width).flat_map(move |x| [(x * 255 / width) as u8, (y * 255 / height) as u8, 90]))
            .collect();
        Pixels::from_vec(width, height, Layout::Rgb8, data).expect("size")
    }

    fn frame(pixels: Pixels, orientation: Orientation) -> Frame {
        Frame { pixels, orientation, icc: None, cmyk_inverted: false }
    }

    /// Resizing in stored axes and turning the result upright gives the same image as turning
    /// the source upright first, for every orientation and every fit (crops and letterboxes).
    #[test]
    fn resizing_before_orienting_matches_orienting_first() {
        let stored = gradient(90, 60);
        for value in 1..=8 {
            let orientation = Orientation::from_exif(value);
            let upright = orient::orient(&stored, orientation).expect("orient");
            for fit in Fit::ALL {
                let resize = Resize { width: Some(31), height: Some(23), fit, enlarge: false };
                let geometry = plan(upright.width, upright.height, &resize, u64::MAX).expect("plan");
                let ctx = Context { geometry: &geometry, oriented_size: (upright.width, upright.height) };
                let mut ours = frame(stored.clone(), orientation);
                for step in TRANSFORMS {
                    ours = step.apply(ours, &ctx).expect("pipeline");
                }
                let reference = resize::apply(frame(upright.clone(), Orientation::Normal), &ctx).expect("resize");
                let (a, b) = (&ours.pixels, &reference.pixels);
                assert_eq!((a.width, a.height), (b.width, b.height), "orientation {value} {fit:?}");
                let worst = a.data.iter().zip(&b.data).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0);
                assert!(worst <= 2, "orientation {value} {fit:?}: differs by {worst}");
            }
        }
    }
}
