//! Resize: crop, resample (Lanczos3, SIMD, alpha-premultiplied) and letterbox per the geometry.

use super::{Context, Frame};
use crate::error::{ImageError, Result};
use crate::pixels::{Layout, Pixels};
use fast_image_resize::{images::Image, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

pub(crate) fn apply(frame: Frame, ctx: &Context<'_>) -> Result<Frame> {
    let pixels = resize(frame.pixels, ctx)?;
    Ok(Frame { pixels, ..frame })
}

fn resize(pixels: Pixels, ctx: &Context<'_>) -> Result<Pixels> {
    let g = ctx.geometry;
    // The frame may be smaller than the source (shrink-on-load): map the region onto it.
    let fx = f64::from(pixels.width) / f64::from(ctx.oriented_size.0);
    let fy = f64::from(pixels.height) / f64::from(ctx.oriented_size.1);
    let (left, top, width, height) = (g.source.left * fx, g.source.top * fy, g.source.width * fx, g.source.height * fy);
    let whole = left.abs() < 1e-6
        && top.abs() < 1e-6
        && (width - f64::from(pixels.width)).abs() < 1e-6
        && (height - f64::from(pixels.height)).abs() < 1e-6;
    let scaled = if whole && g.scaled == (pixels.width, pixels.height) {
        pixels
    } else {
        let pixel_type = match pixels.layout {
            Layout::Rgb8 => PixelType::U8x3,
            Layout::Rgba8 => PixelType::U8x4,
            Layout::Cmyk8 => return Err(ImageError::Internal("resize before colour conversion".into())),
        };
        let layout = pixels.layout;
        let src = Image::from_vec_u8(pixels.width, pixels.height, pixels.data, pixel_type).map_err(internal)?;
        let mut dst = Image::new(g.scaled.0, g.scaled.1, pixel_type);
        let options = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
            .crop(left, top, width, height);
        Resizer::new().resize(&src, &mut dst, &options).map_err(internal)?;
        Pixels::from_vec(g.scaled.0, g.scaled.1, layout, dst.into_vec())?
    };
    if g.canvas == g.scaled {
        return Ok(scaled);
    }
    letterbox(&scaled, g.canvas, g.offset)
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
