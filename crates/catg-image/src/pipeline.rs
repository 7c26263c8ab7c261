//! `render`: the whole pipeline for one variant, with every limit checked before work and any
//! panic inside a codec turned into an error.

use crate::error::{ImageError, Result};
use crate::geometry::{plan, Resize};
use crate::limits::Limits;
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
    guarded(|| Ok(decode(data, probe, 0.0, limits)?.pixels.has_transparency()))
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

/// Run `work`, turning a panic inside a codec into an error.
fn guarded<T>(work: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|_| {
        // Decoding is deterministic: a retry would panic again, so this is the input's fault
        // as far as anyone downstream is concerned.
        Err(ImageError::corrupt("a decoder failed on this input"))
    })
}

fn run(data: &[u8], probe: &Probe, spec: &RenderSpec, limits: &Limits) -> Result<Rendered> {
    let oriented_size = (probe.width(), probe.height());
    let geometry = plan(oriented_size.0, oriented_size.1, &spec.resize, limits.max_output_pixels)?;
    let mut frame = decode(data, probe, geometry.scale(), limits)?;
    let ctx = Context { geometry: &geometry, oriented_size };
    for step in TRANSFORMS {
        frame = step.apply(frame, &ctx)?;
    }
    let (width, height) = (frame.pixels.width, frame.pixels.height);
    let bytes = encode(frame.pixels, spec.format, spec.quality)?;
    Ok(Rendered { bytes, format: spec.format, width, height })
}
