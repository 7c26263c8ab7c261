//! Lossy WebP encoding through libwebp (the same library, and the same settings, as sharp's
//! WebP: libwebp's defaults, method 4, at the quality asked).
#![allow(unsafe_code)] // The FFI to libwebp's encoder; every call is wrapped here.

use crate::error::{ImageError, Result};
use crate::pixels::{Layout, Pixels};
use libwebp_sys as sys;
use std::ffi::c_int;

/// RGB(A) to YUV happens inside the picture import, straight from our pixels (as libvips does
/// for lossy WebP), rather than through an intermediate ARGB copy. Either way the encoder sees
/// the same YUV.
const IMPORT_AS_ARGB: c_int = 0;

/// A libwebp picture, freed on every path.
struct Picture(sys::WebPPicture);

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: initialised by WebPPictureInit; freeing an empty picture is a no-op.
        unsafe { sys::WebPPictureFree(&mut self.0) }
    }
}

/// The encoder's output buffer, freed on every path.
struct Writer(sys::WebPMemoryWriter);

impl Drop for Writer {
    fn drop(&mut self) {
        // SAFETY: initialised by WebPMemoryWriterInit.
        unsafe { sys::WebPMemoryWriterClear(&mut self.0) }
    }
}

pub(crate) fn encode(pixels: &Pixels, quality: u8) -> Result<Vec<u8>> {
    let channels = pixels.layout.channels();
    let (width, height) = (c_int::try_from(pixels.width), c_int::try_from(pixels.height));
    let (Ok(width), Ok(height)) = (width, height) else {
        return Err(ImageError::encoder("WebP", "the image is too large"));
    };
    let stride = width * channels as c_int;
    if pixels.data.len() < stride as usize * height as usize || !matches!(pixels.layout, Layout::Rgb8 | Layout::Rgba8) {
        return Err(ImageError::encoder("WebP", "the pixel buffer does not match its size"));
    }
    let mut config =
        sys::WebPConfig::new().map_err(|()| ImageError::encoder("WebP", "libwebp's ABI does not match"))?;
    config.quality = f32::from(quality);
    // SAFETY: `config` is initialised.
    if unsafe { sys::WebPValidateConfig(&config) } == 0 {
        return Err(ImageError::encoder("WebP", "invalid configuration"));
    }
    let mut picture =
        Picture(sys::WebPPicture::new().map_err(|()| ImageError::encoder("WebP", "libwebp's ABI does not match"))?);
    picture.0.use_argb = IMPORT_AS_ARGB;
    picture.0.width = width;
    picture.0.height = height;
    // SAFETY: `pixels.data` holds `height` rows of `stride` bytes (checked above); libwebp only
    // reads them, into buffers the picture owns.
    let imported = unsafe {
        if pixels.layout == Layout::Rgba8 {
            sys::WebPPictureImportRGBA(&mut picture.0, pixels.data.as_ptr(), stride)
        } else {
            sys::WebPPictureImportRGB(&mut picture.0, pixels.data.as_ptr(), stride)
        }
    };
    if imported == 0 {
        return Err(ImageError::ResourceLimit("not enough memory to encode the WebP".into()));
    }
    let mut writer = Writer(unsafe {
        // SAFETY: WebPMemoryWriterInit initialises every field.
        let mut writer = std::mem::MaybeUninit::uninit();
        sys::WebPMemoryWriterInit(writer.as_mut_ptr());
        writer.assume_init()
    });
    picture.0.writer = Some(sys::WebPMemoryWrite);
    picture.0.custom_ptr = (&mut writer.0 as *mut sys::WebPMemoryWriter).cast();
    // SAFETY: config and picture are valid; the writer outlives the call.
    let ok = unsafe { sys::WebPEncode(&config, &mut picture.0) };
    if ok == 0 {
        return Err(ImageError::encoder("WebP", format!("error {:?}", picture.0.error_code)));
    }
    // SAFETY: the writer holds `size` bytes at `mem` (null only when size is 0).
    let bytes = if writer.0.size == 0 {
        Vec::new()
    } else {
        unsafe { std::slice::from_raw_parts(writer.0.mem, writer.0.size) }.to_vec()
    };
    Ok(bytes)
}
