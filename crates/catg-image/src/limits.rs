//! Resource limits, checked against the header *before* any large allocation.

use crate::error::{ImageError, Result};
use std::time::{Duration, Instant};

/// Every bound the pipeline enforces. Defaults suit a 1–2 GB Lambda or a small server; each is
/// configurable (see docs/operations.md, "Limits").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest input accepted, in bytes.
    pub max_input_bytes: u64,
    /// Largest decoded frame (canvas) in pixels, stored width × height.
    pub max_pixels: u64,
    /// Most frames (animation frames, TIFF pages) an input may declare.
    pub max_frames: u32,
    /// Most scans a progressive JPEG may have. Each scan re-walks the whole coefficient buffer,
    /// so thousands of tiny scans are a CPU bomb in a small file.
    pub max_jpeg_scans: u32,
    /// Largest embedded ICC profile, in bytes. Larger profiles are refused rather than parsed.
    pub max_icc_bytes: usize,
    /// Largest output (variant) in pixels.
    pub max_output_pixels: u64,
    /// Most an output may enlarge the source, along either axis (`enlarge=1`).
    pub max_upscale: u32,
    /// Progressive JPEGs' AC refinement scans through catg's decoder (`csrc/jpeg_refine.c`)
    /// rather than libjpeg's own: same pixels, a quarter less time. Off is the operator's
    /// switch back to stock libjpeg-turbo (`CATG_JPEG_FAST_REFINEMENT=0`).
    pub jpeg_fast_refinement: bool,
    /// HEIC/HEIF and AVIF input (heifer, rav1d). Off refuses both as `unsupported_format`: the
    /// operator's switch for the newest decoders on the upload path (`CATG_HEIF_INPUT=0`).
    pub heif_input: bool,
    /// Variants carry the source's EXIF Artist and Copyright (in a new EXIF block; every other
    /// piece of metadata is still dropped). Off by default (`CATG_KEEP_COPYRIGHT`).
    pub keep_copyright: bool,
    /// Longest a render may run. Checked between pipeline steps (a step under way finishes),
    /// so a pathological input costs at most this plus one step, and is then refused.
    pub max_render_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 128 * 1024 * 1024,
            max_pixels: 100_000_000,
            max_frames: 1_000,
            max_jpeg_scans: 256,
            max_icc_bytes: 4 * 1024 * 1024,
            // 25 MP (a 6000×4000 photo) and 4× enlargement: what a public deployment can keep;
            // an 8192×8192 upscale of a thumbnail costs seconds and tens of megabytes each.
            max_output_pixels: 25_000_000,
            max_upscale: 4,
            jpeg_fast_refinement: true,
            heif_input: true,
            keep_copyright: false,
            max_render_time: Duration::from_secs(30),
        }
    }
}

/// The time budget of one render, started when the render starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    started: Instant,
    budget: Duration,
}

impl Deadline {
    pub(crate) fn start(limits: &Limits) -> Deadline {
        Deadline { started: Instant::now(), budget: limits.max_render_time }
    }

    /// Refuse to go on once the budget is spent; `after` names the step just finished.
    pub(crate) fn check(&self, after: &str) -> Result<()> {
        if self.started.elapsed() > self.budget {
            return Err(ImageError::ResourceLimit(format!(
                "rendering took longer than {} ms (stopped after {after})",
                self.budget.as_millis()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{render, OutputFormat, RenderSpec, Resize};

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = std::io::Cursor::new(Vec::new());
        image.write_to(&mut out, image::ImageFormat::Png).expect("encode");
        out.into_inner()
    }

    #[test]
    fn a_render_over_its_time_budget_is_refused_between_steps() {
        let data = png(600, 400);
        let spec = RenderSpec {
            effects: crate::Effects::default(),
            resize: Resize { width: Some(100), ..Resize::default() },
            format: OutputFormat::Png,
            quality: 80,
            animate: true,
            progressive: false,
        };
        assert!(render(&data, &spec, &Limits::default()).is_ok());
        let no_time = Limits { max_render_time: Duration::ZERO, ..Limits::default() };
        let refused = render(&data, &spec, &no_time).expect_err("over budget");
        assert_eq!(refused.reject_kind(), Some(crate::RejectKind::ResourceLimit));
        assert!(refused.to_string().contains("longer than 0 ms (stopped after decode)"), "{refused}");
    }
}
