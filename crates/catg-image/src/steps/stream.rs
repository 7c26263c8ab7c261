//! Decode → colour → resize band by band, for decoders that hand out rows (JPEG, and PNG unless
//! interlaced): the same
//! steps in the same order as on a whole frame, but the full-size frame never exists. Memory is
//! a window of source rows (~2 MB: as many as one group of output rows' filter reaches) and the
//! output.
//!
//! Each band of rows is converted to sRGB as it arrives and joins the window; once every source
//! row that the next group of output rows reaches is in, the group is resampled (both passes)
//! and the rows no later group reaches leave the window. An output row's filter reaches the same
//! source rows it would in the whole frame, so the result matches the whole-frame path (see the
//! pipeline's tests).

use super::colour::ToSrgb;
use super::resize::{internal, lanczos3, pixel_type, Placement};
use super::{Context, Frame};
use crate::error::{ImageError, Result};
use crate::geometry::Region;
use crate::limits::Deadline;
use crate::pixels::{any_transparent, Layout, Pixels};
use crate::probe::Orientation;
use fast_image_resize::{images::Image, images::ImageRef, Resizer};

/// A decoder that hands out rows top to bottom.
pub(crate) trait Rows {
    /// The decoded size (after any shrink-on-load).
    fn size(&self) -> (u32, u32);
    /// The samples handed out: `Rgb8`, `Rgba8`, or `Cmyk8` (CMYK and YCCK JPEGs).
    fn layout(&self) -> Layout;
    /// Rows handed out so far.
    fn row(&self) -> u32;
    /// Decode the next rows into `band` (whole rows of `row_bytes()`); returns how many were
    /// written, 0 once the image is done. At the end the rest of the image data is read and
    /// checked too, so damage after the last row is still found.
    fn read(&mut self, band: &mut [u8]) -> Result<u32>;

    /// Decode every remaining row into `out` (as many as fit, or to the end of the image).
    fn read_all(&mut self, out: &mut [u8]) -> Result<()> {
        let mut filled = 0;
        while filled < out.len() {
            let read = self.read(&mut out[filled..])?;
            if read == 0 {
                break;
            }
            filled += read as usize * self.row_bytes();
        }
        Ok(())
    }

    fn row_bytes(&self) -> usize {
        self.size().0 as usize * self.layout().channels()
    }
}

/// Rows asked of the decoder at a time: libjpeg's tallest iMCU row (4:2:0 at full scale).
pub(crate) const BAND_ROWS: usize = 16;
/// How many source rows the window is sized for, in bytes: output rows are resampled in groups
/// whose source rows fit in it (at least 64 output rows a group). Each resampler call computes
/// its horizontal filter weights again (fast_image_resize keeps none between calls): 16-row
/// groups spent 20% of a 1200 px render on that, 64-row groups 9% of a 2.5 MP one, 2 MB windows
/// (~220 rows there) a third of that.
const WINDOW_BYTES: usize = 2 << 20;
const MIN_GROUP_ROWS: u32 = 64;

/// What the decoder learned from the header that the later steps apply.
pub(crate) struct Header {
    pub(crate) orientation: Orientation,
    pub(crate) icc: Option<Vec<u8>>,
    pub(crate) cmyk_inverted: bool,
}

/// Decode `rows`, convert to sRGB and resize per `ctx`, a band at a time; returns the resized
/// (and letterboxed) frame, still in stored axes with its orientation to apply.
///
/// As on the whole-frame path, an alpha channel that is opaque everywhere is dropped (so the
/// letterbox is black, not transparent, and encoders get RGB); everywhere means the whole
/// source, cropped-away rows included.
pub(crate) fn decode_colour_resize(
    mut rows: impl Rows,
    header: Header,
    ctx: &Context<'_>,
    deadline: &Deadline,
) -> Result<Frame> {
    let (size, layout) = (rows.size(), rows.layout());
    let placement = Placement::of(size, header.orientation, ctx);
    let to_srgb = ToSrgb::new(layout, header.icc.as_deref(), header.cmyk_inverted)?;
    // CMYK becomes RGB in the colour conversion; alpha stays.
    let window_layout = if layout == Layout::Rgba8 { Layout::Rgba8 } else { Layout::Rgb8 };
    let mut resampler = Resampler::new(&placement, size, window_layout)?;
    let row_bytes = rows.row_bytes();
    let mut band = vec![0u8; BAND_ROWS * row_bytes];
    let mut transparent = false;
    loop {
        let first = rows.row();
        let count = rows.read(&mut band)?;
        if count == 0 {
            break;
        }
        if layout == Layout::Rgba8 && !transparent {
            transparent = any_transparent(&band[..count as usize * row_bytes]);
        }
        // Rows no output row's filter reaches (above or below a crop) are decoded, not kept.
        let (lo, hi) = (first.max(resampler.needed.0), (first + count).min(resampler.needed.1));
        if lo < hi {
            let kept = &band[(lo - first) as usize * row_bytes..(hi - first) as usize * row_bytes];
            to_srgb.append_converted(kept, &mut resampler.window);
            resampler.resample_ready()?;
        }
        deadline.check("decode")?;
    }
    let scaled = resampler.finish()?;
    let scaled = if transparent { scaled } else { scaled.drop_opaque_alpha() };
    let pixels = placement.letterbox(scaled)?;
    Ok(Frame { pixels, orientation: header.orientation, icc: None, cmyk_inverted: false })
}

/// The resampler, fed sRGB source rows in order.
struct Resampler {
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

impl Resampler {
    fn new(placement: &Placement, source: (u32, u32), layout: Layout) -> Result<Resampler> {
        let (width, height) = placement.scaled;
        let step = placement.crop.height / f64::from(height.max(1));
        let radius = 3.0 * step.max(1.0);
        let window_rows = (WINDOW_BYTES / (source.0 as usize * layout.channels()).max(1)) as f64;
        let group_rows = ((window_rows - 2.0 * radius) / step).max(f64::from(MIN_GROUP_ROWS)) as u32;
        let mut resampler = Resampler {
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

    fn finish(self) -> Result<Pixels> {
        if self.done < self.height {
            return Err(ImageError::Internal(format!("{} of {} output rows were resampled", self.done, self.height)));
        }
        Ok(self.out)
    }
}
