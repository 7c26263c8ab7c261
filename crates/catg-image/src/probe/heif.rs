//! HEIC/HEIF and AVIF headers, from the HEIF container (ISO/IEC 23008-12) that both share:
//! the primary item, its size, its alpha plane and its ICC profile. Pure Rust (`heifer-isobmff`).
//!
//! HEIC is decoded by `heifer`, which applies the container's crop, rotation and mirror itself,
//! so a HEIC probe reports the upright size. AVIF is decoded by catg (`decode::avif`), which
//! crops and then hands the rotation and mirror to the orient step as an EXIF orientation.
//! Either way HEIF ignores the EXIF orientation tag: `irot`/`imir` are the authority, and
//! cameras that write both keep them in agreement.

use super::{still, Orientation, Probe};
use crate::error::{ImageError, Result};
use crate::format::InputFormat;
use heifer_isobmff::boxes::Property;
use heifer_isobmff::{HeifFile, ItemId};

pub(crate) fn container(data: &[u8]) -> Result<HeifFile<'_>> {
    HeifFile::parse(data).map_err(container_error)
}

pub(crate) fn container_error(e: heifer_isobmff::Error) -> ImageError {
    match e {
        heifer_isobmff::Error::UnexpectedEof => ImageError::Truncated(e.to_string()),
        heifer_isobmff::Error::Unimplemented(_) => ImageError::UnsupportedFormat(format!("HEIF content ({e})")),
        _ => ImageError::Corrupt(e.to_string()),
    }
}

/// The `auxC` types that mark an auxiliary image as an alpha plane (HEIF's and MPEG-B's).
const ALPHA_URNS: [&str; 2] = ["urn:mpeg:hevc:2015:auxid:1", "urn:mpeg:mpegB:cicp:systems:auxiliary:alpha"];

/// The alpha plane of `image`, if it has one.
pub(crate) fn alpha_item(file: &HeifFile<'_>, image: ItemId) -> Result<Option<ItemId>> {
    for aux in file.referencing_items(image, b"auxl") {
        let is_alpha = file
            .item_properties(aux)
            .map_err(container_error)?
            .any(|p| matches!(p, Property::AuxiliaryType(urn) if ALPHA_URNS.contains(&urn.as_str())));
        if is_alpha {
            return Ok(Some(aux));
        }
    }
    Ok(None)
}

/// Where the container's transforms leave an AV1 image: the size after its clean aperture
/// (`clap`), and its rotation (`irot`) and mirror (`imir`) as the EXIF orientation that does
/// the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    pub(crate) crop: Option<Crop>,
    pub(crate) orientation: Orientation,
}

/// A crop in coded pixels: left, top, width, height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Crop {
    pub(crate) left: u32,
    pub(crate) top: u32,
    pub(crate) width: u32,
    pub(crate) height: u32,
}

pub(crate) fn placement(file: &HeifFile<'_>, item: ItemId, coded: (u32, u32)) -> Result<Placement> {
    let mut crop = None;
    let mut quarter_turns = 0u8;
    let mut mirror = None;
    for property in file.item_properties(item).map_err(container_error)? {
        match *property {
            Property::CleanAperture { width, height, horiz_offset, vert_offset } => {
                crop = Some(clean_aperture(coded, width, height, horiz_offset, vert_offset)?);
            }
            Property::Rotation(q) => quarter_turns = q % 4,
            // `true` exchanges top and bottom, `false` left and right.
            Property::Mirror(top_bottom) => mirror = Some(top_bottom),
            _ => {}
        }
    }
    // Anticlockwise quarter turns, then the mirror, as the one EXIF orientation that does both.
    let orientation = match (quarter_turns, mirror) {
        (0, None) => Orientation::Normal,
        (0, Some(false)) | (2, Some(true)) => Orientation::FlipHorizontal,
        (0, Some(true)) | (2, Some(false)) => Orientation::FlipVertical,
        (2, None) => Orientation::Rotate180,
        (1, None) => Orientation::Rotate270,
        (3, None) => Orientation::Rotate90,
        (1, Some(true)) | (3, Some(false)) => Orientation::Transpose,
        _ => Orientation::Transverse,
    };
    Ok(Placement { crop, orientation })
}

/// ISO/IEC 14496-12's clean aperture: a `width`×`height` window centred on the coded picture's
/// centre plus the offsets (all rational).
fn clean_aperture(
    (coded_width, coded_height): (u32, u32),
    width: (u32, u32),
    height: (u32, u32),
    horiz_offset: (i32, u32),
    vert_offset: (i32, u32),
) -> Result<Crop> {
    let ratio = |n: f64, d: u32| if d == 0 { f64::NAN } else { n / f64::from(d) };
    let (w, h) = (ratio(f64::from(width.0), width.1), ratio(f64::from(height.0), height.1));
    let (dx, dy) = (ratio(f64::from(horiz_offset.0), horiz_offset.1), ratio(f64::from(vert_offset.0), vert_offset.1));
    let left = dx + (f64::from(coded_width) - w) / 2.0;
    let top = dy + (f64::from(coded_height) - h) / 2.0;
    let fits = |start: f64, len: f64, whole: u32| start >= 0.0 && len >= 1.0 && start + len <= f64::from(whole);
    if !(fits(left, w, coded_width) && fits(top, h, coded_height)) {
        return Err(ImageError::Corrupt(format!(
            "clean aperture {w}x{h} at {left},{top} lies outside the {coded_width}x{coded_height} image"
        )));
    }
    Ok(Crop { left: left.round() as u32, top: top.round() as u32, width: w.round() as u32, height: h.round() as u32 })
}

pub(crate) fn probe(format: InputFormat, data: &[u8]) -> Result<Probe> {
    let file = container(data)?;
    let primary = file.primary_id;
    let (width, height) = file
        .image_size(primary)
        .map_err(container_error)?
        .ok_or_else(|| ImageError::Corrupt("the primary image has no size (ispe)".into()))?;
    if width == 0 || height == 0 {
        return Err(ImageError::Corrupt(format!("the primary image is {width}x{height}")));
    }
    let placement = placement(&file, primary, (width, height))?;
    let (width, height) = placement.crop.map_or((width, height), |c| (c.width, c.height));
    let mut probe = match format {
        // heifer hands out HEIC upright.
        InputFormat::Heic if placement.orientation.swaps_axes() => still(format, height, width),
        InputFormat::Heic => still(format, width, height),
        _ => Probe { orientation: placement.orientation, ..still(format, width, height) },
    };
    probe.has_alpha = alpha_item(&file, primary)?.is_some();
    probe.has_icc = file.icc_profile(primary).map_err(container_error)?.is_some();
    Ok(probe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RejectKind;
    use crate::limits::Limits;

    const IPHONE_STYLE: &[u8] = include_bytes!("../../../../tests/fixtures/iphone-style.heic");

    #[test]
    fn the_operator_can_switch_heif_input_off() {
        let on = crate::probe(IPHONE_STYLE, &Limits::default()).expect("accepted");
        assert_eq!((on.width(), on.height(), on.has_icc), (960, 1280, true));
        let off = Limits { heif_input: false, ..Limits::default() };
        let refused = crate::probe(IPHONE_STYLE, &off).expect_err("switched off");
        assert_eq!(refused.reject_kind(), Some(RejectKind::UnsupportedFormat));
    }

    /// A header that understates the picture: the grid's `ispe` patched to 100×80. The decoders
    /// may allocate only what the header showed (plus block padding), so the 1280×960 grid is
    /// refused instead of decoded.
    #[test]
    fn a_picture_larger_than_its_header_is_refused_before_it_is_decoded() {
        let mut data = IPHONE_STYLE.to_vec();
        // The grid's ispe box: its type, version and flags, then 1280 and 960.
        let grid_ispe = [b"ispe".as_slice(), &[0; 4], &1280u32.to_be_bytes(), &960u32.to_be_bytes()].concat();
        let at = data.windows(grid_ispe.len()).position(|w| w == grid_ispe).expect("the grid's ispe") + 8;
        data[at..at + 8].copy_from_slice(&[0, 0, 0, 100, 0, 0, 0, 80]);
        let limits = Limits::default();
        let probe = crate::probe(&data, &limits).expect("the header alone is fine");
        assert_eq!((probe.width(), probe.height()), (80, 100));
        let refused = crate::decode::heif::decode(&data, &probe).expect_err("larger than its header");
        assert!(matches!(refused.reject_kind(), Some(RejectKind::Corrupt | RejectKind::ResourceLimit)), "{refused}");
        // heifer's own size check, not the comparison after a whole decode.
        assert!(refused.to_string().contains("too large"), "{refused}");
    }

    #[test]
    fn a_clean_aperture_is_centred_then_offset() {
        let crop = clean_aperture((100, 80), (50, 1), (40, 1), (0, 1), (0, 1)).expect("inside");
        assert_eq!(crop, Crop { left: 25, top: 20, width: 50, height: 40 });
        let shifted = clean_aperture((100, 80), (50, 1), (40, 1), (-25, 1), (20, 2)).expect("inside");
        assert_eq!(shifted, Crop { left: 0, top: 30, width: 50, height: 40 });
        assert!(clean_aperture((100, 80), (50, 1), (40, 1), (30, 1), (0, 1)).is_err(), "past the right edge");
        assert!(clean_aperture((100, 80), (50, 0), (40, 1), (0, 1), (0, 1)).is_err(), "a zero denominator");
    }
}
