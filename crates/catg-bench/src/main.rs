//! `catg-bench <op> <file> <iters> [outfile]`: one warm-up and `iters` timed renders of the
//! same op sharp_bench.js runs, in-process; prints one JSON line in sharp_bench's shape.
//! Ops: webp400 (w=400, WebP q80), jpeg1200 (w=1200, JPEG q80), avif400 (w=400, AVIF at catg's
//! default quality).
#![allow(unsafe_code)] // getrusage(2) for peak RSS.

use catg_core::{examine, render_variant, Recipe, RecipeLimits};
use catg_image::{probe, Limits};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: catg-bench <webp400|jpeg1200|avif400> <file> <iters> [outfile]");
        std::process::exit(1);
    }
    let (op, file) = (&args[1], &args[2]);
    let iters: usize = args[3].parse().unwrap_or(5);
    let query = match op.as_str() {
        "webp400" => "w=400&fmt=webp&q=80",
        "jpeg1200" => "w=1200&fmt=jpeg&q=80",
        "avif400" => "w=400&fmt=avif",
        other => {
            eprintln!("unknown op {other}");
            std::process::exit(1);
        }
    };
    let data = std::fs::read(file).unwrap_or_else(|e| {
        eprintln!("cannot read {file}: {e}");
        std::process::exit(1);
    });
    let limits = Limits::default();
    let recipe = Recipe::parse(query, &RecipeLimits::default()).unwrap_or_else(|e| panic!("{e}"));
    // The fingerprint is ingest's work, done once per source; a transform job carries it.
    let fingerprint = examine(&data[..], &limits).unwrap_or_else(|e| panic!("{e}")).fingerprint;
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
