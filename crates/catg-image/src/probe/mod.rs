//! Header probes: dimensions, orientation, alpha, frames and ICC presence, read without decoding
//! pixels, so that every limit can be checked before a decoder allocates anything.

mod bmp;
pub(crate) mod exif;
mod gif;
pub(crate) mod heif;
pub(crate) mod jpeg;
mod png;
mod reader;
mod tiff;
pub(crate) mod webp;

pub use exif::{Attribution, Orientation};

use crate::error::{ImageError, Result};
use crate::format::{sniff, InputFormat};
use crate::limits::Limits;

/// What the header says about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub format: InputFormat,
    /// Size as stored, before EXIF orientation.
    pub stored_width: u32,
    pub stored_height: u32,
    /// EXIF orientation; invalid or absent values are [`Orientation::Normal`] (render as stored).
    pub orientation: Orientation,
    /// The header declares transparency: an alpha channel, a transparent palette entry or colour.
    /// [`crate::has_transparency`] tells whether any pixel really is transparent.
    pub has_alpha: bool,
    /// Animation frames or TIFF pages; 1 for still images.
    pub frames: u32,
    pub has_icc: bool,
    /// Scans in a JPEG (1 for baseline); 0 for other formats.
    pub jpeg_scans: u32,
    /// Bytes of libjpeg's whole-image coefficient buffer, which a progressive or multi-scan JPEG
    /// needs at any output scale (128 bytes per 8×8 block of every component, as its sampling
    /// lays them out); 0 for single-scan baseline JPEGs and other formats.
    pub jpeg_buffer_bytes: u64,
    /// An Adam7-interlaced PNG, whose rows arrive pass by pass: it cannot be decoded a band at
    /// a time, so a render holds its whole frame.
    pub png_interlaced: bool,
    /// EXIF Artist and Copyright (JPEG, PNG and WebP sources), which variants carry only when
    /// the operator keeps them.
    pub attribution: Attribution,
}

impl Probe {
    /// Width after EXIF orientation.
    pub fn width(&self) -> u32 {
        if self.orientation.swaps_axes() {
            self.stored_height
        } else {
            self.stored_width
        }
    }

    /// Height after EXIF orientation.
    pub fn height(&self) -> u32 {
        if self.orientation.swaps_axes() {
            self.stored_width
        } else {
            self.stored_height
        }
    }

    /// Checks every header-level limit. Called by [`probe`]; public for callers that build a
    /// `Probe` from a stored manifest record.
    pub fn check_limits(&self, limits: &Limits) -> Result<()> {
        let (w, h) = (u64::from(self.stored_width), u64::from(self.stored_height));
        if w == 0 || h == 0 {
            return Err(ImageError::corrupt("the header declares a zero width or height"));
        }
        if w * h > limits.max_pixels {
            return Err(ImageError::TooManyPixels { width: w, height: h, pixels: w * h, limit: limits.max_pixels });
        }
        if self.frames > limits.max_frames {
            return Err(ImageError::TooManyFrames { limit: limits.max_frames });
        }
        if self.jpeg_scans > limits.max_jpeg_scans {
            return Err(ImageError::ResourceLimit(format!(
                "the JPEG has more than {} progressive scans",
                limits.max_jpeg_scans
            )));
        }
        Ok(())
    }
}

/// Sniff and probe a whole input held in memory, then check the limits.
pub fn probe(data: &[u8], limits: &Limits) -> Result<Probe> {
    if data.len() as u64 > limits.max_input_bytes {
        return Err(ImageError::TooLarge { bytes: data.len() as u64, limit: limits.max_input_bytes });
    }
    let format = sniff(data)?;
    let probe = match format {
        InputFormat::Jpeg => jpeg::probe(data, limits)?,
        InputFormat::Png => png::probe(data, limits)?,
        InputFormat::Gif => gif::probe(data, limits)?,
        InputFormat::Webp => webp::probe(data, limits)?,
        InputFormat::Tiff => tiff::probe(data, limits)?,
        InputFormat::Bmp => bmp::probe(data)?,
        InputFormat::Avif | InputFormat::Heic if !limits.heif_input => {
            return Err(ImageError::UnsupportedFormat(format!("{format} (switched off on this server)")))
        }
        InputFormat::Avif | InputFormat::Heic => heif::probe(format, data)?,
    };
    probe.check_limits(limits)?;
    Ok(probe)
}

/// A still image with no transparency, no ICC and no scans: the common starting point.
fn still(format: InputFormat, stored_width: u32, stored_height: u32) -> Probe {
    Probe {
        format,
        stored_width,
        stored_height,
        orientation: Orientation::Normal,
        has_alpha: false,
        frames: 1,
        has_icc: false,
        jpeg_scans: 0,
        jpeg_buffer_bytes: 0,
        png_interlaced: false,
        attribution: Attribution::default(),
    }
}
