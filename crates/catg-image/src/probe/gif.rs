//! GIF header: the logical screen, then a walk over every block to count frames.

use super::{reader::Bytes, still, Probe};
use crate::error::{ImageError, Result};
use crate::format::InputFormat;
use crate::limits::Limits;

pub(crate) fn probe(data: &[u8], limits: &Limits) -> Result<Probe> {
    let bytes = Bytes::new(data, "the GIF is cut short");
    let mut probe = still(InputFormat::Gif, u32::from(bytes.le16(6)?), u32::from(bytes.le16(8)?));
    probe.frames = 0;
    let mut pos = 13 + colour_table_len(bytes.u8(10)?);
    loop {
        // A GIF whose trailer is missing after whole frames is common and harmless.
        if pos >= bytes.len() && probe.frames > 0 {
            break;
        }
        match bytes.u8(pos)? {
            0x3B => break,
            0x21 => {
                let label = bytes.u8(pos + 1)?;
                if label == 0xF9 && bytes.u8(pos + 2)? >= 4 && bytes.u8(pos + 3)? & 1 == 1 {
                    probe.has_alpha = true;
                }
                pos = skip_sub_blocks(bytes, pos + 2)?;
            }
            0x2C => {
                probe.frames += 1;
                if probe.frames > limits.max_frames {
                    return Err(ImageError::TooManyFrames { limit: limits.max_frames });
                }
                let (w, h) = (u64::from(bytes.le16(pos + 5)?), u64::from(bytes.le16(pos + 7)?));
                if w * h > limits.max_pixels {
                    return Err(ImageError::TooManyPixels {
                        width: w,
                        height: h,
                        pixels: w * h,
                        limit: limits.max_pixels,
                    });
                }
                // Descriptor (10 bytes), local colour table, LZW minimum code size, then data.
                pos = skip_sub_blocks(bytes, pos + 10 + colour_table_len(bytes.u8(pos + 9)?) + 1)?;
            }
            other => return Err(ImageError::corrupt(format!("unknown GIF block 0x{other:02X}"))),
        }
    }
    if probe.frames == 0 {
        return Err(ImageError::corrupt("the GIF has no image"));
    }
    Ok(probe)
}

fn colour_table_len(flags: u8) -> usize {
    if flags & 0x80 == 0 {
        0
    } else {
        3 << ((flags & 7) + 1)
    }
}

/// Skip a chain of length-prefixed sub-blocks ending in a zero-length block.
fn skip_sub_blocks(bytes: Bytes<'_>, mut pos: usize) -> Result<usize> {
    loop {
        let len = usize::from(bytes.u8(pos)?);
        pos += 1 + len;
        if len == 0 {
            return Ok(pos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gif(frames: usize, transparent: bool) -> Vec<u8> {
        let mut out = b"GIF89a".to_vec();
        out.extend_from_slice(&[4, 0, 3, 0, 0x80, 0, 0]);
        out.extend_from_slice(&[0; 6]);
        for _ in 0..frames {
            out.extend_from_slice(&[0x21, 0xF9, 4, u8::from(transparent), 0, 0, 0, 0]);
            out.extend_from_slice(&[0x2C, 0, 0, 0, 0, 4, 0, 3, 0, 0, 2, 2, 0x4C, 0x01, 0]);
        }
        out.push(0x3B);
        out
    }

    #[test]
    fn counts_frames_and_transparency() {
        let probe = probe(&gif(5, true), &Limits::default()).expect("valid");
        assert_eq!((probe.width(), probe.height(), probe.frames, probe.has_alpha), (4, 3, 5, true));
    }

    #[test]
    fn frame_bombs_stop_at_the_limit() {
        let limits = Limits { max_frames: 3, ..Limits::default() };
        assert!(matches!(probe(&gif(4, false), &limits), Err(ImageError::TooManyFrames { limit: 3 })));
        assert!(probe(&gif(3, false), &limits).is_ok());
    }

    #[test]
    fn truncations_are_errors() {
        let data = gif(2, false);
        // Header (13) + colour table (6) + one frame (23): any cut before the first whole frame
        // is an error. (A cut between whole frames is a GIF missing its trailer: accepted.)
        for cut in 6..13 + 6 + 23 {
            assert!(probe(&data[..cut], &Limits::default()).is_err(), "cut at {cut}");
        }
    }
}
