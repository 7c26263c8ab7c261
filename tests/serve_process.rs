//! `catg serve` as a real process: surviving `kill -9` mid-render and a full disk, and a real
//! browser loading `<img srcset>` from it with its own `Accept` header.
#![allow(unsafe_code)] // setrlimit/prlimit on the child: a full disk without needing root.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{all_files, corpus_dir, http, place, repo_file, tempdir, visible_files};

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `catg serve` on a free port and wait for its "serving" line.
fn serve(source: &Path, data: &Path, extra: &[&str]) -> Server {
    serve_with(source, data, extra, |_| {})
}

fn serve_with(source: &Path, data: &Path, extra: &[&str], configure: impl FnOnce(&mut Command)) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_catg"));
    configure(&mut command);
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0", "--source"])
        .arg(source)
        .arg("--data")
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn catg serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split(" at http://").nth(1) {
                let _ = tx.send(format!("http://{}", rest.split('/').next().unwrap_or_default()));
            }
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(60)).expect("catg serve printed its address");
    Server { child, base }
}

fn db(data: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(data.join("catg.db")).expect("open the manifest")
}

fn until<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_job_killed_mid_render_is_finished_after_restart() {
    let root = tempdir();
    let (source, data) = (root.join("images"), root.join("data"));
    place(&source, &[("big.jpg", &corpus_dir().join("large_50mp.jpg"))]);
    let url_path = "/big.jpg?w=3000&fmt=avif";
    {
        let server = serve(&source, &data, &["--wait-ms", "0", "--workers", "1"]);
        let queued = http("GET", &format!("{}{url_path}", server.base), &[]);
        assert_eq!(queued.status, 202);
        // Wait until a worker holds the job (it has been received: attempts = 1), then kill.
        until("the worker to take the job", Duration::from_secs(30), || {
            db(&data).query_row("SELECT attempts FROM jobs", [], |r| r.get::<_, i64>(0)).ok().filter(|a| *a >= 1)
        });
        std::thread::sleep(Duration::from_millis(300));
        let mut server = server;
        server.child.kill().expect("kill -9");
        server.child.wait().expect("reap");
        let state: String = db(&data).query_row("SELECT state FROM variants", [], |r| r.get(0)).expect("variant row");
        assert_eq!(state, "pending", "killed before the render finished");
        assert!(visible_files(&data.join("variants")).is_empty(), "no half-written variant is visible");
    }
    let server = serve(&source, &data, &["--wait-ms", "0", "--workers", "1"]);
    let done = until("the variant after restart", Duration::from_secs(120), || {
        let reply = http("GET", &format!("{}{url_path}", server.base), &[]);
        (reply.status == 200).then_some(reply)
    });
    assert_eq!(done.header("content-type"), Some("image/avif"));
    assert!(done.body.windows(8).any(|w| w == b"ftypavif"));
    assert_eq!(visible_files(&data.join("variants")).len(), 1);
    let jobs: (i64, i64) = db(&data)
        .query_row(
            "SELECT (SELECT count(*) FROM jobs), (SELECT seq FROM sqlite_sequence WHERE name = 'jobs')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("jobs");
    assert_eq!(jobs, (0, 1), "the one job was redelivered and acknowledged, not queued twice");
}

/// The process may write files up to `bytes` long: past that, write(2) fails with EFBIG, which
/// is what a full disk looks like to catg (a failed write of a variant or of the manifest).
fn set_file_size_limit(pid: libc::pid_t, bytes: libc::rlim_t) {
    let limit = libc::rlimit { rlim_cur: bytes, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: prlimit(2) with a valid struct and no old-limit output.
    let status = unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut()) };
    assert_eq!(status, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[test]
fn a_full_disk_fails_renders_retryably_and_they_succeed_once_space_returns() {
    use std::os::unix::process::CommandExt;
    let root = tempdir();
    let (source, data) = (root.join("images"), root.join("data"));
    place(&source, &[("photo.jpg", &repo_file("samples/seeding.jpg"))]);
    // A 1500 px PNG of a photo is megabytes; the manifest stays far below 1 MiB.
    let limit: libc::rlim_t = 1 << 20;
    let server = serve_with(&source, &data, &["--wait-ms", "0", "--workers", "1"], |command| {
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                // Otherwise the first write past the limit kills the process with SIGXFSZ.
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let limit = libc::rlimit { rlim_cur: limit, rlim_max: libc::RLIM_INFINITY };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let url = format!("{}/photo.jpg?w=1500&fmt=png", server.base);
    assert_eq!(http("GET", &url, &[]).status, 202, "queued");
    // Every attempt fails to store the variant; after the last one the job is dropped and its
    // claim released, not recorded as a failed variant (that would refuse it forever).
    until("the render to fail its attempts and let go", Duration::from_secs(60), || {
        let (jobs, variants): (i64, i64) = db(&data)
            .query_row("SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM variants)", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .ok()?;
        (jobs == 0 && variants == 0).then_some(())
    });
    assert!(all_files(&data.join("variants")).is_empty(), "no variant and no temporary file is left behind");
    let during = http("GET", &url, &[]);
    assert_eq!(during.status, 202, "asked again while the disk is full: queued again, not failed");

    set_file_size_limit(server.child.id() as libc::pid_t, libc::RLIM_INFINITY);
    let done = until("the variant once there is space", Duration::from_secs(60), || {
        let reply = http("GET", &url, &[]);
        (reply.status == 200).then_some(reply)
    });
    assert_eq!(done.header("content-type"), Some("image/png"));
    let png = image::load_from_memory(&done.body).expect("a whole PNG");
    assert_eq!(png.width(), 1500);
    assert!(done.body.len() as u64 > limit, "the variant really was larger than the limit");
    assert_eq!(visible_files(&data.join("variants")).len(), 1);
}

#[test]
fn chromium_loads_srcset_images_at_the_expected_sizes_in_the_format_it_accepts() {
    let root = tempdir();
    let (source, data) = (root.join("images"), root.join("data"));
    place(
        &source,
        &[
            ("chelsea.png", &repo_file("samples/chelsea.png")),
            ("seeding.jpg", &repo_file("samples/seeding.jpg")),
            ("astronaut.jpg", &repo_file("samples/astronaut.jpg")),
        ],
    );
    let server = serve(&source, &data, &["--wait-ms", "30000"]);
    let base = &server.base;
    let page = root.join("page.html");
    std::fs::write(
        &page,
        format!(
            r#"<!doctype html><html><head><title>loading</title></head><body>
<img id="cat" srcset="{base}/chelsea.png?w=120 120w, {base}/chelsea.png?w=240 240w" sizes="120px">
<img id="field" src="{base}/seeding.jpg?w=160&h=90&fit=cover">
<img id="astronaut" src="{base}/astronaut.jpg?w=64">
<script>
window.addEventListener('load', () => {{
  document.title = JSON.stringify([...document.images].map(i => [i.id, i.naturalWidth, i.naturalHeight, i.currentSrc.split('?')[1]]));
}});
</script></body></html>"#
        ),
    )
    .expect("write page");
    let images = page_title_json(&root.join("chromium-profile"), &page);
    assert_eq!(
        images,
        serde_json::json!([
            ["cat", 120, 80, "w=120"],
            ["field", 160, 90, "w=160&h=90&fit=cover"],
            ["astronaut", 64, 64, "w=64"]
        ])
    );
    // Chromium's Accept names image/jxl (since JPEG XL came back; Chromium 156 here), so fmt=auto
    // chose JPEG XL for every image it fetched, which it then drew at the sizes above: a real
    // browser decoding catg's JPEG XL.
    let mut formats: Vec<String> = db(&data)
        .prepare("SELECT DISTINCT format FROM variants WHERE state = 'ready'")
        .expect("query")
        .query_map([], |r| r.get(0))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect();
    formats.sort();
    assert_eq!(formats, vec!["jxl".to_string()]);
}

/// A page never shows a broken image for a variant still rendering: the browser draws the
/// 202's placeholder at the variant's size, and the next load of the page shows the variant.
#[test]
fn chromium_draws_the_placeholder_while_a_variant_renders_then_the_variant() {
    let root = tempdir();
    let (source, data) = (root.join("images"), root.join("data"));
    place(&source, &[("coffee.jpg", &repo_file("samples/coffee.jpg"))]);
    // No wait: a miss answers at once, so the first load is always the placeholder.
    let server = serve(&source, &data, &["--wait-ms", "0"]);
    let page = root.join("page.html");
    std::fs::write(
        &page,
        format!(
            r#"<!doctype html><html><head><title>loading</title></head><body>
<img id="v" src="{}/coffee.jpg?w=160&h=90&fmt=png">
<script>
const img = document.getElementById('v');
const done = (event) => {{ document.title = JSON.stringify([event, img.naturalWidth, img.naturalHeight]); }};
img.addEventListener('load', () => done('load'));
img.addEventListener('error', () => done('error'));
</script></body></html>"#,
            server.base
        ),
    )
    .expect("write page");
    let load = |profile: &str| page_title_json(&root.join(profile), &page);
    let answers = |status: &str| {
        let reply = http("GET", &format!("{}/_catg/metrics", server.base), &[]);
        let samples = prometheus_samples(&String::from_utf8_lossy(&reply.body));
        samples
            .iter()
            .filter(|(series, _)| {
                series.starts_with("catg_requests_total{") && series.contains(&format!("status=\"{status}\""))
            })
            .map(|(series, value)| (series.clone(), *value))
            .collect::<Vec<_>>()
    };

    assert_eq!(load("profile"), serde_json::json!(["load", 160, 90]), "the placeholder loads at the variant's size");
    let pending = answers("202");
    assert!(
        !pending.is_empty() && pending.iter().all(|(series, _)| series.contains("outcome=\"placeholder\"")),
        "the browser was answered with a placeholder: {pending:?}"
    );
    assert!(answers("200").is_empty(), "and not yet with the variant");

    let deadline = Instant::now() + Duration::from_secs(60);
    while db(&data)
        .query_row("SELECT count(*) FROM variants WHERE state = 'ready'", [], |r| r.get::<_, i64>(0))
        .expect("count")
        == 0
    {
        assert!(Instant::now() < deadline, "the variant never rendered");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(load("profile"), serde_json::json!(["load", 160, 90]), "the variant loads on the next visit");
    assert!(!answers("200").is_empty(), "the next visit got the variant itself");
}

/// Prometheus text as `name{labels}` → value; `# HELP`/`# TYPE` lines checked for shape.
fn prometheus_samples(text: &str) -> std::collections::HashMap<String, f64> {
    let mut samples = std::collections::HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(comment.starts_with("TYPE ") || comment.starts_with("HELP "), "comment line {line:?}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("sample line {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line:?}"));
        assert!(series.starts_with("catg_"), "every series is catg's: {line:?}");
        // Labels in name order, whatever order the exporter wrote them in.
        let series = match series.split_once('{') {
            Some((name, labels)) => {
                let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                labels.sort_unstable();
                format!("{name}{{{}}}", labels.join(","))
            }
            None => series.to_string(),
        };
        samples.insert(series, value);
    }
    samples
}

#[test]
fn metrics_and_the_report_count_requests_renders_ingests_duplicates_and_rejects() {
    let root = tempdir();
    let (source, data) = (root.join("images"), root.join("data"));
    let (photo, truncated) = (repo_file("samples/seeding.jpg"), corpus_dir().join("jpeg_truncated.jpg"));
    place(&source, &[("a.jpg", &photo), ("copy-of-a.jpg", &photo), ("broken.jpg", &truncated)]);
    let size = |path: &Path| std::fs::metadata(path).expect("size").len() as f64;
    let server = serve(&source, &data, &["--wait-ms", "5000"]);
    let url = format!("{}/a.jpg?w=320&fmt=webp", server.base);
    assert_eq!(http("GET", &url, &[]).status, 200, "rendered within the wait");
    assert_eq!(http("GET", &url, &[]).status, 200, "then a hit");
    assert_eq!(http("GET", &format!("{}/a.jpg?w=abc", server.base), &[]).status, 400);
    assert_eq!(http("GET", &format!("{}/missing.jpg?w=10", server.base), &[]).status, 404);

    let reply = http("GET", &format!("{}/_catg/metrics", server.base), &[]);
    assert_eq!(reply.status, 200);
    assert!(reply.header("content-type").is_some_and(|t| t.starts_with("text/plain")));
    let samples = prometheus_samples(&String::from_utf8_lossy(&reply.body));
    let value = |series: &str| samples.get(series).copied().unwrap_or_else(|| panic!("no {series} in {samples:?}"));
    assert_eq!(value(r#"catg_requests_total{outcome="wait_hit",status="200"}"#), 1.0);
    assert_eq!(value(r#"catg_requests_total{outcome="hit",status="200"}"#), 1.0);
    assert_eq!(value(r#"catg_requests_total{outcome="invalid_recipe",status="400"}"#), 1.0);
    assert_eq!(value(r#"catg_requests_total{outcome="not_found",status="404"}"#), 1.0);
    assert!(value("catg_response_bytes_total") > 1000.0, "two WebP bodies were sent");
    assert_eq!(value(r#"catg_renders_total{format="webp"}"#), 1.0);
    assert_eq!(value(r#"catg_render_seconds_count{format="webp"}"#), 1.0);
    assert_eq!(value(r#"catg_render_seconds_bucket{format="webp",le="+Inf"}"#), 1.0);
    assert_eq!(value(r#"catg_ingests_total{outcome="new"}"#), 1.0);
    assert_eq!(value(r#"catg_ingests_total{outcome="duplicate"}"#), 1.0);
    assert_eq!(value(r#"catg_ingests_total{outcome="rejected"}"#), 1.0);
    assert_eq!(value("catg_dedup_hits_total"), 1.0);
    assert_eq!(value(r#"catg_rejects_total{reason="truncated",stage="ingest"}"#), 1.0);
    assert_eq!(value("catg_ingest_bytes_total"), 2.0 * size(&photo) + size(&truncated));
    assert_eq!(value("catg_source_megapixels_count"), 1.0);
    drop(server);

    // `catg report` reads the same store: the inventory and a cost estimate line by line.
    let out = Command::new(env!("CARGO_BIN_EXE_catg")).args(["report", "--data"]).arg(&data).output().expect("report");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let inventory = &report["inventory"];
    assert_eq!((inventory["sources"].as_u64(), inventory["assets"].as_u64()), (Some(3), Some(2)));
    assert_eq!((inventory["duplicates"].as_u64(), inventory["assets_rejected"].as_u64()), (Some(1), Some(1)));
    assert_eq!(inventory["duplicate_bytes_saved"].as_f64(), Some(size(&photo)));
    assert_eq!(inventory["variants_ready"].as_u64(), Some(1));
    for way in ["on_demand", "pregenerated"] {
        let estimate = &report["monthly_cost_usd"][way];
        let lines = estimate["lines"].as_array().expect("lines");
        assert!(lines.iter().all(|l| l["formula"].is_string() && l["usd"].as_f64().is_some_and(|u| u >= 0.0)));
        let sum: f64 = lines.iter().filter_map(|l| l["usd"].as_f64()).sum();
        assert!((sum - estimate["total_usd"].as_f64().expect("total")).abs() < 0.05, "{way}: {estimate}");
    }
    assert!(report["prices"]["s3_per_gb_month"].as_f64().is_some(), "the prices used are part of the output");
}

/// `catg backfill` killed with SIGKILL mid-run resumes from its checkpoint: the second run
/// starts after the last page the first one finished, records everything, and removes the
/// checkpoint; nothing is ingested twice but the page that was in flight.
#[test]
fn backfill_killed_mid_run_resumes_from_its_checkpoint() {
    let root = tempdir();
    let (source, data) = (root.join("old-photos"), root.join("data"));
    std::fs::create_dir_all(&source).expect("mkdir");
    // Enough pages that the run is far from done when the first checkpoint lands.
    let total = 150u32;
    for n in 0..total {
        // Distinct pictures: each one is a new asset.
        let image = image::RgbImage::from_fn(96, 64, |x, y| image::Rgb([(x * 2) as u8, (y * 3) as u8, (n * 4) as u8]));
        image.save(source.join(format!("{n:03}.png"))).expect("write PNG");
    }
    let checkpoint = data.join("backfill.checkpoint");
    let backfill = |extra: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_catg"));
        command.arg("backfill").arg("--source").arg(&source).arg("--data").arg(&data).args(extra);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        command
    };
    let mut first = backfill(&["--page-size", "1", "--concurrency", "1"]).spawn().expect("spawn");
    // Polled every millisecond, and killed at once.
    let started = Instant::now();
    let saved = loop {
        if let Some(key) = std::fs::read_to_string(&checkpoint).ok().filter(|k| !k.trim().is_empty()) {
            break key;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no checkpoint was written");
        std::thread::sleep(Duration::from_millis(1));
    };
    first.kill().expect("SIGKILL");
    first.wait().expect("wait");
    let recorded = |db: &rusqlite::Connection| -> i64 {
        db.query_row("SELECT count(*) FROM sources", [], |r| r.get(0)).expect("count")
    };
    let after_kill = recorded(&db(&data));
    assert!(after_kill < i64::from(total), "the first run was interrupted ({after_kill} of {total} recorded)");

    let out = backfill(&[]).output().expect("second run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    let resumed_after = report["resumed_after"].as_str().expect("resumed").to_string();
    assert!(resumed_after.as_str() >= saved.trim(), "resumed after the checkpoint: {report}");
    let done_before: u64 = resumed_after.trim_end_matches(".png").parse::<u64>().expect("a key") + 1;
    assert_eq!(report["complete"], true);
    assert_eq!(report["listed"].as_u64(), Some(u64::from(total) - done_before), "only what was left: {report}");
    assert!(report["already_recorded"].as_u64().is_some_and(|n| n <= 1), "at most the page in flight: {report}");
    assert_eq!(recorded(&db(&data)), i64::from(total), "every photo is recorded");
    assert!(!checkpoint.exists(), "a finished backfill leaves no checkpoint");
}

/// `catg warm` asks for every recipe of every image under the prefix the way requests would:
/// valid ones are rendered by the time it returns, a bad recipe is refused per image, images
/// outside the prefix are left alone, and a second run finds everything ready.
#[test]
fn warm_renders_every_recipe_of_every_image_under_the_prefix() {
    let root = tempdir();
    let (source, data) = (root.join("images"), root.join("data"));
    let photo = repo_file("samples/seeding.jpg");
    place(
        &source,
        &[("shop/a.jpg", &photo), ("shop/b.png", &repo_file("samples/chelsea.png")), ("blog/c.jpg", &photo)],
    );
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_catg"))
            .args(args)
            .arg("--source")
            .arg(&source)
            .arg("--data")
            .arg(&data)
            .output()
            .expect("run catg");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("JSON")
    };
    assert_eq!(run(&["backfill"])["new_assets"], 2, "two distinct pictures (c.jpg is a.jpg's bytes)");
    let warm = [
        "warm",
        "--prefix",
        "shop/",
        "--recipe",
        "w=64&fmt=webp",
        "--recipe",
        "w=48&h=48&fit=cover&fmt=png",
        "--recipe",
        "w=abc",
    ];
    let first = run(&warm);
    assert_eq!((first["sources"].as_u64(), first["requested"].as_u64()), (Some(2), Some(6)), "{first}");
    assert_eq!((first["queued"].as_u64(), first["ready"].as_u64()), (Some(4), Some(0)), "{first}");
    assert_eq!(first["refused"]["invalid_recipe"], 2, "{first}");
    let ready: i64 =
        db(&data).query_row("SELECT count(*) FROM variants WHERE state = 'ready'", [], |r| r.get(0)).expect("count");
    assert_eq!(ready, 4, "rendered by the time warm returns");
    let jobs: i64 = db(&data).query_row("SELECT count(*) FROM jobs", [], |r| r.get(0)).expect("count");
    assert_eq!(jobs, 0);
    let again = run(&warm);
    assert_eq!((again["queued"].as_u64(), again["ready"].as_u64()), (Some(0), Some(4)), "{again}");
}

/// Load `page` in Chromium and read the JSON its script left in the title once it finished.
fn page_title_json(profile: &Path, page: &Path) -> serde_json::Value {
    let output =
        chromium(profile).arg("--dump-dom").arg(format!("file://{}", page.display())).output().expect("run chromium");
    let dom = String::from_utf8_lossy(&output.stdout);
    let title = dom.split("<title>").nth(1).and_then(|t| t.split("</title>").next()).unwrap_or_default();
    let title = title.replace("&quot;", "\"").replace("&amp;", "&");
    serde_json::from_str(&title).unwrap_or_else(|e| {
        panic!("page did not finish loading ({e}): {title:?}\n{}", String::from_utf8_lossy(&output.stderr))
    })
}

/// The chromium binary the browser tests drive, and the flags every run needs here.
fn chromium(profile: &Path) -> Command {
    let name = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("a headless Chromium is needed for this test: apt-get install chromium (scripts/test installs it)");
    let mut command = Command::new(name);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--force-device-scale-factor=1",
            "--hide-scrollbars",
            "--virtual-time-budget=30000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// The status page in a real browser: every asset's thumbnail (rendered by catg) loads at its
/// size, each asset lists its variants, the rejected upload is named with its reason, and the
/// screenshot shows photographs where the thumbnails are.
#[test]
fn the_status_page_shows_thumbnails_variants_and_rejects_in_chromium() {
    let root = tempdir();
    let (source, data) = (root.join("images"), root.join("data"));
    let samples = ["astronaut.jpg", "chelsea.png", "coffee.jpg", "seeding.jpg"];
    let mut files: Vec<(&str, std::path::PathBuf)> =
        samples.iter().map(|s| (*s, repo_file(&format!("samples/{s}")))).collect();
    files.push(("broken-upload.jpg", corpus_dir().join("jpeg_truncated.jpg")));
    let files: Vec<(&str, &Path)> = files.iter().map(|(k, p)| (*k, p.as_path())).collect();
    place(&source, &files);
    let server = serve(&source, &data, &["--wait-ms", "20000"]);
    for query in ["w=400&fmt=webp", "w=800&fmt=avif"] {
        assert_eq!(http("GET", &format!("{}/seeding.jpg?{query}", server.base), &[]).status, 200);
    }
    let url = format!("{}/_catg/", server.base);

    let dom = chromium(&root.join("profile-1")).arg("--dump-dom").arg(&url).output().expect("run chromium");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(dom.matches("<figure>").count(), 4, "one card per good asset:\n{dom}");
    assert_eq!(dom.matches(r#"data-loaded="240""#).count(), 4, "every thumbnail loaded at 240 px:\n{dom}");
    assert!(dom.contains("w=400&amp;fit=cover&amp;fmt=webp"), "seeding's variants are listed");
    assert!(dom.contains("<b>broken-upload.jpg</b> truncated"), "the reject and its reason");
    assert!(!dom.contains(r#"rel="next""#), "one page holds them all");

    // Paged by key: two assets a page, a Next link that carries on after the last one shown.
    let page = |query: &str| String::from_utf8(http("GET", &format!("{url}{query}"), &[]).body).expect("utf-8");
    let first = page("?n=2");
    assert_eq!(first.matches("<figure>").count(), 2, "{first}");
    assert!(first.contains("<b>astronaut.jpg</b>") && first.contains("<b>broken-upload.jpg</b>"), "{first}");
    assert!(first.contains(r#"<a rel="next" href="?after=chelsea.png&amp;n=2">"#), "{first}");
    let second = page("?after=chelsea.png&n=2");
    assert_eq!(second.matches("<figure>").count(), 2, "{second}");
    assert!(second.contains("<b>coffee.jpg</b>") && second.contains("<b>seeding.jpg</b>"), "{second}");
    assert!(!second.contains(r#"rel="next""#) && second.contains("First page"), "{second}");

    let shot = root.join("status.png");
    let out = chromium(&root.join("profile-2"))
        .args(["--window-size=1100,760"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .expect("run chromium");
    let png =
        image::open(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!((png.width(), png.height()), (1100, 760));
    let png = png.to_rgb8();
    let colours = |x0: u32, y0: u32, w: u32, h: u32| {
        let mut seen = std::collections::HashSet::new();
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                seen.insert(png.get_pixel(x, y).0);
            }
        }
        seen.len()
    };
    // The first thumbnail's place holds a photograph; the page's margin is flat.
    assert!(colours(40, 180, 200, 120) > 2000, "a photograph where the first thumbnail is");
    assert!(colours(0, 700, 1100, 50) < 10, "the page background is flat");
}

/// Inputs that make libjpeg buffer the whole image (single-scan progressive JPEGs, YCbCr and
/// CMYK, a few hundred KB each) and a large AVIF output, asked for six at once of a server that
/// has never seen them (on-demand ingest, the watcher and renders all decode them): the process
/// stays within its memory budget plus a fixed margin. And `catg render` refuses what does not
/// fit its budget instead of allocating it.
#[test]
fn the_memory_budget_holds_for_inputs_that_buffer_the_whole_image() {
    use support::{dc_only_progressive_jpeg, peak_rss_mb};
    const BUDGET_MB: f64 = 512.0;
    const MARGIN_MB: f64 = 256.0;
    let root = tempdir();
    let (source, data) = (root.join("images"), root.join("data"));
    std::fs::create_dir_all(&source).expect("mkdir");
    // 30000×2000 YCbCr: 352 MiB of coefficients; 24000×2000 CMYK: 375 MiB. Before the fix neither
    // counted (one scan), so all six ran at once.
    let mut files: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| (format!("wide-{i}.jpg"), dc_only_progressive_jpeg(30000, 2000, 3, i)))
        .chain((0..2).map(|i| (format!("cmyk-{i}.jpg"), dc_only_progressive_jpeg(24000, 2000, 4, i))))
        .collect();
    let photo = image::RgbImage::from_fn(3000, 2400, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    let mut png = std::io::Cursor::new(Vec::new());
    photo.write_to(&mut png, image::ImageFormat::Png).expect("png");
    files.push(("photo.png".into(), png.into_inner()));

    let budget = format!("{}", BUDGET_MB as u32);
    let server = serve_with(&source, &data, &["--wait-ms", "120000", "--workers", "2"], |command| {
        command.env("CATG_RENDER_MEMORY_MB", &budget);
    });
    let idle_mb = peak_rss_mb(server.child.id());
    for (name, bytes) in &files {
        std::fs::write(source.join(name), bytes).expect("write");
    }
    let requests: Vec<_> = files
        .iter()
        .map(|(name, _)| {
            let fmt = if name.ends_with(".png") { "w=3000&fmt=avif" } else { "w=400&fmt=webp" };
            let url = format!("{}/{name}?{fmt}", server.base);
            std::thread::spawn(move || (url.clone(), http("GET", &url, &[])))
        })
        .collect();
    for request in requests {
        let (url, reply) = request.join().expect("request thread");
        assert_eq!(reply.status, 200, "{url}: {}", String::from_utf8_lossy(&reply.body));
    }
    let peak = peak_rss_mb(server.child.id());
    eprintln!("catg serve peak RSS: {peak:.0} MB (idle {idle_mb:.0} MB, budget {BUDGET_MB} MB)");
    assert!(peak < BUDGET_MB + MARGIN_MB, "peak RSS {peak:.0} MB over the {BUDGET_MB} MB budget + {MARGIN_MB} MB");
    drop(server);

    // One of them through `catg render` with a budget it does not fit: refused, not allocated.
    let wide = root.join("wide.jpg");
    std::fs::write(&wide, &files[0].1).expect("write");
    let out = root.join("v.webp").to_string_lossy().into_owned();
    let wide = wide.to_string_lossy().into_owned();
    let refused = support::catg(
        &["render", &wide, "--recipe", "w=400&fmt=webp", "-o", &out],
        &[("CATG_RENDER_MEMORY_MB", "200")],
    );
    assert_eq!(refused.code, 2, "{}", refused.stdout);
    assert!(refused.stdout.contains("resource_limit"), "{}", refused.stdout);
    assert!(refused.max_rss_mb < 100.0, "refused after {:.0} MB", refused.max_rss_mb);
    let rendered = support::catg(&["render", &wide, "--recipe", "w=400&fmt=webp", "-o", &out], &[]);
    assert_eq!(rendered.code, 0, "{}", rendered.stdout);
    assert!(rendered.max_rss_mb < 512.0, "rendered in {:.0} MB", rendered.max_rss_mb);
}

/// With signing on, the operator pages (which list every key and recipe) are off unless an
/// operator token is configured, and then they ask for it.
#[test]
fn operator_pages_stay_private_when_signing_is_on() {
    use base64::Engine;
    let root = tempdir();
    let (source, data) = (root.join("images"), root.join("data"));
    place(&source, &[("secret-name.png", &corpus_dir().join("png_rgb8.png"))]);
    let keys = ("CATG_SIGNING_KEYS", "k1:c2VjcmV0LWtleS1hLWZvci10ZXN0cy0wMTIzNDU2Nzg5YWI");
    {
        let server = serve_with(&source, &data, &[], |command| {
            command.env(keys.0, keys.1);
        });
        for page in ["/_catg/", "/_catg/metrics"] {
            let reply = http("GET", &format!("{}{page}", server.base), &[]);
            assert_eq!(reply.status, 404, "{page} answered with signing on and no token");
            assert!(!String::from_utf8_lossy(&reply.body).contains("secret-name"));
        }
    }
    let server = serve_with(&source, &data, &[], |command| {
        command.env(keys.0, keys.1).env("CATG_OPERATOR_TOKEN", "op-token-123");
    });
    let url = format!("{}/_catg/", server.base);
    let anonymous = http("GET", &url, &[]);
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.header("www-authenticate").is_some_and(|v| v.starts_with("Basic")));
    let wrong = base64::engine::general_purpose::STANDARD.encode("admin:nope");
    assert_eq!(http("GET", &url, &[("authorization", &format!("Basic {wrong}"))]).status, 401);
    let right = base64::engine::general_purpose::STANDARD.encode("admin:op-token-123");
    let page = http("GET", &url, &[("authorization", &format!("Basic {right}"))]);
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("secret-name.png"));
    let metrics = http("GET", &format!("{}/_catg/metrics", server.base), &[("authorization", "Bearer op-token-123")]);
    assert_eq!(metrics.status, 200);
}
