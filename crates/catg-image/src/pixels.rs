//! Decoded pixels: interleaved 8-bit samples in one of three layouts.

use crate::error::{ImageError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Rgb8,
    Rgba8,
    /// Only between decode and the colour step, which converts it to RGB.
    Cmyk8,
}

impl Layout {
    pub fn channels(self) -> usize {
        match self {
            Layout::Rgb8 => 3,
            Layout::Rgba8 | Layout::Cmyk8 => 4,
        }
    }
}

/// Whether RGBA samples hold a pixel that is not fully opaque: the one test of real alpha, for
/// whole frames and for the bands a streamed decode hands out.
pub(crate) fn any_transparent(rgba: &[u8]) -> bool {
    rgba.chunks_exact(4).any(|p| p[3] != 255)
}

#[derive(Clone, PartialEq, Eq)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub layout: Layout,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Pixels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pixels({}x{} {:?})", self.width, self.height, self.layout)
    }
}

impl Pixels {
    /// A zeroed buffer. Fails cleanly (rather than aborting) if the allocation is refused.
    pub fn new(width: u32, height: u32, layout: Layout) -> Result<Pixels> {
        let len = (width as usize)
            .checked_mul(height as usize)
            .and_then(|n| n.checked_mul(layout.channels()))
            .ok_or_else(|| ImageError::ResourceLimit(format!("{width}x{height} does not fit in memory")))?;
        let mut data = Vec::new();
        data.try_reserve_exact(len).map_err(|_| {
            ImageError::ResourceLimit(format!("cannot allocate {len} bytes for {width}x{height} pixels"))
        })?;
        data.resize(len, 0);
        Ok(Pixels { width, height, layout, data })
    }

    pub fn from_vec(width: u32, height: u32, layout: Layout, data: Vec<u8>) -> Result<Pixels> {
        if data.len() != width as usize * height as usize * layout.channels() {
            return Err(ImageError::Internal(format!("{} bytes for {width}x{height} {layout:?}", data.len())));
        }
        Ok(Pixels { width, height, layout, data })
    }

    pub fn channels(&self) -> usize {
        self.layout.channels()
    }

    /// True if some pixel is not fully opaque.
    pub fn has_transparency(&self) -> bool {
        self.layout == Layout::Rgba8 && any_transparent(&self.data)
    }

    /// Drop an alpha channel that is opaque everywhere: smaller, faster encodes, and `has_alpha`
    /// then means what users expect.
    pub fn drop_opaque_alpha(self) -> Pixels {
        if self.layout != Layout::Rgba8 || self.has_transparency() {
            return self;
        }
        let data = self.data.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
        Pixels { width: self.width, height: self.height, layout: Layout::Rgb8, data }
    }

    /// This image on a `canvas`-sized one at `offset`, the rest filled with `background`; without
    /// one, zeros: opaque black for RGB, transparent for RGBA. A background that is not opaque
    /// gives the canvas an alpha channel.
    pub fn placed_on(&self, canvas: (u32, u32), offset: (u32, u32), background: Option<crate::Rgba>) -> Result<Pixels> {
        if background.is_some_and(|bg| bg[3] != 255) && self.layout == Layout::Rgb8 {
            let data = self.data.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
            let with_alpha = Pixels::from_vec(self.width, self.height, Layout::Rgba8, data)?;
            return with_alpha.placed_on(canvas, offset, background);
        }
        let mut out = Pixels::new(canvas.0, canvas.1, self.layout)?;
        let ch = self.channels();
        if let Some(bg) = background {
            for pixel in out.data.chunks_exact_mut(ch) {
                pixel.copy_from_slice(&bg[..ch]);
            }
        }
        let row = self.width as usize * ch;
        let canvas_row = canvas.0 as usize * ch;
        for (y, src) in self.data.chunks_exact(row).enumerate() {
            let at = (offset.1 as usize + y) * canvas_row + offset.0 as usize * ch;
            out.data[at..at + row].copy_from_slice(src);
        }
        Ok(out)
    }

    /// Composite onto an opaque background (for formats without alpha).
    pub fn flatten(self, background: [u8; 3]) -> Pixels {
        if self.layout != Layout::Rgba8 {
            return self;
        }
        let blend = |c: u8, bg: u8, a: u8| -> u8 {
            let (c, bg, a) = (u32::from(c), u32::from(bg), u32::from(a));
            ((c * a + bg * (255 - a) + 127) / 255) as u8
        };
        let data = self
            .data
            .chunks_exact(4)
            .flat_map(|p| {
                [blend(p[0], background[0], p[3]), blend(p[1], background[1], p[3]), blend(p[2], background[2], p[3])]
            })
            .collect();
        Pixels { width: self.width, height: self.height, layout: Layout::Rgb8, data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_alpha_is_dropped_and_real_alpha_kept() {
        let opaque = Pixels::from_vec(1, 2, Layout::Rgba8, vec![1, 2, 3, 255, 4, 5, 6, 255]).expect("size");
        assert_eq!(opaque.drop_opaque_alpha().data, vec![1, 2, 3, 4, 5, 6]);
        let clear = Pixels::from_vec(1, 1, Layout::Rgba8, vec![1, 2, 3, 0]).expect("size");
        assert_eq!(clear.clone().drop_opaque_alpha(), clear);
    }

    #[test]
    fn flatten_blends_onto_the_background() {
        let half = Pixels::from_vec(1, 1, Layout::Rgba8, vec![0, 0, 0, 128]).expect("size");
        assert_eq!(half.flatten([255, 255, 255]).data, vec![127, 127, 127]);
    }
}
