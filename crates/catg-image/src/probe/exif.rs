//! EXIF orientation and attribution (Artist, Copyright), read from a TIFF-structured EXIF block.

use super::reader::Bytes;

/// The eight EXIF orientations. Each names the transform that turns the stored pixels upright.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Orientation {
    #[default]
    Normal = 1,
    FlipHorizontal = 2,
    Rotate180 = 3,
    FlipVertical = 4,
    Transpose = 5,
    Rotate90 = 6,
    Transverse = 7,
    Rotate270 = 8,
}

impl Orientation {
    /// Values outside 1..=8 are invalid and render as stored.
    pub fn from_exif(value: u16) -> Orientation {
        match value {
            2 => Orientation::FlipHorizontal,
            3 => Orientation::Rotate180,
            4 => Orientation::FlipVertical,
            5 => Orientation::Transpose,
            6 => Orientation::Rotate90,
            7 => Orientation::Transverse,
            8 => Orientation::Rotate270,
            _ => Orientation::Normal,
        }
    }

    pub fn exif_value(self) -> u8 {
        self as u8
    }

    /// Orientations 5–8 exchange width and height.
    pub fn swaps_axes(self) -> bool {
        matches!(
            self,
            Orientation::Transpose | Orientation::Rotate90 | Orientation::Transverse | Orientation::Rotate270
        )
    }

    pub const ALL: [Orientation; 8] = [
        Orientation::Normal,
        Orientation::FlipHorizontal,
        Orientation::Rotate180,
        Orientation::FlipVertical,
        Orientation::Transpose,
        Orientation::Rotate90,
        Orientation::Transverse,
        Orientation::Rotate270,
    ];

    /// This orientation followed by `next`, as one: turns and flips form a group of eight, so
    /// any sequence of them is applied to the pixels once.
    pub fn then(self, next: Orientation) -> Orientation {
        // Identify the composite by where it sends an asymmetric point.
        let probe = (1, 3);
        let want = self.source_of(next.source_of(probe));
        Orientation::ALL.into_iter().find(|o| o.source_of(probe) == want).unwrap_or(Orientation::Normal)
    }

    /// For a point of the upright image, in tenths of its width and height, the point of the
    /// stored image it comes from (the pixel map of `transform::orient`).
    /// The orientation that undoes this one.
    pub fn inverse(self) -> Orientation {
        Orientation::ALL.into_iter().find(|o| self.then(*o) == Orientation::Normal).unwrap_or(Orientation::Normal)
    }

    fn source_of(self, (u, v): (i32, i32)) -> (i32, i32) {
        match self {
            Orientation::Normal => (u, v),
            Orientation::FlipHorizontal => (10 - u, v),
            Orientation::Rotate180 => (10 - u, 10 - v),
            Orientation::FlipVertical => (u, 10 - v),
            Orientation::Transpose => (v, u),
            Orientation::Rotate90 => (v, 10 - u),
            Orientation::Transverse => (10 - v, 10 - u),
            Orientation::Rotate270 => (10 - v, u),
        }
    }
}

const ORIENTATION_TAG: u16 = 0x0112;
const SHORT: u16 = 3;
/// IFD0 of a real file has a few dozen entries; a bound keeps a hostile count from looping long.
const MAX_IFD_ENTRIES: u16 = 1024;

/// The orientation in a TIFF-structured EXIF block (optionally prefixed by `Exif\0\0`).
/// Malformed EXIF is ignored (orientation 1): metadata damage must not reject a good image.
pub(crate) fn orientation(exif: &[u8]) -> Orientation {
    let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
    read_orientation(Bytes::new(tiff, "EXIF")).map_or(Orientation::Normal, Orientation::from_exif)
}

fn read_orientation(tiff: Bytes<'_>) -> Option<u16> {
    let (big_endian, ifd0) = tiff_header(tiff)?;
    ifd_short(tiff, ifd0, big_endian, ORIENTATION_TAG)
}

/// A TIFF header's byte order (`true`: big-endian) and the offset of its IFD0.
fn tiff_header(tiff: Bytes<'_>) -> Option<(bool, usize)> {
    let big_endian = match tiff.slice(0, 2).ok()? {
        b"MM" => true,
        b"II" => false,
        _ => return None,
    };
    if tiff.u16_in(2, big_endian).ok()? != 42 {
        return None;
    }
    Some((big_endian, tiff.u32_in(4, big_endian).ok()? as usize))
}

/// A SHORT value of `tag` in the IFD at `ifd`, if present.
pub(crate) fn ifd_short(tiff: Bytes<'_>, ifd: usize, big_endian: bool, tag: u16) -> Option<u16> {
    let count = tiff.u16_in(ifd, big_endian).ok()?.min(MAX_IFD_ENTRIES);
    (0..usize::from(count)).find_map(|i| {
        let entry = ifd + 2 + i * 12;
        (tiff.u16_in(entry, big_endian).ok()? == tag && tiff.u16_in(entry + 2, big_endian).ok()? == SHORT)
            .then(|| tiff.u16_in(entry + 8, big_endian).ok())
            .flatten()
    })
}

const ARTIST_TAG: u16 = 0x013B;
const COPYRIGHT_TAG: u16 = 0x8298;
const ASCII: u16 = 2;
/// Longest Artist or Copyright text kept (bytes); longer text is cut at a character boundary.
const MAX_ATTRIBUTION_BYTES: usize = 512;

/// Who made an image and who holds its rights: EXIF IFD0's Artist and Copyright. The only source
/// metadata a variant may carry, and only when the operator keeps it (`CATG_KEEP_COPYRIGHT`);
/// a variant gets a new EXIF block written from these two strings, never the source's bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Attribution {
    pub artist: Option<String>,
    pub copyright: Option<String>,
}

impl Attribution {
    pub fn is_empty(&self) -> bool {
        self.artist.is_none() && self.copyright.is_none()
    }

    /// A new EXIF block (TIFF structure, big-endian, no `Exif\0\0` prefix) whose IFD0 holds only
    /// these tags; `None` when there is nothing to say.
    pub(crate) fn exif(&self) -> Option<Vec<u8>> {
        let entries: Vec<(u16, &str)> = [(ARTIST_TAG, &self.artist), (COPYRIGHT_TAG, &self.copyright)]
            .into_iter()
            .filter_map(|(tag, text)| Some((tag, text.as_deref()?)))
            .collect();
        (!entries.is_empty()).then(|| ascii_ifd(&entries))
    }
}

/// A TIFF structure (big-endian) whose IFD0 holds `entries`, ASCII values in tag order.
pub(crate) fn ascii_ifd(entries: &[(u16, &str)]) -> Vec<u8> {
    let mut out = b"MM\0\x2a\0\0\0\x08".to_vec();
    out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
    // Values follow the IFD (entries, then a zero next-IFD offset); each NUL-terminated.
    let mut data_at = 8 + 2 + entries.len() * 12 + 4;
    let mut data = Vec::new();
    for (tag, text) in entries {
        let count = text.len() + 1;
        out.extend_from_slice(&tag.to_be_bytes());
        out.extend_from_slice(&ASCII.to_be_bytes());
        out.extend_from_slice(&(count as u32).to_be_bytes());
        if count <= 4 {
            let mut inline = [0u8; 4];
            inline[..text.len()].copy_from_slice(text.as_bytes());
            out.extend_from_slice(&inline);
        } else {
            out.extend_from_slice(&(data_at as u32).to_be_bytes());
            data.extend_from_slice(text.as_bytes());
            data.push(0);
            if count % 2 == 1 {
                data.push(0); // values start on a word boundary
            }
            data_at = 8 + 2 + entries.len() * 12 + 4 + data.len();
        }
    }
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&data);
    out
}

/// The Artist and Copyright of a TIFF-structured EXIF block (optionally prefixed by
/// `Exif\0\0`). Control characters are dropped and text is cut to a bound; malformed EXIF
/// gives none.
pub(crate) fn attribution(exif: &[u8]) -> Attribution {
    let tiff = Bytes::new(exif.strip_prefix(b"Exif\0\0").unwrap_or(exif), "EXIF");
    let Some((big_endian, ifd0)) = tiff_header(tiff) else { return Attribution::default() };
    Attribution {
        artist: ifd_ascii(tiff, ifd0, big_endian, ARTIST_TAG),
        copyright: ifd_ascii(tiff, ifd0, big_endian, COPYRIGHT_TAG),
    }
}

/// An ASCII value of `tag` in the IFD at `ifd`, cleaned for a new EXIF block: text up to the
/// first NUL, as UTF-8 (invalid bytes replaced), without control characters, trimmed and cut to
/// MAX_ATTRIBUTION_BYTES; `None` if absent or empty.
fn ifd_ascii(tiff: Bytes<'_>, ifd: usize, big_endian: bool, tag: u16) -> Option<String> {
    let count = tiff.u16_in(ifd, big_endian).ok()?.min(MAX_IFD_ENTRIES);
    let entry = (0..usize::from(count)).map(|i| ifd + 2 + i * 12).find(|&entry| {
        tiff.u16_in(entry, big_endian).ok() == Some(tag) && tiff.u16_in(entry + 2, big_endian).ok() == Some(ASCII)
    })?;
    let len = tiff.u32_in(entry + 4, big_endian).ok()? as usize;
    let at = if len <= 4 { entry + 8 } else { tiff.u32_in(entry + 8, big_endian).ok()? as usize };
    let raw = tiff.slice(at, len.min(tiff.len().saturating_sub(at))).ok()?;
    let raw = &raw[..memchr::memchr(0, raw).unwrap_or(raw.len())];
    let text: String = String::from_utf8_lossy(raw).chars().filter(|c| !c.is_control()).collect();
    let mut text = text.trim();
    if text.len() > MAX_ATTRIBUTION_BYTES {
        let cut = (0..=MAX_ATTRIBUTION_BYTES).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text = text[..cut].trim_end();
    }
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal little- or big-endian EXIF block holding only an orientation.
    pub(crate) fn exif_with_orientation(value: u16, big_endian: bool) -> Vec<u8> {
        let mut out = b"Exif\0\0".to_vec();
        let w16 = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        let w32 = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        out.extend_from_slice(if big_endian { b"MM" } else { b"II" });
        out.extend_from_slice(&w16(42));
        out.extend_from_slice(&w32(8));
        out.extend_from_slice(&w16(1));
        out.extend_from_slice(&w16(ORIENTATION_TAG));
        out.extend_from_slice(&w16(SHORT));
        out.extend_from_slice(&w32(1));
        out.extend_from_slice(&w16(value));
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&w32(0));
        out
    }

    #[test]
    fn reads_all_orientations_in_both_byte_orders() {
        for value in 1..=8 {
            for big_endian in [false, true] {
                let o = orientation(&exif_with_orientation(value, big_endian));
                assert_eq!(o.exif_value() as u16, value);
            }
        }
    }

    #[test]
    fn invalid_or_damaged_exif_renders_as_stored() {
        assert_eq!(orientation(&exif_with_orientation(0, false)), Orientation::Normal);
        assert_eq!(orientation(&exif_with_orientation(9, true)), Orientation::Normal);
        assert_eq!(orientation(b"Exif\0\0II*\0\xff\xff\xff\xff"), Orientation::Normal);
        assert_eq!(orientation(b""), Orientation::Normal);
        let full = exif_with_orientation(6, false);
        for cut in 0..full.len() {
            let _ = orientation(&full[..cut]);
        }
    }

    /// Artist and Copyright survive a round trip through a new EXIF block (short text inline,
    /// long text by offset); control characters go; damaged EXIF gives none.
    #[test]
    fn attribution_round_trips_and_is_cleaned() {
        for (artist, copyright) in
            [(Some("Ann"), Some("© 2026 Ann Example. All rights reserved.")), (None, Some("CC BY 4.0"))]
        {
            let given = Attribution { artist: artist.map(String::from), copyright: copyright.map(String::from) };
            let exif = given.exif().expect("an EXIF block");
            assert_eq!(attribution(&exif), given);
            assert_eq!(orientation(&exif), Orientation::Normal, "no orientation: the variant is upright");
        }
        assert_eq!(Attribution::default().exif(), None);
        let dirty = Attribution { artist: Some("A\u{7}nn\r\n".into()), copyright: Some("x".repeat(2000)) };
        let read = attribution(&dirty.exif().expect("exif"));
        assert_eq!(read.artist.as_deref(), Some("Ann"));
        assert_eq!(read.copyright.map(|c| c.len()), Some(MAX_ATTRIBUTION_BYTES));
        let exif = dirty.exif().expect("exif");
        for cut in 0..exif.len() {
            let _ = attribution(&exif[..cut]); // never panics on a truncated block
        }
        assert_eq!(attribution(b"II\x2a\0\xff\xff\xff\xff"), Attribution::default());
    }
}
