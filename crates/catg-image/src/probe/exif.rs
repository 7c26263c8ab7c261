//! EXIF orientation, read from a TIFF-structured EXIF block.

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
    let big_endian = match tiff.slice(0, 2).ok()? {
        b"MM" => true,
        b"II" => false,
        _ => return None,
    };
    if tiff.u16_in(2, big_endian).ok()? != 42 {
        return None;
    }
    let ifd0 = tiff.u32_in(4, big_endian).ok()? as usize;
    ifd_short(tiff, ifd0, big_endian, ORIENTATION_TAG)
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
}
