//! What flows between the pipeline's stages: a whole [`Frame`], or [`Rows`] handed out top to
//! bottom with their [`Header`], and the [`Context`] every transform may consult.

use crate::error::Result;
use crate::geometry::Geometry;
use crate::pixels::{Layout, Pixels};
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

/// What a frame carries besides its pixels, for rows that are handed out before the frame
/// exists (the same fields as [`Frame`]'s).
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub(crate) orientation: Orientation,
    pub(crate) icc: Option<Vec<u8>>,
    pub(crate) cmyk_inverted: bool,
}

impl Frame {
    pub(crate) fn from_parts(pixels: Pixels, header: Header) -> Frame {
        Frame { pixels, orientation: header.orientation, icc: header.icc, cmyk_inverted: header.cmyk_inverted }
    }
}

/// What the transforms may consult.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub(crate) geometry: &'a Geometry,
    /// Size of the source after orientation, in which `geometry` is expressed (the frame itself
    /// stays in stored axes until the orient step).
    pub(crate) oriented_size: (u32, u32),
    pub(crate) effects: &'a crate::Effects,
}

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

/// Rows asked of a decoder at a time: libjpeg's tallest iMCU row (4:2:0 at full scale).
pub(crate) const BAND_ROWS: usize = 16;

/// A row-by-row transform's form for rows: converts rows as they arrive.
pub(crate) trait RowOp {
    /// The layout of the rows it gives.
    fn layout(&self) -> Layout;
    /// Convert whole rows of the layout it was made for, appending them to `out`.
    fn append(&self, rows: &[u8], out: &mut Vec<u8>);
}

/// A windowed transform's form for rows: takes source rows in order, gives its whole
/// output at the end.
pub(crate) trait WindowOp {
    /// The source rows [first, end) it reads; the others are decoded and dropped.
    fn needed(&self) -> (u32, u32);
    /// Where the next needed rows are appended, in order from `needed().0`.
    fn buffer(&mut self) -> &mut Vec<u8>;
    /// Work on the rows appended since the last call.
    fn rows_added(&mut self) -> Result<()>;
    /// The output, once every needed row is in. `transparent`: whether any source pixel was
    /// not fully opaque (otherwise an alpha channel is dropped, as decoders do on a frame).
    fn finish(self: Box<Self>, transparent: bool) -> Result<Pixels>;
}
