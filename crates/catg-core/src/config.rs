//! Limits from the environment, shared by every entry point (CLI, `catg serve`, Lambdas), so a
//! limit is set the same way everywhere. Unset variables keep the documented defaults; a value
//! that does not parse is an error at start-up, never silently ignored.

use crate::recipe::RecipeLimits;
use crate::signing::SigningKeys;
use catg_image::Limits;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?} is not valid: {expected}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub expected: &'static str,
}

fn read<T: FromStr>(
    env: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    expected: &'static str,
    into: &mut T,
) -> Result<(), ConfigError> {
    if let Some(value) = env(name) {
        *into = value.trim().parse().map_err(|_| ConfigError { name, value, expected })?;
    }
    Ok(())
}

/// A 0/1 setting.
fn switch(
    env: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    expected: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    let mut value = u8::from(default);
    read(env, name, expected, &mut value)?;
    match value {
        0 | 1 => Ok(value == 1),
        _ => Err(ConfigError { name, value: value.to_string(), expected }),
    }
}

/// The image limits: `CATG_MAX_INPUT_BYTES`, `CATG_MAX_PIXELS`, `CATG_MAX_FRAMES`,
/// `CATG_MAX_JPEG_SCANS`, `CATG_MAX_ICC_BYTES`, `CATG_MAX_OUTPUT_PIXELS`, `CATG_MAX_UPSCALE`,
/// `CATG_MAX_RENDER_MS`, and the decoder switches `CATG_JPEG_FAST_REFINEMENT`, `CATG_HEIF_INPUT`.
pub fn image_limits(env: impl Fn(&str) -> Option<String>) -> Result<Limits, ConfigError> {
    let mut l = Limits::default();
    read(&env, "CATG_MAX_INPUT_BYTES", "a number of bytes", &mut l.max_input_bytes)?;
    read(&env, "CATG_MAX_PIXELS", "a number of pixels", &mut l.max_pixels)?;
    read(&env, "CATG_MAX_FRAMES", "a number of frames", &mut l.max_frames)?;
    read(&env, "CATG_MAX_JPEG_SCANS", "a number of scans", &mut l.max_jpeg_scans)?;
    read(&env, "CATG_MAX_ICC_BYTES", "a number of bytes", &mut l.max_icc_bytes)?;
    read(&env, "CATG_MAX_OUTPUT_PIXELS", "a number of pixels", &mut l.max_output_pixels)?;
    read(&env, "CATG_MAX_UPSCALE", "a whole factor, such as 4", &mut l.max_upscale)?;
    l.jpeg_fast_refinement = switch(
        &env,
        "CATG_JPEG_FAST_REFINEMENT",
        "1 (catg's refinement decoder) or 0 (libjpeg's)",
        l.jpeg_fast_refinement,
    )?;
    l.heif_input = switch(&env, "CATG_HEIF_INPUT", "1 (HEIC and AVIF accepted) or 0 (refused)", l.heif_input)?;
    l.keep_copyright = switch(
        &env,
        "CATG_KEEP_COPYRIGHT",
        "1 (variants keep the source's EXIF Artist and Copyright) or 0 (all metadata stripped)",
        l.keep_copyright,
    )?;
    let mut render_ms = l.max_render_time.as_millis() as u64;
    read(&env, "CATG_MAX_RENDER_MS", "a number of milliseconds", &mut render_ms)?;
    l.max_render_time = std::time::Duration::from_millis(render_ms);
    Ok(l)
}

/// The recipe limits: `CATG_MAX_WIDTH`, `CATG_MAX_HEIGHT`, `CATG_ALLOWED_SIZES` (comma-separated
/// pixel sizes; unset or empty allows any size up to the maxima), and the presets:
/// `CATG_PRESETS` (a JSON object, name → recipe query, each checked against these limits now),
/// `CATG_PRESETS_ONLY=1` (refuse any other recipe), `CATG_PRESETS_MIX=1` (let parameters beside
/// a preset override its own).
pub fn recipe_limits(env: impl Fn(&str) -> Option<String>) -> Result<RecipeLimits, ConfigError> {
    let mut l = RecipeLimits::default();
    read(&env, "CATG_MAX_WIDTH", "a number of pixels", &mut l.max_width)?;
    read(&env, "CATG_MAX_HEIGHT", "a number of pixels", &mut l.max_height)?;
    if let Some(value) = env("CATG_ALLOWED_SIZES").filter(|v| !v.trim().is_empty()) {
        let sizes: Result<_, _> = value.split(',').map(|s| s.trim().parse::<u32>()).collect();
        l.allowed_sizes = Some(sizes.map_err(|_| ConfigError {
            name: "CATG_ALLOWED_SIZES",
            value,
            expected: "comma-separated pixel sizes, such as 320,640,1280",
        })?);
    }
    let switch = |name: &'static str| -> Result<bool, ConfigError> {
        match env(name).as_deref().map(str::trim) {
            None | Some("" | "0") => Ok(false),
            Some("1") => Ok(true),
            Some(other) => Err(ConfigError { name, value: other.into(), expected: "1 (on) or 0 (off)" }),
        }
    };
    l.presets_only = switch("CATG_PRESETS_ONLY")?;
    l.presets_mix = switch("CATG_PRESETS_MIX")?;
    if let Some(value) = env("CATG_PRESETS").filter(|v| !v.trim().is_empty()) {
        l.presets = presets(&value, &l)?;
    }
    if l.presets_only && l.presets.is_empty() {
        return Err(ConfigError {
            name: "CATG_PRESETS_ONLY",
            value: "1".into(),
            expected: "0 unless CATG_PRESETS names at least one preset",
        });
    }
    Ok(l)
}

/// `CATG_PRESETS`: names of 1 to 32 lower-case letters, digits, `-` or `_`, each naming a recipe
/// that parses under `limits`.
fn presets(value: &str, limits: &RecipeLimits) -> Result<std::collections::BTreeMap<String, String>, ConfigError> {
    let wrong = |expected: &'static str| ConfigError { name: "CATG_PRESETS", value: value.into(), expected };
    let presets: std::collections::BTreeMap<String, String> = serde_json::from_str(value)
        .map_err(|_| wrong("a JSON object of preset names to recipes, such as {\"thumb\":\"w=200&h=200&fmt=webp\"}"))?;
    let plain = RecipeLimits { presets_only: false, ..limits.clone() };
    for (name, recipe) in &presets {
        let good_name = (1..=32).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !good_name {
            return Err(wrong("preset names of 1 to 32 lower-case letters, digits, '-' or '_'"));
        }
        if recipe.split('&').any(|pair| pair.split('=').next() == Some("preset")) {
            return Err(wrong("presets that do not name other presets"));
        }
        if let Err(e) = crate::Recipe::parse(recipe, &plain) {
            tracing::error!(preset = %name, error = %e, "a preset's recipe does not parse");
            return Err(wrong("presets whose recipes parse under the configured limits (the log says which fails)"));
        }
    }
    Ok(presets)
}

/// The pending-job caps: `CATG_MAX_PENDING_JOBS` (default 1000) and
/// `CATG_MAX_PENDING_PER_ASSET` (default 32), as (total, per asset).
pub fn pending_caps(env: impl Fn(&str) -> Option<String>) -> Result<(u64, u64), ConfigError> {
    let defaults = crate::ResolverConfig::default();
    let (mut total, mut per_asset) = (defaults.max_pending_jobs, defaults.max_pending_per_asset);
    read(&env, "CATG_MAX_PENDING_JOBS", "a number of jobs", &mut total)?;
    read(&env, "CATG_MAX_PENDING_PER_ASSET", "a number of jobs", &mut per_asset)?;
    Ok((total.max(1), per_asset.max(1)))
}

/// Pre-warming: `CATG_PREWARM_PER_ASSET` (most guesses per viewer render, default 3; 0 turns
/// pre-warming off), `CATG_PREWARM_MIN_SUPPORT` (assets that must share a pair, default 3),
/// `CATG_PREWARM_MIN_CONFIDENCE` (percent of the assets having a recipe that also have its
/// companion, default 50), `CATG_PREWARM_SAMPLE` (variant records learned from, default 10000),
/// `CATG_PREWARM_RELEARN_S` (seconds a learned table is used, default 300; 0 relearns each time).
pub fn prewarm_config(env: impl Fn(&str) -> Option<String>) -> Result<crate::PrewarmConfig, ConfigError> {
    let mut c = crate::PrewarmConfig::default();
    read(&env, "CATG_PREWARM_PER_ASSET", "a number of variants (0: off)", &mut c.per_asset)?;
    read(&env, "CATG_PREWARM_MIN_SUPPORT", "a number of assets", &mut c.min_support)?;
    let mut percent = (c.min_confidence * 100.0).round() as u32;
    read(&env, "CATG_PREWARM_MIN_CONFIDENCE", "a percentage from 1 to 100", &mut percent)?;
    if !(1..=100).contains(&percent) {
        let value = percent.to_string();
        return Err(ConfigError { name: "CATG_PREWARM_MIN_CONFIDENCE", value, expected: "a percentage from 1 to 100" });
    }
    c.min_confidence = f64::from(percent) / 100.0;
    c.min_support = c.min_support.max(1);
    read(&env, "CATG_PREWARM_SAMPLE", "a number of variant records", &mut c.sample)?;
    let mut relearn = c.relearn_every.as_secs();
    read(&env, "CATG_PREWARM_RELEARN_S", "a number of seconds", &mut relearn)?;
    c.relearn_every = std::time::Duration::from_secs(relearn);
    Ok(c)
}

/// The memory budget for renders running at once in this process, in MiB:
/// `CATG_RENDER_MEMORY_MB`, else three quarters of a Lambda function's memory
/// (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`), else 1024.
pub fn render_memory_mib(env: impl Fn(&str) -> Option<String>) -> Result<u32, ConfigError> {
    let mut mib: u32 = match env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").and_then(|v| v.trim().parse::<u32>().ok()) {
        Some(lambda) => (lambda / 4 * 3).max(64),
        None => 1024,
    };
    read(&env, "CATG_RENDER_MEMORY_MB", "a number of MiB", &mut mib)?;
    Ok(mib)
}

/// The URL signing keys, `CATG_SIGNING_KEYS=id:secret[,id:secret…]` (secrets base64, at least
/// 32 bytes). Unset or empty: signing is off. The first key signs (`catg sign`); all verify.
pub fn signing_keys(env: impl Fn(&str) -> Option<String>) -> Result<Option<SigningKeys>, ConfigError> {
    match env("CATG_SIGNING_KEYS").filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(value) => SigningKeys::parse(&value).map(Some).map_err(|_| ConfigError {
            name: "CATG_SIGNING_KEYS",
            // Never echo secrets into logs or error messages.
            value: "(hidden)".into(),
            expected: "id:secret pairs separated by commas, each secret base64 of at least 32 bytes",
        }),
    }
}

/// Reads the process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(image_limits(env(&[])).expect("defaults"), Limits::default());
        let l = image_limits(env(&[("CATG_MAX_PIXELS", "1000"), ("CATG_MAX_FRAMES", " 5 ")])).expect("valid");
        assert_eq!((l.max_pixels, l.max_frames), (1000, 5));
        let r = recipe_limits(env(&[("CATG_ALLOWED_SIZES", "640, 320"), ("CATG_MAX_WIDTH", "2000")])).expect("valid");
        assert_eq!(r.allowed_sizes, Some([320, 640].into()));
        assert_eq!(r.max_width, 2000);
        assert!(signing_keys(env(&[])).expect("unset").is_none());
        assert_eq!(render_memory_mib(env(&[])), Ok(1024));
        assert_eq!(render_memory_mib(env(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1769")])), Ok(1326));
        assert_eq!(render_memory_mib(env(&[("CATG_RENDER_MEMORY_MB", "300")])), Ok(300));
        let ms = image_limits(env(&[("CATG_MAX_RENDER_MS", "1500")])).expect("valid").max_render_time;
        assert_eq!(ms, std::time::Duration::from_millis(1500));
        let keys = signing_keys(env(&[("CATG_SIGNING_KEYS", "k1:c2VjcmV0LWtleS1hLWZvci10ZXN0cy0wMTIzNDU2Nzg5YWI")]));
        assert!(keys.expect("valid").is_some());
        let bad = signing_keys(env(&[("CATG_SIGNING_KEYS", "k1:dG9vLXNob3J0")])).expect_err("short secret");
        assert!(!bad.to_string().contains("dG9vLXNob3J0"), "{bad}");
    }

    #[test]
    fn bad_values_are_errors_naming_the_variable() {
        let prewarm = prewarm_config(env(&[])).expect("defaults");
        assert_eq!((prewarm.per_asset, prewarm.min_support, prewarm.min_confidence), (3, 3, 0.5));
        let prewarm = prewarm_config(env(&[("CATG_PREWARM_PER_ASSET", "0"), ("CATG_PREWARM_MIN_CONFIDENCE", "80")]));
        assert_eq!(prewarm.as_ref().map(|p| (p.per_asset, p.min_confidence)), Ok((0, 0.8)));
        assert!(prewarm_config(env(&[("CATG_PREWARM_MIN_CONFIDENCE", "0")])).is_err());
        assert!(prewarm_config(env(&[("CATG_PREWARM_PER_ASSET", "some")])).is_err());
        let e = image_limits(env(&[("CATG_MAX_PIXELS", "lots")])).expect_err("invalid");
        assert_eq!(e.to_string(), "CATG_MAX_PIXELS=\"lots\" is not valid: a number of pixels");
        assert!(recipe_limits(env(&[("CATG_ALLOWED_SIZES", "1,x")])).is_err());
        assert!(!image_limits(env(&[("CATG_HEIF_INPUT", "0")])).expect("valid").heif_input);
        assert!(!image_limits(env(&[])).expect("valid").keep_copyright, "metadata is stripped by default");
        assert!(image_limits(env(&[("CATG_KEEP_COPYRIGHT", "1")])).expect("valid").keep_copyright);
        let e = image_limits(env(&[("CATG_HEIF_INPUT", "2")])).expect_err("a switch is 0 or 1");
        assert!(e.to_string().starts_with("CATG_HEIF_INPUT=\"2\""), "{e}");
    }

    #[test]
    fn presets_are_read_and_checked_at_start_up() {
        let l =
            recipe_limits(env(&[("CATG_PRESETS", r#"{"thumb":"w=200&h=200&fmt=webp"}"#), ("CATG_PRESETS_ONLY", "1")]))
                .expect("valid");
        assert_eq!(l.presets.get("thumb").map(String::as_str), Some("w=200&h=200&fmt=webp"));
        assert!(l.presets_only && !l.presets_mix);
        for (presets, why) in [
            ("[1]", "not an object"),
            (r#"{"Thumb":"w=1"}"#, "upper case"),
            (r#"{"a":"w=0"}"#, "a recipe that does not parse"),
            (r#"{"a":"w=9000"}"#, "over the maximum width"),
            (r#"{"a":"preset=b","b":"w=1"}"#, "a preset naming a preset"),
        ] {
            let e = recipe_limits(env(Box::leak(Box::new([("CATG_PRESETS", presets)])))).expect_err(why);
            assert_eq!(e.name, "CATG_PRESETS", "{why}");
        }
        assert!(recipe_limits(env(&[("CATG_PRESETS_ONLY", "1")])).is_err(), "presets only, but none");
        assert!(recipe_limits(env(&[("CATG_PRESETS_MIX", "yes")])).is_err());
    }
}
