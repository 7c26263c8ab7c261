//! AVIF: the HEIF container's primary `av01` item (and its alpha plane) through the AV1
//! decoder, converted to 8-bit RGB(A) with the item's colour description (`colr` nclx, else
//! the AV1 sequence header's). The clean aperture is cropped here; rotation and mirror go to
//! the orient step as an EXIF orientation, as for JPEG.

use super::av1::{self, Planes, Subsampling};
use crate::error::{ImageError, Result};
use crate::frame::Frame;
use crate::pixels::{Layout, Pixels};
use crate::probe::heif::{alpha_item, container, container_error, placement, Crop};
use crate::probe::Probe;
use heifer_isobmff::boxes::{ColorInfo, Property};
use heifer_isobmff::{HeifFile, ItemId};

pub(crate) fn decode(data: &[u8], probe: &Probe, max_pixels: u64) -> Result<Frame> {
    let file = container(data)?;
    let primary = file.primary_id;
    let colour = decode_item(&file, primary, max_pixels)?;
    let alpha = match alpha_item(&file, primary)? {
        Some(item) => Some(decode_item(&file, item, max_pixels)?),
        None => None,
    };
    let (coded_width, coded_height) = (colour.width, colour.height);
    let nclx = file.item_properties(primary).map_err(container_error)?.find_map(|p| match p {
        Property::Color(ColorInfo::Nclx { matrix, full_range, .. }) => Some((*matrix, *full_range)),
        _ => None,
    });
    let (matrix, full_range) = nclx.unwrap_or((colour.matrix, colour.full_range));
    let mut pixels = to_rgb(&colour, matrix, full_range, alpha.as_ref())?;
    let placement = placement(&file, primary, (coded_width, coded_height))?;
    if let Some(crop) = placement.crop {
        pixels = cropped(&pixels, crop)?;
    }
    if (pixels.width, pixels.height) != (probe.stored_width, probe.stored_height) {
        return Err(ImageError::Corrupt(format!(
            "the AV1 picture is {}x{}, the container says {}x{}",
            pixels.width, pixels.height, probe.stored_width, probe.stored_height
        )));
    }
    let icc = file.icc_profile(primary).map_err(container_error)?.map(<[u8]>::to_vec);
    Ok(Frame { pixels, orientation: placement.orientation, icc, cmyk_inverted: false })
}

fn decode_item(file: &HeifFile<'_>, item: ItemId, max_pixels: u64) -> Result<Planes> {
    let kind = file.item(item).map_err(container_error)?.item_type;
    if kind.0 != *b"av01" {
        return Err(ImageError::UnsupportedFormat(format!(
            "AVIF image item of type `{kind}` (catg decodes av01 items)"
        )));
    }
    av1::decode(&file.item_data(item).map_err(container_error)?, max_pixels)
}

/// YCbCr (or GBR, matrix 0) to 8-bit RGB, chroma upsampled by averaging its neighbours
/// (the "bilinear" of libavif); the alpha plane, if any, becomes the fourth channel.
fn to_rgb(yuv: &Planes, matrix: u16, full_range: bool, alpha: Option<&Planes>) -> Result<Pixels> {
    let (width, height) = (yuv.width, yuv.height);
    if let Some(a) = alpha {
        if (a.width, a.height) != (width, height) {
            return Err(ImageError::Corrupt(format!(
                "alpha plane {}x{} for a {width}x{height} image",
                a.width, a.height
            )));
        }
    }
    let layout = if alpha.is_some() { Layout::Rgba8 } else { Layout::Rgb8 };
    let mut pixels = Pixels::new(width, height, layout)?;
    let max = f32::from((1u16 << yuv.bit_depth) - 1);
    let scale = 255.0 / max;
    // Limited range: luma 16..235 and chroma 16..240, scaled to the bit depth.
    let depth_scale = f32::from(1u16 << (yuv.bit_depth - 8));
    let (y_offset, y_range, c_range) =
        if full_range { (0.0, max, max) } else { (16.0 * depth_scale, 219.0 * depth_scale, 224.0 * depth_scale) };
    let half = f32::from(1u16 << (yuv.bit_depth - 1));
    let coefficients = Coefficients::for_matrix(matrix);
    let (sx, sy) = yuv.subsampling.shifts();
    let (chroma_width, chroma_height) = yuv.chroma_size();
    let chroma = |plane: &[u16], x: u32, y: u32| -> f32 {
        // The chroma sample at luma (x, y): centred siting, the two nearest samples per axis.
        let position = |luma: u32, shift: u32, size: u32| -> (u32, u32, f32) {
            if shift == 0 {
                return (luma, luma, 0.0);
            }
            let centre = (luma as f32 + 0.5) / 2.0 - 0.5;
            let low = centre.floor().max(0.0);
            let weight = (centre - low).clamp(0.0, 1.0);
            let low = (low as u32).min(size - 1);
            (low, (low + 1).min(size - 1), weight)
        };
        let (x0, x1, wx) = position(x, sx, chroma_width);
        let (y0, y1, wy) = position(y, sy, chroma_height);
        let at = |cx: u32, cy: u32| f32::from(plane[(cy * chroma_width + cx) as usize]);
        let top = at(x0, y0) * (1.0 - wx) + at(x1, y0) * wx;
        let bottom = at(x0, y1) * (1.0 - wx) + at(x1, y1) * wx;
        top * (1.0 - wy) + bottom * wy
    };
    let channels = layout.channels();
    let to_byte = |v: f32| (v * 255.0).round().clamp(0.0, 255.0) as u8;
    for y in 0..height {
        for x in 0..width {
            let index = (y * width + x) as usize;
            let luma = (f32::from(yuv.planes[0][index]) - y_offset) / y_range;
            let rgb = if yuv.subsampling == Subsampling::Monochrome {
                [luma; 3]
            } else {
                let cb = (chroma(&yuv.planes[1], x, y) - half) / c_range;
                let cr = (chroma(&yuv.planes[2], x, y) - half) / c_range;
                coefficients.rgb(luma, cb, cr, (chroma(&yuv.planes[1], x, y), chroma(&yuv.planes[2], x, y)), scale)
            };
            let out = &mut pixels.data[index * channels..index * channels + channels];
            out[..3].copy_from_slice(&rgb.map(to_byte));
            if let Some(a) = alpha {
                let value = f32::from(a.planes[0][index]);
                let value =
                    if a.full_range { value / max } else { (value - 16.0 * depth_scale) / (219.0 * depth_scale) };
                out[3] = to_byte(value);
            }
        }
    }
    Ok(pixels)
}

/// ITU-T H.273 matrix coefficients as the luma weights of red and blue.
enum Coefficients {
    /// Matrix 0: the planes are G, B, R.
    Identity,
    Ycbcr {
        kr: f32,
        kb: f32,
    },
}

impl Coefficients {
    fn for_matrix(matrix: u16) -> Coefficients {
        match matrix {
            0 => Coefficients::Identity,
            1 => Coefficients::Ycbcr { kr: 0.2126, kb: 0.0722 },
            4 => Coefficients::Ycbcr { kr: 0.30, kb: 0.11 },
            7 => Coefficients::Ycbcr { kr: 0.212, kb: 0.087 },
            9 | 10 => Coefficients::Ycbcr { kr: 0.2627, kb: 0.0593 },
            // 5 and 6 are BT.601; unspecified (2) and the rest default to it, as libavif does.
            _ => Coefficients::Ycbcr { kr: 0.299, kb: 0.114 },
        }
    }

    /// RGB in 0..1 from normalised luma and centred chroma; `raw_chroma` and `scale` serve the
    /// identity matrix, whose chroma planes hold blue and red themselves.
    fn rgb(&self, luma: f32, cb: f32, cr: f32, raw_chroma: (f32, f32), scale: f32) -> [f32; 3] {
        match *self {
            Coefficients::Identity => [raw_chroma.1 * scale / 255.0, luma, raw_chroma.0 * scale / 255.0],
            Coefficients::Ycbcr { kr, kb } => {
                let kg = 1.0 - kr - kb;
                let r = luma + 2.0 * (1.0 - kr) * cr;
                let b = luma + 2.0 * (1.0 - kb) * cb;
                let g = (luma - kr * r - kb * b) / kg;
                [r, g, b]
            }
        }
    }
}

fn cropped(src: &Pixels, crop: Crop) -> Result<Pixels> {
    let mut out = Pixels::new(crop.width, crop.height, src.layout)?;
    let channels = src.channels();
    let row = crop.width as usize * channels;
    for (y, dst) in out.data.chunks_exact_mut(row).enumerate() {
        let start = ((crop.top as usize + y) * src.width as usize + crop.left as usize) * channels;
        dst.copy_from_slice(&src.data[start..start + row]);
    }
    Ok(out)
}
