//! Resize: crop, resample (Lanczos3, SIMD, alpha-premultiplied) and letterbox per the geometry.
//! Works in the frame's stored axes: the orient step turns the (smaller) result upright.

use super::orient::{stored_region, stored_size};
use super::{Context, Frame};
use crate::error::{ImageError, Result};
use crate::geometry::Region;
use crate::pixels::{Layout, Pixels};
use crate::probe::Orientation;
use fast_image_resize::{images::Image, Filter, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use std::f64::consts::PI;
use std::sync::LazyLock;

pub(crate) fn apply(frame: Frame, ctx: &Context<'_>) -> Result<Frame> {
    let pixels = resize(frame.pixels, frame.orientation, ctx)?;
    Ok(Frame { pixels, ..frame })
}

/// Where a frame's pixels go: the part of the frame to resample (in frame pixels, fractional),
/// the size it is resampled to and the canvas it is placed on, all in stored axes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement {
    pub(crate) crop: Region,
    pub(crate) scaled: (u32, u32),
    pub(crate) canvas: (u32, u32),
    pub(crate) offset: (u32, u32),
}

impl Placement {
    /// The plan is in upright axes; the frame (`frame_size`) is in stored axes and may be
    /// smaller than the source (shrink-on-load). Map the region onto the frame, and the sizes
    /// onto stored axes.
    pub(crate) fn of(frame_size: (u32, u32), orientation: Orientation, ctx: &Context<'_>) -> Placement {
        let g = ctx.geometry;
        let (source_w, source_h) = stored_size(orientation, ctx.oriented_size);
        let source = stored_region(orientation, g.source, (f64::from(source_w), f64::from(source_h)));
        let fx = f64::from(frame_size.0) / f64::from(source_w);
        let fy = f64::from(frame_size.1) / f64::from(source_h);
        // A frame scaled by other than a power of two (WebP's scaled decode) makes these
        // products inexact; the resampler refuses a crop even 1e-13 past the frame's edge.
        let (left, top) = (source.left * fx, source.top * fy);
        let crop = Region {
            left,
            top,
            width: (source.width * fx).min(f64::from(frame_size.0) - left),
            height: (source.height * fy).min(f64::from(frame_size.1) - top),
        };
        let canvas = stored_size(orientation, g.canvas);
        let placed = stored_region(
            orientation,
            Region {
                left: f64::from(g.offset.0),
                top: f64::from(g.offset.1),
                width: f64::from(g.scaled.0),
                height: f64::from(g.scaled.1),
            },
            (f64::from(canvas.0), f64::from(canvas.1)),
        );
        // Whole numbers in, whole numbers out: the map only adds and subtracts them.
        let offset = (placed.left as u32, placed.top as u32);
        Placement { crop, scaled: stored_size(orientation, g.scaled), canvas, offset }
    }

    /// Whether resampling would leave the frame as it is.
    fn is_identity(&self, frame_size: (u32, u32)) -> bool {
        let c = &self.crop;
        c.left.abs() < 1e-6
            && c.top.abs() < 1e-6
            && (c.width - f64::from(frame_size.0)).abs() < 1e-6
            && (c.height - f64::from(frame_size.1)).abs() < 1e-6
            && self.scaled == frame_size
    }

    /// Put the resampled image on its canvas, if the canvas is larger.
    pub(crate) fn letterbox(&self, scaled: Pixels) -> Result<Pixels> {
        if self.canvas == self.scaled {
            return Ok(scaled);
        }
        letterbox(&scaled, self.canvas, self.offset)
    }
}

fn resize(pixels: Pixels, orientation: Orientation, ctx: &Context<'_>) -> Result<Pixels> {
    let size = (pixels.width, pixels.height);
    let placement = Placement::of(size, orientation, ctx);
    let scaled = if placement.is_identity(size) {
        pixels
    } else {
        let layout = pixels.layout;
        let pixel_type = pixel_type(layout)?;
        let src = Image::from_vec_u8(pixels.width, pixels.height, pixels.data, pixel_type).map_err(internal)?;
        let (w, h) = placement.scaled;
        let mut dst = Image::new(w, h, pixel_type);
        let c = placement.crop;
        lanczos3(&mut Resizer::new(), &src, &mut dst, (c.left, c.top, c.width, c.height))?;
        Pixels::from_vec(w, h, layout, dst.into_vec())?
    };
    placement.letterbox(scaled)
}

pub(crate) fn pixel_type(layout: Layout) -> Result<PixelType> {
    match layout {
        Layout::Rgb8 => Ok(PixelType::U8x3),
        Layout::Rgba8 => Ok(PixelType::U8x4),
        Layout::Cmyk8 => Err(ImageError::Internal("resize before colour conversion".into())),
    }
}

/// Resample the `crop` (left, top, width, height) of `src` onto all of `dst`: Lanczos3, SIMD,
/// alpha premultiplied. A pass whose size and offset do not change is skipped.
pub(crate) fn lanczos3(
    resizer: &mut Resizer,
    src: &impl fast_image_resize::IntoImageView,
    dst: &mut Image<'_>,
    crop: (f64, f64, f64, f64),
) -> Result<()> {
    let lanczos3 = Filter::new("Lanczos3 (table)", lanczos3_from_table, 3.0).map_err(internal)?;
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Custom(lanczos3)))
        .crop(crop.0, crop.1, crop.2, crop.3);
    resizer.resize(src, dst, &options).map_err(internal)
}

/// Samples of the Lanczos3 kernel per unit of distance.
const KERNEL_STEPS: usize = 1024;

/// Lanczos3, interpolated from a table. fast_image_resize computes its filter's weights with two
/// `sin` calls per tap at every call; the streaming path resamples a band at a time, and `sin`
/// was then half of a 1200 px render. The table (24 KB) is exact to about 1e-6, far below the
/// 1/16384 the weights are rounded to.
fn lanczos3_from_table(x: f64) -> f64 {
    static TABLE: LazyLock<Vec<f64>> = LazyLock::new(|| {
        let sinc = |x: f64| if x == 0.0 { 1.0 } else { (x * PI).sin() / (x * PI) };
        (0..=3 * KERNEL_STEPS + 1)
            .map(|i| {
                let x = i as f64 / KERNEL_STEPS as f64;
                if x < 3.0 {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            })
            .collect()
    });
    let at = x.abs() * KERNEL_STEPS as f64;
    if at >= (3 * KERNEL_STEPS) as f64 {
        return 0.0;
    }
    let (i, frac) = (at as usize, at.fract());
    TABLE[i] + (TABLE[i + 1] - TABLE[i]) * frac
}

/// Place the image on a canvas: transparent if it has alpha, otherwise black (sharp's default).
fn letterbox(image: &Pixels, canvas: (u32, u32), offset: (u32, u32)) -> Result<Pixels> {
    // Zero-filled: opaque black for RGB, transparent for RGBA.
    let mut out = Pixels::new(canvas.0, canvas.1, image.layout)?;
    let ch = image.channels();
    let row = image.width as usize * ch;
    let canvas_row = canvas.0 as usize * ch;
    for (y, src) in image.data.chunks_exact(row).enumerate() {
        let at = (offset.1 as usize + y) * canvas_row + offset.0 as usize * ch;
        out.data[at..at + row].copy_from_slice(src);
    }
    Ok(out)
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ImageError {
    ImageError::Internal(format!("resize: {e}"))
}
