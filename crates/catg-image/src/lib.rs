//! catg's image pipeline: sniff → probe → decode → transforms (colour → resize → orient) →
//! encode. Orientation is planned first, applied last, to the fewest pixels; the engine streams
//! rows from the decoders that hand them out through the transforms that take them.
//!
//! Synchronous and free of I/O: it takes bytes and returns bytes, so the same code runs in the
//! CLI, in `catg serve`'s workers and in the transform Lambda. Every limit is checked against the
//! header before a decoder allocates (see [`Limits`]).

// libjpeg itself, which the C shims in csrc/ call: turbojpeg-sys's static library. Named here
// so that it is linked even where no Rust code calls into it.
extern crate turbojpeg_sys;
mod animation;
mod attention;
mod decode;
pub mod effects;
mod encode;
mod engine;
pub mod error;
pub mod format;
mod frame;
pub mod geometry;
pub mod limits;
pub mod memory;
pub mod output;
pub mod pipeline;
pub mod pixels;
pub mod placeholder;
pub mod probe;
mod reduce;
pub mod summary;
mod transform;

pub use animation::is_animation;
pub use effects::{Effects, Padding, Rgba};
pub use error::{ImageError, RejectKind, Result};
pub use format::{sniff, InputFormat, SNIFF_LEN};
pub use geometry::{Anchor, Crop, Fit, FocalPoint, Gravity, Resize};
pub use limits::Limits;
pub use output::OutputFormat;
pub use pipeline::{
    check_output, decode_full, has_transparency, memory_estimate, render, render_probed, verify,
    verify_memory_estimate, RenderSpec, Rendered, Verified,
};
pub use placeholder::{placeholder, placeholder_size};
pub use probe::{probe, Attribution, Orientation, Probe};
pub use summary::Summary;

/// For the fuzzers (feature `fuzzing`): decode `data` if it is a JPEG of at most a megapixel,
/// with libjpeg's own decoders for progressive AC scans and with catg's, and panic unless they
/// agree exactly (see `check_refinement_decoders` in `decode/jpeg.rs` for the one leniency).
#[cfg(any(test, feature = "fuzzing"))]
pub fn check_refinement_decoders(data: &[u8]) {
    let limits = Limits { max_pixels: 1 << 20, ..Limits::default() };
    let Ok(probed) = probe(data, &limits) else { return };
    if probed.format == InputFormat::Jpeg {
        decode::jpeg::check_refinement_decoders(data, 8);
        decode::jpeg::check_refinement_decoders(data, 2);
        decode::jpeg::check_refinement_decoders(data, 1);
    }
}

/// Bumped whenever a change to the pipeline changes output pixels or bytes, so that cache keys
/// (which include it) name new variants instead of serving stale ones.
pub const PIPELINE_VERSION: u32 = 9;
