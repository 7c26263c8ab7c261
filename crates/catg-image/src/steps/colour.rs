//! Colour: everything becomes sRGB. Embedded ICC profiles are applied with Little CMS; CMYK and
//! YCCK without a profile use the naive conversion (what browsers do).

use super::Frame;
use crate::error::{ImageError, Result};
use crate::pixels::{Layout, Pixels};
use lcms2::{ColorSpaceSignature, Flags, InfoType, Intent, Locale, PixelFormat, Profile, Transform};

pub(crate) fn apply(frame: Frame) -> Result<Frame> {
    // A profile that does not parse, or does not match the pixels, is ignored rather than
    // rejected: damaged metadata must not make a good image unservable.
    let profile = frame.icc.as_deref().and_then(|icc| Profile::new_icc(icc).ok());
    let pixels = match frame.pixels.layout {
        Layout::Cmyk8 => {
            let profile = profile.filter(|p| p.color_space() == ColorSpaceSignature::CmykData);
            match profile {
                Some(p) => cmyk_with_profile(&frame.pixels, &p, frame.cmyk_inverted)?,
                None => naive_cmyk(&frame.pixels, frame.cmyk_inverted),
            }
        }
        Layout::Rgb8 | Layout::Rgba8 => {
            match profile.filter(|p| p.color_space() == ColorSpaceSignature::RgbData && !is_srgb(p)) {
                Some(p) => rgb_with_profile(frame.pixels, &p)?,
                None => frame.pixels,
            }
        }
    };
    Ok(Frame { pixels, icc: None, cmyk_inverted: false, ..frame })
}

/// Converting sRGB to sRGB costs a full pass for nothing.
fn is_srgb(profile: &Profile) -> bool {
    profile.info(InfoType::Description, Locale::none()).is_some_and(|d| d.to_ascii_lowercase().contains("srgb"))
}

fn cms_error(e: lcms2::Error) -> ImageError {
    ImageError::Internal(format!("colour transform: {e}"))
}

fn rgb_with_profile(mut pixels: Pixels, profile: &Profile) -> Result<Pixels> {
    let srgb = Profile::new_srgb();
    match pixels.layout {
        Layout::Rgba8 => {
            let t: Transform<[u8; 4], [u8; 4]> = Transform::new_flags(
                profile,
                PixelFormat::RGBA_8,
                &srgb,
                PixelFormat::RGBA_8,
                Intent::RelativeColorimetric,
                Flags::COPY_ALPHA,
            )
            .map_err(cms_error)?;
            t.transform_in_place(bytemuck::cast_slice_mut(&mut pixels.data));
        }
        _ => {
            let t: Transform<[u8; 3], [u8; 3]> =
                Transform::new(profile, PixelFormat::RGB_8, &srgb, PixelFormat::RGB_8, Intent::RelativeColorimetric)
                    .map_err(cms_error)?;
            t.transform_in_place(bytemuck::cast_slice_mut(&mut pixels.data));
        }
    }
    Ok(pixels)
}

fn cmyk_with_profile(src: &Pixels, profile: &Profile, inverted: bool) -> Result<Pixels> {
    let srgb = Profile::new_srgb();
    // Adobe's CMYK JPEGs store 255 for "no ink"; lcms calls that layout CMYK_8_REV.
    let format = if inverted { PixelFormat::CMYK_8_REV } else { PixelFormat::CMYK_8 };
    let t: Transform<[u8; 4], [u8; 3]> =
        Transform::new(profile, format, &srgb, PixelFormat::RGB_8, Intent::Perceptual).map_err(cms_error)?;
    let mut out = Pixels::new(src.width, src.height, Layout::Rgb8)?;
    t.transform_pixels(bytemuck::cast_slice(&src.data), bytemuck::cast_slice_mut(&mut out.data));
    Ok(out)
}

fn naive_cmyk(src: &Pixels, inverted: bool) -> Pixels {
    let data = src
        .data
        .chunks_exact(4)
        .flat_map(|p| {
            let [c, m, y, k] =
                if inverted { [p[0], p[1], p[2], p[3]] } else { [255 - p[0], 255 - p[1], 255 - p[2], 255 - p[3]] };
            // With "no ink = 255" samples, each channel is (1 - ink) × (1 - black).
            let mix = |v: u8| ((u32::from(v) * u32::from(k) + 127) / 255) as u8;
            [mix(c), mix(m), mix(y)]
        })
        .collect();
    Pixels { width: src.width, height: src.height, layout: Layout::Rgb8, data }
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
