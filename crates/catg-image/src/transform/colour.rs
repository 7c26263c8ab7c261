//! Colour: everything becomes sRGB. Embedded ICC profiles are applied with Little CMS; CMYK and
//! YCCK without a profile use the naive conversion (what browsers do).

use crate::error::{ImageError, Result};
use crate::frame::{Frame, Header, RowOp};
use crate::pixels::{Layout, Pixels};
use lcms2::{ColorSpaceSignature, Flags, InfoType, Intent, Locale, PixelFormat, Profile, Transform};

pub(crate) fn apply(frame: Frame) -> Result<Frame> {
    let to_srgb = ToSrgb::new(frame.pixels.layout, frame.icc.as_deref(), frame.cmyk_inverted)?;
    Ok(Frame { pixels: to_srgb.convert(frame.pixels)?, icc: None, cmyk_inverted: false, ..frame })
}

/// The colour conversion of rows as they are decoded.
pub(crate) struct ColourRows {
    to_srgb: ToSrgb,
    layout: Layout,
}

impl ColourRows {
    /// For rows of `layout`; `header` loses the profile and inversion the conversion applies.
    pub(crate) fn start(layout: Layout, header: &mut Header) -> Result<ColourRows> {
        let to_srgb = ToSrgb::new(layout, header.icc.as_deref(), header.cmyk_inverted)?;
        (header.icc, header.cmyk_inverted) = (None, false);
        // CMYK becomes RGB; alpha stays.
        let layout = if layout == Layout::Rgba8 { Layout::Rgba8 } else { Layout::Rgb8 };
        Ok(ColourRows { to_srgb, layout })
    }
}

impl RowOp for ColourRows {
    fn layout(&self) -> Layout {
        self.layout
    }

    fn append(&self, rows: &[u8], out: &mut Vec<u8>) {
        self.to_srgb.append_converted(rows, out);
    }
}

/// The conversion of one image's pixels to sRGB, prepared once (parsing a profile and building
/// a transform costs far more than converting a band of rows) and applied to the whole frame or
/// band by band.
enum ToSrgb {
    Already,
    NaiveCmyk { inverted: bool },
    Cmyk(Transform<[u8; 4], [u8; 3]>),
    Rgb(Transform<[u8; 3], [u8; 3]>),
    Rgba(Transform<[u8; 4], [u8; 4]>),
}

impl ToSrgb {
    fn new(layout: Layout, icc: Option<&[u8]>, cmyk_inverted: bool) -> Result<ToSrgb> {
        // A profile that does not parse, or does not match the pixels, is ignored rather than
        // rejected: damaged metadata must not make a good image unservable.
        let profile = icc.and_then(|icc| Profile::new_icc(icc).ok());
        // Built only where a transform needs it: building it costs tens of microseconds of
        // tone curves, and most images have no profile to convert from.
        let srgb = Profile::new_srgb;
        Ok(match layout {
            Layout::Cmyk8 => match profile.filter(|p| p.color_space() == ColorSpaceSignature::CmykData) {
                Some(p) => {
                    // Adobe's CMYK JPEGs store 255 for "no ink"; lcms calls that layout CMYK_8_REV.
                    let format = if cmyk_inverted { PixelFormat::CMYK_8_REV } else { PixelFormat::CMYK_8 };
                    ToSrgb::Cmyk(
                        Transform::new(&p, format, &srgb(), PixelFormat::RGB_8, Intent::Perceptual)
                            .map_err(cms_error)?,
                    )
                }
                None => ToSrgb::NaiveCmyk { inverted: cmyk_inverted },
            },
            Layout::Rgb8 | Layout::Rgba8 => {
                match profile.filter(|p| p.color_space() == ColorSpaceSignature::RgbData && !is_srgb(p)) {
                    None => ToSrgb::Already,
                    Some(p) if layout == Layout::Rgba8 => ToSrgb::Rgba(
                        Transform::new_flags(
                            &p,
                            PixelFormat::RGBA_8,
                            &srgb(),
                            PixelFormat::RGBA_8,
                            Intent::RelativeColorimetric,
                            Flags::COPY_ALPHA,
                        )
                        .map_err(cms_error)?,
                    ),
                    Some(p) => ToSrgb::Rgb(
                        Transform::new(
                            &p,
                            PixelFormat::RGB_8,
                            &srgb(),
                            PixelFormat::RGB_8,
                            Intent::RelativeColorimetric,
                        )
                        .map_err(cms_error)?,
                    ),
                }
            }
        })
    }

    /// Convert rows of samples (of the layout given to `new`) and append them to `out`; CMYK
    /// becomes RGB.
    fn append_converted(&self, rows: &[u8], out: &mut Vec<u8>) {
        let at = out.len();
        match self {
            ToSrgb::Already => out.extend_from_slice(rows),
            ToSrgb::NaiveCmyk { inverted } => {
                out.extend(rows.chunks_exact(4).flat_map(|p| naive_cmyk_pixel(p, *inverted)))
            }
            ToSrgb::Cmyk(t) => {
                out.resize(at + rows.len() / 4 * 3, 0);
                t.transform_pixels(bytemuck::cast_slice(rows), bytemuck::cast_slice_mut(&mut out[at..]));
            }
            ToSrgb::Rgb(t) => {
                out.extend_from_slice(rows);
                t.transform_in_place(bytemuck::cast_slice_mut(&mut out[at..]));
            }
            ToSrgb::Rgba(t) => {
                out.extend_from_slice(rows);
                t.transform_in_place(bytemuck::cast_slice_mut(&mut out[at..]));
            }
        }
    }

    /// Convert `pixels` (of the layout given to `new`); CMYK becomes RGB.
    fn convert(&self, mut pixels: Pixels) -> Result<Pixels> {
        match self {
            ToSrgb::Already => {}
            ToSrgb::NaiveCmyk { inverted } => return Ok(naive_cmyk(&pixels, *inverted)),
            ToSrgb::Cmyk(t) => {
                let mut out = Pixels::new(pixels.width, pixels.height, Layout::Rgb8)?;
                t.transform_pixels(bytemuck::cast_slice(&pixels.data), bytemuck::cast_slice_mut(&mut out.data));
                return Ok(out);
            }
            ToSrgb::Rgb(t) => t.transform_in_place(bytemuck::cast_slice_mut(&mut pixels.data)),
            ToSrgb::Rgba(t) => t.transform_in_place(bytemuck::cast_slice_mut(&mut pixels.data)),
        }
        Ok(pixels)
    }
}

/// Converting sRGB to sRGB costs a full pass for nothing.
fn is_srgb(profile: &Profile) -> bool {
    profile.info(InfoType::Description, Locale::none()).is_some_and(|d| d.to_ascii_lowercase().contains("srgb"))
}

fn cms_error(e: lcms2::Error) -> ImageError {
    ImageError::Internal(format!("colour transform: {e}"))
}

fn naive_cmyk(src: &Pixels, inverted: bool) -> Pixels {
    let data = src.data.chunks_exact(4).flat_map(|p| naive_cmyk_pixel(p, inverted)).collect();
    Pixels { width: src.width, height: src.height, layout: Layout::Rgb8, data }
}

fn naive_cmyk_pixel(p: &[u8], inverted: bool) -> [u8; 3] {
    let [c, m, y, k] =
        if inverted { [p[0], p[1], p[2], p[3]] } else { [255 - p[0], 255 - p[1], 255 - p[2], 255 - p[3]] };
    // With "no ink = 255" samples, each channel is (1 - ink) × (1 - black).
    let mix = |v: u8| ((u32::from(v) * u32::from(k) + 127) / 255) as u8;
    [mix(c), mix(m), mix(y)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_cmyk_handles_adobe_inversion() {
        // Pure cyan ink, no black: normal CMYK (255,0,0,0), Adobe-inverted (0,255,255,255).
        let normal = Pixels::from_vec(1, 1, Layout::Cmyk8, vec![255, 0, 0, 0]).expect("size");
        assert_eq!(naive_cmyk(&normal, false).data, vec![0, 255, 255]);
        let adobe = Pixels::from_vec(1, 1, Layout::Cmyk8, vec![0, 255, 255, 255]).expect("size");
        assert_eq!(naive_cmyk(&adobe, true).data, vec![0, 255, 255]);
    }
}
