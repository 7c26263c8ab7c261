//! The `catg` command-line contract, run as a real process: JSON shapes, exit codes, and the
//! memory and CPU bounds on hostile inputs (measured per child with wait4).

mod support;

use support::{catg, corpus_dir, tempdir};

fn corpus(file: &str) -> String {
    corpus_dir().join(file).to_string_lossy().into_owned()
}

#[test]
fn inspect_prints_the_documented_fields() {
    let run = catg(&["inspect", &corpus("jpeg_exif_orientation_6.jpg")], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = run.json();
    assert_eq!(v["fingerprint"], "89ac6575a68c47c2d553208bd7f33eefd26107c5ec51fee25b15e8a90527d2d5");
    assert_eq!(v["format"], "jpeg");
    // Stored 112x160 with orientation 6: upright it is 160x112.
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(160), Some(112)));
    assert_eq!(v["orientation"], 6);
    assert_eq!(v["has_alpha"], false);
    assert_eq!(v["frames"], 1);
    assert_eq!(v["bytes"], 2934);
}

#[test]
fn render_writes_the_variant_and_prints_its_key() {
    let dir = tempdir();
    let out = dir.join("v.webp");
    let run = catg(
        &[
            "render",
            &corpus("png_rgba.png"),
            "--recipe",
            "w=90&h=90&fit=cover&fmt=webp&q=70",
            "-o",
            out.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = run.json();
    assert_eq!(v["canonical"], "w=90&h=90&fit=cover&fmt=webp&q=70&enlarge=0");
    assert_eq!(v["format"], "webp");
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(90), Some(90)));
    assert_eq!(v["cache_key"].as_str().map(str::len), Some(64));
    let bytes = std::fs::read(&out).expect("variant written");
    assert_eq!(v["bytes"].as_u64(), Some(bytes.len() as u64));
    let img = image::load_from_memory(&bytes).expect("a WebP");
    assert_eq!((img.width(), img.height()), (90, 90));
    assert!(std::fs::read_dir(&dir).expect("dir").count() == 1, "no temp file left behind");
}

#[test]
fn auto_format_follows_accept_and_shares_the_explicit_key() {
    let dir = tempdir();
    let out = dir.join("v").to_string_lossy().into_owned();
    let file = corpus("jpeg_baseline.jpg");
    let auto =
        catg(&["render", &file, "--recipe", "width=64", "--accept", "image/avif,image/webp,*/*", "-o", &out], &[])
            .json();
    let explicit = catg(&["render", &file, "--recipe", "fmt=avif&w=64", "-o", &out], &[]).json();
    assert_eq!(auto["format"], "avif");
    assert_eq!(auto["cache_key"], explicit["cache_key"]);
    let plain = catg(&["render", &file, "--recipe", "w=64", "-o", &out], &[]).json();
    assert_eq!(plain["format"], "jpeg");
    let transparent = catg(&["render", &corpus("png_rgba.png"), "--recipe", "w=64", "-o", &out], &[]).json();
    assert_eq!(transparent["format"], "png");
}

#[test]
fn rejections_and_bad_recipes_exit_2_with_a_json_error() {
    let dir = tempdir();
    let out = dir.join("v").to_string_lossy().into_owned();
    let cases = [
        (corpus("vector.svg"), "", "unsupported_format"),
        (corpus("empty.jpg"), "", "empty"),
        (corpus("random_bytes.jpg"), "", "not_an_image"),
        (corpus("jpeg_truncated.jpg"), "w=10", "truncated"),
        (corpus("jpeg_baseline.jpg"), "w=10&w=20", "invalid_recipe"),
        (corpus("jpeg_baseline.jpg"), "q=0", "invalid_recipe"),
    ];
    for (file, recipe, kind) in cases {
        let run = catg(&["render", &file, "--recipe", recipe, "-o", &out], &[]);
        assert_eq!(run.code, 2, "{file} {recipe}: {}", run.stdout);
        let v = run.json();
        assert_eq!(v["error"]["kind"], kind, "{file} {recipe}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let too_large = catg(&["inspect", &corpus("jpeg_baseline.jpg")], &[("CATG_MAX_INPUT_BYTES", "1000")]);
    assert_eq!((too_large.code, too_large.json()["error"]["kind"].as_str()), (2, Some("too_large")));
}

#[test]
fn io_and_usage_failures_exit_1() {
    assert_eq!(catg(&["inspect", "/nonexistent/catg/file.jpg"], &[]).code, 1);
    assert_eq!(catg(&["render", &corpus("jpeg_baseline.jpg")], &[]).code, 1, "missing -o");
    assert_eq!(catg(&["frobnicate"], &[]).code, 1);
    assert_eq!(catg(&["inspect", &corpus("jpeg_baseline.jpg")], &[("CATG_MAX_PIXELS", "many")]).code, 1);
    let dir = tempdir();
    let out = dir.join("missing-dir/v.jpg").to_string_lossy().into_owned();
    assert_eq!(catg(&["render", &corpus("jpeg_baseline.jpg"), "-o", &out], &[]).code, 1);
    assert_eq!(catg(&["--help"], &[]).code, 0);
}

#[test]
fn bombs_are_refused_within_1s_of_cpu_and_100_mb() {
    let dir = tempdir();
    let out = dir.join("v").to_string_lossy().into_owned();
    for bomb in ["png_bomb.png", "gif_bomb_frames.gif", "gif_bomb_screen.gif", "jpeg_sof_huge.jpg"] {
        let run = catg(&["render", &corpus(bomb), "--recipe", "w=100", "-o", &out], &[]);
        assert_eq!(run.code, 2, "{bomb}: {}", run.stdout);
        assert!(run.cpu_seconds < 1.0, "{bomb}: {:.3} s of CPU", run.cpu_seconds);
        assert!(run.max_rss_mb < 100.0, "{bomb}: peak RSS {:.1} MB", run.max_rss_mb);
    }
}

#[test]
fn inspect_reads_headers_only() {
    // The first 200 KB of a 50 MP JPEG: the header is whole, the image data is not. Inspect
    // --header-only must still answer (it decodes nothing), while a full inspect (what ingest
    // would record) and render must refuse it as truncated.
    let dir = tempdir();
    let cut = dir.join("cut.jpg");
    let whole = std::fs::read(corpus_dir().join("large_50mp.jpg")).expect("read");
    std::fs::write(&cut, &whole[..200_000]).expect("write");
    let run = catg(&["inspect", "--header-only", cut.to_str().expect("utf-8")], &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.json()["phash"].is_null(), "{}", run.stdout);
    assert_eq!((run.json()["width"].as_u64(), run.json()["height"].as_u64()), (Some(8660), Some(5774)));
    assert!(run.max_rss_mb < 64.0, "peak RSS {:.1} MB", run.max_rss_mb);
    let full = catg(&["inspect", cut.to_str().expect("utf-8")], &[]);
    assert_eq!(full.json()["error"]["kind"], "truncated");
    let out = dir.join("v").to_string_lossy().into_owned();
    let render = catg(&["render", cut.to_str().expect("utf-8"), "--recipe", "w=100", "-o", &out], &[]);
    assert_eq!(render.json()["error"]["kind"], "truncated");
}

#[test]
fn a_1_gib_non_image_is_fingerprinted_in_constant_memory() {
    use std::io::Write;
    let dir = tempdir();
    let path = dir.join("random.bin");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        for chunk in block.chunks_exact_mut(8) {
            // xorshift64: random-looking bytes at memory speed.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&block).expect("write");
    }
    file.flush().expect("flush");
    drop(file);
    let run = catg(&["inspect", path.to_str().expect("utf-8")], &[]);
    std::fs::remove_dir_all(&dir).expect("clean up");
    assert_eq!(run.code, 2);
    assert_eq!(run.json()["error"]["kind"], "not_an_image");
    assert!(run.max_rss_mb < 64.0, "peak RSS {:.1} MB", run.max_rss_mb);
}

#[test]
fn every_corpus_file_renders_or_is_refused_in_bounded_cpu_and_memory() {
    // Each case in its own process, so each one's peak RSS is its own. The bounds are safety
    // nets (a 50 MP source decodes at 1/8 scale for a 200 px variant), not speed checks.
    let dir = tempdir();
    let out = dir.join("v").to_string_lossy().into_owned();
    let manifest = support::manifest();
    let mut failures = Vec::new();
    for entry in manifest["entries"].as_array().expect("entries") {
        let file = entry["file"].as_str().expect("file");
        let run = catg(&["render", &corpus(file), "--recipe", "w=200&h=200&fit=inside&fmt=webp", "-o", &out], &[]);
        let expected_code = if entry["valid"].as_bool() == Some(true) { 0 } else { 2 };
        if run.code != expected_code {
            failures.push(format!("{file}: exit {} ({}{})", run.code, run.stdout.trim(), run.stderr.trim()));
        }
        if run.max_rss_mb > 256.0 || run.cpu_seconds > 10.0 {
            failures.push(format!("{file}: {:.0} MB peak, {:.2} s CPU", run.max_rss_mb, run.cpu_seconds));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn sign_prints_a_url_whose_signature_verifies_and_refuses_to_run_without_keys() {
    use catg_core::{Recipe, RecipeLimits, SignedTarget, SigningKeys};
    let spec = "k1:c2lnbmluZy1rZXktZm9yLXRoZS1jbGktdGVzdC0wMTIzNDU2Nzg";
    let run = catg(
        &[
            "sign",
            "cats/tom cat.jpg",
            "--recipe",
            "width=400&fmt=webp",
            "--expires-in",
            "600",
            "--base-url",
            "https://img.example.com/",
        ],
        &[("CATG_SIGNING_KEYS", spec)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = run.json();
    let url = v["url"].as_str().expect("url");
    let sig = v["sig"].as_str().expect("sig");
    assert_eq!(url, format!("https://img.example.com/cats/tom%20cat.jpg?width=400&fmt=webp&sig={sig}"));
    let expires = v["expires"].as_u64().expect("expiry");
    let now = catg_core::signing::unix_now();
    assert!((now + 590..=now + 610).contains(&expires), "{expires} vs {now}");
    let keys = SigningKeys::parse(spec).expect("keys");
    let recipe = Recipe::parse("w=400&fmt=webp", &RecipeLimits::default()).expect("recipe");
    assert_eq!(keys.verify(SignedTarget::Key("cats/tom cat.jpg"), &recipe, Some(sig), now), Ok(()));

    let without = catg(&["sign", "a.jpg"], &[("CATG_SIGNING_KEYS", "")]);
    assert_eq!(without.code, 1);
    assert!(without.stderr.contains("CATG_SIGNING_KEYS"), "{}", without.stderr);
    let weak = catg(&["sign", "a.jpg"], &[("CATG_SIGNING_KEYS", "k1:c2hvcnQ")]);
    assert_eq!(weak.code, 1);
    assert!(!weak.stderr.contains("c2hvcnQ"), "the secret is never echoed: {}", weak.stderr);
}
