//! `catg-bench <op> <file> <iters> [outfile]`: one warm-up and `iters` timed renders of the
//! same op sharp_bench.js runs, in-process; prints one JSON line in sharp_bench's shape.
//! Ops: webp400 (w=400, WebP q80), jpeg1200 (w=1200, JPEG q80), avif400 (w=400, AVIF at catg's
//! default quality), or any recipe query (`w=400&h=400&g=smart&fmt=jpeg`), for bench/ops.py.
//!
//! `catg-bench reference <file> <width> <out.png>`: the ideal variant to measure quality against:
//! full-resolution decode, orientation, sRGB, then the `image` crate's Lanczos3 in floating point
//! (an implementation independent of catg's and libvips' resamplers), saved losslessly.
//!
//! `catg-bench jpeg-floor <file.jpg> <iters>`: what stock libjpeg-turbo (through TurboJPEG, as
//! sharp's libvips uses its mozjpeg fork) spends on this JPEG's entropy decoding: a decode at 1/8
//! scale, which still walks all of the entropy-coded data but does almost no IDCT, colour
//! conversion or output. A whole catg render of a progressive JPEG can take less, since catg
//! decodes refinement scans with its own code (`csrc/jpeg_refine.c`). Prints `{"floor_ms": …}`
//! (median).
//!
//! `catg-bench ingest <file> <iters>`: what ingest spends on one upload before it writes the
//! manifest: the fingerprint, the header, and the verifying decode (with whatever that decode
//! learns of the picture). Prints `{"median_ms": …}` like the render ops.
//!
//! `catg-bench make-animation <photo> <frames> <width> <out.gif>`: a test animation for
//! bench/animated.py: a 16:9 window `width` wide panning across the photo, `frames` frames of
//! 80 ms, looping forever, written by the image crate's GIF encoder (not catg's).
//!
//! `catg-bench dssim <reference.png> <candidate>`: the DSSIM of any decodable candidate (JPEG,
//! PNG, WebP, AVIF) against the reference; sizes may differ by a pixel of rounding, and are then
//! compared on their common area. Prints `{"dssim": …}`.
#![allow(unsafe_code)] // getrusage(2) for peak RSS.

use catg_core::{render_variant, Fingerprint, Recipe, RecipeLimits};
use catg_image::{decode_full, probe, Limits};
use std::time::Instant;

fn main() {
    // As every rendering process does (catg serve, the transform Lambda).
    catg_image::memory::reuse_large_buffers();
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("reference") if args.len() == 5 => return reference(&args[2], &args[3], &args[4]),
        Some("dssim") if args.len() == 4 => return dssim(&args[2], &args[3]),
        Some("jpeg-floor") if args.len() == 4 => return jpeg_floor(&args[2], &args[3]),
        Some("ingest") if args.len() == 4 => return ingest(&args[2], &args[3]),
        Some("make-animation") if args.len() == 6 => return make_animation(&args[2], &args[3], &args[4], &args[5]),
        _ => {}
    }
    if args.len() < 4 {
        eprintln!("usage: catg-bench <webp400|jpeg1200|avif400|QUERY> <file> <iters> [outfile]");
        std::process::exit(1);
    }
    let (op, file) = (&args[1], &args[2]);
    let iters: usize = args[3].parse().unwrap_or(5);
    let query = match op.as_str() {
        "webp400" => "w=400&fmt=webp&q=80",
        "jpeg1200" => "w=1200&fmt=jpeg&q=80",
        "avif400" => "w=400&fmt=avif",
        query if query.contains('=') => query,
        other => {
            eprintln!("unknown op {other}");
            std::process::exit(1);
        }
    };
    let data = read(file);
    let limits = Limits::default();
    let recipe = Recipe::parse(query, &RecipeLimits::default()).unwrap_or_else(|e| panic!("{e}"));
    // The fingerprint is ingest's work, done once per source; a transform job carries it.
    let fingerprint = Fingerprint::of(&data);
    let run = || {
        // What a transform worker does per job, as sharp does per call: read the header, render.
        let probe = probe(&data, &limits).unwrap_or_else(|e| panic!("{e}"));
        render_variant(&data, &fingerprint, &probe, &recipe, None, &limits).unwrap_or_else(|e| panic!("{e}"))
    };
    let t0 = Instant::now();
    let mut variant = run();
    let first = t0.elapsed().as_secs_f64() * 1e3;
    if let Some(out) = args.get(4) {
        std::fs::write(out, &variant.rendered.bytes).unwrap_or_else(|e| panic!("{e}"));
    }
    let mut times = Vec::new();
    for _ in 0..iters {
        let t = Instant::now();
        variant = run();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    if times.is_empty() {
        times.push(first);
    }
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let median = if n % 2 == 1 { times[n / 2] } else { (times[n / 2 - 1] + times[n / 2]) / 2.0 };
    // SAFETY: getrusage fills a plain-data struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let round = |x: f64| (x * 100.0).round() / 100.0;
    println!(
        "{}",
        serde_json::json!({
            "tool": "catg", "op": op, "file": file.rsplit('/').next(), "iters": iters,
            "median_ms": round(median), "min_ms": round(times[0]), "max_ms": round(times[n - 1]), "first_ms": round(first),
            "out_bytes": variant.rendered.bytes.len(), "out_w": variant.rendered.width, "out_h": variant.rendered.height,
            "maxrss_kb": usage.ru_maxrss,
        })
    );
}

fn make_animation(photo: &str, frames: &str, width: &str, out: &str) {
    use image::codecs::gif::{GifEncoder, Repeat};
    use image::{Delay, Frame, RgbaImage};
    let (frames, width): (u32, u32) = (frames.parse().expect("frames"), width.parse().expect("width"));
    let data = read(photo);
    let limits = Limits::default();
    let probed = probe(&data, &limits).unwrap_or_else(|e| panic!("{photo}: {e}"));
    let pixels = decode_full(&data, &probed, &limits).unwrap_or_else(|e| panic!("{photo}: {e}"));
    let rgba: Vec<u8> = match pixels.channels() {
        3 => pixels.data.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
        _ => pixels.data.clone(),
    };
    let source = RgbaImage::from_raw(pixels.width, pixels.height, rgba).expect("rgba");
    // The window's height from 16:9, then the photo scaled so that it is a third taller.
    let height = width * 9 / 16;
    let scale = f64::from(height) * 4.0 / 3.0 / f64::from(source.height());
    let scaled_width = ((f64::from(source.width()) * scale) as u32).max(width + frames);
    let scaled = image::imageops::resize(&source, scaled_width, height * 4 / 3, image::imageops::FilterType::Triangle);
    let file = std::fs::File::create(out).unwrap_or_else(|e| panic!("{out}: {e}"));
    let mut encoder = GifEncoder::new_with_speed(std::io::BufWriter::new(file), 10);
    encoder.set_repeat(Repeat::Infinite).expect("repeat");
    let travel = (scaled_width - width, height / 3);
    for i in 0..frames {
        let (x, y) = (travel.0 * i / frames.max(1), travel.1 * i / frames.max(1));
        let view = image::imageops::crop_imm(&scaled, x, y, width, height).to_image();
        encoder.encode_frame(Frame::from_parts(view, 0, 0, Delay::from_numer_denom_ms(80, 1))).expect("frame");
    }
}

fn ingest(file: &str, iters: &str) {
    let data = read(file);
    let iters: usize = iters.parse().unwrap_or(5);
    let limits = Limits::default();
    let run = || {
        let fingerprint = Fingerprint::of(&data);
        let probe = probe(&data, &limits).unwrap_or_else(|e| panic!("{file}: {e}"));
        let verified = catg_image::verify(&data, &probe, &limits).unwrap_or_else(|e| panic!("{file}: {e}"));
        std::hint::black_box((fingerprint, verified));
    };
    let median = warm_median_ms(iters, run);
    println!(
        "{}",
        serde_json::json!({"tool": "catg", "op": "ingest", "file": file.rsplit('/').next(), "iters": iters, "median_ms": median})
    );
}

/// One warm-up call of `work`, then the median of `iters` (at least one) timed calls, in ms
/// rounded to 0.01.
fn warm_median_ms(iters: usize, mut work: impl FnMut()) -> f64 {
    work();
    let mut times: Vec<f64> = (0..iters.max(1))
        .map(|_| {
            let t = Instant::now();
            work();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2] * 100.0).round() / 100.0
}

fn jpeg_floor(file: &str, iters: &str) {
    let data = read(file);
    let iters: usize = iters.parse().unwrap_or(5);
    let mut decompressor = turbojpeg::Decompressor::new().expect("turbojpeg");
    let header = decompressor.read_header(&data).unwrap_or_else(|e| panic!("{file}: {e}"));
    decompressor.set_scaling_factor(turbojpeg::ScalingFactor::ONE_EIGHTH).expect("scale");
    let scaled = header.scaled(turbojpeg::ScalingFactor::ONE_EIGHTH);
    let mut pixels = vec![0u8; scaled.width * scaled.height * 3];
    let decode = || {
        let image = turbojpeg::Image {
            pixels: &mut pixels[..],
            width: scaled.width,
            pitch: scaled.width * 3,
            height: scaled.height,
            format: turbojpeg::PixelFormat::RGB,
        };
        decompressor.decompress(&data, image).unwrap_or_else(|e| panic!("{file}: {e}"));
    };
    println!("{}", serde_json::json!({ "floor_ms": warm_median_ms(iters, decode) }));
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(file).unwrap_or_else(|e| {
        eprintln!("cannot read {file}: {e}");
        std::process::exit(1);
    })
}

/// Full-resolution, oriented, sRGB pixels of any image catg reads, as 8-bit RGB.
fn decode_rgb(file: &str) -> image::RgbImage {
    let data = read(file);
    let limits = Limits { max_pixels: u64::MAX / 4, ..Limits::default() };
    let probe = probe(&data, &limits).unwrap_or_else(|e| panic!("{file}: {e}"));
    let pixels = decode_full(&data, &probe, &limits).unwrap_or_else(|e| panic!("{file}: {e}"));
    let pixels = pixels.flatten([255, 255, 255]);
    image::RgbImage::from_raw(pixels.width, pixels.height, pixels.data).expect("RGB buffer of the stated size")
}

fn reference(file: &str, width: &str, out: &str) {
    let width: u32 = width.parse().unwrap_or_else(|_| panic!("width {width:?}"));
    let full = decode_rgb(file);
    let height =
        ((u64::from(full.height()) * u64::from(width)) as f64 / f64::from(full.width())).round().max(1.0) as u32;
    let resized = image::imageops::resize(&full, width, height, image::imageops::FilterType::Lanczos3);
    resized.save_with_format(out, image::ImageFormat::Png).unwrap_or_else(|e| panic!("{out}: {e}"));
}

fn dssim(reference_file: &str, candidate_file: &str) {
    let (a, b) = (decode_rgb(reference_file), decode_rgb(candidate_file));
    let (w, h) = (a.width().min(b.width()), a.height().min(b.height()));
    assert!(
        a.width().abs_diff(b.width()) <= 2 && a.height().abs_diff(b.height()) <= 2,
        "sizes differ: {}x{} vs {}x{}",
        a.width(),
        a.height(),
        b.width(),
        b.height()
    );
    let attr = dssim_core::Dssim::new();
    let crop = |img: &image::RgbImage| -> Vec<rgb::RGB8> {
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| {
                let p = img.get_pixel(x, y).0;
                rgb::RGB8::new(p[0], p[1], p[2])
            })
            .collect()
    };
    let ia = attr.create_image_rgb(&crop(&a), w as usize, h as usize).expect("dssim image");
    let ib = attr.create_image_rgb(&crop(&b), w as usize, h as usize).expect("dssim image");
    let (value, _) = attr.compare(&ia, ib);
    println!("{}", serde_json::json!({ "dssim": f64::from(value) }));
}
