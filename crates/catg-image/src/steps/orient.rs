//! Orient: apply the EXIF orientation so the pixels are upright.

use super::Frame;
use crate::error::Result;
use crate::pixels::Pixels;
use crate::probe::Orientation;

pub(crate) fn apply(frame: Frame) -> Result<Frame> {
    if frame.orientation == Orientation::Normal {
        return Ok(frame);
    }
    let pixels = orient(&frame.pixels, frame.orientation)?;
    Ok(Frame { pixels, orientation: Orientation::Normal, ..frame })
}

pub(crate) fn orient(src: &Pixels, orientation: Orientation) -> Result<Pixels> {
    let (w, h) = (src.width as usize, src.height as usize);
    let (ow, oh) = if orientation.swaps_axes() { (h, w) } else { (w, h) };
    let mut out = Pixels::new(ow as u32, oh as u32, src.layout)?;
    let ch = src.channels();
    // For each output pixel, the stored pixel it comes from.
    let source = |x: usize, y: usize| -> (usize, usize) {
        match orientation {
            Orientation::Normal => (x, y),
            Orientation::FlipHorizontal => (w - 1 - x, y),
            Orientation::Rotate180 => (w - 1 - x, h - 1 - y),
            Orientation::FlipVertical => (x, h - 1 - y),
            Orientation::Transpose => (y, x),
            Orientation::Rotate90 => (y, h - 1 - x),
            Orientation::Transverse => (w - 1 - y, h - 1 - x),
            Orientation::Rotate270 => (w - 1 - y, x),
        }
    };
    for (y, row) in out.data.chunks_exact_mut(ow * ch).enumerate() {
        for (x, px) in row.chunks_exact_mut(ch).enumerate() {
            let (sx, sy) = source(x, y);
            let at = (sy * w + sx) * ch;
            px.copy_from_slice(&src.data[at..at + ch]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::Layout;

    /// A 3×2 image whose pixels are numbered 1..=6 row by row (in the red channel).
    fn numbered() -> Pixels {
        let data = (1..=6u8).flat_map(|n| [n, 0, 0]).collect();
        Pixels::from_vec(3, 2, Layout::Rgb8, data).expect("size")
    }

    fn reds(p: &Pixels) -> Vec<u8> {
        p.data.chunks_exact(3).map(|px| px[0]).collect()
    }

    #[test]
    fn all_eight_orientations() {
        // Stored:  1 2 3
        //          4 5 6
        let cases: [(u16, (u32, u32), [u8; 6]); 8] = [
            (1, (3, 2), [1, 2, 3, 4, 5, 6]),
            (2, (3, 2), [3, 2, 1, 6, 5, 4]),
            (3, (3, 2), [6, 5, 4, 3, 2, 1]),
            (4, (3, 2), [4, 5, 6, 1, 2, 3]),
            (5, (2, 3), [1, 4, 2, 5, 3, 6]),
            (6, (2, 3), [4, 1, 5, 2, 6, 3]),
            (7, (2, 3), [6, 3, 5, 2, 4, 1]),
            (8, (2, 3), [3, 6, 2, 5, 1, 4]),
        ];
        for (value, size, expected) in cases {
            let out = orient(&numbered(), Orientation::from_exif(value)).expect("orient");
            assert_eq!((out.width, out.height), size, "orientation {value}");
            assert_eq!(reds(&out), expected, "orientation {value}");
        }
    }
}
