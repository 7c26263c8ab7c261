//! What each fuzz target checks, in one place: the targets in `fuzz_targets/` call these, and
//! `tests/fuzz_regressions.rs` replays every saved input in `fuzz/regressions/<target>/`
//! through the same functions in the normal test run, so a crash found once stays fixed.

use catg_core::signing::split_signature;
use catg_core::{Recipe, RecipeLimits, SignedTarget, SigningKeys};
use catg_image::{probe, render_probed, Limits, OutputFormat, RenderSpec, Resize};

/// The URL side: any query string either parses or is refused, never panics; a recipe that
/// parses has a canonical form that parses back to the same recipe; signature checks on junk
/// answer, never panic.
pub fn recipe(data: &[u8]) {
    let Ok(query) = std::str::from_utf8(data) else { return };
    let limits = RecipeLimits::default();
    let Ok((rest, sig)) = split_signature(query) else { return };
    let Ok(recipe) = Recipe::parse(&rest, &limits) else { return };
    // A crop may start outside the image it is resolved for: refused, not a panic.
    let Ok(resolved) = recipe.resolve(None, false, (4000, 3000)) else { return };
    let again = Recipe::parse(&resolved.canonical(), &limits).expect("a canonical recipe parses");
    assert_eq!(again.resolve(None, false, (4000, 3000)), Ok(resolved), "the canonical form names the same recipe");
    let keys = SigningKeys::parse("k:ZnV6ei1rZXktZnV6ei1rZXktZnV6ei1rZXktZnV6ei1rZXk").expect("key");
    let _ = keys.verify(SignedTarget::Key(&rest), &recipe, sig.as_deref(), 0);
}

/// Limits small enough that a fuzzer's input cannot make one run slow or large.
pub fn small_limits() -> Limits {
    Limits {
        max_input_bytes: 1 << 20,
        max_pixels: 4_000_000,
        max_frames: 16,
        max_jpeg_scans: 64,
        max_icc_bytes: 64 << 10,
        max_output_pixels: 1_000_000,
        max_render_time: std::time::Duration::from_secs(5),
        ..Limits::default()
    }
}

/// The header side: sniffing and probing any bytes answers, never panics.
pub fn probe_header(data: &[u8]) {
    let _ = catg_image::sniff(data);
    let _ = probe(data, &small_limits());
}

/// The decode path under limits: whatever probes is checked as ingest checks it (a full decode,
/// band by band for PNG) and rendered to a small PNG (an animation to animated WebP), or refused;
/// never a panic.
pub fn render(data: &[u8]) {
    let limits = small_limits();
    let Ok(probed) = probe(data, &limits) else { return };
    let _ = catg_image::verify(data, &probed, &limits);
    // An animation goes through every frame and the animated WebP encoder.
    let format = if catg_image::is_animation(&probed) { OutputFormat::Webp } else { OutputFormat::Png };
    let spec = RenderSpec {
        effects: catg_image::Effects::default(),
        resize: Resize { width: Some(32), height: None, ..Resize::default() },
        format,
        quality: 80,
        animate: true,
        progressive: false,
    };
    if let Ok(out) = render_probed(data, &probed, &spec, &limits) {
        assert!(!out.bytes.is_empty() && out.width <= 32, "a rendered variant is a small, non-empty image");
    }
}

/// catg's decoder for the refinement scans of progressive JPEGs (`csrc/jpeg_refine.c`, C that
/// reads hostile data) against libjpeg's own: any JPEG of at most a megapixel decodes to the
/// same pixels, or fails with the same error, through both.
pub fn jpeg_refine(data: &[u8]) {
    catg_image::check_refinement_decoders(data);
}
