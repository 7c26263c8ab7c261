//! Small images for looking at, not for showing: the frame box-averaged down to a few dozen or
//! hundred pixels a side, for the smart crop's analysis and ingest's placeholder and hashes.

use crate::pixels::{Layout, Pixels};

/// The frame (RGB or RGBA, sRGB) box-averaged down to at most `max_side` pixels a side, keeping
/// its aspect ratio, as RGBA whose colour is premultiplied by alpha (a transparent pixel lends
/// no colour to its cell). `None` for an empty frame.
pub(crate) fn box_average(frame: &Pixels, max_side: u32) -> Option<Pixels> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    if w == 0 || h == 0 || max_side == 0 {
        return None;
    }
    let factor = (w.max(h) as f64 / f64::from(max_side)).max(1.0);
    let (ow, oh) = (((w as f64 / factor).round() as usize).max(1), ((h as f64 / factor).round() as usize).max(1));
    let channels = frame.channels();
    // The columns each cell spans (cell = x · ow / w), worked out once, so a row's pixels are
    // summed in registers a cell at a time.
    let mut spans = vec![(0, 0); ow];
    for x in 0..w {
        let cell = (x * ow / w).min(ow - 1);
        spans[cell] = if spans[cell].1 == 0 { (x, x + 1) } else { (spans[cell].0, x + 1) };
    }
    // Rows are added up column by column into a band (plain vector adds) until the band's row
    // of cells is complete; only then is the band summed cell by cell. u32 sums hold any cell:
    // the side is capped far below 2^32 / 255 pixels per cell.
    let mut sums = vec![[0u32; 5]; ow * oh];
    let mut band = vec![0u32; w * 4];
    let mut band_rows = 0;
    let mut flush = |band: &mut [u32], rows: u32, oy: usize| {
        for (sum, &(from, to)) in sums[oy * ow..][..ow].iter_mut().zip(&spans) {
            for pixel in band[from * 4..to * 4].chunks_exact(4) {
                for c in 0..4 {
                    sum[c] += pixel[c];
                }
            }
            sum[4] += (to - from) as u32 * rows;
        }
        band.fill(0);
    };
    for (y, row) in frame.data.chunks_exact(w * channels).enumerate() {
        if channels == 4 {
            for (acc, pixel) in band.chunks_exact_mut(4).zip(row.chunks_exact(4)) {
                let alpha = u32::from(pixel[3]);
                for c in 0..3 {
                    acc[c] += (u32::from(pixel[c]) * alpha + 127) / 255;
                }
                acc[3] += alpha;
            }
        } else {
            for (acc, pixel) in band.chunks_exact_mut(4).zip(row.chunks_exact(3)) {
                for c in 0..3 {
                    acc[c] += u32::from(pixel[c]);
                }
                acc[3] += 255;
            }
        }
        band_rows += 1;
        let oy = (y * oh / h).min(oh - 1);
        if y + 1 == h || ((y + 1) * oh / h).min(oh - 1) != oy {
            flush(&mut band, band_rows, oy);
            band_rows = 0;
        }
    }
    // One reciprocal per cell rather than four integer divisions.
    let mut data = Vec::with_capacity(ow * oh * 4);
    for sum in &sums {
        let scale = 1.0 / sum[4].max(1) as f32;
        data.extend([0, 1, 2, 3].map(|c| (sum[c] as f32 * scale) as u8));
    }
    Pixels::from_vec(ow as u32, oh as u32, Layout::Rgba8, data).ok()
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
