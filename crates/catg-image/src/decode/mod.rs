//! Decoders: bytes to pixels, strictly (a warning is an error). Each format's decoder hands out
//! either rows (JPEG; PNG unless interlaced), which the engine streams through the transforms,
//! or a whole frame; and each says at what size it decodes, which the memory estimate counts.

mod av1;
mod avif;
pub(crate) mod generic;
pub(crate) mod heif;
pub(crate) mod jpeg;
mod png;
pub(crate) mod webp;

use crate::error::Result;
use crate::format::InputFormat;
use crate::frame::{Frame, Header, Rows};
use crate::limits::Limits;
use crate::probe::Probe;

/// A decode under way: rows still to read, or the whole frame.
pub(crate) enum Source<'a> {
    Rows(Box<dyn Rows + 'a>, Header),
    Frame(Frame),
}

/// Start decoding `data`, whose header gave `probe`, for a render that can work from
/// `min_scale` of the stored size (the shrink-on-load decoders use it, see [`decoded_size`]).
pub(crate) fn start<'a>(data: &'a [u8], probe: &Probe, min_scale: f64, limits: &Limits) -> Result<Source<'a>> {
    match probe.format {
        InputFormat::Jpeg => {
            let (rows, header) = jpeg::rows(data, min_scale, limits)?;
            Ok(Source::Rows(Box::new(rows), header))
        }
        InputFormat::Png => match png::rows(data, probe, limits)? {
            Some((rows, header)) => Ok(Source::Rows(Box::new(rows), header)),
            None => Ok(Source::Frame(decode(data, probe, min_scale, limits)?)),
        },
        _ => Ok(Source::Frame(decode(data, probe, min_scale, limits)?)),
    }
}

/// Rows of `data`, with what their frame carries, if its decoder hands out rows: JPEG with every
/// scan read (ingest's proof that the whole image is readable), PNG unless interlaced.
pub(crate) fn verify_rows<'a>(
    data: &'a [u8],
    probe: &Probe,
    limits: &Limits,
) -> Result<Option<(Box<dyn Rows + 'a>, Header)>> {
    Ok(match probe.format {
        InputFormat::Jpeg => {
            let (rows, header) = jpeg::rows_every_scan(data, limits)?;
            Some((Box::new(rows), header))
        }
        InputFormat::Png => {
            png::rows(data, probe, limits)?.map(|(rows, header)| (Box::new(rows) as Box<dyn Rows>, header))
        }
        _ => None,
    })
}

/// Decode the whole frame. An alpha channel that is opaque everywhere is dropped, so that
/// encoders get RGB and letterboxes are black (the engine does the same for rows, at the end).
pub(crate) fn decode(data: &[u8], probe: &Probe, min_scale: f64, limits: &Limits) -> Result<Frame> {
    let frame = match probe.format {
        InputFormat::Jpeg => jpeg::decode(data, min_scale, limits)?,
        InputFormat::Avif | InputFormat::Heic => heif::decode(data, probe)?,
        InputFormat::Webp if probe.frames == 1 => webp::decode(data, probe, min_scale)?,
        _ => generic::decode(data, probe, limits)?,
    };
    Ok(Frame { pixels: frame.pixels.drop_opaque_alpha(), ..frame })
}

/// Whether the decoder of `probe`'s format hands out rows (so a render holds a window of rows,
/// not the frame).
pub(crate) fn streams(probe: &Probe) -> bool {
    probe.format == InputFormat::Jpeg || (probe.format == InputFormat::Png && !probe.png_interlaced)
}

/// The size, in stored axes, at which a render that works from `min_scale` decodes: JPEG
/// shrinks on load by a DCT scale, still WebP through libwebp's scaled decode, the rest decode
/// at full size.
pub(crate) fn decoded_size(probe: &Probe, min_scale: f64) -> (f64, f64) {
    let stored = (probe.stored_width, probe.stored_height);
    match probe.format {
        InputFormat::Jpeg => {
            let scale = jpeg::decode_scale(min_scale);
            (f64::from(stored.0) * scale, f64::from(stored.1) * scale)
        }
        InputFormat::Webp if probe.frames == 1 => {
            let (w, h) = webp::decode_size(stored, min_scale);
            (f64::from(w), f64::from(h))
        }
        _ => (f64::from(stored.0), f64::from(stored.1)),
    }
}
