//! `render`: the whole pipeline for one variant, with every limit checked before work and any
//! panic inside a codec turned into an error.

use crate::error::{ImageError, Result};
use crate::geometry::{plan, Resize};
use crate::limits::{Deadline, Limits};
use crate::output::OutputFormat;
use crate::probe::{probe, Probe};
use crate::steps::{decode::decode, encode::encode, Context, TRANSFORMS};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A concrete render request: everything resolved (no `auto` format, quality chosen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RenderSpec {
    pub resize: Resize,
    pub format: OutputFormat,
    /// 1–100; ignored by PNG.
    pub quality: u8,
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
    verify(data, probe, limits)
}

/// Decode the first frame (at the smallest scale the codec offers: JPEG still walks all of its
/// entropy-coded data) to prove the whole image is readable, and report whether it really has
/// transparency. Ingest runs this once per asset, so damage is found before anyone asks for a
/// variant.
pub fn verify(data: &[u8], probe: &Probe, limits: &Limits) -> Result<bool> {
    probe.check_limits(limits)?;
    guarded(|| {
        let deadline = Deadline::start(limits);
        let frame = decode(data, probe, 0.0, limits)?;
        deadline.check("decode")?;
        Ok(frame.pixels.has_transparency())
    })
}

/// Decode at full resolution and apply orientation and colour (sRGB), stopping before the resize:
/// the pixels every variant is made from. For quality references (benchmarks, tests); variants
/// are rendered with `render`, which decodes only as much as the output needs.
pub fn decode_full(data: &[u8], probe: &Probe, limits: &Limits) -> Result<crate::pixels::Pixels> {
    probe.check_limits(limits)?;
    guarded(|| {
        let mut frame = decode(data, probe, 1.0, limits)?;
        // Colour and orient do not consult the geometry; the identity plan stands in for it.
        let geometry = plan(probe.width(), probe.height(), &Resize::default(), u64::MAX)?;
        let ctx = Context { geometry: &geometry, oriented_size: (probe.width(), probe.height()) };
        for step in TRANSFORMS.into_iter().filter(|t| *t != crate::steps::Transform::Resize) {
            frame = step.apply(frame, &ctx)?;
        }
        Ok(frame.pixels)
    })
}

/// A conservative estimate of the memory one render of `probe` per `spec` needs at its peak, in
/// bytes, for admitting renders against a process-wide memory budget: the source bytes, the
/// decoded frame (at its shrink-on-load scale) twice over (decoders and the colour step keep a
/// second copy), a progressive JPEG's whole-image coefficient buffer (2 bytes per sample, 4:4:4
/// assumed), the output canvas twice (resampler and encoder), and 16 MiB for codec state.
/// Measured peaks (README "Performance") stay under it.
pub fn memory_estimate(probe: &Probe, spec: &RenderSpec, input_bytes: usize, limits: &Limits) -> u64 {
    let stored = u64::from(probe.stored_width) * u64::from(probe.stored_height);
    let (frame, canvas) = match plan(probe.width(), probe.height(), &spec.resize, limits.max_output_pixels) {
        Ok(geometry) => {
            let scale = match probe.format {
                crate::InputFormat::Jpeg => crate::steps::decode::jpeg_decode_scale(geometry.scale()),
                _ => 1.0,
            };
            let decoded = (stored as f64 * scale * scale).ceil() as u64;
            (decoded, u64::from(geometry.canvas.0) * u64::from(geometry.canvas.1))
        }
        // The render will be refused before it decodes anything.
        Err(_) => (0, 0),
    };
    let coefficients = if probe.jpeg_scans > 1 { stored * 3 * 2 } else { 0 };
    input_bytes as u64 + 2 * frame * 4 + coefficients + 2 * canvas * 4 + (16 << 20)
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
    let deadline = Deadline::start(limits);
    let oriented_size = (probe.width(), probe.height());
    let geometry = plan(oriented_size.0, oriented_size.1, &spec.resize, limits.max_output_pixels)?;
    let mut frame = decode(data, probe, geometry.scale(), limits)?;
    deadline.check("decode")?;
    let ctx = Context { geometry: &geometry, oriented_size };
    for step in TRANSFORMS {
        frame = step.apply(frame, &ctx)?;
        deadline.check(step.name())?;
    }
    let (width, height) = (frame.pixels.width, frame.pixels.height);
    let bytes = encode(frame.pixels, spec.format, spec.quality)?;
    Ok(Rendered { bytes, format: spec.format, width, height })
}
