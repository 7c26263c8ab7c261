//! Every entry of the shared corpus behaves as its MANIFEST.json says: valid files are probed
//! and rendered correctly (size after orientation, alpha, frames, pixel probes at full size and
//! on a resized variant, nothing of the source's payload in any variant); invalid files are
//! rejected with an acceptable reason.

mod support;

use catg_core::{examine, render_variant, Examined, Recipe, RecipeLimits};
use catg_image::{Limits, OutputFormat};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A bound on every case, far above what any needs: a hang or a runaway decoder fails the test
/// instead of stalling CI. Not a speed check (benchmarks do that).
const CASE_BOUND: Duration = Duration::from_secs(60);

fn examined(file: &str, limits: &Limits) -> Examined {
    let bytes = std::fs::read(support::corpus_dir().join(file)).expect("read corpus file");
    let mut examined = examine(&bytes[..], bytes.len() as u64, limits).expect("in-memory read");
    examined.confirm_alpha(limits);
    examined
}

/// Render `file` with `query` and decode the result to RGBA for probing.
fn render(examined: &Examined, query: &str) -> Result<(Vec<u8>, image::RgbaImage), String> {
    let (bytes, size) = render_bytes(examined, query)?;
    let decoded = image::load_from_memory(&bytes).map_err(|e| format!("variant does not decode: {e}"))?;
    if (decoded.width(), decoded.height()) != size {
        return Err("variant size differs from the reported size".into());
    }
    Ok((bytes, decoded.to_rgba8()))
}

/// Render `file` with `query`; the bytes and the reported size.
fn render_bytes(examined: &Examined, query: &str) -> Result<(Vec<u8>, (u32, u32)), String> {
    let limits = Limits::default();
    let probe = examined.verdict.as_ref().map_err(|e| e.to_string())?;
    let recipe = Recipe::parse(query, &RecipeLimits::default()).map_err(|e| e.to_string())?;
    let body = examined.body.as_deref().unwrap_or_default();
    let variant =
        render_variant(body, &examined.fingerprint, probe, &recipe, None, &limits).map_err(|e| e.to_string())?;
    Ok((variant.rendered.bytes, (variant.rendered.width, variant.rendered.height)))
}

fn u32_of(v: &Value) -> u32 {
    v.as_u64().expect("number") as u32
}

/// Check the probes against `img`, a variant of a `width`×`height` source. At full size the
/// exact (x, y) is used; on a resized variant, (fx, fy) with `extra` tolerance, colour only.
fn check_probes(entry: &Value, img: &image::RgbaImage, full_size: bool, extra: i32, failures: &mut Vec<String>) {
    let file = entry["file"].as_str().unwrap_or("?");
    for p in entry["expected"]["probes"].as_array().into_iter().flatten() {
        let (x, y) = if full_size {
            (u32_of(&p["x"]), u32_of(&p["y"]))
        } else {
            let fx = p["fx"].as_f64().expect("fx");
            let fy = p["fy"].as_f64().expect("fy");
            (
                ((fx * f64::from(img.width())) as u32).min(img.width() - 1),
                ((fy * f64::from(img.height())) as u32).min(img.height() - 1),
            )
        };
        let px = img.get_pixel(x, y).0;
        let name = p["name"].as_str().unwrap_or("?");
        let alpha_probe = p.get("alpha").is_some() || p["rgb"].is_null();
        if !full_size && alpha_probe {
            continue; // alpha bands blur at small sizes: checked at full size (manifest README)
        }
        if let Some(alpha) = p.get("alpha").and_then(Value::as_i64) {
            let tol = p["alpha_tol"].as_i64().unwrap_or(0) + i64::from(extra);
            if (i64::from(px[3]) - alpha).abs() > tol {
                failures.push(format!("{file} {name}: alpha {} at ({x},{y}), expected {alpha}±{tol}", px[3]));
            }
        }
        if let Some(rgb) = p["rgb"].as_array() {
            let tol = p["tol"].as_i64().expect("tol") as i32 + extra;
            let want: Vec<i32> = rgb.iter().map(|c| c.as_i64().expect("channel") as i32).collect();
            let off = (0..3).map(|c| (i32::from(px[c]) - want[c]).abs()).max().unwrap_or(0);
            if off > tol {
                failures.push(format!(
                    "{file} {name} ({}): got {:?} at ({x},{y}) of {}x{}, expected {want:?}±{tol}",
                    if full_size { "full size" } else { "resized" },
                    &px[..3],
                    img.width(),
                    img.height()
                ));
            }
        } else if px[3] > 8 {
            failures.push(format!("{file} {name}: expected transparent at ({x},{y}), alpha is {}", px[3]));
        }
    }
}

fn check_valid(entry: &Value, failures: &mut Vec<String>) {
    let file = entry["file"].as_str().expect("file");
    let expected = &entry["expected"];
    let limits = Limits::default();
    let examined = examined(file, &limits);
    if examined.fingerprint.to_hex() != entry["sha256"].as_str().expect("sha256") {
        failures.push(format!("{file}: fingerprint differs from the manifest's sha256"));
    }
    let probe = match &examined.verdict {
        Ok(p) => p,
        Err(e) => return failures.push(format!("{file}: rejected ({e}) but must render")),
    };
    let facts = (probe.format.as_str(), probe.width(), probe.height(), probe.has_alpha, probe.frames);
    let want = (
        expected["format"].as_str().expect("format"),
        u32_of(&expected["width"]),
        u32_of(&expected["height"]),
        expected["has_alpha"].as_bool().expect("has_alpha"),
        u32_of(&expected["frames"]),
    );
    if facts != want {
        failures.push(format!("{file}: probe says (format, w, h, alpha, frames) = {facts:?}, manifest {want:?}"));
    }

    // Full size, lossless: every probe, exactly where the manifest puts it. Sources over 4 MP are
    // checked on the resized variant only, which keeps this test quick.
    if u64::from(want.1) * u64::from(want.2) <= 4_000_000 {
        match render(&examined, "fmt=png") {
            Ok((_, img)) => {
                if (img.width(), img.height()) != (want.1, want.2) {
                    failures.push(format!("{file}: full-size variant is {}x{}", img.width(), img.height()));
                } else {
                    check_probes(entry, &img, true, 0, failures);
                }
                let transparent = img.pixels().any(|p| p.0[3] != 255);
                if transparent != want.3 {
                    failures
                        .push(format!("{file}: variant transparency is {transparent}, manifest has_alpha {}", want.3));
                }
            }
            Err(e) => failures.push(format!("{file}: full-size render failed: {e}")),
        }
    }

    // Resized (fit=fill so fx/fy map exactly): colour probes with a little extra tolerance
    // for the resampler.
    let (w, h) = ((want.1 / 2).clamp(1, 512), (want.2 / 2).clamp(1, 512));
    match render(&examined, &format!("w={w}&h={h}&fit=fill&fmt=png&enlarge=1")) {
        Ok((_, img)) => check_probes(entry, &img, false, 8, failures),
        Err(e) => failures.push(format!("{file}: resized render failed: {e}")),
    }

    // Every recipe operation at once, on the smart crop's whole-frame path: it renders, the
    // padding is the background, and the padding is all that separates it from the same render
    // without it.
    let (w, h) = (want.1.min(64), want.2.min(48));
    let crop = format!("0,0,{},{}", (want.1 - 1).max(1), want.2);
    let every = format!("w={w}&h={h}&g=smart&rot=90&flip=h&crop={crop}&blur=1.5&sharpen=0.8&fmt=png");
    match (render(&examined, &format!("{every}&pad=3&bg=ff00ff")), render(&examined, &every)) {
        (Ok((_, padded)), Ok((_, plain))) => {
            if (padded.width(), padded.height()) != (plain.width() + 6, plain.height() + 6) {
                failures.push(format!(
                    "{file}: padded {}x{}, without padding {}x{}",
                    padded.width(),
                    padded.height(),
                    plain.width(),
                    plain.height()
                ));
            }
            if padded.get_pixel(0, 0).0 != [255, 0, 255, 255] {
                failures.push(format!("{file}: padding is {:?}, not bg", padded.get_pixel(0, 0).0));
            }
        }
        (Err(e), _) | (_, Err(e)) => failures.push(format!("{file}: every operation at once failed: {e}")),
    }

    // No variant in any format carries the source's payload or metadata.
    let mut forbidden: Vec<String> = expected["must_not_contain_in_variants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect();
    forbidden.extend(["Exif\0\0".to_string(), "ICC_PROFILE".to_string(), "http://ns.adobe.com/xap".to_string()]);
    for format in OutputFormat::ALL {
        match render_bytes(&examined, &format!("w={}&fmt={format}", want.1.min(96))) {
            Ok((bytes, _)) => {
                for needle in &forbidden {
                    if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                        failures.push(format!("{file}: the {format} variant contains {needle:?}"));
                    }
                }
            }
            Err(e) => failures.push(format!("{file}: {format} render failed: {e}")),
        }
    }
}

fn check_invalid(entry: &Value, failures: &mut Vec<String>) {
    let file = entry["file"].as_str().expect("file");
    let acceptable: Vec<&str> =
        entry["expected"]["acceptable_reasons"].as_array().expect("reasons").iter().filter_map(Value::as_str).collect();
    let limits = Limits::default();
    let examined = examined(file, &limits);
    let error = match &examined.verdict {
        Err(e) => Some(catg_core::Error::from(e.clone())),
        // The header can look fine (a truncated or corrupt body): rendering must then refuse.
        Ok(probe) => {
            let recipe = Recipe::parse("fmt=png", &RecipeLimits::default()).expect("valid recipe");
            let body = examined.body.as_deref().unwrap_or_default();
            let plain = render_variant(body, &examined.fingerprint, probe, &recipe, None, &limits).err();
            // The smart crop decodes the whole frame and the effects hold float copies: they
            // must refuse the same files, as cleanly.
            let every = "w=64&h=48&g=smart&rot=90&flip=h&blur=1.5&sharpen=0.8&pad=3&bg=ff00ff&fmt=png";
            let recipe = Recipe::parse(every, &RecipeLimits::default()).expect("valid recipe");
            match render_variant(body, &examined.fingerprint, probe, &recipe, None, &limits) {
                Ok(_) => failures.push(format!("{file}: rendered with every operation, but must be rejected")),
                Err(e) => {
                    let kind = e.reject_kind();
                    if !kind.is_some_and(|k| acceptable.contains(&k)) {
                        failures.push(format!(
                            "{file}: with every operation rejected as {kind:?}, acceptable: {acceptable:?}"
                        ));
                    }
                }
            }
            plain
        }
    };
    match error {
        None => failures.push(format!("{file}: rendered, but must be rejected with one of {acceptable:?}")),
        Some(e) => match e.reject_kind() {
            Some(kind) if acceptable.contains(&kind) => {}
            _ => failures.push(format!("{file}: rejected as {:?} ({e}), acceptable: {acceptable:?}", e.reject_kind())),
        },
    }
}

fn run_entries(valid: bool) {
    let manifest = support::manifest();
    let entries: Vec<&Value> = manifest["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["valid"].as_bool() == Some(valid))
        .collect();
    assert!(!entries.is_empty(), "no {} entries in the manifest", if valid { "valid" } else { "invalid" });
    let mut failures = Vec::new();
    for entry in &entries {
        let started = Instant::now();
        if valid {
            check_valid(entry, &mut failures)
        } else {
            check_invalid(entry, &mut failures)
        }
        if started.elapsed() > CASE_BOUND {
            failures.push(format!("{}: took {:?}", entry["file"], started.elapsed()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus entries failed:\n{}",
        failures.len(),
        entries.len(),
        failures.join("\n")
    );
}

#[test]
fn every_valid_corpus_file_renders_as_the_manifest_says() {
    run_entries(true);
}

#[test]
fn every_invalid_corpus_file_is_rejected_with_an_acceptable_reason() {
    run_entries(false);
}

/// An iPhone-style HEIC (tests/fixtures, written by catg-image's `iphone_style_heic` example):
/// a grid of 512×512 HEVC tiles stored landscape, turned upright by `irot` (its EXIF orientation
/// agreeing), in Display P3 with the profile embedded. It renders upright, every block where
/// the upright picture has it, in sRGB values computed independently of the pipeline; and the
/// same at a quarter of the size.
#[test]
fn an_iphone_style_heic_renders_upright_and_in_srgb() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let bytes = std::fs::read(fixtures.join("iphone-style.heic")).expect("the HEIC fixture");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("iphone-style.json")).expect("its manifest"))
            .expect("JSON");
    let limits = Limits::default();
    let examined = examine(&bytes[..], bytes.len() as u64, &limits).expect("in-memory read");
    let probe = examined.verdict.as_ref().expect("accepted");
    let (width, height) = (u32_of(&expected["width"]), u32_of(&expected["height"]));
    assert_eq!((probe.format.to_string().as_str(), probe.width(), probe.height()), ("heic", width, height));
    assert!(probe.has_icc, "the Display P3 profile is found");
    let tolerance = expected["tolerance"].as_i64().expect("tolerance") as i32;
    for (query, scale) in [("fmt=png", 1), (&*format!("w={}&fmt=png", width / 4), 4)] {
        let (_, image) = render(&examined, query).unwrap_or_else(|e| panic!("{query}: {e}"));
        assert_eq!(image.dimensions(), (width / scale, height / scale), "{query}: upright size");
        for probe in expected["probes"].as_array().expect("probes") {
            let (x, y) = (u32_of(&probe["x"]) / scale, u32_of(&probe["y"]) / scale);
            let got = image.get_pixel(x, y).0;
            let want: Vec<i32> =
                probe["rgb"].as_array().expect("rgb").iter().map(|v| v.as_i64().expect("channel") as i32).collect();
            let worst = (0..3).map(|c| (i32::from(got[c]) - want[c]).abs()).max().unwrap_or(0);
            assert!(
                worst <= tolerance,
                "{query}: {} at ({x}, {y}) is {:?}, want {want:?} ±{tolerance}",
                probe["name"],
                &got[..3]
            );
        }
    }
}
