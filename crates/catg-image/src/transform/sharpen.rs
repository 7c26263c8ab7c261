//! Sharpen: an unsharp mask of the output (`sharpen`): each colour sample moves away from its
//! Gaussian-blurred neighbourhood by as much as it differs from it (amount 1), so edges gain
//! contrast and flat areas stay as they are. Alpha is left alone.

use super::blur::gaussian;
use crate::error::Result;
use crate::frame::{Context, Frame};

pub(crate) fn apply(frame: Frame, ctx: &Context<'_>) -> Result<Frame> {
    let Some(sigma) = ctx.effects.sharpen else { return Ok(frame) };
    let mut pixels = frame.pixels;
    let blurred = gaussian(&pixels, f32::from(sigma) / 100.0)?;
    let channels = pixels.channels();
    for (pixel, soft) in pixels.data.chunks_exact_mut(channels).zip(blurred.data.chunks_exact(channels)) {
        for c in 0..3 {
            let (v, s) = (i16::from(pixel[c]), i16::from(soft[c]));
            pixel[c] = (2 * v - s).clamp(0, 255) as u8;
        }
    }
    Ok(Frame { pixels, ..frame })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::Effects;
    use crate::geometry::{plan, Resize};
    use crate::pixels::{Layout, Pixels};
    use crate::probe::Orientation;

    /// An edge gains contrast next to it; far from it nothing changes.
    #[test]
    fn sharpening_steepens_an_edge_and_keeps_flat_areas() {
        let data = (0..20u32).flat_map(|_| (0..20u32).flat_map(|x| [if x < 10 { 60u8 } else { 180 }; 3])).collect();
        let pixels = Pixels::from_vec(20, 20, Layout::Rgb8, data).expect("size");
        let geometry = plan(20, 20, &Resize::default(), u64::MAX).expect("plan");
        let effects = Effects { sharpen: Some(150), ..Effects::default() };
        let ctx = Context { geometry: &geometry, oriented_size: (20, 20), effects: &effects };
        let frame = Frame { pixels, orientation: Orientation::Normal, icc: None, cmyk_inverted: false };
        let out = apply(frame, &ctx).expect("sharpen").pixels;
        let at = |x: usize| out.data[(10 * 20 + x) * 3];
        assert!(at(9) < 60 && at(10) > 180, "edge: {} | {}", at(9), at(10));
        assert_eq!((at(0), at(19)), (60, 180), "flat areas stay");
    }
}
