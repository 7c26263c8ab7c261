//! Pad: a border around the result, in the background colour (`pad`, `bg`). Runs last, on the
//! upright output, so its sides are the sides users see.

use crate::error::Result;
use crate::frame::{Context, Frame};

pub(crate) fn apply(frame: Frame, ctx: &Context<'_>) -> Result<Frame> {
    let padding = ctx.effects.padding;
    if padding.is_zero() {
        return Ok(frame);
    }
    let canvas = padding.around((frame.pixels.width, frame.pixels.height));
    let pixels = frame.pixels.placed_on(canvas, (padding.left, padding.top), ctx.effects.background)?;
    Ok(Frame { pixels, ..frame })
}
