//! `render`: the whole pipeline for one variant, with every limit checked before work and any
//! panic inside a codec turned into an error.

use crate::animation::{self, AnimatedFrame};
use crate::attention;
use crate::decode::{self, decode, Source};
use crate::effects::Effects;
use crate::encode::encode_with_exif;
use crate::engine;
use crate::error::{ImageError, Result};
use crate::format::InputFormat;
use crate::frame::{Context, Frame, Header, Rows, BAND_ROWS};
use crate::geometry::{plan, Anchor, Resize};
use crate::limits::{Deadline, Limits};
use crate::output::OutputFormat;
use crate::pixels::{Layout, Pixels};
use crate::probe::{probe, Probe};
use crate::reduce::{box_average, BoxAverager};
use crate::summary::{summarise, Summary};
use crate::transform::{upright, Transform, TRANSFORMS};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A concrete render request: everything resolved (no `auto` format, quality chosen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RenderSpec {
    pub resize: Resize,
    pub effects: Effects,
    pub format: OutputFormat,
    /// 1–100; ignored by PNG and GIF.
    pub quality: u8,
    /// Keep every frame of an animation when the format animates (WebP, GIF); `false` (the
    /// recipe's `frames=1`) renders the first frame only, as JPEG, PNG and AVIF always do.
    pub animate: bool,
    /// Progressive JPEG (the recipe's `progressive=1`); ignored by other formats.
    pub progressive: bool,
}

impl RenderSpec {
    /// Whether a render of `probe` keeps every frame.
    fn keeps_animation(&self, probe: &Probe) -> bool {
        self.animate && self.format.animates() && animation::is_animation(probe)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
}

/// Probe, check and render `data`.
pub fn render(data: &[u8], spec: &RenderSpec, limits: &Limits) -> Result<Rendered> {
    let probe = probe(data, limits)?;
    render_probed(data, &probe, spec, limits)
}

/// Render `data` whose header was already probed (the probe is re-checked against `limits`).
pub fn render_probed(data: &[u8], probe: &Probe, spec: &RenderSpec, limits: &Limits) -> Result<Rendered> {
    probe.check_limits(limits)?;
    if data.len() as u64 > limits.max_input_bytes {
        return Err(ImageError::TooLarge { bytes: data.len() as u64, limit: limits.max_input_bytes });
    }
    guarded(|| run(data, probe, spec, limits))
}

/// Whether the image really has transparency (some pixel not fully opaque), found by decoding
/// its first frame at the smallest scale the codec offers. Only images whose header declares
/// alpha need this; many opaque images carry an alpha channel, and serving those as PNG (what
/// `fmt=auto` does for transparent images) would be a waste. Decoding also catches damage that
/// the header probe cannot see.
pub fn has_transparency(data: &[u8], probe: &Probe, limits: &Limits) -> Result<bool> {
    if !probe.has_alpha {
        probe.check_limits(limits)?;
        return Ok(false);
    }
    verify(data, probe, limits).map(|verified| verified.has_alpha)
}

/// What decoding a whole image once found ([`verify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Some pixel is not fully opaque.
    pub has_alpha: bool,
    /// The placeholder and hashes of the upright sRGB image (`None` only for an empty frame).
    pub summary: Option<Summary>,
}

/// Decode the first frame (at the smallest scale the codec offers: JPEG still walks all of its
/// entropy-coded data, every scan of it, a band of rows at a time) to prove the whole image is
/// readable, and report whether it really has transparency and its [`Summary`]. Ingest runs this
/// once per asset, so damage is found before anyone asks for a variant, and the summary costs no
/// second decode: the rows are box-averaged as they pass.
pub fn verify(data: &[u8], probe: &Probe, limits: &Limits) -> Result<Verified> {
    probe.check_limits(limits)?;
    guarded(|| {
        let deadline = Deadline::start(limits);
        // Decoders that scale on load (WebP) must not average a lone transparent pixel away:
        // with declared alpha, decode at full size.
        let min_scale = if probe.has_alpha { 1.0 } else { 0.0 };
        // A JPEG is read with every scan decoded (a render at 1/8 skips those it does not need),
        // a PNG a band at a time, so ingest never holds their frames.
        if let Some((rows, header)) = decode::verify_rows(data, probe, limits)? {
            return verify_rows(rows, header, &deadline);
        }
        let frame = decode(data, probe, min_scale, limits)?;
        deadline.check("decode")?;
        let has_alpha = frame.pixels.has_transparency();
        let small = box_average(&frame.pixels, SUMMARY_SIDE);
        let header = Header { orientation: frame.orientation, icc: frame.icc, cmyk_inverted: frame.cmyk_inverted };
        Ok(Verified { has_alpha, summary: upright_summary(small, header)? })
    })
}

/// The side of the copy a summary is made from; ThumbHash takes at most 100.
const SUMMARY_SIDE: u32 = 100;

/// Read every row: whether any pixel is not fully opaque, and the summary of their average.
fn verify_rows(mut rows: Box<dyn Rows + '_>, header: Header, deadline: &Deadline) -> Result<Verified> {
    let mut band = vec![0u8; BAND_ROWS * rows.row_bytes()];
    let (width, height) = rows.size();
    let mut averager = BoxAverager::new(width, height, rows.layout(), SUMMARY_SIDE);
    let mut transparent = false;
    loop {
        let count = rows.read(&mut band)? as usize;
        if count == 0 {
            let small = averager.and_then(BoxAverager::finish);
            return Ok(Verified { has_alpha: transparent, summary: upright_summary(small, header)? });
        }
        let read = &band[..count * rows.row_bytes()];
        if rows.layout() == crate::pixels::Layout::Rgba8 && !transparent {
            transparent = crate::pixels::any_transparent(read);
        }
        if let Some(averager) = &mut averager {
            averager.push(read);
        }
        deadline.check("decode")?;
    }
}

/// The summary of a box-averaged copy (premultiplied RGBA, or CMYK) still in stored axes and
/// the source's colours: oriented and made sRGB first, as every variant is. Converting the
/// averages rather than every pixel is not exact, but a placeholder and a hash need no more.
fn upright_summary(small: Option<Pixels>, header: Header) -> Result<Option<Summary>> {
    let Some(small) = small else { return Ok(None) };
    let pixels = if small.layout == Layout::Rgba8 { small.unpremultiplied() } else { small };
    let frame = upright(Frame::from_parts(pixels, header))?;
    Ok(summarise(&frame.pixels))
}

/// Decode at full resolution and apply orientation and colour (sRGB), stopping before the resize:
/// the pixels every variant is made from. For quality references (benchmarks, tests); variants
/// are rendered with `render`, which decodes only as much as the output needs.
pub fn decode_full(data: &[u8], probe: &Probe, limits: &Limits) -> Result<crate::pixels::Pixels> {
    probe.check_limits(limits)?;
    guarded(|| Ok(upright(decode(data, probe, 1.0, limits)?)?.pixels))
}

/// A conservative estimate of the memory one render of `probe` per `spec` needs at its peak, in
/// bytes, for admitting renders against a process-wide memory budget: the source bytes; the
/// decoded pixels (at the shrink-on-load scale, JPEG's or WebP's): for JPEG and non-interlaced
/// PNG, which stream, a window of at most 512 rows, otherwise the whole frame twice over
/// (decoders and the colour step keep a second copy); libjpeg's whole-image coefficient buffer
/// for a progressive or multi-scan JPEG (from the frame header: every component, its sampling);
/// the output canvas twice (resampler and encoder), and for AVIF and JPEG XL the encoder's own
/// planes (32 and 24 bytes a pixel, from measured peaks); and 16 MiB for codec state. Measured
/// peaks (docs/performance.md) stay under it.
pub fn memory_estimate(probe: &Probe, spec: &RenderSpec, input_bytes: usize, limits: &Limits) -> u64 {
    if spec.keeps_animation(probe) {
        return animation_memory_estimate(probe, spec, input_bytes, limits);
    }
    // A smart crop looks at the whole (decoded) frame first.
    let streams =
        decode::streams(probe) && engine::streams_to_window(&TRANSFORMS) && spec.resize.anchor != Anchor::Smart;
    let (width, height) = spec.resize.turned_size(probe.width(), probe.height());
    let (decoded, canvas) = match plan(width, height, &spec.resize, limits.max_output_pixels) {
        Ok(geometry) => {
            let (width, height) = decode::decoded_size(probe, geometry.scale());
            let held =
                if streams { width.ceil() * height.ceil().min(512.0) } else { 2.0 * width.ceil() * height.ceil() };
            let (width, height) = spec.effects.padding.around(geometry.canvas);
            (held as u64, u64::from(width) * u64::from(height))
        }
        // The render will be refused before it decodes anything.
        Err(_) => (0, 0),
    };
    let encoder = match spec.format {
        OutputFormat::Avif => canvas * AVIF_ENCODER_BYTES_PER_PIXEL,
        OutputFormat::Jxl => canvas * JXL_ENCODER_BYTES_PER_PIXEL,
        _ => 0,
    };
    // Blur and sharpen hold up to two float copies of the output (four 4-byte samples a pixel).
    let effects = if spec.effects.blur.is_some() || spec.effects.sharpen.is_some() { canvas * 32 } else { 0 };
    input_bytes as u64 + decoded * 4 + probe.jpeg_buffer_bytes + 2 * canvas * 4 + encoder + effects + CODEC_STATE_BYTES
}

/// An animation's peak: the source bytes; the decoder's canvas and the frame it hands out (full
/// size, RGBA); one frame's transforms (the output twice); every output frame kept for the
/// encoder; the encoder's own copies (libwebp keeps a few frames' worth, GIF one index per
/// pixel of every frame).
fn animation_memory_estimate(probe: &Probe, spec: &RenderSpec, input_bytes: usize, limits: &Limits) -> u64 {
    let (width, height) = spec.resize.turned_size(probe.width(), probe.height());
    let canvas = match plan(width, height, &spec.resize, limits.max_output_pixels) {
        Ok(geometry) => {
            let (width, height) = spec.effects.padding.around(geometry.canvas);
            u64::from(width) * u64::from(height)
        }
        Err(_) => 0,
    };
    let source = u64::from(probe.stored_width) * u64::from(probe.stored_height);
    let frames = u64::from(probe.frames);
    let encoder = match spec.format {
        OutputFormat::Gif => frames * canvas,
        _ => 4 * canvas * 4,
    };
    input_bytes as u64 + 2 * source * 4 + 2 * canvas * 4 + frames * canvas * 4 + encoder + CODEC_STATE_BYTES
}

/// What ingest's [`verify`] needs at its peak, as [`memory_estimate`] counts it: the source
/// bytes, libjpeg's coefficient buffer, a band of rows for JPEG and non-interlaced PNG, and
/// otherwise the first frame at full size twice over.
pub fn verify_memory_estimate(probe: &Probe, input_bytes: usize) -> u64 {
    let (w, h) = (u64::from(probe.stored_width), u64::from(probe.stored_height));
    let held = match probe.format {
        // 1/8 scale, a band of 16 rows (every scan is still entropy-decoded into the buffer).
        InputFormat::Jpeg => w.div_ceil(8) * 16,
        InputFormat::Png if !probe.png_interlaced => w * BAND_ROWS as u64,
        _ => 2 * w * h,
    };
    input_bytes as u64 + held * 4 + probe.jpeg_buffer_bytes + CODEC_STATE_BYTES
}

/// libaom's working set per output pixel beyond the canvas: catg's 10-bit YCbCr planes and
/// libaom's own frame buffers. Above the same render to PNG, a 10.6 MP encode (speed 8) peaked
/// 180 MB higher, a 1 MP one (speed 6) 35 MB (about 10 MB of it fixed, within codec state).
const AVIF_ENCODER_BYTES_PER_PIXEL: u64 = 32;
/// jixel's working set per output pixel beyond the canvas: float XYB planes and their DCT
/// coefficients (12 + 12 bytes); a 10.6 MP encode peaked 94 MB above the same render to PNG.
const JXL_ENCODER_BYTES_PER_PIXEL: u64 = 24;
/// Decoder and encoder state that does not grow with the image (tables, row buffers, threads).
const CODEC_STATE_BYTES: u64 = 16 << 20;

/// Whether `spec` for a `width`×`height` source (as oriented) of `frames` animation frames (1
/// for a still, or a format whose frames are pages) stays within the output limits: at most
/// `max_output_pixels` (padding included, and every frame counted when the output animates),
/// enlarged at most `max_upscale` times along either axis, and if so the output's size. The
/// resolver checks this before queueing anything; every render checks it again.
pub fn check_output(width: u32, height: u32, frames: u32, spec: &RenderSpec, limits: &Limits) -> Result<(u32, u32)> {
    let (width, height) = spec.resize.turned_size(width, height);
    let geometry = plan(width, height, &spec.resize, limits.max_output_pixels)?;
    check_padding(&geometry, &spec.effects, limits)?;
    check_upscale(&geometry, limits)?;
    if spec.animate && spec.format.animates() {
        check_frames(&geometry, &spec.effects, frames, limits)?;
    }
    Ok(spec.effects.padding.around(geometry.canvas))
}

/// An animation's output frames, all counted against the output-pixel cap.
fn check_frames(geometry: &crate::geometry::Geometry, effects: &Effects, frames: u32, limits: &Limits) -> Result<()> {
    let (width, height) = effects.padding.around(geometry.canvas);
    let total = u64::from(width) * u64::from(height) * u64::from(frames.max(1));
    if total > limits.max_output_pixels {
        return Err(ImageError::ResourceLimit(format!(
            "the animation would be {frames} frames of {width}x{height}, {total} pixels in all, over the limit of {} \
             (ask for fewer pixels, or frames=1 for the first frame)",
            limits.max_output_pixels
        )));
    }
    Ok(())
}

fn check_padding(geometry: &crate::geometry::Geometry, effects: &Effects, limits: &Limits) -> Result<()> {
    let (width, height) = effects.padding.around(geometry.canvas);
    if u64::from(width) * u64::from(height) > limits.max_output_pixels {
        return Err(ImageError::ResourceLimit(format!(
            "the output would be {width}x{height} pixels with its padding, over the limit of {}",
            limits.max_output_pixels
        )));
    }
    Ok(())
}

fn check_upscale(geometry: &crate::geometry::Geometry, limits: &Limits) -> Result<()> {
    let max = f64::from(limits.max_upscale);
    // Output sizes round to whole pixels: up to the next pixel past the factor is the factor.
    let over = |scaled: u32, source: f64| f64::from(scaled) > (source * max).ceil();
    if over(geometry.scaled.0, geometry.source.width) || over(geometry.scaled.1, geometry.source.height) {
        let factor = (f64::from(geometry.scaled.0) / geometry.source.width)
            .max(f64::from(geometry.scaled.1) / geometry.source.height);
        return Err(ImageError::ResourceLimit(format!(
            "the output would enlarge the image {factor:.1}×, over the limit of {}×",
            limits.max_upscale
        )));
    }
    Ok(())
}

/// The region the fit works on, when the plan keeps less than it: only then is there a crop to
/// place (`None`: all of it is shown).
fn cropped_region(
    geometry: &crate::geometry::Geometry,
    resize: &Resize,
    size: (u32, u32),
) -> Result<Option<crate::geometry::Region>> {
    let kept = resize.kept(size.0, size.1)?;
    let crops = geometry.source.width < kept.width - 1e-9 || geometry.source.height < kept.height - 1e-9;
    Ok(crops.then_some(kept))
}

/// Run `work`, turning a panic inside a codec into an error.
fn guarded<T>(work: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|_| {
        // Decoding is deterministic: a retry would panic again, so this is the input's fault
        // as far as anyone downstream is concerned.
        Err(ImageError::corrupt("a decoder failed on this input"))
    })
}

fn run(data: &[u8], probe: &Probe, spec: &RenderSpec, limits: &Limits) -> Result<Rendered> {
    if spec.keeps_animation(probe) {
        return run_animation(data, probe, spec, limits);
    }
    let deadline = Deadline::start(limits);
    let oriented_size = spec.resize.turned_size(probe.width(), probe.height());
    let geometry = plan(oriented_size.0, oriented_size.1, &spec.resize, limits.max_output_pixels)?;
    check_upscale(&geometry, limits)?;
    check_padding(&geometry, &spec.effects, limits)?;
    let ctx = Context { geometry: &geometry, oriented_size, effects: &spec.effects };
    // The recipe's turn joins the EXIF orientation: one remap of the output-sized pixels.
    let source = match decode::start(data, probe, geometry.scale(), limits)? {
        Source::Rows(rows, mut header) => {
            header.orientation = header.orientation.then(spec.resize.turn);
            Source::Rows(rows, header)
        }
        Source::Frame(mut frame) => {
            frame.orientation = frame.orientation.then(spec.resize.turn);
            Source::Frame(frame)
        }
    };
    let smart_region = match spec.resize.anchor {
        Anchor::Smart => cropped_region(&geometry, &spec.resize, oriented_size)?,
        _ => None,
    };
    let frame = if let Some(kept) = smart_region {
        // The kept region depends on the pixels: decode and convert the whole frame, look, then
        // plan again with what was found as a focal point.
        let frame = engine::run(source, &[Transform::Colour], &ctx, &deadline)?;
        let window = (geometry.source.width, geometry.source.height);
        let point = attention::focal_point(&frame.pixels, frame.orientation, oriented_size, kept, window);
        deadline.check("smart crop")?;
        let resize = Resize { anchor: Anchor::Focal(point), ..spec.resize };
        let geometry = plan(oriented_size.0, oriented_size.1, &resize, limits.max_output_pixels)?;
        let ctx = Context { geometry: &geometry, oriented_size, effects: &spec.effects };
        engine::run(Source::Frame(frame), &TRANSFORMS, &ctx, &deadline)?
    } else {
        engine::run(source, &TRANSFORMS, &ctx, &deadline)?
    };
    let (width, height) = (frame.pixels.width, frame.pixels.height);
    // A background replaces the encoder's white behind transparency (its own alpha cannot show).
    let pixels = match spec.effects.background {
        Some([r, g, b, _]) if !spec.format.supports_alpha() => frame.pixels.flatten([r, g, b]),
        _ => frame.pixels,
    };
    let exif = kept_exif(probe, limits);
    let bytes = encode_with_exif(pixels, spec.format, spec.quality, spec.progressive, exif.as_deref())?;
    Ok(Rendered { bytes, format: spec.format, width, height })
}

/// The EXIF block a variant carries: the source's Artist and Copyright when the operator keeps
/// them (and the source has any), else none.
fn kept_exif(probe: &Probe, limits: &Limits) -> Option<Vec<u8>> {
    limits.keep_copyright.then(|| probe.attribution.exif()).flatten()
}

/// Every frame through the same transforms, with one geometry (a smart crop is placed by the
/// first frame), then one animated encode. Frames are decoded one at a time; only the outputs
/// are kept.
fn run_animation(data: &[u8], probe: &Probe, spec: &RenderSpec, limits: &Limits) -> Result<Rendered> {
    let deadline = Deadline::start(limits);
    let oriented_size = spec.resize.turned_size(probe.width(), probe.height());
    let mut geometry = plan(oriented_size.0, oriented_size.1, &spec.resize, limits.max_output_pixels)?;
    check_upscale(&geometry, limits)?;
    check_padding(&geometry, &spec.effects, limits)?;
    check_frames(&geometry, &spec.effects, probe.frames, limits)?;
    let mut smart_region = match spec.resize.anchor {
        Anchor::Smart => cropped_region(&geometry, &spec.resize, oriented_size)?,
        _ => None,
    };
    let mut frames: Vec<AnimatedFrame> = Vec::new();
    animation::for_each_frame(data, probe, limits, |mut frame, delay_ms| {
        deadline.check("animation frame")?;
        frame.orientation = frame.orientation.then(spec.resize.turn);
        if let Some(kept) = smart_region.take() {
            let ctx = Context { geometry: &geometry, oriented_size, effects: &spec.effects };
            frame = engine::run(Source::Frame(frame), &[Transform::Colour], &ctx, &deadline)?;
            let window = (geometry.source.width, geometry.source.height);
            let point = attention::focal_point(&frame.pixels, frame.orientation, oriented_size, kept, window);
            let resize = Resize { anchor: Anchor::Focal(point), ..spec.resize };
            geometry = plan(oriented_size.0, oriented_size.1, &resize, limits.max_output_pixels)?;
        }
        let ctx = Context { geometry: &geometry, oriented_size, effects: &spec.effects };
        let output = engine::run(Source::Frame(frame), &TRANSFORMS, &ctx, &deadline)?;
        frames.push(AnimatedFrame { pixels: animation::rgba(output.pixels)?, delay_ms });
        Ok(())
    })?;
    let (width, height) = frames.first().map_or((0, 0), |f| (f.pixels.width, f.pixels.height));
    let loop_count = animation::loop_count(data, probe.format);
    let bytes = match spec.format {
        OutputFormat::Webp => {
            let webp = crate::encode::webp::encode_animation(&frames, loop_count, spec.quality)?;
            match kept_exif(probe, limits) {
                Some(tiff) => crate::encode::metadata::webp_with_exif(webp, &tiff, width, height)?,
                None => webp,
            }
        }
        OutputFormat::Gif => crate::encode::gif::encode_animation(&frames, loop_count)?,
        other => return Err(ImageError::Internal(format!("{other} does not animate"))),
    };
    Ok(Rendered { bytes, format: spec.format, width, height })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::encode;
    use crate::geometry::Fit;
    use crate::pixels::Layout;

    /// A PNG render at quality 80 with no effects: what most tests here need, with `resize`.
    fn png_spec(resize: Resize) -> RenderSpec {
        RenderSpec {
            resize,
            effects: Effects::default(),
            format: OutputFormat::Png,
            quality: 80,
            animate: true,
            progressive: false,
        }
    }

    use std::path::PathBuf;

    /// The same render the way every other format goes: the whole frame decoded, then each step.
    fn render_whole_frame(data: &[u8], probe: &Probe, resize: &Resize, limits: &Limits) -> crate::pixels::Pixels {
        let oriented_size = resize.turned_size(probe.width(), probe.height());
        let geometry = plan(oriented_size.0, oriented_size.1, resize, limits.max_output_pixels).expect("plan");
        let effects = Effects::default();
        let ctx = Context { geometry: &geometry, oriented_size, effects: &effects };
        let mut frame = decode(data, probe, geometry.scale(), limits).expect("decode");
        frame.orientation = frame.orientation.then(resize.turn);
        for step in TRANSFORMS {
            frame = step.apply(frame, &ctx).expect("step");
        }
        frame.pixels
    }

    /// PNGs the corpus lacks: ICC with alpha, 16-bit RGBA, 8-bit grey, an opaque alpha channel
    /// (dropped, so the letterbox is black), low-bit palettes.
    fn synthetic_pngs() -> Vec<(String, Vec<u8>)> {
        use image::codecs::png::PngEncoder;
        use image::{ExtendedColorType, ImageEncoder};
        let (w, h) = (61u32, 47u32);
        let value = |x: u32, y: u32, c: u32| ((x * 7 + y * 3 + c * 50) % 256) as u8;
        let samples = |channels: u32| -> Vec<u8> {
            (0..h)
                .flat_map(|y| (0..w).flat_map(move |x| (0..channels).map(move |c| (x, y, c))))
                .map(|(x, y, c)| if c == 3 { (x * 255 / w) as u8 } else { value(x, y, c) })
                .collect()
        };
        let encode = |data: &[u8], colour: ExtendedColorType, icc: Option<Vec<u8>>| {
            let mut out = Vec::new();
            let mut encoder = PngEncoder::new(&mut out);
            if let Some(icc) = icc {
                encoder.set_icc_profile(icc).expect("icc");
            }
            encoder.write_image(data, w, h, colour).expect("png");
            out
        };
        let wide = lcms2::Profile::new_rgb(
            &lcms2::CIExyY { x: 0.3127, y: 0.329, Y: 1.0 },
            &lcms2::CIExyYTRIPLE {
                Red: lcms2::CIExyY { x: 0.708, y: 0.292, Y: 1.0 },
                Green: lcms2::CIExyY { x: 0.170, y: 0.797, Y: 1.0 },
                Blue: lcms2::CIExyY { x: 0.131, y: 0.046, Y: 1.0 },
            },
            &[&lcms2::ToneCurve::new(2.2), &lcms2::ToneCurve::new(2.2), &lcms2::ToneCurve::new(2.2)],
        )
        .expect("profile")
        .icc()
        .expect("icc bytes");
        let sixteen: Vec<u8> =
            samples(4).iter().flat_map(|&v| (u16::from(v) * 257).saturating_sub(120).to_be_bytes()).collect();
        let opaque: Vec<u8> = samples(4).chunks_exact(4).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
        let mut out = vec![
            ("synthetic_icc_rgba.png".to_string(), encode(&samples(4), ExtendedColorType::Rgba8, Some(wide.clone()))),
            ("synthetic_icc_rgb.png".to_string(), encode(&samples(3), ExtendedColorType::Rgb8, Some(wide))),
            ("synthetic_rgba16.png".to_string(), encode(&sixteen, ExtendedColorType::Rgba16, None)),
            ("synthetic_grey8.png".to_string(), encode(&samples(1), ExtendedColorType::L8, None)),
            ("synthetic_opaque_rgba.png".to_string(), encode(&opaque, ExtendedColorType::Rgba8, None)),
        ];
        // A 2-bit palette, written by hand: the image crate's encoder writes no palettes.
        let mut palette_png = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut palette_png, w, h);
            encoder.set_color(png::ColorType::Indexed);
            encoder.set_depth(png::BitDepth::Two);
            encoder.set_palette(vec![255, 0, 0, 0, 255, 0, 0, 0, 255, 250, 250, 250]);
            encoder.set_trns(vec![255, 128, 0, 255]);
            let mut writer = encoder.write_header().expect("header");
            let row = w.div_ceil(4) as usize;
            let data: Vec<u8> = (0..h as usize * row).map(|i| (i * 37 % 256) as u8).collect();
            writer.write_image_data(&data).expect("data");
            writer.finish().expect("finish");
        }
        out.push(("synthetic_palette2_trns.png".to_string(), palette_png));
        out
    }

    /// Streaming a JPEG or PNG band by band gives the pixels the whole-frame path gives, for
    /// every one in the shared corpus that renders (JPEG: orientations, CMYK, YCCK, ICC,
    /// progressive, grey, extreme aspect; PNG: 16-bit, grey with alpha, palette with tRNS,
    /// interlaced, which falls back to the whole frame) and synthetic PNGs, in fits that crop,
    /// letterbox and shrink on load.
    #[test]
    fn streamed_renders_match_the_whole_frame_path() {
        let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
        let limits = Limits::default();
        let mut checked = [0, 0];
        let mut names: Vec<_> = std::fs::read_dir(&corpus)
            .unwrap_or_else(|e| panic!("{}: {e} (the shared corpus is needed)", corpus.display()))
            .map(|entry| entry.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "jpg" || e == "png"))
            .collect();
        names.sort();
        let mut inputs: Vec<(String, Vec<u8>)> = names
            .iter()
            .map(|path| {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                (name, std::fs::read(path).expect("read"))
            })
            .collect();
        inputs.extend(synthetic_pngs());
        for (name, data) in inputs {
            let Ok(probe) = probe(&data, &limits) else { continue };
            let small = u64::from(probe.width()) * u64::from(probe.height()) <= 4_000_000;
            let streams = matches!(probe.format, InputFormat::Jpeg | InputFormat::Png);
            if !streams || !small || verify(&data, &probe, &limits).is_err() {
                continue;
            }
            let (w, h) = (probe.width(), probe.height());
            let sizes = [
                Resize {
                    width: Some((w / 3).max(1)),
                    height: None,
                    fit: Fit::Contain,
                    enlarge: false,
                    ..Resize::default()
                },
                Resize {
                    width: Some((w / 2).max(1)),
                    height: Some((h / 4).max(1)),
                    fit: Fit::Cover,
                    enlarge: false,
                    ..Resize::default()
                },
                Resize {
                    width: Some((w * 2 / 3).max(1)),
                    height: Some((h / 2).max(1)),
                    fit: Fit::Contain,
                    enlarge: false,
                    ..Resize::default()
                },
                Resize {
                    width: Some((w / 9).max(1)),
                    height: Some((h / 7).max(1)),
                    fit: Fit::Fill,
                    enlarge: false,
                    ..Resize::default()
                },
                Resize { width: Some(w * 2), height: None, fit: Fit::Contain, enlarge: true, ..Resize::default() },
                Resize {
                    width: Some((w / 5).max(1)),
                    height: Some((h / 2).max(1)),
                    anchor: crate::Anchor::Gravity(crate::Gravity::SouthEast),
                    ..Resize::default()
                },
                Resize {
                    width: Some((w / 2).max(1)),
                    height: Some((h / 5).max(1)),
                    anchor: crate::Anchor::Focal(crate::FocalPoint { x: 200, y: 900 }),
                    ..Resize::default()
                },
                Resize {
                    width: Some((h / 3).max(1)),
                    height: Some((w / 4).max(1)),
                    anchor: crate::Anchor::Gravity(crate::Gravity::NorthEast),
                    turn: crate::Orientation::Transverse,
                    ..Resize::default()
                },
                Resize {
                    width: Some((w / 4).max(1)),
                    crop: Some(crate::Crop { left: w / 5, top: h / 3, width: (w / 2).max(1), height: (h / 2).max(1) }),
                    turn: crate::Orientation::Rotate90,
                    ..Resize::default()
                },
            ];
            for resize in sizes {
                let spec = png_spec(resize);
                let streamed = render_probed(&data, &probe, &spec, &limits).expect("render");
                let whole = render_whole_frame(&data, &probe, &resize, &limits);
                assert_eq!((streamed.width, streamed.height), (whole.width, whole.height), "{name} {resize:?}");
                let decoded = image::load_from_memory(&streamed.bytes).expect("png");
                assert_eq!(decoded.color().has_alpha(), whole.layout == Layout::Rgba8, "{name} {resize:?}: alpha");
                let decoded = if whole.layout == Layout::Rgba8 {
                    decoded.into_rgba8().into_raw()
                } else {
                    decoded.into_rgb8().into_raw()
                };
                let worst = decoded.iter().zip(&whole.data).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
                // Each call to the resampler picks its fixed-point precision from its own weights, so
                // a group of rows may round a step differently from the whole frame.
                assert!(worst <= 2, "{name} {resize:?}: streamed and whole-frame pixels differ by {worst}");
                checked[usize::from(probe.format == InputFormat::Png)] += 1;
            }
        }
        assert!(checked[0] >= 50 && checked[1] >= 50, "only {checked:?} JPEG and PNG renders were compared");
    }

    /// Three vertical stripes, red | green | blue, 300×100 (as stored); a 100×100 cover keeps
    /// the stripe its anchor names, also through an EXIF rotation (the anchor is in the upright
    /// image) and on the streamed path (PNG) as on the whole frame (GIF).
    #[test]
    fn cover_keeps_what_the_gravity_or_focal_point_names() {
        use crate::{Anchor, FocalPoint, Gravity};
        use image::{ImageFormat, RgbImage};
        let stripes = RgbImage::from_fn(300, 100, |x, _| match x / 100 {
            0 => image::Rgb([255, 0, 0]),
            1 => image::Rgb([0, 255, 0]),
            _ => image::Rgb([0, 0, 255]),
        });
        let encoded = |format: ImageFormat| {
            let mut out = std::io::Cursor::new(Vec::new());
            stripes.write_to(&mut out, format).expect("encode");
            out.into_inner()
        };
        let cases = [
            (Anchor::Gravity(Gravity::West), [255, 0, 0]),
            (Anchor::Gravity(Gravity::NorthWest), [255, 0, 0]),
            (Anchor::Gravity(Gravity::Centre), [0, 255, 0]),
            (Anchor::Gravity(Gravity::North), [0, 255, 0]),
            (Anchor::Gravity(Gravity::East), [0, 0, 255]),
            (Anchor::Gravity(Gravity::SouthEast), [0, 0, 255]),
            (Anchor::Focal(FocalPoint { x: 150, y: 500 }), [255, 0, 0]),
            (Anchor::Focal(FocalPoint { x: 500, y: 0 }), [0, 255, 0]),
            (Anchor::Focal(FocalPoint { x: 850, y: 1000 }), [0, 0, 255]),
        ];
        for format in [ImageFormat::Png, ImageFormat::Gif] {
            let data = encoded(format);
            for (anchor, colour) in cases {
                let resize = Resize { width: Some(100), height: Some(100), anchor, ..Resize::default() };
                let out = render(&data, &png_spec(resize), &Limits::default()).expect("render");
                let pixels = image::load_from_memory(&out.bytes).expect("png").into_rgb8();
                assert_eq!((pixels.width(), pixels.height()), (100, 100));
                for at in [(5, 5), (50, 50), (94, 94)] {
                    assert_eq!(pixels.get_pixel(at.0, at.1).0, colour, "{format:?} {anchor:?} at {at:?}");
                }
            }
        }
    }

    /// Stripes red | green | blue, 300×100: `rot` turns clockwise after EXIF orientation and
    /// `flip` mirrors; the box is in the turned image's axes. On rows (PNG) and frames (GIF).
    #[test]
    fn turns_and_flips_move_the_stripes() {
        use crate::Orientation;
        use image::{ImageFormat, RgbImage};
        let stripes = RgbImage::from_fn(300, 100, |x, _| match x / 100 {
            0 => image::Rgb([255, 0, 0]),
            1 => image::Rgb([0, 255, 0]),
            _ => image::Rgb([0, 0, 255]),
        });
        let (red, blue) = ([255, 0, 0], [0, 0, 255]);
        // (turn, output size for w=50, colour at the top-left, colour at the bottom-right)
        let cases = [
            (Orientation::Normal, (50, 17), red, blue),
            (Orientation::Rotate90, (50, 150), red, blue),
            (Orientation::Rotate180, (50, 17), blue, red),
            (Orientation::Rotate270, (50, 150), blue, red),
            (Orientation::FlipHorizontal, (50, 17), blue, red),
            (Orientation::FlipVertical, (50, 17), red, blue),
        ];
        for format in [ImageFormat::Png, ImageFormat::Gif] {
            let mut data = std::io::Cursor::new(Vec::new());
            stripes.write_to(&mut data, format).expect("encode");
            let data = data.into_inner();
            for (turn, size, first, last) in cases {
                let resize = Resize { width: Some(50), turn, ..Resize::default() };
                let out = render(&data, &png_spec(resize), &Limits::default()).expect("render");
                let pixels = image::load_from_memory(&out.bytes).expect("png").into_rgb8();
                assert_eq!((pixels.width(), pixels.height()), size, "{format:?} {turn:?}");
                assert_eq!(pixels.get_pixel(1, 1).0, first, "{format:?} {turn:?} top left");
                assert_eq!(pixels.get_pixel(size.0 - 2, size.1 - 2).0, last, "{format:?} {turn:?} bottom right");
            }
        }
    }

    /// Quadrants red | green over blue | white, 200×100: `crop` cuts before the turn and the
    /// fit, is clamped at the image's edges, and is refused when it misses the image. On rows
    /// (PNG) and frames (GIF).
    #[test]
    fn crops_cut_before_the_turn_and_the_fit() {
        use crate::{Crop, Orientation};
        use image::{ImageFormat, RgbImage};
        let (red, green, blue, white) = ([255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]);
        let quadrants = RgbImage::from_fn(200, 100, |x, y| {
            image::Rgb(match (x / 100, y / 50) {
                (0, 0) => red,
                (1, 0) => green,
                (0, _) => blue,
                _ => white,
            })
        });
        let crop = |left, top, width, height| Some(Crop { left, top, width, height });
        // (crop, width asked, turn, output size, colour at the top-left, colour at the bottom-right)
        let cases = [
            (crop(100, 0, 100, 50), None, Orientation::Normal, (100, 50), green, green),
            (crop(0, 50, 100, 50), Some(20), Orientation::Normal, (20, 10), blue, blue),
            (crop(0, 0, 200, 50), None, Orientation::Rotate90, (50, 200), red, green),
            (crop(50, 0, 100, 100), None, Orientation::Rotate180, (100, 100), white, red),
            (crop(150, 50, 1000, 1000), None, Orientation::Normal, (50, 50), white, white),
        ];
        for format in [ImageFormat::Png, ImageFormat::Gif] {
            let mut data = std::io::Cursor::new(Vec::new());
            quadrants.write_to(&mut data, format).expect("encode");
            let data = data.into_inner();
            for (crop, width, turn, size, first, last) in cases {
                let resize = Resize { width, crop, turn, ..Resize::default() };
                let spec = png_spec(resize);
                let out = render(&data, &spec, &Limits::default()).expect("render");
                let pixels = image::load_from_memory(&out.bytes).expect("png").into_rgb8();
                assert_eq!((pixels.width(), pixels.height()), size, "{format:?} {crop:?} {turn:?}");
                assert_eq!(pixels.get_pixel(1, 1).0, first, "{format:?} {crop:?} {turn:?} top left");
                assert_eq!(pixels.get_pixel(size.0 - 2, size.1 - 2).0, last, "{format:?} {crop:?} bottom right");
            }
            let missing = Resize { crop: crop(200, 0, 10, 10), ..Resize::default() };
            let spec = png_spec(missing);
            assert!(matches!(render(&data, &spec, &Limits::default()), Err(ImageError::ResourceLimit(_))));
        }
    }

    /// `bg` fills letterbox bars and padding, and shows through transparency in JPEG; `pad`
    /// grows the output on the sides it names. On rows (PNG) and frames (GIF).
    #[test]
    fn background_and_padding_fill_what_they_should() {
        use crate::{Effects, Padding};
        use image::{ImageFormat, RgbaImage};
        // 200×100: red, with a transparent right half.
        let source = RgbaImage::from_fn(200, 100, |x, _| image::Rgba(if x < 100 { [255, 0, 0, 255] } else { [0; 4] }));
        let opaque = image::DynamicImage::ImageRgba8(source.clone()).into_rgb8();
        let (green, blue, red) = ([0, 255, 0], [0, 0, 255], [255, 0, 0]);
        let contain = Resize { width: Some(100), height: Some(100), fit: Fit::Contain, ..Resize::default() };
        let effects = |background, padding| Effects { background, padding, ..Effects::default() };
        for format in [ImageFormat::Png, ImageFormat::Gif] {
            let encode = |image: image::DynamicImage| {
                let mut out = std::io::Cursor::new(Vec::new());
                image.write_to(&mut out, format).expect("encode");
                out.into_inner()
            };
            let (opaque, transparent) =
                (encode(opaque.clone().into()), encode(image::DynamicImage::ImageRgba8(source.clone())));
            let rendered = |data: &[u8], resize, effects, format| {
                let out = render(
                    data,
                    &RenderSpec { resize, effects, format, quality: 90, animate: true, progressive: false },
                    &Limits::default(),
                )
                .expect("render");
                image::load_from_memory(&as_png(&out.bytes)).expect("decode").into_rgba8()
            };
            // Letterbox bars in the background (opaque, then half transparent).
            let bars =
                rendered(&opaque, contain, effects(Some([0, 255, 0, 255]), Padding::default()), OutputFormat::Png);
            assert_eq!(bars.dimensions(), (100, 100));
            assert_eq!(&bars.get_pixel(50, 5).0[..3], &green, "{format:?} bar");
            assert_eq!(&bars.get_pixel(25, 50).0[..3], &red, "{format:?} image");
            let bars =
                rendered(&opaque, contain, effects(Some([0, 0, 255, 64]), Padding::default()), OutputFormat::Png);
            assert_eq!(bars.get_pixel(50, 5).0, [0, 0, 255, 64], "{format:?} translucent bar");
            assert_eq!(bars.get_pixel(25, 50).0, [255, 0, 0, 255], "{format:?} opaque image");
            // Transparency flattened onto the background in JPEG (white without one).
            let plain = Resize::default();
            let flat =
                rendered(&transparent, plain, effects(Some([0, 0, 255, 255]), Padding::default()), OutputFormat::Jpeg);
            let near = |a: [u8; 4], b: [u8; 3]| a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 8);
            assert!(near(flat.get_pixel(150, 50).0, blue), "{format:?} {:?}", flat.get_pixel(150, 50));
            assert!(near(flat.get_pixel(50, 50).0, red), "{format:?} {:?}", flat.get_pixel(50, 50));
            let white = rendered(&transparent, plain, Effects::default(), OutputFormat::Jpeg);
            assert!(near(white.get_pixel(150, 50).0, [255, 255, 255]), "{format:?} {:?}", white.get_pixel(150, 50));
            // Padding: top 1, right 2, bottom 3, left 4, in the background.
            let sides = Padding { top: 1, right: 2, bottom: 3, left: 4 };
            let padded = rendered(
                &opaque,
                Resize { width: Some(20), ..plain },
                effects(Some([0, 255, 0, 255]), sides),
                OutputFormat::Png,
            );
            assert_eq!(padded.dimensions(), (26, 14), "{format:?}");
            for (at, colour) in [
                ((3, 5), green),
                ((4, 1), red),
                ((4, 0), green),
                ((24, 5), green),
                ((25, 13), green),
                ((10, 11), green),
                ((23, 10), [0, 0, 0]),
            ] {
                assert_eq!(&padded.get_pixel(at.0, at.1).0[..3], &colour, "{format:?} padding at {at:?}");
            }
            assert_eq!(padded.get_pixel(4, 10).0[..3], red, "{format:?} last image row");
        }
    }

    /// Any output as PNG (the `image` crate here reads no JPEG): rendered again by catg, as is.
    fn as_png(bytes: &[u8]) -> Vec<u8> {
        let spec = png_spec(Resize::default());
        render(bytes, &spec, &Limits::default()).expect("re-render").bytes
    }

    /// Blur lowers a checkerboard's variance and sharpen raises it, through the whole render.
    #[test]
    fn blur_and_sharpen_change_a_checkerboards_variance() {
        use crate::Effects;
        let board =
            image::GrayImage::from_fn(64, 64, |x, y| image::Luma([if (x / 4 + y / 4) % 2 == 0 { 40 } else { 200 }]));
        let mut data = std::io::Cursor::new(Vec::new());
        board.write_to(&mut data, image::ImageFormat::Png).expect("encode");
        let data = data.into_inner();
        let variance = |effects: Effects| {
            let spec = RenderSpec { effects, ..png_spec(Resize::default()) };
            let out = render(&data, &spec, &Limits::default()).expect("render");
            let pixels = image::load_from_memory(&out.bytes).expect("png").into_luma8().into_raw();
            let mean = pixels.iter().map(|&v| f64::from(v)).sum::<f64>() / pixels.len() as f64;
            pixels.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / pixels.len() as f64
        };
        let plain = variance(Effects::default());
        let blurred = variance(Effects { blur: Some(200), ..Effects::default() });
        let sharpened = variance(Effects { sharpen: Some(100), ..Effects::default() });
        assert!(blurred < plain * 0.5, "blur: {blurred} vs {plain}");
        assert!(sharpened > plain, "sharpen: {sharpened} vs {plain}");
    }

    /// A detailed patch near the right edge of a flat 400×100 image: `g=smart` keeps it where
    /// the centre crop misses it, on rows (PNG, JPEG) and frames (GIF), also after a turn.
    #[test]
    fn smart_crop_keeps_the_detail() {
        use crate::{Anchor, Gravity, Orientation};
        use image::{ImageFormat, RgbImage};
        let patch = RgbImage::from_fn(400, 100, |x, y| {
            let inside = (320..380).contains(&x) && (20..80).contains(&y);
            let v = if inside && (x / 5 + y / 5) % 2 == 0 {
                10
            } else if inside {
                240
            } else {
                128
            };
            image::Rgb([v, v, v])
        });
        let spread = |pixels: &image::RgbImage| {
            let values: Vec<u8> = pixels.pixels().map(|p| p.0[1]).collect();
            values.iter().max().copied().unwrap_or(0) - values.iter().min().copied().unwrap_or(0)
        };
        for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Gif] {
            let data = if format == ImageFormat::Jpeg {
                let pixels =
                    crate::pixels::Pixels::from_vec(400, 100, Layout::Rgb8, patch.clone().into_raw()).expect("size");
                encode(pixels, OutputFormat::Jpeg, 95, false).expect("jpeg")
            } else {
                let mut data = std::io::Cursor::new(Vec::new());
                patch.write_to(&mut data, format).expect("encode");
                data.into_inner()
            };
            let out = |anchor, turn, size: (u32, u32)| {
                let resize = Resize { width: Some(size.0), height: Some(size.1), anchor, turn, ..Resize::default() };
                let spec = png_spec(resize);
                let out = render(&data, &spec, &Limits::default()).expect("render");
                image::load_from_memory(&out.bytes).expect("png").into_rgb8()
            };
            let centre = out(Anchor::Gravity(Gravity::Centre), Orientation::Normal, (100, 100));
            let smart = out(Anchor::Smart, Orientation::Normal, (100, 100));
            assert!(spread(&centre) < 40, "{format:?}: the centre crop holds no detail");
            assert!(spread(&smart) > 150, "{format:?}: the smart crop missed the patch ({})", spread(&smart));
            // Turned a quarter, the patch is near the bottom, and the crop moves along the other axis.
            let turned = out(Anchor::Smart, Orientation::Rotate90, (100, 100));
            assert_eq!(turned.dimensions(), (100, 100));
            assert!(spread(&turned) > 150, "{format:?}: the turned smart crop missed the patch");
        }
    }

    /// With the operator's switch on, a variant in every format that has a place for EXIF
    /// carries the source's Artist and Copyright, in a new block without any other tag (the
    /// source's camera make and orientation stay behind); with it off (the default) nothing.
    #[test]
    fn copyright_is_kept_only_when_the_operator_says_so() {
        use crate::probe::exif::ascii_ifd;
        let pixels =
            crate::pixels::Pixels::from_vec(64, 32, Layout::Rgb8, (0..64 * 32 * 3).map(|i| (i % 251) as u8).collect())
                .expect("size");
        let jpeg = encode(pixels, OutputFormat::Jpeg, 90, false).expect("jpeg");
        let tiff = ascii_ifd(&[(0x010F, "SecretCam"), (0x013B, "Ann Example"), (0x8298, "(c) 2026 Ann Example")]);
        let source = crate::encode::metadata::jpeg_with_exif(jpeg, &tiff).expect("exif");
        let probe = crate::probe(&source, &Limits::default()).expect("probe");
        assert_eq!(probe.attribution.copyright.as_deref(), Some("(c) 2026 Ann Example"));
        let keep = Limits { keep_copyright: true, ..Limits::default() };
        for format in [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp, OutputFormat::Avif, OutputFormat::Jxl]
        {
            let spec = RenderSpec { format, ..png_spec(Resize::default()) };
            let kept = render_probed(&source, &probe, &spec, &keep).expect("render");
            // catg reads no JPEG XL at all, and no EXIF from HEIF containers: those are checked
            // by their bytes below.
            if format != OutputFormat::Jxl {
                let read = crate::probe(&kept.bytes, &Limits::default()).expect("the variant probes");
                if format != OutputFormat::Avif {
                    assert_eq!(read.attribution, probe.attribution, "{format}");
                }
            }
            let has = |needle: &[u8]| kept.bytes.windows(needle.len()).any(|w| w == needle);
            assert!(has(b"Ann Example") && has(b"(c) 2026 Ann Example"), "{format}: attribution written");
            assert!(!has(b"SecretCam"), "{format}: no other source metadata");
            assert_eq!((kept.width, kept.height), (64, 32));
            let stripped = render_probed(&source, &probe, &spec, &Limits::default()).expect("render");
            assert!(!stripped.bytes.windows(11).any(|w| w == b"Ann Example"), "{format}: stripped by default");
        }
        // GIF has no place for EXIF: written without, not refused.
        let gif = RenderSpec { format: OutputFormat::Gif, ..png_spec(Resize::default()) };
        assert!(render_probed(&source, &probe, &gif, &keep).is_ok());
    }
}
