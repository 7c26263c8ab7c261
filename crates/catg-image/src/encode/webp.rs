//! Lossy WebP encoding through libwebp (the same library as sharp's WebP). Stills use a slower
//! method and a sharper loop filter than libwebp's defaults; animations keep the defaults.
#![allow(unsafe_code)] // The FFI to libwebp's encoder; every call is wrapped here.

use crate::error::{ImageError, Result};
use crate::pixels::{Layout, Pixels};
use libwebp_sys as sys;
use std::ffi::c_int;

/// RGB(A) to YUV happens inside the picture import, straight from our pixels (as libvips does
/// for lossy WebP), rather than through an intermediate ARGB copy. Either way the encoder sees
/// the same YUV.
const IMPORT_AS_ARGB: c_int = 0;

/// libwebp's method 5 adds trellis quantisation to the final pass: with the sharper filter below,
/// 0.94x sharp's bytes at its DSSIM where method 4 needed 0.975x, for 1-2 ms per 400-px variant. Method 6 saves 2% more
/// but costs 15-25 ms, more than sharp's whole render on small photos (docs/decisions/pipeline.md).
const STILL_METHOD: c_int = 5;
/// A sharper loop filter (libwebp's photo preset uses 3; the default is 0) keeps a little more
/// texture at the same bytes.
const STILL_FILTER_SHARPNESS: c_int = 3;

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
    config.method = STILL_METHOD;
    config.filter_sharpness = STILL_FILTER_SHARPNESS;
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

/// libwebp's animation encoder, deleted on every path.
struct AnimEncoder(*mut sys::WebPAnimEncoder);

impl Drop for AnimEncoder {
    fn drop(&mut self) {
        // SAFETY: made by WebPAnimEncoderNewInternal and deleted only here.
        unsafe { sys::WebPAnimEncoderDelete(self.0) }
    }
}

/// An assembled animation, freed on every path.
struct Assembled(sys::WebPData);

impl Drop for Assembled {
    fn drop(&mut self) {
        // SAFETY: filled by WebPAnimEncoderAssemble (or still empty).
        unsafe { sys::WebPDataClear(&mut self.0) }
    }
}

/// An animated WebP of `frames` (RGBA, all one size), each lossy at `quality` as a still is,
/// shown for its delay, the whole played `loop_count` times (0: forever). libwebp's animation
/// encoder stores each frame as the smallest rectangle that changed, as sharp's does.
pub(crate) fn encode_animation(
    frames: &[crate::animation::AnimatedFrame],
    loop_count: u16,
    quality: u8,
) -> Result<Vec<u8>> {
    let abi = || ImageError::encoder("WebP", "libwebp's ABI does not match");
    let Some(first) = frames.first() else { return Err(ImageError::encoder("WebP", "an animation without frames")) };
    let (Ok(width), Ok(height)) = (c_int::try_from(first.pixels.width), c_int::try_from(first.pixels.height)) else {
        return Err(ImageError::encoder("WebP", "the image is too large"));
    };
    let mut options = std::mem::MaybeUninit::<sys::WebPAnimEncoderOptions>::uninit();
    // SAFETY: the init function fills every field (it returns 0 on an ABI mismatch).
    let mut options = unsafe {
        if sys::WebPAnimEncoderOptionsInitInternal(options.as_mut_ptr(), sys::WEBP_MUX_ABI_VERSION as c_int) == 0 {
            return Err(abi());
        }
        options.assume_init()
    };
    options.anim_params.loop_count = c_int::from(loop_count);
    // No forced key frames (libvips' settings too): libwebp's defaults encode most frames twice,
    // as a key frame and as a sub-frame, to pick the smaller; viewers play either alike.
    options.kmin = c_int::MAX - 1;
    options.kmax = c_int::MAX;
    // SAFETY: the options are initialised; a null encoder is an allocation failure.
    let encoder = AnimEncoder(unsafe {
        sys::WebPAnimEncoderNewInternal(width, height, &options, sys::WEBP_MUX_ABI_VERSION as c_int)
    });
    if encoder.0.is_null() {
        return Err(ImageError::ResourceLimit("not enough memory to encode the animated WebP".into()));
    }
    let mut config = sys::WebPConfig::new().map_err(|()| abi())?;
    config.quality = f32::from(quality);
    // SAFETY: `config` is initialised.
    if unsafe { sys::WebPValidateConfig(&config) } == 0 {
        return Err(ImageError::encoder("WebP", "invalid configuration"));
    }
    let mut timestamp: c_int = 0;
    for frame in frames {
        let pixels = &frame.pixels;
        if (pixels.width, pixels.height) != (first.pixels.width, first.pixels.height)
            || pixels.layout != Layout::Rgba8
            || pixels.data.len() < width as usize * height as usize * 4
        {
            return Err(ImageError::encoder("WebP", "the frames differ in size or layout"));
        }
        let mut picture = Picture(sys::WebPPicture::new().map_err(|()| abi())?);
        picture.0.use_argb = 1;
        picture.0.width = width;
        picture.0.height = height;
        // SAFETY: `data` holds `height` rows of `width` RGBA pixels (checked above).
        if unsafe { sys::WebPPictureImportRGBA(&mut picture.0, pixels.data.as_ptr(), width * 4) } == 0 {
            return Err(ImageError::ResourceLimit("not enough memory to encode the animated WebP".into()));
        }
        // SAFETY: encoder, picture and config are valid; the encoder copies what it keeps.
        if unsafe { sys::WebPAnimEncoderAdd(encoder.0, &mut picture.0, timestamp, &config) } == 0 {
            return Err(ImageError::encoder("WebP", format!("frame error {:?}", picture.0.error_code)));
        }
        timestamp = timestamp.saturating_add(c_int::try_from(frame.delay_ms).unwrap_or(c_int::MAX));
    }
    let mut assembled = Assembled(sys::WebPData { bytes: std::ptr::null(), size: 0 });
    // SAFETY: a null frame ends the animation at `timestamp` (the last frame's duration).
    let ok = unsafe {
        sys::WebPAnimEncoderAdd(encoder.0, std::ptr::null_mut(), timestamp, std::ptr::null()) != 0
            && sys::WebPAnimEncoderAssemble(encoder.0, &mut assembled.0) != 0
    };
    if !ok || assembled.0.bytes.is_null() {
        return Err(ImageError::encoder("WebP", "the animation could not be assembled"));
    }
    // SAFETY: the assembled data holds `size` bytes at `bytes` until cleared.
    Ok(unsafe { std::slice::from_raw_parts(assembled.0.bytes, assembled.0.size) }.to_vec())
}
