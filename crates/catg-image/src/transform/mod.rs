//! Transforms: frame to frame, run in one fixed order ([`TRANSFORMS`]) between decode and
//! encode. Each declares how much of the image it needs at once ([`Reach`]), so the engine
//! streams rows through as many of them as it can. Adding an operation is one file here and one
//! variant of [`Transform`], placed in [`TRANSFORMS`]; the engine's tests run every variant on
//! rows and on a whole frame and compare.

pub(crate) mod blur;
pub(crate) mod colour;
pub(crate) mod orient;
pub(crate) mod pad;
pub(crate) mod resize;
pub(crate) mod sharpen;

use crate::error::{ImageError, Result};
use crate::frame::{Context, Frame, Header, RowOp, WindowOp};
use crate::pixels::Layout;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transform {
    Orient,
    Colour,
    Resize,
    Blur,
    Sharpen,
    Pad,
}

/// How much of the image a transform needs at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Each row on its own (a point operation): runs on rows as they are decoded.
    Row,
    /// A window of neighbouring rows (a resample, a blur): takes rows, gives the whole output.
    Window,
    /// The whole frame (a turn, a choice that looks at all of it).
    Frame,
}

/// The order is part of the output: colour conversion before resampling keeps the filter's
/// arithmetic in the output colour space. Orientation is planned first (the geometry is in the
/// orientation users see, and the resize maps it onto the stored axes) but applied last, to the
/// fewest pixels (docs/decisions/pipeline.md). The finishing effects work on the upright output:
/// blur before sharpen (sharpening a blur undoes it), padding last (its sides are the viewer's).
pub(crate) const TRANSFORMS: [Transform; 6] =
    [Transform::Colour, Transform::Resize, Transform::Orient, Transform::Blur, Transform::Sharpen, Transform::Pad];

/// A frame as a viewer sees it, before any resize: oriented and sRGB (the steps of
/// [`TRANSFORMS`] that change neither size nor content). For quality references and for ingest's
/// summary, which need the source itself rather than a variant.
pub(crate) fn upright(frame: Frame) -> Result<Frame> {
    orient::apply(colour::apply(frame)?)
}

impl Transform {
    /// Every transform, for tests that must cover each one.
    #[cfg(test)]
    pub(crate) const ALL: [Transform; 6] =
        [Transform::Orient, Transform::Colour, Transform::Resize, Transform::Blur, Transform::Sharpen, Transform::Pad];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Transform::Orient => "orient",
            Transform::Colour => "colour",
            Transform::Resize => "resize",
            Transform::Blur => "blur",
            Transform::Sharpen => "sharpen",
            Transform::Pad => "pad",
        }
    }

    pub(crate) fn reach(self) -> Reach {
        match self {
            // The effects come after the resize, on its output-sized frame (see blur.rs).
            Transform::Orient | Transform::Blur | Transform::Sharpen | Transform::Pad => Reach::Frame,
            Transform::Colour => Reach::Row,
            Transform::Resize => Reach::Window,
        }
    }

    /// The transform on a whole frame.
    pub(crate) fn apply(self, frame: Frame, ctx: &Context<'_>) -> Result<Frame> {
        match self {
            Transform::Orient => orient::apply(frame),
            Transform::Colour => colour::apply(frame),
            Transform::Resize => resize::apply(frame, ctx),
            Transform::Blur => blur::apply(frame, ctx),
            Transform::Sharpen => sharpen::apply(frame, ctx),
            Transform::Pad => pad::apply(frame, ctx),
        }
    }

    /// A [`Reach::Row`] transform's row form ([`RowOp`]), for rows of `layout`; `header` becomes what the
    /// frame carries once the rows are converted.
    pub(crate) fn row_op(self, layout: Layout, header: &mut Header) -> Result<Box<dyn RowOp>> {
        match self {
            Transform::Colour => Ok(Box::new(colour::ColourRows::start(layout, header)?)),
            other => Err(ImageError::Internal(format!("{} does not work on rows", other.name()))),
        }
    }

    /// A [`Reach::Window`] transform's row form ([`WindowOp`]), for a `size` frame of `layout` rows.
    pub(crate) fn window_op(
        self,
        size: (u32, u32),
        layout: Layout,
        header: &Header,
        ctx: &Context<'_>,
    ) -> Result<Box<dyn WindowOp>> {
        match self {
            Transform::Resize => Ok(Box::new(resize::ResizeRows::start(size, layout, header, ctx)?)),
            other => Err(ImageError::Internal(format!("{} does not work on a window of rows", other.name()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{plan, Fit, Resize};
    use crate::pixels::Pixels;
    use crate::probe::Orientation;

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
                let resize = Resize { width: Some(31), height: Some(23), fit, enlarge: false, ..Resize::default() };
                let geometry = plan(upright.width, upright.height, &resize, u64::MAX).expect("plan");
                let effects = crate::Effects::default();
                let ctx =
                    Context { geometry: &geometry, oriented_size: (upright.width, upright.height), effects: &effects };
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
