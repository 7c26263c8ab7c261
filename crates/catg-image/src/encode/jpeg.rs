//! JPEG through libjpeg-turbo's libjpeg API (csrc/jpeg_write.c): 4:2:0, optimised Huffman
//! tables, perceptually tuned quantisation tables and a dead zone for AC levels of ±1.

#![allow(unsafe_code)] // The FFI to csrc/jpeg_write.c.

use crate::error::{ImageError, Result};
use crate::pixels::Pixels;
use std::ffi::{c_char, c_int, c_uint, c_ulong};

/// JPEG has no alpha: transparent areas become white, which is what a page behind them
/// usually is.
const BACKGROUND: [u8; 3] = [255, 255, 255];

pub(crate) fn encode(pixels: Pixels, quality: u8, progressive: bool) -> Result<Vec<u8>> {
    let pixels = pixels.flatten(BACKGROUND);
    let steps = scaled(&ROBIDOUX, quality);
    write(&pixels.data, pixels.width, pixels.height, &steps, &steps, progressive, AC_THRESHOLD)
}

/// N. Robidoux's quantisation table (published on the ImageMagick forum; mozjpeg's default),
/// natural order, for luma and chroma alike. Its steps grow faster with frequency than the
/// JPEG standard's Annex K tables, where DSSIM notices least.
const ROBIDOUX: [u16; 64] = [
    16, 16, 16, 18, 25, 37, 56, 85, 16, 17, 20, 27, 34, 40, 53, 75, 16, 20, 24, 31, 43, 62, 91, 135, 18, 27, 31, 40,
    53, 74, 106, 156, 25, 34, 43, 53, 69, 94, 131, 189, 37, 40, 62, 74, 94, 124, 169, 238, 56, 53, 91, 106, 131, 169,
    226, 311, 85, 75, 135, 156, 189, 238, 311, 418,
];

/// The tables are scaled by libjpeg's quality curve times this, so that a quality gives the
/// DSSIM libjpeg's standard tables gave at it (q80: sharp's default quality), in fewer bytes.
const QUALITY_SCALE: f32 = 0.85;

/// AC levels of ±1 are kept only when the coefficient is at least this many quantiser steps
/// (0.5 would be plain rounding): see csrc/jpeg_write.c.
const AC_THRESHOLD: f32 = 0.65;

/// libjpeg's quality scaling (jpeg_quality_scaling) of a base table, clamped to baseline's 1-255.
fn scaled(base: &[u16; 64], quality: u8) -> [u16; 64] {
    let quality = u32::from(quality.clamp(1, 100));
    let percent = if quality < 50 { 5000 / quality } else { 200 - 2 * quality };
    base.map(|step| ((f32::from(step) * percent as f32 * QUALITY_SCALE + 50.0) / 100.0).clamp(1.0, 255.0) as u16)
}

extern "C" {
    fn catg_jpeg_write(
        rgb: *const u8,
        width: c_uint,
        height: c_uint,
        stride: usize,
        luma: *const u16,
        chroma: *const u16,
        progressive: c_int,
        threshold: f32,
        out: *mut *mut u8,
        out_len: *mut c_ulong,
        message: *mut c_char,
    ) -> c_int;
}

/// libjpeg's JMSG_LENGTH_MAX.
const MESSAGE_LENGTH: usize = 200;

fn write(
    rgb: &[u8],
    width: u32,
    height: u32,
    luma: &[u16; 64],
    chroma: &[u16; 64],
    progressive: bool,
    threshold: f32,
) -> Result<Vec<u8>> {
    let stride = width as usize * 3;
    if rgb.len() < stride * height as usize || width == 0 || height == 0 {
        return Err(ImageError::encoder("JPEG", "the pixel buffer does not match its size"));
    }
    let mut out: *mut u8 = std::ptr::null_mut();
    let mut out_len: c_ulong = 0;
    let mut message = [0 as c_char; MESSAGE_LENGTH];
    // SAFETY: `rgb` holds `height` rows of `stride` bytes (checked above), which libjpeg only
    // reads; the tables hold 64 steps; `message` has libjpeg's JMSG_LENGTH_MAX bytes.
    let status = unsafe {
        catg_jpeg_write(
            rgb.as_ptr(),
            width,
            height,
            stride,
            luma.as_ptr(),
            chroma.as_ptr(),
            c_int::from(progressive),
            threshold,
            &mut out,
            &mut out_len,
            message.as_mut_ptr(),
        )
    };
    if status != 0 || out.is_null() {
        // SAFETY: libjpeg wrote a NUL-terminated message (or it is still all zeros).
        let text = unsafe { std::ffi::CStr::from_ptr(message.as_ptr()) }.to_string_lossy().into_owned();
        return Err(ImageError::encoder("JPEG", text));
    }
    // SAFETY: on success `out` is a malloc'd buffer of `out_len` bytes, ours to free.
    let bytes = unsafe { std::slice::from_raw_parts(out, out_len as usize) }.to_vec();
    unsafe { libc::free(out.cast()) };
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::Layout;

    /// Baseline by default (a SOF0 frame header), progressive when asked (SOF2).
    #[test]
    fn progressive_only_when_asked() {
        let data: Vec<u8> = (0..64 * 48 * 3).map(|i| (i * 7 % 251) as u8).collect();
        let pixels = || Pixels::from_vec(64, 48, Layout::Rgb8, data.clone()).expect("pixels");
        // The frame header's marker: walk the segments from SOI to the first SOFn.
        let frame = |bytes: &[u8]| {
            let mut pos = 2;
            loop {
                let marker = bytes[pos + 1];
                if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
                    return marker;
                }
                pos += 2 + usize::from(u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]));
            }
        };
        assert_eq!(frame(&encode(pixels(), 80, false).expect("baseline")), 0xC0);
        let progressive = encode(pixels(), 80, true).expect("progressive");
        assert_eq!(frame(&progressive), 0xC2);
        let decoded = turbojpeg::decompress(&progressive, turbojpeg::PixelFormat::RGB).expect("decodes");
        assert_eq!((decoded.width, decoded.height), (64, 48));
    }
}
