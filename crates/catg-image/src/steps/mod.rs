//! The pipeline's steps, in their one fixed order:
//! decode → orient → colour → resize → encode.
//!
//! Decode turns bytes into a [`Frame`], encode turns a frame into bytes; every step between is a
//! [`Transform`] from frame to frame. Adding an operation means one file here and one variant of
//! `Transform`, placed in [`TRANSFORMS`].

pub(crate) mod colour;
pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod orient;
pub(crate) mod resize;

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
    /// Size of the source after orientation, in which `geometry` is expressed.
    pub(crate) oriented_size: (u32, u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transform {
    Orient,
    Colour,
    Resize,
}

/// The order is part of the output: colour conversion before resampling keeps the filter's
/// arithmetic in the output colour space, and orientation first lets the geometry be planned in
/// the orientation users see.
pub(crate) const TRANSFORMS: [Transform; 3] = [Transform::Orient, Transform::Colour, Transform::Resize];

impl Transform {
    pub(crate) fn apply(self, frame: Frame, ctx: &Context<'_>) -> Result<Frame> {
        match self {
            Transform::Orient => orient::apply(frame),
            Transform::Colour => colour::apply(frame),
            Transform::Resize => resize::apply(frame, ctx),
        }
    }
}
