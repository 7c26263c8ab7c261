//! A JPEG decoder that hands out rows a band at a time (libjpeg's scanline API, through the C
//! shim in `csrc/jpeg_rows.c`), with DCT-domain shrink-on-load. The pipeline resamples each band
//! as it arrives, so a render never holds the whole decoded frame.
#![allow(unsafe_code)] // The FFI to csrc/jpeg_rows.c; every call is wrapped here.

use super::stream::Rows;
use crate::error::{ImageError, Result};
use crate::pixels::Layout;
use std::ffi::{c_char, c_int, c_uint, CStr};
use std::marker::PhantomData;
use std::ptr::NonNull;

#[repr(C)]
struct RawDecoder {
    _private: [u8; 0],
}

extern "C" {
    fn catg_jpeg_new() -> *mut RawDecoder;
    fn catg_jpeg_free(decoder: *mut RawDecoder);
    fn catg_jpeg_message(decoder: *const RawDecoder) -> *const c_char;
    fn catg_jpeg_kind(decoder: *const RawDecoder) -> c_int;
    fn catg_jpeg_start(
        decoder: *mut RawDecoder,
        data: *const u8,
        len: usize,
        eighths: c_int,
        max_scans: c_int,
        width: *mut c_uint,
        height: *mut c_uint,
        components: *mut c_int,
    ) -> c_int;
    fn catg_jpeg_read(
        decoder: *mut RawDecoder,
        buf: *mut u8,
        stride: usize,
        max_rows: c_uint,
        rows: *mut c_uint,
    ) -> c_int;
    fn catg_jpeg_finish(decoder: *mut RawDecoder) -> c_int;
}

/// A started decode of one JPEG held in `'a` bytes.
pub(crate) struct JpegRows<'a> {
    raw: NonNull<RawDecoder>,
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// `Rgb8`, or `Cmyk8` for CMYK and YCCK JPEGs.
    pub(crate) layout: Layout,
    /// Rows handed out so far.
    pub(crate) row: u32,
    /// libjpeg reads from the caller's bytes until it is freed.
    _data: PhantomData<&'a [u8]>,
}

impl<'a> JpegRows<'a> {
    /// Read the header and start decoding at `eighths`/8 of the stored size (1, 2, 4 or 8; a
    /// lossless JPEG decodes at full size whatever is asked). A progressive JPEG is read whole
    /// here, into libjpeg's coefficient buffer; a baseline one is read as rows are asked for.
    pub(crate) fn start(data: &'a [u8], eighths: u8, max_scans: u32) -> Result<JpegRows<'a>> {
        // SAFETY: a plain constructor; null means out of memory.
        let raw = NonNull::new(unsafe { catg_jpeg_new() })
            .ok_or_else(|| ImageError::Internal("cannot allocate a JPEG decoder".into()))?;
        let mut rows = JpegRows { raw, width: 0, height: 0, layout: Layout::Rgb8, row: 0, _data: PhantomData };
        let (mut width, mut height, mut components): (c_uint, c_uint, c_int) = (0, 0, 0);
        let max_scans = c_int::try_from(max_scans).unwrap_or(c_int::MAX);
        // SAFETY: `data` outlives the decoder (the `'a` borrow); the out-pointers are live locals.
        let status = unsafe {
            catg_jpeg_start(
                raw.as_ptr(),
                data.as_ptr(),
                data.len(),
                c_int::from(eighths),
                max_scans,
                &mut width,
                &mut height,
                &mut components,
            )
        };
        rows.check(status)?;
        rows.layout = match components {
            3 => Layout::Rgb8,
            4 => Layout::Cmyk8,
            other => return Err(ImageError::Internal(format!("libjpeg gave {other} components per pixel"))),
        };
        (rows.width, rows.height) = (width, height);
        Ok(rows)
    }

    fn check(&self, status: c_int) -> Result<()> {
        if status == 0 {
            return Ok(());
        }
        // SAFETY: the message is a NUL-terminated buffer inside the live decoder.
        let message = unsafe { CStr::from_ptr(catg_jpeg_message(self.raw.as_ptr())) }.to_string_lossy().into_owned();
        // SAFETY: reads a field of the live decoder.
        Err(match unsafe { catg_jpeg_kind(self.raw.as_ptr()) } {
            2 => ImageError::Truncated(message),
            3 => ImageError::ResourceLimit(message),
            _ => ImageError::Corrupt(message),
        })
    }
}

impl Rows for JpegRows<'_> {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn layout(&self) -> Layout {
        self.layout
    }

    fn row(&self) -> u32 {
        self.row
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<u32> {
        let stride = self.row_bytes();
        let max_rows = c_uint::try_from(buf.len() / stride.max(1)).unwrap_or(c_uint::MAX);
        if self.row >= self.height || max_rows == 0 {
            return Ok(0);
        }
        let mut rows: c_uint = 0;
        // SAFETY: `buf` holds `max_rows` rows of `stride` bytes, and libjpeg writes at most
        // `max_rows` rows of `row_bytes()` bytes each.
        let status = unsafe { catg_jpeg_read(self.raw.as_ptr(), buf.as_mut_ptr(), stride, max_rows, &mut rows) };
        self.check(status)?;
        self.row += rows;
        if self.row >= self.height {
            // SAFETY: every scanline has been read.
            let status = unsafe { catg_jpeg_finish(self.raw.as_ptr()) };
            self.check(status)?;
        } else if rows == 0 {
            return Err(ImageError::Internal("libjpeg returned no rows before the end".into()));
        }
        Ok(rows)
    }
}

impl Drop for JpegRows<'_> {
    fn drop(&mut self) {
        // SAFETY: the decoder was made by catg_jpeg_new and is freed once.
        unsafe { catg_jpeg_free(self.raw.as_ptr()) }
    }
}
