//! PNG header: IHDR (CRC-checked), then the ancillary chunks before the first IDAT.

use super::{exif, reader::Bytes, still, Probe};
use crate::error::{ImageError, Result};
use crate::format::InputFormat;
use crate::limits::Limits;

pub(crate) fn probe(data: &[u8], limits: &Limits) -> Result<Probe> {
    let bytes = Bytes::new(data, "the PNG header is cut short");
    let mut pos = 8;
    let mut probe = still(InputFormat::Png, 0, 0);
    loop {
        let len = bytes.be32(pos)? as usize;
        let kind = bytes.slice(pos + 4, 4)?;
        let body = bytes.slice(pos + 8, len)?;
        let first = pos == 8;
        if first && (kind != b"IHDR" || len != 13) {
            return Err(ImageError::corrupt("the PNG does not start with an IHDR chunk"));
        }
        match kind {
            b"IHDR" => {
                // A broken IHDR CRC means the size itself cannot be trusted.
                let crc = bytes.be32(pos + 8 + len)?;
                if crc32fast::hash(&data[pos + 4..pos + 8 + len]) != crc {
                    return Err(ImageError::corrupt("the PNG IHDR chunk fails its CRC"));
                }
                let ihdr = Bytes::new(body, "IHDR");
                probe.stored_width = ihdr.be32(0)?;
                probe.stored_height = ihdr.be32(4)?;
                let (depth, colour) = (ihdr.u8(8)?, ihdr.u8(9)?);
                let valid =
                    matches!((colour, depth), (0, 1 | 2 | 4 | 8 | 16) | (3, 1 | 2 | 4 | 8) | (2 | 4 | 6, 8 | 16));
                if !valid {
                    return Err(ImageError::corrupt(format!("PNG colour type {colour} with bit depth {depth}")));
                }
                probe.has_alpha = matches!(colour, 4 | 6);
                probe.png_interlaced = ihdr.u8(12)? == 1;
            }
            b"tRNS" => probe.has_alpha = true,
            b"iCCP" => {
                if len > limits.max_icc_bytes {
                    return Err(ImageError::ResourceLimit(format!(
                        "the ICC profile is over {} bytes",
                        limits.max_icc_bytes
                    )));
                }
                probe.has_icc = true;
            }
            b"acTL" => probe.frames = Bytes::new(body, "acTL").be32(0)?.max(1),
            b"eXIf" => {
                probe.orientation = exif::orientation(body);
                probe.attribution = exif::attribution(body);
            }
            b"IDAT" | b"IEND" => break,
            _ => {}
        }
        pos += 12 + len;
    }
    Ok(probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn chunk(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(body);
        out.extend_from_slice(&crc32fast::hash(&crc_input).to_be_bytes());
        out
    }

    fn png(width: u32, height: u32, colour: u8, extra: &[Vec<u8>]) -> Vec<u8> {
        let mut ihdr = width.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, colour, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        out.extend(chunk(b"IHDR", &ihdr));
        for c in extra {
            out.extend_from_slice(c);
        }
        out.extend(chunk(b"IDAT", b"x"));
        out
    }

    #[test]
    fn reads_size_alpha_and_orientation() {
        let exif = crate::probe::exif::tests::exif_with_orientation(8, false);
        let data = png(300, 200, 2, &[chunk(b"tRNS", &[0, 0, 0, 0, 0, 0]), chunk(b"eXIf", &exif[6..])]);
        let probed = probe(&data, &Limits::default()).expect("valid");
        assert_eq!((probed.width(), probed.height()), (200, 300));
        assert!(probed.has_alpha);
        assert!(!probed.png_interlaced);
        let mut interlaced = png(30, 20, 2, &[]);
        interlaced[8 + 8 + 12] = 1; // IHDR's interlace method, after length, type, 12 body bytes
        let crc = crc32fast::hash(&interlaced[12..29]).to_be_bytes();
        interlaced[29..33].copy_from_slice(&crc);
        assert!(probe(&interlaced, &Limits::default()).expect("valid").png_interlaced);
    }

    #[test]
    fn a_bad_ihdr_crc_is_corrupt() {
        let mut data = png(10, 10, 6, &[]);
        data[20] ^= 1;
        assert!(matches!(probe(&data, &Limits::default()), Err(ImageError::Corrupt(_))));
    }

    #[test]
    fn truncations_are_errors() {
        let data = png(10, 10, 6, &[]);
        for cut in 8..data.len() - 12 {
            assert!(probe(&data[..cut], &Limits::default()).is_err(), "cut at {cut}");
        }
    }
}
