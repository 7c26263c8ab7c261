//! Animations: every frame of an animated GIF or WebP, decoded one at a time (composited onto
//! the full canvas, as a viewer would see it), with its delay, and the loop count of the whole.
//! The pipeline runs each frame through the same transforms and keeps only the outputs.

use crate::decode::generic::alloc_limit;
use crate::error::{classify_image, ImageError, Result};
use crate::format::InputFormat;
use crate::frame::Frame;
use crate::limits::Limits;
use crate::pixels::{Layout, Pixels};
use crate::probe::Probe;
use std::io::Cursor;

/// One frame of an output animation: RGBA pixels and how long they show.
#[derive(Debug)]
pub(crate) struct AnimatedFrame {
    pub(crate) pixels: Pixels,
    pub(crate) delay_ms: u32,
}

/// Whether `probe` is an animation the pipeline can keep animated (GIF or WebP, several frames).
pub fn is_animation(probe: &Probe) -> bool {
    probe.frames > 1 && matches!(probe.format, InputFormat::Gif | InputFormat::Webp)
}

/// How many times the animation plays (0: forever), as its file says: GIF's NETSCAPE2.0
/// extension (absent: once), WebP's ANIM chunk.
pub(crate) fn loop_count(data: &[u8], format: InputFormat) -> u16 {
    match format {
        InputFormat::Gif => gif_loop_count(data),
        InputFormat::Webp => webp_loop_count(data),
        _ => 1,
    }
}

fn gif_loop_count(data: &[u8]) -> u16 {
    const ID: &[u8] = b"NETSCAPE2.0";
    // The application extension: 0x21 0xFF, block size 11, the id, then a sub-block of
    // 3 bytes: 1, and the count (little-endian).
    let found = memchr::memmem::find_iter(data, ID).find_map(|at| {
        let header = data.get(at.checked_sub(3)?..at)?;
        let block = data.get(at + ID.len()..at + ID.len() + 4)?;
        (header == [0x21, 0xFF, 11] && block[0] == 3 && block[1] == 1).then(|| u16::from_le_bytes([block[2], block[3]]))
    });
    found.unwrap_or(1)
}

fn webp_loop_count(data: &[u8]) -> u16 {
    // RIFF header (12 bytes), then chunks: fourcc, little-endian size, payload padded to even.
    let mut pos = 12;
    while let Some(header) = data.get(pos..pos + 8) {
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if &header[..4] == b"ANIM" {
            // Background colour (4 bytes), then the loop count.
            return data.get(pos + 12..pos + 14).map_or(0, |n| u16::from_le_bytes([n[0], n[1]]));
        }
        pos = pos.saturating_add(8).saturating_add(size + (size & 1));
    }
    0
}

/// Decode every frame of `data` in order, handing each to `each` with its delay in
/// milliseconds. Frames are RGBA on the full canvas, in the source's colours (`icc` still to
/// apply) and stored axes; only one is held at a time.
pub(crate) fn for_each_frame(
    data: &[u8],
    probe: &Probe,
    limits: &Limits,
    mut each: impl FnMut(Frame, u32) -> Result<()>,
) -> Result<()> {
    use image::{AnimationDecoder, ImageDecoder};
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(probe.stored_width.max(1));
    image_limits.max_image_height = Some(probe.stored_height.max(1));
    image_limits.max_alloc = Some(alloc_limit(limits));
    let (frames, icc) = match probe.format {
        InputFormat::Gif => {
            let mut decoder = image::codecs::gif::GifDecoder::new(Cursor::new(data)).map_err(classify_image)?;
            decoder.set_limits(image_limits).map_err(classify_image)?;
            (decoder.into_frames(), None)
        }
        InputFormat::Webp => {
            let mut decoder = image::codecs::webp::WebPDecoder::new(Cursor::new(data)).map_err(classify_image)?;
            decoder.set_limits(image_limits).map_err(classify_image)?;
            let icc = decoder.icc_profile().ok().flatten().filter(|p| !p.is_empty());
            (decoder.into_frames(), icc)
        }
        other => return Err(ImageError::Internal(format!("{other} has no animation decoder"))),
    };
    let mut count = 0u32;
    for frame in frames {
        let frame = frame.map_err(classify_image)?;
        count += 1;
        if count > probe.frames {
            return Err(ImageError::corrupt("the animation has more frames than its header counts"));
        }
        let (numer, denom) = frame.delay().numer_denom_ms();
        let delay_ms = numer.checked_div(denom).unwrap_or(0);
        let buffer = frame.into_buffer();
        let (width, height) = buffer.dimensions();
        if (width, height) != (probe.stored_width, probe.stored_height) {
            return Err(ImageError::header_mismatch((probe.stored_width, probe.stored_height), (width, height)));
        }
        let pixels = Pixels::from_vec(width, height, Layout::Rgba8, buffer.into_raw())?;
        each(Frame { pixels, orientation: probe.orientation, icc: icc.clone(), cmyk_inverted: false }, delay_ms)?;
    }
    if count == 0 {
        return Err(ImageError::corrupt("the animation has no frames"));
    }
    Ok(())
}

/// `pixels` as RGBA (the layout animation encoders take).
pub(crate) fn rgba(pixels: Pixels) -> Result<Pixels> {
    match pixels.layout {
        Layout::Rgba8 => Ok(pixels),
        Layout::Rgb8 => {
            let data = pixels.data.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
            Pixels::from_vec(pixels.width, pixels.height, Layout::Rgba8, data)
        }
        other => Err(ImageError::Internal(format!("an animation frame in {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_counts_are_read_from_both_formats() {
        let mut gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00".to_vec();
        assert_eq!(gif_loop_count(&gif), 1, "no extension: played once");
        gif.extend_from_slice(&[0x21, 0xFF, 11]);
        gif.extend_from_slice(b"NETSCAPE2.0");
        gif.extend_from_slice(&[3, 1, 5, 0, 0]);
        assert_eq!(gif_loop_count(&gif), 5);
        let mut webp = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0".to_vec();
        webp.extend_from_slice(&[0; 10]);
        webp.extend_from_slice(b"ANIM\x06\0\0\0");
        webp.extend_from_slice(&[0, 0, 0, 0, 3, 0]);
        assert_eq!(webp_loop_count(&webp), 3);
        assert_eq!(webp_loop_count(b"RIFF\0\0\0\0WEBP"), 0);
    }

    use crate::geometry::Resize;
    use crate::output::OutputFormat;
    use crate::pipeline::{render, RenderSpec};
    use image::AnimationDecoder;

    fn corpus(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus").join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (the shared corpus is needed)", path.display()))
    }

    fn spec(width: u32, format: OutputFormat, animate: bool) -> RenderSpec {
        RenderSpec {
            resize: Resize { width: Some(width), ..Resize::default() },
            effects: crate::Effects::default(),
            format,
            quality: 80,
            animate,
            progressive: false,
        }
    }

    /// Frames of an animated output as (RGBA image, delay in ms).
    fn frames_of(bytes: &[u8], format: OutputFormat) -> Vec<(image::RgbaImage, u32)> {
        let cursor = Cursor::new(bytes);
        let frames: Vec<image::Frame> = match format {
            OutputFormat::Gif => image::codecs::gif::GifDecoder::new(cursor).expect("gif").into_frames(),
            _ => image::codecs::webp::WebPDecoder::new(cursor).expect("webp").into_frames(),
        }
        .collect_frames()
        .expect("frames");
        frames
            .into_iter()
            .map(|f| {
                let (n, d) = f.delay().numer_denom_ms();
                (f.into_buffer(), n / d.max(1))
            })
            .collect()
    }

    /// The source's frames, resized as the render should have: the reference to compare with.
    fn source_frames(data: &[u8], format: OutputFormat, size: (u32, u32)) -> Vec<image::RgbaImage> {
        let source = match format {
            OutputFormat::Gif => frames_of(data, OutputFormat::Gif),
            _ => frames_of(data, OutputFormat::Webp),
        };
        source
            .into_iter()
            .map(|(f, _)| image::imageops::resize(&f, size.0, size.1, image::imageops::FilterType::Triangle))
            .collect()
    }

    fn mean_difference(a: &image::RgbaImage, b: &image::RgbaImage) -> f64 {
        let total: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
        total as f64 / a.as_raw().len() as f64
    }

    /// An animated GIF and an animated WebP, to animated WebP and GIF: every frame, at the size
    /// asked, with the source's delays and loop count, and a frame in the middle (where the
    /// moving square is elsewhere than in the first) matches the source's same frame resized.
    #[test]
    fn animations_stay_animated_frame_by_frame() {
        let cases = [
            ("gif_animated.gif", OutputFormat::Gif, 12, 100, (48, 48)),
            ("webp_animated.webp", OutputFormat::Webp, 6, 120, (64, 48)),
        ];
        for (name, source_format, count, delay, size) in cases {
            let data = corpus(name);
            let reference = source_frames(&data, source_format, size);
            assert_eq!(reference.len(), count, "{name}: the reference decode");
            for format in [OutputFormat::Webp, OutputFormat::Gif] {
                let out = render(&data, &spec(size.0, format, true), &crate::Limits::default()).expect("render");
                assert_eq!((out.width, out.height), size, "{name} to {format}");
                let frames = frames_of(&out.bytes, format);
                assert_eq!(frames.len(), count, "{name} to {format}: frames");
                assert!(
                    frames.iter().all(|(f, d)| f.dimensions() == size && *d == delay),
                    "{name} to {format}: sizes, delays"
                );
                assert_eq!(
                    loop_count(
                        &out.bytes,
                        if format == OutputFormat::Gif { InputFormat::Gif } else { InputFormat::Webp }
                    ),
                    0,
                    "{name} to {format}: loops forever, as the source"
                );
                let middle = count / 2;
                let tolerance = if format == OutputFormat::Gif { 10.0 } else { 6.0 };
                let same = mean_difference(&frames[middle].0, &reference[middle]);
                assert!(same < tolerance, "{name} to {format}: frame {middle} is off by {same:.1} levels on average");
                let first = mean_difference(&frames[middle].0, &reference[0]);
                assert!(
                    same < first,
                    "{name} to {format}: frame {middle} looks more like the first ({first:.1} vs {same:.1})"
                );
            }
        }
    }

    /// `frames=1`, and formats that do not animate, give the first frame as a still.
    #[test]
    fn the_first_frame_alone_when_asked_or_when_the_format_cannot_animate() {
        let data = corpus("gif_animated.gif");
        for spec in
            [spec(48, OutputFormat::Webp, false), spec(48, OutputFormat::Gif, false), spec(48, OutputFormat::Png, true)]
        {
            let out = render(&data, &spec, &crate::Limits::default()).expect("render");
            let frames = match spec.format {
                // A still WebP has no ANIM chunk (the image crate reads frames of animated ones).
                OutputFormat::Webp => usize::from(memchr::memmem::find(&out.bytes, b"ANIM").is_none()),
                OutputFormat::Gif => frames_of(&out.bytes, OutputFormat::Gif).len(),
                _ => 1,
            };
            assert_eq!(frames, 1, "{spec:?}");
            assert_eq!(image::load_from_memory(&out.bytes).expect("decodes").width(), 48, "{spec:?}");
        }
    }

    /// Every output frame counts against the output-pixel cap, before any work, and in the
    /// memory a render is admitted with.
    #[test]
    fn every_frame_counts_against_the_limits() {
        let limits = crate::Limits { max_output_pixels: 20_000, ..crate::Limits::default() };
        let animated = spec(48, OutputFormat::Webp, true);
        assert!(crate::check_output(96, 96, 12, &animated, &limits).is_err(), "12 × 48×48 > 20,000");
        assert!(crate::check_output(96, 96, 12, &spec(48, OutputFormat::Webp, false), &limits).is_ok());
        assert!(crate::check_output(96, 96, 12, &spec(48, OutputFormat::Png, true), &limits).is_ok());
        let data = corpus("gif_animated.gif");
        let refused = render(&data, &animated, &limits);
        assert!(matches!(refused, Err(ImageError::ResourceLimit(_))), "{refused:?}");
        let probe = crate::probe(&data, &crate::Limits::default()).expect("probe");
        let one = crate::memory_estimate(&probe, &spec(48, OutputFormat::Webp, false), data.len(), &limits);
        let all = crate::memory_estimate(&probe, &animated, data.len(), &limits);
        assert!(all > one + 11 * 48 * 48 * 4, "{all} vs {one}");
    }
}
