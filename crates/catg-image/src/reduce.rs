//! Small images for looking at, not for showing: the frame box-averaged down to a few dozen or
//! hundred pixels a side, for the smart crop's analysis and ingest's placeholder and hashes.

use crate::pixels::{Layout, Pixels};

/// The frame (RGB or RGBA, sRGB) box-averaged down to at most `max_side` pixels a side, keeping
/// its aspect ratio, as RGBA whose colour is premultiplied by alpha (a transparent pixel lends
/// no colour to its cell). `None` for an empty frame.
pub(crate) fn box_average(frame: &Pixels, max_side: u32) -> Option<Pixels> {
    let mut averager = BoxAverager::new(frame.width, frame.height, frame.layout, max_side)?;
    averager.push(&frame.data);
    averager.finish()
}

/// [`box_average`] over rows handed in top to bottom, so a streamed decode is averaged without
/// ever holding its frame. CMYK samples are averaged as they are (four plain channels) and come
/// out as CMYK, for the colour step to convert.
pub(crate) struct BoxAverager {
    width: usize,
    height: usize,
    out: (usize, usize),
    layout: Layout,
    /// The columns each cell spans (cell = x · out width / width), worked out once, so a row's
    /// pixels are summed in registers a cell at a time.
    spans: Vec<(usize, usize)>,
    /// Per cell: the four channel sums and the pixel count. u32 holds any cell: the side is
    /// capped far below 2^32 / 255 pixels per cell.
    sums: Vec<[u32; 5]>,
    /// Rows are added up column by column into a band (plain vector adds) until the band's row
    /// of cells is complete; only then is the band summed cell by cell.
    band: Vec<u32>,
    band_rows: u32,
    /// Rows pushed so far.
    row: usize,
}

impl BoxAverager {
    pub(crate) fn new(width: u32, height: u32, layout: Layout, max_side: u32) -> Option<BoxAverager> {
        let (w, h) = (width as usize, height as usize);
        if w == 0 || h == 0 || max_side == 0 {
            return None;
        }
        let factor = (w.max(h) as f64 / f64::from(max_side)).max(1.0);
        let (ow, oh) = (((w as f64 / factor).round() as usize).max(1), ((h as f64 / factor).round() as usize).max(1));
        let mut spans = vec![(0, 0); ow];
        for x in 0..w {
            let cell = (x * ow / w).min(ow - 1);
            spans[cell] = if spans[cell].1 == 0 { (x, x + 1) } else { (spans[cell].0, x + 1) };
        }
        Some(BoxAverager {
            width: w,
            height: h,
            out: (ow, oh),
            layout,
            spans,
            sums: vec![[0; 5]; ow * oh],
            band: vec![0; w * 4],
            band_rows: 0,
            row: 0,
        })
    }

    /// Add whole rows (of the layout given to `new`); rows past the last are ignored.
    pub(crate) fn push(&mut self, rows: &[u8]) {
        let channels = self.layout.channels();
        for row in rows.chunks_exact(self.width * channels) {
            if self.row == self.height {
                return;
            }
            match self.layout {
                Layout::Rgba8 => {
                    for (acc, pixel) in self.band.chunks_exact_mut(4).zip(row.chunks_exact(4)) {
                        let alpha = u32::from(pixel[3]);
                        for c in 0..3 {
                            acc[c] += (u32::from(pixel[c]) * alpha + 127) / 255;
                        }
                        acc[3] += alpha;
                    }
                }
                Layout::Cmyk8 => {
                    for (acc, pixel) in self.band.chunks_exact_mut(4).zip(row.chunks_exact(4)) {
                        for c in 0..4 {
                            acc[c] += u32::from(pixel[c]);
                        }
                    }
                }
                Layout::Rgb8 => {
                    for (acc, pixel) in self.band.chunks_exact_mut(4).zip(row.chunks_exact(3)) {
                        for c in 0..3 {
                            acc[c] += u32::from(pixel[c]);
                        }
                        acc[3] += 255;
                    }
                }
            }
            self.band_rows += 1;
            let (y, (ow, oh)) = (self.row, self.out);
            let oy = (y * oh / self.height).min(oh - 1);
            if y + 1 == self.height || ((y + 1) * oh / self.height).min(oh - 1) != oy {
                let rows = self.band_rows;
                for (sum, &(from, to)) in self.sums[oy * ow..][..ow].iter_mut().zip(&self.spans) {
                    for pixel in self.band[from * 4..to * 4].chunks_exact(4) {
                        for c in 0..4 {
                            sum[c] += pixel[c];
                        }
                    }
                    sum[4] += (to - from) as u32 * rows;
                }
                self.band.fill(0);
                self.band_rows = 0;
            }
            self.row += 1;
        }
    }

    /// The averages: premultiplied RGBA, or CMYK for CMYK rows. Rows never pushed count as
    /// transparent black (empty cells average to zero).
    pub(crate) fn finish(self) -> Option<Pixels> {
        let (ow, oh) = self.out;
        // One reciprocal per cell rather than four integer divisions.
        let mut data = Vec::with_capacity(ow * oh * 4);
        for sum in &self.sums {
            let scale = 1.0 / sum[4].max(1) as f32;
            data.extend([0, 1, 2, 3].map(|c| (sum[c] as f32 * scale) as u8));
        }
        let layout = if self.layout == Layout::Cmyk8 { Layout::Cmyk8 } else { Layout::Rgba8 };
        Pixels::from_vec(ow as u32, oh as u32, layout, data).ok()
    }
}

impl Pixels {
    /// Premultiplied RGBA (as [`box_average`] makes) as RGB: transparent areas become black.
    pub(crate) fn premultiplied_rgb(&self) -> Pixels {
        let data = self.data.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
        Pixels { width: self.width, height: self.height, layout: Layout::Rgb8, data }
    }

    /// Premultiplied RGBA (as [`box_average`] makes) back to straight alpha.
    pub(crate) fn unpremultiplied(&self) -> Pixels {
        let data = self
            .data
            .chunks_exact(4)
            .flat_map(|p| {
                let alpha = u32::from(p[3]);
                let straight =
                    |c: u8| (u32::from(c) * 255 + alpha / 2).checked_div(alpha).map_or(0, |v| v.min(255) as u8);
                [straight(p[0]), straight(p[1]), straight(p[2]), p[3]]
            })
            .collect();
        Pixels { width: self.width, height: self.height, layout: Layout::Rgba8, data }
    }
}
