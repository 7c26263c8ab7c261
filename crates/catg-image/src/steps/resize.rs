//! Resize: crop, resample (Lanczos3, SIMD, alpha-premultiplied) and letterbox per the geometry.
//! Works in the frame's stored axes: the orient step turns the (smaller) result upright.

use super::orient::{stored_region, stored_size};
use super::{Context, Frame};
use crate::error::{ImageError, Result};
use crate::geometry::Region;
use crate::pixels::{Layout, Pixels};
use crate::probe::Orientation;
use fast_image_resize::{images::Image, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

pub(crate) fn apply(frame: Frame, ctx: &Context<'_>) -> Result<Frame> {
    let pixels = resize(frame.pixels, frame.orientation, ctx)?;
    Ok(Frame { pixels, ..frame })
}

fn resize(pixels: Pixels, orientation: Orientation, ctx: &Context<'_>) -> Result<Pixels> {
    let g = ctx.geometry;
    // The plan is in upright axes; the frame is in stored axes and may be smaller than the
    // source (shrink-on-load). Map the region onto the frame, and the sizes onto stored axes.
    let (source_w, source_h) = stored_size(orientation, ctx.oriented_size);
    let source = stored_region(orientation, g.source, (f64::from(source_w), f64::from(source_h)));
    let fx = f64::from(pixels.width) / f64::from(source_w);
    let fy = f64::from(pixels.height) / f64::from(source_h);
    let (left, top, width, height) = (source.left * fx, source.top * fy, source.width * fx, source.height * fy);
    let scaled_size = stored_size(orientation, g.scaled);
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
    let whole = left.abs() < 1e-6
        && top.abs() < 1e-6
        && (width - f64::from(pixels.width)).abs() < 1e-6
        && (height - f64::from(pixels.height)).abs() < 1e-6;
    let scaled = if whole && scaled_size == (pixels.width, pixels.height) {
        pixels
    } else {
        let pixel_type = match pixels.layout {
            Layout::Rgb8 => PixelType::U8x3,
            Layout::Rgba8 => PixelType::U8x4,
            Layout::Cmyk8 => return Err(ImageError::Internal("resize before colour conversion".into())),
        };
        let layout = pixels.layout;
        let src = Image::from_vec_u8(pixels.width, pixels.height, pixels.data, pixel_type).map_err(internal)?;
        let mut dst = Image::new(scaled_size.0, scaled_size.1, pixel_type);
        let options = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
            .crop(left, top, width, height);
        Resizer::new().resize(&src, &mut dst, &options).map_err(internal)?;
        Pixels::from_vec(scaled_size.0, scaled_size.1, layout, dst.into_vec())?
    };
    if canvas == scaled_size {
        return Ok(scaled);
    }
    letterbox(&scaled, canvas, offset)
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

fn internal(e: impl std::fmt::Display) -> ImageError {
    ImageError::Internal(format!("resize: {e}"))
}
