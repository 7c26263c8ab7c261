//! One AV1 still picture through `rav1d`, the memory-safe Rust port of dav1d (its assembly
//! kernels included). rav1d's API is dav1d's C API, so this module is the one place that
//! touches it: every pointer it hands back is read here, inside the picture's lifetime, and
//! copied out as [`Planes`] before the picture is released.

#![allow(unsafe_code)]

use crate::error::{ImageError, Result};
use rav1d::include::dav1d::data::Dav1dData;
use rav1d::include::dav1d::dav1d::{Dav1dContext, Dav1dSettings};
use rav1d::include::dav1d::headers::{
    DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420, DAV1D_PIXEL_LAYOUT_I422, DAV1D_PIXEL_LAYOUT_I444,
};
use rav1d::include::dav1d::picture::Dav1dPicture;
use rav1d::src::lib::{
    dav1d_close, dav1d_data_create, dav1d_data_unref, dav1d_default_settings, dav1d_get_picture, dav1d_open,
    dav1d_picture_unref, dav1d_send_data,
};
use std::mem::MaybeUninit;
use std::ptr::NonNull;

/// Chroma subsampling of the decoded planes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subsampling {
    Monochrome,
    Yuv420,
    Yuv422,
    Yuv444,
}

impl Subsampling {
    /// Right shifts from luma to chroma coordinates (x, y).
    pub(crate) fn shifts(self) -> (u32, u32) {
        match self {
            Subsampling::Yuv420 => (1, 1),
            Subsampling::Yuv422 => (1, 0),
            Subsampling::Monochrome | Subsampling::Yuv444 => (0, 0),
        }
    }
}

/// A decoded picture: samples widened to 16 bits (8-bit streams too, so one converter serves
/// every depth), tightly packed.
pub(crate) struct Planes {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) bit_depth: u8,
    pub(crate) subsampling: Subsampling,
    /// Y, then U and V (empty for monochrome).
    pub(crate) planes: [Vec<u16>; 3],
    /// The sequence header's colour description: matrix coefficients (H.273) and full range.
    pub(crate) matrix: u16,
    pub(crate) full_range: bool,
}

impl Planes {
    pub(crate) fn chroma_size(&self) -> (u32, u32) {
        let (sx, sy) = self.subsampling.shifts();
        (self.width.div_ceil(1 << sx), self.height.div_ceil(1 << sy))
    }
}

/// Decode one AV1 temporal unit (an AVIF item's data) into planes, refusing pictures over
/// `max_pixels` before rav1d allocates them.
pub(crate) fn decode(obu: &[u8], max_pixels: u64) -> Result<Planes> {
    let decoder = Decoder::open(max_pixels)?;
    let mut picture = decoder.decode(obu)?;
    let planes = copy_planes(&picture);
    // SAFETY: `picture` came from dav1d_get_picture and is released exactly once.
    unsafe { dav1d_picture_unref(Some(NonNull::from(&mut picture))) };
    planes
}

struct Decoder {
    context: Option<Dav1dContext>,
}

impl Decoder {
    fn open(max_pixels: u64) -> Result<Decoder> {
        let mut settings = MaybeUninit::<Dav1dSettings>::uninit();
        // SAFETY: dav1d_default_settings initialises every field of the settings it is given.
        let settings = unsafe {
            dav1d_default_settings(NonNull::from(&mut settings).cast());
            settings.assume_init_mut()
        };
        // One still picture: no frame pipelining, so its memory is one frame; tiles decode on
        // two threads, as HEIC's do (a Lambda's vCPUs, a render's share of a serve host).
        settings.n_threads = 2;
        settings.max_frame_delay = 1;
        // Film grain is part of the picture (libavif and libaom apply it too).
        settings.apply_grain = 1;
        settings.frame_size_limit = u32::try_from(max_pixels).unwrap_or(u32::MAX);
        // No logging to stderr from inside a server: errors come back as results.
        // SAFETY: the logger is two options (cookie, callback) of pointer types, for which all
        // zero bytes are `None`: no callback, so nothing is ever called.
        unsafe {
            let logger = std::ptr::addr_of_mut!(settings.logger);
            std::ptr::write_bytes(logger.cast::<u8>(), 0, std::mem::size_of_val(&*logger));
        }
        let mut context = None;
        // SAFETY: both pointers are to live locals for the duration of the call.
        let result = unsafe { dav1d_open(Some(NonNull::from(&mut context)), Some(NonNull::from(settings))) };
        check(result.0, "cannot start the AV1 decoder")?;
        Ok(Decoder { context })
    }

    /// The last picture of the temporal unit (a layered item refines the earlier layers).
    fn decode(&self, obu: &[u8]) -> Result<Dav1dPicture> {
        let context = self.context.ok_or_else(|| ImageError::Internal("the AV1 decoder is closed".into()))?;
        let mut data = Dav1dData::default();
        // SAFETY: dav1d_data_create returns a buffer of `obu.len()` bytes (or null), which the
        // copy fills; `data` is released below whether or not the decoder took it.
        let sent = unsafe {
            let buffer = dav1d_data_create(Some(NonNull::from(&mut data)), obu.len());
            if buffer.is_null() {
                return Err(ImageError::ResourceLimit("cannot allocate the AV1 input buffer".into()));
            }
            std::ptr::copy_nonoverlapping(obu.as_ptr(), buffer, obu.len());
            self.send(context, &mut data)
        };
        // SAFETY: unref of a data object that was created above (a no-op once consumed).
        unsafe { dav1d_data_unref(Some(NonNull::from(&mut data))) };
        let mut last = sent?;
        loop {
            let mut picture = Dav1dPicture::default();
            // SAFETY: `picture` is a live local; on failure dav1d leaves it empty and unref is a no-op.
            let result = unsafe { dav1d_get_picture(Some(context), Some(NonNull::from(&mut picture))) };
            if result.0 != 0 {
                unsafe { dav1d_picture_unref(Some(NonNull::from(&mut picture))) };
                return match last {
                    Some(picture) => Ok(picture),
                    None => {
                        check(result.0, "the AV1 data holds no picture")?;
                        Err(ImageError::Corrupt("the AV1 data holds no picture".into()))
                    }
                };
            }
            if let Some(mut previous) = last.replace(picture) {
                // SAFETY: a picture from dav1d_get_picture, released once.
                unsafe { dav1d_picture_unref(Some(NonNull::from(&mut previous))) };
            }
        }
    }

    /// Send the whole unit; while the decoder is full, take the pictures it holds (keeping the
    /// newest) so it can go on.
    ///
    /// # Safety
    /// `context` comes from dav1d_open and `data` from dav1d_data_create.
    unsafe fn send(&self, context: Dav1dContext, data: &mut Dav1dData) -> Result<Option<Dav1dPicture>> {
        let mut last: Option<Dav1dPicture> = None;
        let release = |p: &mut Dav1dPicture| unsafe { dav1d_picture_unref(Some(NonNull::from(p))) };
        // Each round either consumes data or takes a picture out; a unit cannot hold more
        // pictures than this (AV1 has 8 reference slots and a few layers).
        for _ in 0..64 {
            let result = unsafe { dav1d_send_data(Some(context), Some(NonNull::from(&mut *data))) };
            if result.0 == 0 && data.sz == 0 {
                return Ok(last);
            }
            if result.0 != 0 && result.0 != -libc::EAGAIN {
                if let Some(mut p) = last {
                    release(&mut p);
                }
                return check(result.0, "corrupt AV1 data").map(|_| None);
            }
            let mut pending = Dav1dPicture::default();
            let taken = unsafe { dav1d_get_picture(Some(context), Some(NonNull::from(&mut pending))) };
            if taken.0 != 0 {
                release(&mut pending);
                if result.0 == 0 {
                    continue;
                }
                if let Some(mut p) = last {
                    release(&mut p);
                }
                return check(result.0, "corrupt AV1 data").map(|_| None);
            }
            if let Some(mut previous) = last.replace(pending) {
                release(&mut previous);
            }
        }
        if let Some(mut p) = last {
            release(&mut p);
        }
        Err(ImageError::Corrupt("the AV1 data never finished decoding".into()))
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: the context from dav1d_open (or None), closed once.
        unsafe { dav1d_close(Some(NonNull::from(&mut self.context))) };
    }
}

/// dav1d reports errors as negated errno values.
fn check(code: i32, what: &str) -> Result<()> {
    match -code {
        0 => Ok(()),
        libc::ENOMEM => Err(ImageError::ResourceLimit(format!("{what}: out of memory or over the size limit"))),
        libc::ENOPROTOOPT => Err(ImageError::UnsupportedFormat(format!("AV1 feature ({what})"))),
        _ => Err(ImageError::Corrupt(what.to_string())),
    }
}

fn copy_planes(picture: &Dav1dPicture) -> Result<Planes> {
    let (width, height) = (picture.p.w, picture.p.h);
    let bit_depth = picture.p.bpc;
    if width <= 0 || height <= 0 || !matches!(bit_depth, 8 | 10 | 12) {
        return Err(ImageError::Corrupt(format!("AV1 picture of {width}x{height} at {bit_depth} bits")));
    }
    let subsampling = match picture.p.layout {
        DAV1D_PIXEL_LAYOUT_I400 => Subsampling::Monochrome,
        DAV1D_PIXEL_LAYOUT_I420 => Subsampling::Yuv420,
        DAV1D_PIXEL_LAYOUT_I422 => Subsampling::Yuv422,
        DAV1D_PIXEL_LAYOUT_I444 => Subsampling::Yuv444,
        other => return Err(ImageError::UnsupportedFormat(format!("AV1 pixel layout {other}"))),
    };
    let (matrix, full_range) = match picture.seq_hdr {
        // SAFETY: the sequence header lives as long as the picture that points to it.
        Some(header) => unsafe {
            let header = header.as_ref();
            (header.mtrx as u16, header.color_range != 0)
        },
        None => (2, false),
    };
    let mut planes = Planes {
        width: width as u32,
        height: height as u32,
        bit_depth: bit_depth as u8,
        subsampling,
        planes: [Vec::new(), Vec::new(), Vec::new()],
        matrix,
        full_range,
    };
    let (chroma_width, chroma_height) = planes.chroma_size();
    let plane_count = if subsampling == Subsampling::Monochrome { 1 } else { 3 };
    for index in 0..plane_count {
        let (w, h, stride) = if index == 0 {
            (planes.width, planes.height, picture.stride[0])
        } else {
            (chroma_width, chroma_height, picture.stride[1])
        };
        let pointer = picture.data[index].ok_or_else(|| ImageError::Corrupt("AV1 picture without samples".into()))?;
        let mut samples = Vec::new();
        samples
            .try_reserve_exact(w as usize * h as usize)
            .map_err(|_| ImageError::ResourceLimit(format!("cannot allocate a {w}x{h} AV1 plane")))?;
        for y in 0..h as isize {
            // SAFETY: dav1d lays plane `index` out as `h` rows of at least `w` samples (1 byte at
            // 8 bits, 2 above), `stride` bytes apart, valid while the picture is referenced.
            unsafe {
                let row = pointer.as_ptr().cast::<u8>().offset(y * stride);
                if bit_depth == 8 {
                    samples.extend(std::slice::from_raw_parts(row, w as usize).iter().map(|&v| u16::from(v)));
                } else {
                    samples.extend_from_slice(std::slice::from_raw_parts(row.cast::<u16>(), w as usize));
                }
            }
        }
        planes.planes[index] = samples;
    }
    Ok(planes)
}
