//! Resize: crop, resample (Lanczos3, SIMD, alpha-premultiplied) and letterbox per the geometry.
//! Works in the frame's stored axes: the orient step turns the (smaller) result upright.
//!
//! On rows ([`ResizeRows`]) the full-size frame never exists: rows join a window (~2 MB: as many
//! as one group of output rows' filter reaches); once every source row the next group of output
//! rows reaches is in, the group is resampled (both passes) and the rows no later group reaches
//! leave. An output row's filter reaches the same source rows it would in the whole frame, so
//! the result matches the whole-frame path (see the engine's tests).

use crate::error::{ImageError, Result};
use crate::frame::{Context, Frame, Header, WindowOp, BAND_ROWS};
use crate::geometry::Region;
use crate::geometry::{stored_region, stored_size};
use crate::pixels::{Layout, Pixels};
use crate::probe::Orientation;
use fast_image_resize::images::ImageRef;
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
    pub(crate) background: Option<crate::Rgba>,
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
        let background = ctx.effects.background;
        Placement { crop, scaled: stored_size(orientation, g.scaled), canvas, offset, background }
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
        // Transparent if it has alpha, otherwise black (sharp's default), unless `bg` says.
        scaled.placed_on(self.canvas, self.offset, self.background)
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

fn pixel_type(layout: Layout) -> Result<PixelType> {
    match layout {
        Layout::Rgb8 => Ok(PixelType::U8x3),
        Layout::Rgba8 => Ok(PixelType::U8x4),
        Layout::Cmyk8 => Err(ImageError::Internal("resize before colour conversion".into())),
    }
}

/// Resample the `crop` (left, top, width, height) of `src` onto all of `dst`: Lanczos3, SIMD,
/// alpha premultiplied. A pass whose size and offset do not change is skipped.
fn lanczos3(
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

/// Lanczos3, interpolated from a 24 KB table exact to about 1e-6: fast_image_resize's own calls
/// `sin` twice per tap on every call (docs/decisions/pipeline.md, "Lanczos3 from a table").
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

fn internal(e: impl std::fmt::Display) -> ImageError {
    ImageError::Internal(format!("resize: {e}"))
}

/// How many source rows the window is sized for, in bytes: output rows are resampled in groups
/// whose source rows fit in it (at least 64 a group), since every resampler call recomputes its
/// weights (docs/decisions/pipeline.md, "Resize window").
const WINDOW_BYTES: usize = 2 << 20;
const MIN_GROUP_ROWS: u32 = 64;

/// The resize of rows handed out top to bottom, in sRGB.
pub(crate) struct ResizeRows {
    placement: Placement,
    crop: Region,
    /// Output size.
    width: u32,
    height: u32,
    /// Source rows per output row, and how far the filter reaches from a row's centre.
    step: f64,
    radius: f64,
    source: (u32, u32),
    /// Source rows any output row reaches: [first, end).
    needed: (u32, u32),
    /// sRGB source rows [window_start, window_start + window_rows()), in `layout`.
    window: Vec<u8>,
    layout: Layout,
    window_start: u32,
    /// Output rows resampled per call.
    group_rows: u32,
    /// Output rows done so far.
    done: u32,
    out: Pixels,
    resizer: Resizer,
}

impl ResizeRows {
    /// Start the resize of rows of a `source`-sized frame (stored axes) of `layout`, as the
    /// whole-frame [`apply`] would resize it.
    pub(crate) fn start(source: (u32, u32), layout: Layout, header: &Header, ctx: &Context<'_>) -> Result<ResizeRows> {
        let placement = Placement::of(source, header.orientation, ctx);
        let (width, height) = placement.scaled;
        let step = placement.crop.height / f64::from(height.max(1));
        let radius = 3.0 * step.max(1.0);
        let window_rows = (WINDOW_BYTES / (source.0 as usize * layout.channels()).max(1)) as f64;
        let group_rows = ((window_rows - 2.0 * radius) / step).max(f64::from(MIN_GROUP_ROWS)) as u32;
        let mut resampler = ResizeRows {
            placement,
            crop: placement.crop,
            width,
            height,
            step,
            // Lanczos3 reaches 3 source rows each side, stretched when shrinking (as
            // fast_image_resize's adaptive kernel does).
            radius,
            source,
            needed: (0, 0),
            window: Vec::new(),
            layout,
            window_start: 0,
            group_rows,
            done: 0,
            out: Pixels::new(width, height, layout)?,
            resizer: Resizer::new(),
        };
        resampler.needed = (resampler.reach(0).0, resampler.reach(height.saturating_sub(1)).1);
        resampler.window_start = resampler.needed.0;
        // The most rows the window ever holds: one group's reach plus the band that completes
        // it. Reserved once, so it does not grow by doubling to twice that.
        let reach = (f64::from(group_rows) * step + 2.0 * radius).ceil() as u32 + 2 + BAND_ROWS as u32;
        let most = reach.min(resampler.needed.1 - resampler.needed.0) as usize;
        resampler.window.try_reserve_exact(most * resampler.source_row_bytes()).map_err(|_| {
            ImageError::ResourceLimit(format!("cannot allocate a window of {most} rows of {} pixels", source.0))
        })?;
        Ok(resampler)
    }

    fn source_row_bytes(&self) -> usize {
        self.source.0 as usize * self.layout.channels()
    }

    fn window_rows(&self) -> u32 {
        (self.window.len() / self.source_row_bytes()) as u32
    }

    /// The source rows [first, end) output row `row`'s filter reaches, exactly as
    /// fast_image_resize bounds them (clamped to the image, not to the crop).
    fn reach(&self, row: u32) -> (u32, u32) {
        let centre = self.crop.top + (f64::from(row) + 0.5) * self.step;
        let first = (centre - self.radius).floor().max(0.0) as u32;
        let end = ((centre + self.radius).ceil().min(f64::from(self.source.1))) as u32;
        (first.min(end), end)
    }

    /// Resample every group of output rows whose source rows are all in the window.
    fn resample_ready(&mut self) -> Result<()> {
        while self.done < self.height {
            let group_end = (self.done + self.group_rows).min(self.height);
            if self.reach(group_end - 1).1 > self.window_start + self.window_rows() {
                break;
            }
            self.resample(group_end)?;
        }
        Ok(())
    }

    /// Resample output rows [done, group_end) from the window, then drop the source rows no
    /// later output row reaches.
    fn resample(&mut self, group_end: u32) -> Result<()> {
        let rows = group_end - self.done;
        let (row_bytes, window_rows) = (self.width as usize * self.layout.channels(), self.window_rows());
        let pixel_type = pixel_type(self.layout)?;
        let src = ImageRef::new(self.source.0, window_rows, &self.window, pixel_type).map_err(internal)?;
        let at = self.done as usize * row_bytes;
        let out = &mut self.out.data[at..at + rows as usize * row_bytes];
        let mut dst = Image::from_slice_u8(self.width, rows, out, pixel_type).map_err(internal)?;
        let top = self.crop.top + f64::from(self.done) * self.step - f64::from(self.window_start);
        // Where the crop ends at the image's last row, rounding must not put it past the window.
        let height = (f64::from(rows) * self.step).min(f64::from(window_rows) - top);
        lanczos3(&mut self.resizer, &src, &mut dst, (self.crop.left, top, self.crop.width, height))?;
        self.done = group_end;
        if self.done < self.height {
            let keep_from = self.reach(self.done).0.max(self.window_start);
            self.window.drain(..(keep_from - self.window_start) as usize * self.source_row_bytes());
            self.window_start = keep_from;
        }
        Ok(())
    }

    fn resampled(self) -> Result<Pixels> {
        if self.done < self.height {
            return Err(ImageError::Internal(format!("{} of {} output rows were resampled", self.done, self.height)));
        }
        Ok(self.out)
    }
}

impl WindowOp for ResizeRows {
    fn needed(&self) -> (u32, u32) {
        self.needed
    }

    fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.window
    }

    fn rows_added(&mut self) -> Result<()> {
        self.resample_ready()
    }

    fn finish(self: Box<Self>, transparent: bool) -> Result<Pixels> {
        let placement = self.placement;
        let scaled = self.resampled()?;
        // As on the whole frame, where the decoder drops it: an alpha channel opaque everywhere
        // goes before the letterbox, which is then black.
        let scaled = if transparent { scaled } else { scaled.drop_opaque_alpha() };
        placement.letterbox(scaled)
    }
}
