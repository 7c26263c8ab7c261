//! JPEG header: walk the markers up to the first scan; the probe then counts scans.

use super::{exif, reader::Bytes, still, Probe};
use crate::error::{ImageError, Result};
use crate::format::InputFormat;
use crate::limits::Limits;

/// JPEG facts the decoder needs beyond the probe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct JpegHeader {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) components: u8,
    /// An Adobe APP14 segment is present: CMYK/YCCK samples are stored inverted.
    pub(crate) adobe: bool,
    pub(crate) orientation: exif::Orientation,
    pub(crate) attribution: exif::Attribution,
    /// The ICC profile, reassembled from its APP2 chunks in sequence order.
    pub(crate) icc: Option<Vec<u8>>,
    /// Offset of the first SOS marker.
    pub(crate) first_scan_at: usize,
    /// A progressive frame (SOF2, 6, 10 or 14): decoded through the whole-image coefficient buffer.
    pub(crate) progressive: bool,
    /// Each component's sampling factors (horizontal, vertical), from the frame header.
    pub(crate) sampling: Vec<(u8, u8)>,
}

impl JpegHeader {
    /// The bytes of libjpeg's whole-image coefficient buffer, as `jdcoefct.c` allocates it: per
    /// component, its blocks across and down, each rounded up to a multiple of its sampling
    /// factor, times 128 bytes (64 coefficients of 2 bytes).
    pub(crate) fn coefficient_bytes(&self) -> u64 {
        let max_h = self.sampling.iter().map(|s| u64::from(s.0)).max().unwrap_or(1).max(1);
        let max_v = self.sampling.iter().map(|s| u64::from(s.1)).max().unwrap_or(1).max(1);
        let (w, h) = (u64::from(self.width), u64::from(self.height));
        self.sampling
            .iter()
            .map(|&(sh, sv)| {
                let (sh, sv) = (u64::from(sh).max(1), u64::from(sv).max(1));
                let across = (w * sh).div_ceil(max_h * 8).next_multiple_of(sh);
                let down = (h * sv).div_ceil(max_v * 8).next_multiple_of(sv);
                across * down * 128
            })
            .sum()
    }
}

pub(crate) fn probe(data: &[u8], limits: &Limits) -> Result<Probe> {
    let header = read_header(data, limits, false)?;
    // Counted here, for ingest to refuse a scan bomb up front; the decoder does not recount,
    // because libjpeg-turbo enforces the same limit as it goes.
    let scans = count_scans(&data[header.first_scan_at..], limits.max_jpeg_scans);
    let mut probe = still(InputFormat::Jpeg, header.width, header.height);
    probe.orientation = header.orientation;
    probe.attribution = header.attribution.clone();
    probe.has_icc = header.icc.is_some();
    probe.jpeg_scans = scans;
    // libjpeg buffers the whole image for any progressive JPEG, even one with a single scan, and
    // for a sequential one whose components come in separate scans.
    if header.progressive || scans > 1 {
        probe.jpeg_buffer_bytes = header.coefficient_bytes();
    }
    Ok(probe)
}

/// Parse the header. With `keep_icc`, the ICC profile bytes are collected (bounded by the limit).
pub(crate) fn read_header(data: &[u8], limits: &Limits, keep_icc: bool) -> Result<JpegHeader> {
    let bytes = Bytes::new(data, "the JPEG header is cut short");
    let mut header = JpegHeader::default();
    let mut icc_chunks: Vec<(u8, &[u8])> = Vec::new();
    let mut icc_bytes = 0usize;
    let mut seen_exif = false;
    let mut pos = 2;
    loop {
        // Markers are 0xFF followed by a code; any number of 0xFF fill bytes may precede the code.
        if bytes.u8(pos)? != 0xFF {
            return Err(ImageError::corrupt(format!("expected a JPEG marker at byte {pos}")));
        }
        while bytes.u8(pos + 1)? == 0xFF {
            pos += 1;
        }
        let marker = bytes.u8(pos + 1)?;
        pos += 2;
        match marker {
            0xD8 | 0x01 | 0xD0..=0xD7 => continue,
            0xD9 => return Err(ImageError::corrupt("the JPEG ends before its first scan")),
            _ => {}
        }
        let len = usize::from(bytes.be16(pos)?);
        if len < 2 {
            return Err(ImageError::corrupt("a JPEG segment has an invalid length"));
        }
        let segment = bytes.slice(pos + 2, len - 2)?;
        match marker {
            0xE1 if !seen_exif && segment.starts_with(b"Exif\0\0") => {
                seen_exif = true;
                header.orientation = exif::orientation(segment);
                header.attribution = exif::attribution(segment);
            }
            0xE2 if segment.starts_with(b"ICC_PROFILE\0") && segment.len() > 14 => {
                icc_bytes += segment.len() - 14;
                if icc_bytes > limits.max_icc_bytes {
                    return Err(ImageError::ResourceLimit(format!(
                        "the ICC profile is over {} bytes",
                        limits.max_icc_bytes
                    )));
                }
                icc_chunks.push((segment[12], &segment[14..]));
            }
            0xEE if segment.starts_with(b"Adobe") => header.adobe = true,
            // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let sof = Bytes::new(segment, "the JPEG frame header is cut short");
                header.height = u32::from(sof.be16(1)?);
                header.width = u32::from(sof.be16(3)?);
                header.components = sof.u8(5)?;
                header.progressive = matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE);
                header.sampling = (0..usize::from(header.components))
                    .map(|i| sof.u8(7 + 3 * i).map(|f| (f >> 4, f & 0x0F)))
                    .collect::<Result<_>>()?;
                if header.height == 0 {
                    // A height defined later by a DNL marker: legal, but nobody writes it and
                    // libjpeg-turbo cannot decode it.
                    return Err(ImageError::UnsupportedFormat("JPEG with a DNL-defined height".into()));
                }
                if !matches!(header.components, 1 | 3 | 4) {
                    return Err(ImageError::corrupt(format!("a JPEG with {} components", header.components)));
                }
            }
            0xDA => {
                if header.width == 0 {
                    return Err(ImageError::corrupt("the JPEG has a scan before its frame header"));
                }
                // `pos` is just past this SOS marker.
                header.first_scan_at = pos - 2;
                break;
            }
            _ => {}
        }
        pos += len;
    }
    if !icc_chunks.is_empty() {
        header.icc = Some(if keep_icc {
            icc_chunks.sort_by_key(|(seq, _)| *seq);
            icc_chunks.iter().flat_map(|(_, chunk)| chunk.iter().copied()).collect()
        } else {
            Vec::new()
        });
    }
    Ok(header)
}

/// Count SOS markers from the first scan on. Inside entropy-coded data a 0xFF byte is always
/// followed by 0x00 (stuffing) or a restart marker, so every `FF DA` pair is a real scan start.
/// Counting stops one past `limit`: enough to refuse, without walking a huge hostile file.
/// (memchr's SIMD search: a byte-pair window scan cost 6% of a 400 px render of a 20 MP JPEG.)
fn count_scans(from_first_scan: &[u8], limit: u32) -> u32 {
    let mut scans = 0;
    for _ in memchr::memmem::find_iter(from_first_scan, &[0xFF, 0xDA]) {
        scans += 1;
        if scans > limit {
            break;
        }
    }
    scans.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![0xFF, marker];
        out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn jpeg(segments: &[Vec<u8>], scans: usize) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8];
        for s in segments {
            out.extend_from_slice(s);
        }
        for _ in 0..scans {
            out.extend_from_slice(&segment(0xDA, &[1, 1, 0, 0, 63, 0]));
            out.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34]);
        }
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }

    fn sof(width: u16, height: u16, components: u8) -> Vec<u8> {
        sof_sampled(0xC2, width, height, &vec![(1, 1); usize::from(components)])
    }

    fn sof_sampled(marker: u8, width: u16, height: u16, sampling: &[(u8, u8)]) -> Vec<u8> {
        let mut body = vec![8];
        body.extend_from_slice(&height.to_be_bytes());
        body.extend_from_slice(&width.to_be_bytes());
        body.push(sampling.len() as u8);
        for (i, (h, v)) in sampling.iter().enumerate() {
            body.extend_from_slice(&[i as u8 + 1, h << 4 | v, 0]);
        }
        segment(marker, &body)
    }

    /// The coefficient buffer is counted from the frame header for every progressive JPEG,
    /// single-scan ones included, with every component at its own sampling (libjpeg's layout:
    /// blocks rounded up to the sampling factor), and for multi-scan sequential ones only.
    #[test]
    fn the_coefficient_buffer_follows_the_frame_header() {
        let bytes = |marker, w, h, sampling: &[(u8, u8)], scans| {
            probe(&jpeg(&[sof_sampled(marker, w, h, sampling)], scans), &Limits::default())
                .expect("probe")
                .jpeg_buffer_bytes
        };
        // 4:4:4, 3 components, one scan, progressive: 2 bytes per sample.
        assert_eq!(bytes(0xC2, 64, 64, &[(1, 1); 3], 1), 3 * 64 * 128);
        // CMYK: four components.
        assert_eq!(bytes(0xC2, 64, 64, &[(1, 1); 4], 1), 4 * 64 * 128);
        // 4:2:0 at 65500×1526: luma 8188×192 blocks (rounded to 2), chroma 4094×96 each.
        let luma = 8188 * 192 * 128;
        let chroma = 4094 * 96 * 128;
        assert_eq!(bytes(0xC2, 65500, 1526, &[(2, 2), (1, 1), (1, 1)], 1), luma + 2 * chroma);
        // Baseline: nothing for one scan, the buffer for several.
        assert_eq!(bytes(0xC0, 64, 64, &[(1, 1); 3], 1), 0);
        assert_eq!(bytes(0xC0, 64, 64, &[(1, 1); 3], 3), 3 * 64 * 128);
    }

    #[test]
    fn reads_size_orientation_icc_and_scans() {
        let exif = crate::probe::exif::tests::exif_with_orientation(6, true);
        let mut icc = b"ICC_PROFILE\0\x01\x01".to_vec();
        icc.extend_from_slice(b"profile");
        let data = jpeg(&[segment(0xE1, &exif), segment(0xE2, &icc), sof(640, 480, 3)], 7);
        let header = read_header(&data, &Limits::default(), true).expect("valid header");
        assert_eq!((header.width, header.height), (640, 480));
        assert_eq!(header.orientation, exif::Orientation::Rotate90);
        assert_eq!(header.icc.as_deref(), Some(&b"profile"[..]));
        let probe = probe(&data, &Limits::default()).expect("valid");
        assert_eq!((probe.width(), probe.height(), probe.jpeg_scans), (480, 640, 7));
    }

    #[test]
    fn scan_count_stops_one_past_the_limit() {
        let limits = Limits { max_jpeg_scans: 3, ..Limits::default() };
        let data = jpeg(&[sof(8, 8, 3)], 50);
        assert_eq!(probe(&data, &limits).map(|p| p.jpeg_scans).ok(), Some(4));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let data = jpeg(&[sof(8, 8, 3)], 1);
        let header_end = data.len() - 12;
        for cut in 2..header_end {
            assert!(read_header(&data[..cut], &Limits::default(), false).is_err(), "cut at {cut}");
        }
    }
}
