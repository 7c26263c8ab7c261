//! A PNG decoder that hands out rows top to bottom (the png crate's row API) as 8-bit RGB or
//! RGBA, the samples the whole-frame path (the image crate) produces: palettes and tRNS
//! expanded, grey widened to RGB, 16-bit samples rounded to 8 bits. Renders resample each band
//! as it arrives (the engine) and ingest's check reads one band at a time, so neither
//! holds the decoded frame.
//!
//! Interlaced (Adam7) PNGs deliver their rows pass by pass, the whole image seven times over at
//! growing detail, so they are not streamed: [`PngRows::start`] says so and the caller decodes
//! the whole frame.

use crate::error::{classify_png, ImageError, Result};
use crate::frame::{Header, Rows};
use crate::limits::Limits;
use crate::pixels::Layout;
use crate::probe::Probe;
use std::io::Cursor;

/// Start decoding a PNG row by row; `None` if it is interlaced (its rows come pass by pass).
pub(crate) fn rows<'a>(data: &'a [u8], probe: &Probe, limits: &Limits) -> Result<Option<(PngRows<'a>, Header)>> {
    let Some((rows, icc)) =
        PngRows::start(data, usize::try_from(super::generic::alloc_limit(limits)).unwrap_or(usize::MAX))?
    else {
        return Ok(None);
    };
    let size = rows.size();
    if size != (probe.stored_width, probe.stored_height) {
        return Err(ImageError::header_mismatch((probe.stored_width, probe.stored_height), size));
    }
    Ok(Some((rows, Header { orientation: probe.orientation, icc, cmyk_inverted: false })))
}

pub(crate) struct PngRows<'a> {
    reader: png::Reader<Cursor<&'a [u8]>>,
    width: u32,
    height: u32,
    layout: Layout,
    /// Rows handed out so far.
    row: u32,
    /// Samples per pixel, and whether each is 16 bits, as the png crate hands them out.
    samples: usize,
    sixteen: bool,
    /// One row as the png crate hands it out.
    raw: Vec<u8>,
}

impl<'a> PngRows<'a> {
    /// Read the header; `None` for an interlaced PNG. `max_bytes` bounds the png crate's own
    /// buffers (compressed text, ICC profile), as it does on the whole-frame path.
    pub(crate) fn start(data: &'a [u8], max_bytes: usize) -> Result<Option<(PngRows<'a>, Option<Vec<u8>>)>> {
        let mut decoder = png::Decoder::new_with_limits(Cursor::new(data), png::Limits { bytes: max_bytes });
        // The image crate's choice too: palettes, tRNS and 1/2/4-bit samples expand to 8 bits;
        // 16-bit samples stay 16 bits and are rounded below (png's STRIP_16 truncates).
        decoder.set_transformations(png::Transformations::EXPAND);
        let reader = decoder.read_info().map_err(classify_png)?;
        let info = reader.info();
        if info.interlaced {
            return Ok(None);
        }
        let (width, height) = (info.width, info.height);
        let icc = info.icc_profile.as_ref().map(|p| p.to_vec()).filter(|p| !p.is_empty());
        let (colour, depth) = reader.output_color_type();
        let samples = colour.samples();
        let layout = match colour {
            png::ColorType::GrayscaleAlpha | png::ColorType::Rgba => Layout::Rgba8,
            _ => Layout::Rgb8,
        };
        let sixteen = depth == png::BitDepth::Sixteen;
        let raw_len = reader
            .output_line_size(width)
            .ok_or_else(|| ImageError::ResourceLimit(format!("a {width} pixel row does not fit in memory")))?;
        let rows = PngRows { reader, width, height, layout, row: 0, samples, sixteen, raw: vec![0; raw_len] };
        Ok(Some((rows, icc)))
    }

    /// The next row into `raw`, as the png crate hands it out; `None` past the last.
    fn next_raw_row(&mut self) -> Result<Option<png::InterlaceInfo>> {
        let mut raw = std::mem::take(&mut self.raw);
        let got = self.reader.read_row(&mut raw).map_err(classify_png);
        self.raw = raw;
        got
    }

    /// Widen one row from the png crate's samples to 8-bit RGB or RGBA.
    fn widen(&self, out: &mut [u8]) {
        let channels = self.layout.channels();
        if !self.sixteen && self.samples == channels {
            // RGB and RGBA at 8 bits, most PNGs: already what the pipeline takes.
            out.copy_from_slice(&self.raw[..out.len()]);
            return;
        }
        let bytes = if self.sixteen { 2 } else { 1 };
        // The image crate's rounding: round(v × 255 / 65535).
        let sample = |px: &[u8], i: usize| -> u8 {
            if self.sixteen {
                ((u32::from(u16::from_be_bytes([px[2 * i], px[2 * i + 1]])) + 128) / 257) as u8
            } else {
                px[i]
            }
        };
        for (px, out) in self.raw.chunks_exact(self.samples * bytes).zip(out.chunks_exact_mut(channels)) {
            match self.samples {
                1 => out.fill(sample(px, 0)),
                2 => {
                    out[..3].fill(sample(px, 0));
                    out[3] = sample(px, 1);
                }
                _ => (0..channels).for_each(|i| out[i] = sample(px, i)),
            }
        }
    }
}

impl Rows for PngRows<'_> {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn layout(&self) -> Layout {
        self.layout
    }

    fn row(&self) -> u32 {
        self.row
    }

    fn read(&mut self, band: &mut [u8]) -> Result<u32> {
        let row_bytes = self.row_bytes();
        let mut read = 0;
        for out in band.chunks_exact_mut(row_bytes) {
            if self.row == self.height {
                break;
            }
            if self.next_raw_row()?.is_none() {
                return Err(ImageError::truncated("the image data ends early"));
            }
            self.widen(out);
            self.row += 1;
            read += 1;
            if self.row == self.height {
                // Past the last row the png crate reads the rest of the image data and checks
                // it, as it does at the end of a whole-frame decode.
                self.next_raw_row()?;
            }
        }
        Ok(read)
    }
}
