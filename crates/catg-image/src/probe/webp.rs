//! WebP header: the RIFF chunks (VP8, VP8L or VP8X with its flags), counting animation frames.

use super::{exif, reader::Bytes, still, Probe};
use crate::error::{ImageError, Result};
use crate::format::InputFormat;
use crate::limits::Limits;

pub(crate) fn probe(data: &[u8], limits: &Limits) -> Result<Probe> {
    let bytes = Bytes::new(data, "the WebP is cut short");
    let mut probe = still(InputFormat::Webp, 0, 0);
    let mut animated = false;
    let mut declares_alpha = false;
    let mut frames = 0u32;
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let kind = bytes.slice(pos, 4)?;
        let len = bytes.le32(pos + 4)? as usize;
        let body = Bytes::new(bytes.slice(pos + 8, len)?, "a WebP chunk is cut short");
        match kind {
            b"VP8X" => {
                let flags = body.u8(0)?;
                probe.has_icc = flags & 0x20 != 0;
                declares_alpha = flags & 0x10 != 0;
                animated = flags & 0x02 != 0;
                probe.stored_width = body.le24(4)? + 1;
                probe.stored_height = body.le24(7)? + 1;
            }
            b"VP8 " if probe.stored_width == 0 => {
                if body.slice(3, 3)? != [0x9D, 0x01, 0x2A] {
                    return Err(ImageError::corrupt("the VP8 frame has no start code"));
                }
                probe.stored_width = u32::from(body.le16(6)? & 0x3FFF);
                probe.stored_height = u32::from(body.le16(8)? & 0x3FFF);
            }
            b"VP8L" if probe.stored_width == 0 => {
                if body.u8(0)? != 0x2F {
                    return Err(ImageError::corrupt("the VP8L frame has no signature"));
                }
                let bits = body.le32(1)?;
                probe.stored_width = (bits & 0x3FFF) + 1;
                probe.stored_height = ((bits >> 14) & 0x3FFF) + 1;
                probe.has_alpha = bits & (1 << 28) != 0;
            }
            b"ANMF" => {
                frames += 1;
                if frames > limits.max_frames {
                    return Err(ImageError::TooManyFrames { limit: limits.max_frames });
                }
                probe.has_alpha |= frame_has_alpha(body.slice(16, len.saturating_sub(16)).unwrap_or(&[]));
            }
            b"ALPH" => probe.has_alpha = true,
            b"ICCP" if len > limits.max_icc_bytes => {
                return Err(ImageError::ResourceLimit(format!(
                    "the ICC profile is over {} bytes",
                    limits.max_icc_bytes
                )));
            }
            b"EXIF" => {
                let exif = bytes.slice(pos + 8, len)?;
                probe.orientation = exif::orientation(exif);
                probe.attribution = exif::attribution(exif);
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        pos += 8 + len + (len & 1);
    }
    if probe.stored_width == 0 {
        return Err(ImageError::truncated("the WebP has no image chunk"));
    }
    // Encoders set VP8X's alpha flag on every animation; only real alpha data counts.
    probe.has_alpha &= declares_alpha || !animated;
    probe.frames = if animated { frames.max(1) } else { 1 };
    Ok(probe)
}

/// The embedded ICC profile (the ICCP chunk), if any; `probe` has already bounded its size.
pub(crate) fn icc_profile(data: &[u8]) -> Option<Vec<u8>> {
    let bytes = Bytes::new(data, "the WebP is cut short");
    let mut pos = 12;
    while let (Ok(kind), Ok(len)) = (bytes.slice(pos, 4), bytes.le32(pos + 4)) {
        let len = len as usize;
        if kind == b"ICCP" {
            return bytes.slice(pos + 8, len).ok().filter(|p| !p.is_empty()).map(<[u8]>::to_vec);
        }
        pos += 8 + len + (len & 1);
    }
    None
}

/// Whether an animation frame (the chunks inside an ANMF) carries alpha data.
fn frame_has_alpha(chunks: &[u8]) -> bool {
    let bytes = Bytes::new(chunks, "ANMF");
    let mut pos = 0;
    while let (Ok(kind), Ok(len)) = (bytes.slice(pos, 4), bytes.le32(pos + 4)) {
        match kind {
            b"ALPH" => return true,
            b"VP8L" => return bytes.le32(pos + 9).is_ok_and(|bits| bits & (1 << 28) != 0),
            _ => {}
        }
        pos += 8 + len as usize + (len as usize & 1);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = kind.to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
        if body.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
        out.extend_from_slice(b"WEBP");
        out.extend(body);
        out
    }

    #[test]
    fn reads_lossy_lossless_and_extended() {
        let vp8 = chunk(b"VP8 ", &[0, 0, 0, 0x9D, 0x01, 0x2A, 100, 0, 50, 0]);
        let probe_lossy = probe(&riff(&[vp8]), &Limits::default()).expect("lossy");
        assert_eq!((probe_lossy.width(), probe_lossy.height()), (100, 50));

        let bits: u32 = 63 | (31 << 14) | (1 << 28);
        let mut vp8l = vec![0x2F];
        vp8l.extend_from_slice(&bits.to_le_bytes());
        let lossless = probe(&riff(&[chunk(b"VP8L", &vp8l)]), &Limits::default()).expect("lossless");
        assert_eq!((lossless.width(), lossless.height(), lossless.has_alpha), (64, 32, true));

        let vp8x = chunk(b"VP8X", &[0x12, 0, 0, 0, 9, 0, 0, 4, 0, 0]);
        let mut frame = vec![0; 16];
        frame.extend(chunk(b"ALPH", &[0]));
        let frames: Vec<Vec<u8>> = (0..3).map(|_| chunk(b"ANMF", &frame)).collect();
        let mut chunks = vec![vp8x];
        chunks.extend(frames);
        let animated = probe(&riff(&chunks), &Limits::default()).expect("animated");
        assert_eq!((animated.width(), animated.height(), animated.frames, animated.has_alpha), (10, 5, 3, true));
        let limits = Limits { max_frames: 2, ..Limits::default() };
        assert!(matches!(probe(&riff(&chunks), &limits), Err(ImageError::TooManyFrames { .. })));
    }

    #[test]
    fn finds_the_icc_profile_past_other_chunks() {
        let vp8x = chunk(b"VP8X", &[0x20, 0, 0, 0, 9, 0, 0, 4, 0, 0]);
        let data = riff(&[vp8x.clone(), chunk(b"ICCP", b"profile"), chunk(b"VP8 ", &[0; 10])]);
        assert_eq!(icc_profile(&data).as_deref(), Some(&b"profile"[..]));
        assert_eq!(icc_profile(&riff(&[vp8x])), None);
        assert_eq!(icc_profile(&data[..30]), None, "cut inside the chunk");
    }
}
