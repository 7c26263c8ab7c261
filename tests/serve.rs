//! `catg serve`'s behaviour end to end, in process: the real router on a real socket, over the
//! real local adapters (a folder, SQLite) with real render workers.

mod support;

use async_trait::async_trait;
use catg_core::model::{AssetRecord, Millis, SourceRecord, VariantRecord};
use catg_core::ports::{Claim, ManifestStore, Page, StoreError, StoreResult};
use catg_core::{CacheKey, Fingerprint, HitCache, HitCacheConfig, Resolver};
use catg_http::{router, HttpState};
use catg_local::{Embedded, EmbeddedConfig};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{corpus_dir, http, place, repo_file, tempdir, visible_files, Reply, TestDir};

struct Service {
    embedded: Embedded,
    /// Holds the folders below; removed when the service is dropped.
    _root: TestDir,
    base: String,
    source: PathBuf,
    data: PathBuf,
}

impl Service {
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.request("GET", path, headers).await
    }

    async fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let url = if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.base) };
        let method = method.to_string();
        let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        tokio::task::spawn_blocking(move || {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            http(&method, &url, &headers)
        })
        .await
        .expect("request thread")
    }

    /// Stored variant objects (temporary files excluded).
    fn variant_files(&self) -> usize {
        visible_files(&self.data.join("variants")).len()
    }

    async fn jobs_ever_queued(&self) -> u64 {
        self.embedded.store.jobs_ever_queued().await.expect("count jobs")
    }
}

async fn start(files: &[(&str, PathBuf)], tweak: impl FnOnce(&mut EmbeddedConfig)) -> Service {
    start_with(files, tweak, |resolver| resolver).await
}

async fn start_with(
    files: &[(&str, PathBuf)],
    tweak: impl FnOnce(&mut EmbeddedConfig),
    wrap: impl FnOnce(Resolver) -> Resolver,
) -> Service {
    start_full(files, tweak, wrap, true).await
}

/// As `start_with`; without `workers`, queued jobs stay queued (for the pending-job caps).
async fn start_full(
    files: &[(&str, PathBuf)],
    tweak: impl FnOnce(&mut EmbeddedConfig),
    wrap: impl FnOnce(Resolver) -> Resolver,
    workers: bool,
) -> Service {
    let root = tempdir();
    let (source, data) = (root.join("images"), root.join("data"));
    std::fs::create_dir_all(&source).expect("mkdir");
    let files: Vec<(&str, &Path)> = files.iter().map(|(name, path)| (*name, path.as_path())).collect();
    place(&source, &files);
    let mut config = EmbeddedConfig::new(&source, &data);
    config.workers = 2;
    config.resolver.wait = Duration::from_secs(20);
    tweak(&mut config);
    let mut embedded = Embedded::open(config).expect("open");
    if workers {
        embedded.start_workers().await.expect("workers");
    }
    embedded.start_watcher().expect("watcher");
    embedded.scan(&|_, _| {}).await.expect("scan");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let state = Arc::new(HttpState {
        resolver: wrap(embedded.resolver()),
        key_max_age: Duration::from_secs(60),
        key_stale_while_revalidate: Duration::from_secs(600),
        // A recorder of the test's own (not the process-wide one), so the status page answers.
        metrics: Some(metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle()),
        operator_token: None,
    });
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    Service { embedded, base, source, data, _root: root }
}

fn corpus(file: &str) -> PathBuf {
    corpus_dir().join(file)
}

fn decode(reply: &Reply) -> image::DynamicImage {
    image::load_from_memory(&reply.body)
        .unwrap_or_else(|e| panic!("variant does not decode ({e}), status {}", reply.status))
}

fn size(reply: &Reply) -> (u32, u32) {
    let img = decode(reply);
    (img.width(), img.height())
}

/// The operations over HTTP: a preset expands (and is one variant with its expansion), `dpr`
/// folds into the size, padding grows the output in the background colour.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presets_and_operations_are_served() {
    let svc = start(&[("cat.png", repo_file("samples/chelsea.png"))], |config| {
        let preset = ("thumb".to_string(), "w=40&h=40&g=smart&fmt=png&pad=2&bg=ff0000".to_string());
        config.resolver.recipe_limits.presets = [preset].into();
    })
    .await;
    let thumb = svc.get("/cat.png?preset=thumb", &[]).await;
    assert_eq!(thumb.status, 200, "{}", String::from_utf8_lossy(&thumb.body));
    let pixels = decode(&thumb).into_rgb8();
    assert_eq!(pixels.dimensions(), (44, 44));
    assert_eq!(pixels.get_pixel(0, 0).0, [255, 0, 0], "padding in the background colour");
    let expanded = svc.get("/cat.png?w=40&h=40&g=smart&fmt=png&pad=2&bg=ff0000", &[]).await;
    assert_eq!(expanded.header("etag"), thumb.header("etag"), "a preset and its expansion are one variant");
    let mixed = svc.get("/cat.png?preset=thumb&dpr=2", &[]).await;
    assert_eq!(mixed.status, 400, "mixing is off by default");
    let retina = svc.get("/cat.png?w=50&dpr=2&fmt=png&rot=90&flip=h&blur=1&sharpen=0.5", &[]).await;
    assert_eq!(retina.status, 200, "{}", String::from_utf8_lossy(&retina.body));
    assert_eq!(size(&retina).0, 100);
    svc.embedded.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn variants_are_served_with_the_right_size_format_and_headers() {
    let svc = start(
        &[
            ("cats/chelsea.png", repo_file("samples/chelsea.png")),
            ("orient 6.jpg", corpus("jpeg_exif_orientation_6.jpg")),
            ("rgba+plus.png", corpus("png_rgba.png")),
        ],
        |_| {},
    )
    .await;

    let webp = svc.get("/cats/chelsea.png?w=200&h=100", &[("Accept", "image/webp,*/*")]).await;
    assert_eq!(webp.status, 200);
    assert_eq!(webp.header("content-type"), Some("image/webp"));
    assert_eq!(size(&webp), (200, 100));
    assert_eq!(webp.header("vary"), Some("Accept"));
    assert_eq!(webp.header("cache-control"), Some("public, max-age=60, stale-while-revalidate=600"));
    let etag = webp.header("etag").expect("etag").to_string();
    assert!(etag.len() == 66 && etag.starts_with('"'), "{etag}");
    let location = webp.header("content-location").expect("content-location").to_string();
    assert!(
        location.starts_with("/_/") && location.ends_with("?w=200&h=100&fit=cover&fmt=webp&q=80&enlarge=0"),
        "{location}"
    );

    // The immutable URL: same bytes, cached for a year, no negotiation.
    let immutable = svc.get(&location, &[]).await;
    assert_eq!(immutable.status, 200);
    assert_eq!(immutable.body, webp.body);
    assert_eq!(immutable.header("cache-control"), Some("public, max-age=31536000, immutable"));
    assert_eq!(immutable.header("vary"), None);
    assert_eq!(immutable.header("etag"), Some(etag.as_str()));
    let auto_immutable = svc.get(&location.replace("fmt=webp", "fmt=auto"), &[]).await;
    assert_eq!(auto_immutable.status, 400);

    let revalidated =
        svc.get("/cats/chelsea.png?w=200&h=100", &[("Accept", "image/webp"), ("If-None-Match", &etag)]).await;
    assert_eq!(revalidated.status, 304);
    assert!(revalidated.body.is_empty());
    assert_eq!(revalidated.header("etag"), Some(etag.as_str()));

    let head = svc.request("HEAD", "/cats/chelsea.png?width=200&height=100&format=webp", &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some(webp.body.len().to_string().as_str()));
    assert_eq!(head.header("vary"), None, "an explicit format does not vary");

    // Orientation 6: stored 112x160, upright 160x112; a URL-encoded key with a space.
    let oriented = svc.get("/orient%206.jpg?w=80&fmt=png", &[]).await;
    assert_eq!((oriented.status, size(&oriented)), (200, (80, 56)));

    // Transparency: PNG without webp/avif support, AVIF when offered; '+' in a key.
    let png = svc.get("/rgba%2Bplus.png?w=90", &[("Accept", "*/*")]).await;
    assert_eq!((png.header("content-type"), size(&png)), (Some("image/png"), (90, 60)));
    assert!(decode(&png).to_rgba8().pixels().any(|p| p.0[3] < 255), "alpha survives");
    let avif = svc.get("/rgba%2Bplus.png?w=90", &[("Accept", "image/avif,image/webp,*/*")]).await;
    assert_eq!(avif.header("content-type"), Some("image/avif"));
    assert!(avif.body.windows(8).any(|w| w == b"ftypavif"), "an AVIF file");
    svc.embedded.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_share_one_asset_and_one_render() {
    let svc =
        start(&[("a.jpg", corpus("jpeg_baseline.jpg")), ("b/copy of a.jpg", corpus("jpeg_baseline.jpg"))], |_| {})
            .await;
    let first = svc.get("/a.jpg?w=64&fmt=webp", &[]).await;
    let second = svc.get("/b/copy%20of%20a.jpg?w=64&fmt=webp", &[]).await;
    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(first.header("etag"), second.header("etag"));
    assert_eq!(first.header("content-location"), second.header("content-location"));
    assert_eq!(first.body, second.body);
    assert_eq!(svc.jobs_ever_queued().await, 1);
    assert_eq!(svc.variant_files(), 1);
    let counts = svc.embedded.store.counts().await.expect("counts");
    assert_eq!((counts.sources, counts.assets), (2, 1));
    svc.embedded.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_requests_for_one_missing_variant_render_it_once() {
    let svc = Arc::new(start(&[("big.jpg", corpus("large_50mp.jpg"))], |_| {}).await);
    let mut handles = Vec::new();
    for _ in 0..200 {
        let svc = svc.clone();
        handles.push(tokio::spawn(async move { svc.get("/big.jpg?w=300&h=200&fmt=webp", &[]).await }));
    }
    let mut etags = std::collections::HashSet::new();
    for handle in handles {
        let reply = handle.await.expect("request task");
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
        etags.insert(reply.header("etag").map(str::to_string));
    }
    assert_eq!(etags.len(), 1);
    assert_eq!(svc.jobs_ever_queued().await, 1, "one job for 200 requests");
    assert_eq!(svc.variant_files(), 1);
}

/// The variants bucket's lifecycle rule (or a person) deletes variant objects behind the
/// manifest's back: the next request renders the variant again instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ready_variant_whose_object_expired_is_rendered_again() {
    // Without the hit cache: with it, this process would keep serving the bytes it remembers
    // (which is right, but hides the path under test).
    let svc = start_with(
        &[("a.jpg", corpus("jpeg_baseline.jpg"))],
        |_| {},
        |resolver| Resolver { cache: Arc::new(HitCache::disabled()), ..resolver },
    )
    .await;
    let first = svc.get("/a.jpg?w=64&fmt=png", &[]).await;
    assert_eq!(first.status, 200);
    fn remove_files(dir: &Path) {
        for entry in std::fs::read_dir(dir).expect("read variants").flatten() {
            if entry.path().is_dir() {
                remove_files(&entry.path());
            } else {
                std::fs::remove_file(entry.path()).expect("remove variant");
            }
        }
    }
    remove_files(&svc.data.join("variants"));
    assert_eq!(svc.variant_files(), 0);
    let again = svc.get("/a.jpg?w=64&fmt=png", &[]).await;
    assert_eq!(again.status, 200, "{}", String::from_utf8_lossy(&again.body));
    assert_eq!(again.body, first.body, "the same bytes, rendered again");
    assert_eq!(svc.jobs_ever_queued().await, 2);
    assert_eq!(svc.variant_files(), 1);
    svc.embedded.shutdown().await;
}

/// Poll `path` until `done` holds (the watcher acts after a short settle delay).
async fn eventually(svc: &Service, path: &str, done: impl Fn(&Reply) -> bool) -> Reply {
    for _ in 0..100 {
        let reply = svc.get(path, &[]).await;
        if done(&reply) {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never reached the expected state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_watcher_ingests_new_files_follows_reuploads_and_removals() {
    let svc = start(&[("photo.jpg", corpus("jpeg_baseline.jpg"))], |_| {}).await;
    let before = svc.get("/photo.jpg?w=100&fmt=png", &[]).await;
    assert_eq!((before.status, size(&before)), (200, (100, 75)));

    // Different bytes under the same key (a 200x150 PNG named .jpg): the key moves to them.
    std::fs::copy(corpus("png_rgb8.png"), svc.source.join("photo.jpg")).expect("re-upload");
    let after = eventually(&svc, "/photo.jpg?w=100&fmt=png", |r| r.header("etag") != before.header("etag")).await;
    assert_eq!((after.status, size(&after)), (200, (100, 75)));
    assert_ne!(after.body, before.body);
    // The old picture is still there under its immutable URL.
    let old = svc.get(before.header("content-location").expect("location"), &[]).await;
    assert_eq!(old.body, before.body);

    // A new file dropped in while running.
    place(&svc.source, &[("new/drop.webp", &corpus("webp_lossy.webp"))]);
    let dropped = eventually(&svc, "/new/drop.webp?w=60&fmt=webp", |r| r.status == 200).await;
    assert_eq!(size(&dropped), (60, 45));

    std::fs::remove_file(svc.source.join("photo.jpg")).expect("remove");
    eventually(&svc, "/photo.jpg?w=100&fmt=png", |r| r.status == 404).await;
    svc.embedded.shutdown().await;
}

/// Reading a source (the start-up scan, renders, anyone else) is not a change: an idle served
/// folder stays idle, and a real change is still seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_folder_is_left_alone_by_the_watcher() {
    let svc = start(&[("photo.jpg", corpus("jpeg_baseline.jpg")), ("b.png", corpus("png_rgb8.png"))], |_| {}).await;
    for path in ["/photo.jpg?w=50&fmt=png", "/photo.jpg?w=70&fmt=webp", "/b.png?w=40&fmt=png"] {
        assert_eq!(svc.get(path, &[]).await.status, 200, "{path}");
    }
    for name in ["photo.jpg", "b.png"] {
        std::fs::read(svc.source.join(name)).expect("read");
    }
    // Several settle periods: a read that counted as a change would have been acted on by now.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(svc.embedded.watched_changes(), 0, "reads were taken for changes");
    place(&svc.source, &[("later.png", &corpus("png_rgb8.png"))]);
    eventually(&svc, "/later.png?w=40&fmt=png", |r| r.status == 200).await;
    for _ in 0..50 {
        if svc.embedded.watched_changes() >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after_drop = svc.embedded.watched_changes();
    assert_eq!(after_drop, 1, "one new file, one change");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(svc.embedded.watched_changes(), after_drop, "ingesting the new file scheduled another ingest");
    svc.embedded.shutdown().await;
}

/// Nothing outside the source folder is read through it: not through a linked folder, not
/// through a linked file, not from a hidden folder; whether the link was there at start-up or
/// appeared while serving (on-demand ingest and the watcher follow the same rule as the scan).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn symlinks_and_hidden_paths_stay_out() {
    use catg_core::ports::ManifestStore;
    let outside = tempdir();
    place(&outside, &[("x.jpg", &corpus("jpeg_baseline.jpg")), ("secret.png", &corpus("png_rgb8.png"))]);
    let svc =
        start(&[("ok.png", corpus("png_rgb8.png")), (".hidden/secret.jpg", corpus("jpeg_baseline.jpg"))], |_| {}).await;
    let link = |target: &Path, name: &str| std::os::unix::fs::symlink(target, svc.source.join(name)).expect("symlink");
    link(&outside, "linkdir");
    link(&outside.join("secret.png"), "linked.png");
    link(Path::new("/etc/passwd"), "passwd.png");
    std::fs::create_dir_all(svc.source.join("sub")).expect("mkdir");
    std::os::unix::fs::symlink(svc.source.join("ok.png"), svc.source.join("sub/inside.png")).expect("symlink");
    for path in [
        "/linkdir/x.jpg?w=64&fmt=png",
        "/linked.png?w=64&fmt=png",
        "/passwd.png?w=64&fmt=png",
        "/.hidden/secret.jpg?w=64&fmt=png",
        "/sub/inside.png?w=64&fmt=png",
    ] {
        let reply = svc.get(path, &[]).await;
        assert_eq!(reply.status, 404, "{path}: {}", String::from_utf8_lossy(&reply.body));
    }
    assert_eq!(svc.get("/ok.png?w=64&fmt=png", &[]).await.status, 200);
    // Let the watcher see the links too: it must not record them either.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for key in ["linkdir/x.jpg", "linked.png", "passwd.png", ".hidden/secret.jpg", "sub/inside.png"] {
        assert!(svc.embedded.store.source(key).await.expect("manifest").is_none(), "{key} was recorded");
    }
    let listed: Vec<String> = catg_core::ports::ObjectStore::list(svc.embedded.sources.as_ref(), "", None, 100)
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(listed, ["ok.png"]);
    svc.embedded.shutdown().await;
}

/// The cost controls a public deployment keeps on: too large an output or too much enlargement
/// is refused before anything is queued; past the pending-job caps (per asset, in total) a new
/// variant is 503 with `Retry-After` and nothing is queued, while variants already ready are
/// still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cost_caps_refuse_before_anything_is_queued() {
    let files = [("a.png", corpus("png_rgb8.png")), ("b.jpg", corpus("jpeg_baseline.jpg"))];
    let svc = start_full(
        &files,
        |config| {
            config.resolver.wait = Duration::ZERO;
            config.resolver.limits.max_output_pixels = 300_000;
            config.resolver.max_pending_per_asset = 2;
            config.resolver.max_pending_jobs = 3;
        },
        |resolver| resolver,
        false,
    )
    .await;
    let refused = |reply: &Reply, status: u16, kind: &str| {
        assert_eq!(reply.status, status, "{}", String::from_utf8_lossy(&reply.body));
        assert_eq!(reply.json()["error"]["kind"], kind);
    };
    // a.png is 200×150: 4× is the most it may grow (rounded to the pixel), 800×600 = 480,000 px
    // is over the 300,000-pixel cap.
    refused(&svc.get("/a.png?w=801&enlarge=1&fmt=png", &[]).await, 422, "resource_limit");
    refused(&svc.get("/a.png?w=800&enlarge=1&fmt=png", &[]).await, 422, "resource_limit");
    assert_eq!(svc.jobs_ever_queued().await, 0, "refused outputs were queued");
    assert_eq!(svc.get("/a.png?w=600&enlarge=1&fmt=png", &[]).await.status, 202, "3x and 270,000 px are allowed");

    // Per asset: a second pending variant of a.png is allowed, a third is not.
    assert_eq!(svc.get("/a.png?w=50&fmt=png", &[]).await.status, 202);
    let busy = svc.get("/a.png?w=51&fmt=png", &[]).await;
    refused(&busy, 503, "unavailable");
    assert!(busy.header("retry-after").is_some(), "503 without Retry-After");
    assert_eq!(svc.jobs_ever_queued().await, 2);
    // Asking again for a variant already queued is not a new job: still 202.
    assert_eq!(svc.get("/a.png?w=50&fmt=png", &[]).await.status, 202);
    // In total: one more job of another asset fills the queue to 3; the next is refused.
    assert_eq!(svc.get("/b.jpg?w=50&fmt=png", &[]).await.status, 202);
    refused(&svc.get("/b.jpg?w=51&fmt=png", &[]).await, 503, "unavailable");
    assert_eq!(svc.jobs_ever_queued().await, 3, "a refused request queued a job");
    svc.embedded.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_error_has_its_status_and_a_json_body_without_internals() {
    let svc = start(
        &[
            ("ok.png", corpus("png_rgb8.png")),
            ("logo.png", corpus("vector.svg")),
            ("cut.jpg", corpus("jpeg_truncated.jpg")),
        ],
        |config| config.resolver.limits.max_output_pixels = 50_000,
    )
    .await;
    let check = |reply: &Reply, status: u16, kind: &str| {
        assert_eq!(reply.status, status, "{}", String::from_utf8_lossy(&reply.body));
        let body = reply.json();
        assert_eq!(body["error"]["kind"], kind);
        let message = body["error"]["message"].as_str().expect("message");
        assert!(!message.is_empty() && !message.contains("/tmp") && !message.contains(".rs:"), "{message}");
    };
    check(&svc.get("/ok.png?w=abc", &[]).await, 400, "invalid_recipe");
    check(&svc.get("/ok.png?w=10&radius=3", &[]).await, 400, "invalid_recipe");
    // Refused once the asset's size is known: a crop that starts outside the image.
    check(&svc.get("/ok.png?crop=100000,0,10,10", &[]).await, 400, "invalid_recipe");
    check(&svc.get("/ok.png?preset=thumb", &[]).await, 400, "invalid_recipe");
    check(&svc.get("/missing.png?w=10", &[]).await, 404, "not_found");
    check(&svc.get("/../etc/passwd", &[]).await, 404, "not_found");
    check(&svc.get(&format!("/_/{}?fmt=png", "0".repeat(64)), &[]).await, 404, "not_found");
    check(&svc.get("/logo.png?w=10", &[]).await, 422, "unsupported_format");
    check(&svc.get("/cut.jpg?w=10", &[]).await, 422, "truncated");
    // Accepted at ingest, but this variant cannot be made: a permanent render failure.
    check(&svc.get("/ok.png?w=1000&h=1000&fit=fill&enlarge=1&fmt=png", &[]).await, 422, "resource_limit");
    let health = svc.get("/healthz", &[]).await;
    assert_eq!((health.status, health.json()["status"].as_str()), (200, Some("ok")));
    // Public behind CloudFront: an edge may reuse the answer briefly instead of calling the function.
    assert_eq!(health.header("cache-control"), Some("public, max-age=10"));
    svc.embedded.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_miss_that_does_not_land_in_time_is_202_and_then_200() {
    let svc = start(&[("big.jpg", corpus("large_50mp.jpg"))], |config| config.resolver.wait = Duration::ZERO).await;
    let pending = svc.get("/big.jpg?w=2000&fmt=avif", &[]).await;
    assert_eq!(pending.status, 202);
    assert_eq!(pending.header("retry-after"), Some("1"));
    assert_eq!(pending.header("cache-control"), Some("no-store"));
    let done = eventually(&svc, "/big.jpg?w=2000&fmt=avif", |r| r.status == 200).await;
    assert_eq!(done.header("content-type"), Some("image/avif"));
    assert_eq!(svc.jobs_ever_queued().await, 1, "re-asking while pending queues nothing new");
    svc.embedded.shutdown().await;
}

/// A waiting request that will show its answer as an image gets a placeholder drawn from the
/// asset's ThumbHash (an SVG of the variant's size for an `<img>`, a raster in a type the
/// client names otherwise); API clients keep the JSON; none of it is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiting_image_request_gets_a_placeholder_and_api_clients_get_json() {
    let files = [("coffee.jpg", repo_file("samples/coffee.jpg"))];
    let svc = start_full(&files, |config| config.resolver.wait = Duration::ZERO, |resolver| resolver, false).await;
    let img = svc.get("/coffee.jpg?w=300&h=200&fmt=webp", &[("sec-fetch-dest", "image")]).await;
    assert_eq!(img.status, 202);
    assert_eq!(img.header("content-type"), Some("image/svg+xml"));
    assert_eq!(img.header("cache-control"), Some("no-store"));
    assert_eq!(img.header("retry-after"), Some("1"));
    assert!(img.header("vary").is_some_and(|v| v.contains("Accept")), "{:?}", img.header("vary"));
    let svg = String::from_utf8(img.body.clone()).expect("svg text");
    assert!(svg.starts_with("<svg ") && svg.contains("width=\"300\" height=\"200\""), "{svg}");
    assert!(svg.contains("data:image/png;base64,"), "{svg}");
    assert_eq!(img.header("content-security-policy"), Some("default-src 'none'; img-src data:"));

    let webp = svc.get("/coffee.jpg?w=300&h=200&fmt=webp", &[("accept", "image/webp,image/*")]).await;
    assert_eq!((webp.status, webp.header("content-type")), (202, Some("image/webp")));
    let drawn = image::load_from_memory(&webp.body).expect("a whole WebP").to_rgb8();
    assert_eq!(drawn.dimensions(), (32, 21), "the variant's aspect, 32 px on the longer side");
    // The placeholder's mean colour is the photo's, near enough for a blur.
    let mean = |c: usize| drawn.pixels().map(|p| u64::from(p.0[c])).sum::<u64>() / (32 * 21);
    let data = std::fs::read(repo_file("samples/coffee.jpg")).expect("read");
    let limits = catg_image::Limits::default();
    let probe = catg_image::probe(&data, &limits).expect("probe");
    let source = catg_image::decode_full(&data, &probe, &limits).expect("decode");
    let channels = source.layout.channels();
    let source_mean = |c: usize| {
        source.data.chunks_exact(channels).map(|p| u64::from(p[c])).sum::<u64>()
            / (u64::from(source.width) * u64::from(source.height))
    };
    for c in 0..3 {
        assert!(mean(c).abs_diff(source_mean(c)) <= 24, "channel {c}: {} vs {}", mean(c), source_mean(c));
    }

    for accept in ["*/*", "application/json"] {
        let api = svc.get("/coffee.jpg?w=300&h=200&fmt=webp", &[("accept", accept)]).await;
        assert_eq!((api.status, api.header("content-type")), (202, Some("application/json")), "{accept}");
        assert_eq!(api.json()["status"], "pending");
    }
    assert_eq!(svc.jobs_ever_queued().await, 1, "placeholders queue nothing more");
    svc.embedded.shutdown().await;
}

/// The real SQLite manifest behind a switch that makes every call fail as an outage would.
struct Switchable {
    inner: Arc<dyn ManifestStore>,
    down: Arc<AtomicBool>,
}

impl Switchable {
    fn check(&self) -> StoreResult<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("database is locked".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl ManifestStore for Switchable {
    async fn source(&self, key: &str) -> StoreResult<Option<SourceRecord>> {
        self.check()?;
        self.inner.source(key).await
    }
    async fn put_source(&self, record: &SourceRecord) -> StoreResult<()> {
        self.check()?;
        self.inner.put_source(record).await
    }
    async fn asset(&self, fingerprint: &Fingerprint) -> StoreResult<Option<AssetRecord>> {
        self.check()?;
        self.inner.asset(fingerprint).await
    }
    async fn create_asset(&self, record: &AssetRecord) -> StoreResult<bool> {
        self.check()?;
        self.inner.create_asset(record).await
    }
    async fn set_asset_source(&self, fingerprint: &Fingerprint, key: &str) -> StoreResult<()> {
        self.check()?;
        self.inner.set_asset_source(fingerprint, key).await
    }
    async fn variant(&self, key: &CacheKey) -> StoreResult<Option<VariantRecord>> {
        self.check()?;
        self.inner.variant(key).await
    }
    async fn release_claim(&self, record: &VariantRecord) -> StoreResult<bool> {
        self.check()?;
        self.inner.release_claim(record).await
    }
    async fn forget_variant(&self, seen: &VariantRecord) -> StoreResult<bool> {
        self.check()?;
        self.inner.forget_variant(seen).await
    }
    async fn take_over_prewarm_claim(&self, record: &VariantRecord, seen: &VariantRecord) -> StoreResult<bool> {
        self.check()?;
        self.inner.take_over_prewarm_claim(record, seen).await
    }
    async fn mark_prewarm_served(&self, key: &CacheKey) -> StoreResult<bool> {
        self.check()?;
        self.inner.mark_prewarm_served(key).await
    }
    async fn source_page(&self, after: Option<&str>, limit: usize) -> StoreResult<Page<SourceRecord>> {
        self.check()?;
        self.inner.source_page(after, limit).await
    }
    async fn variant_page(&self, after: Option<&str>, limit: usize) -> StoreResult<Page<VariantRecord>> {
        self.check()?;
        self.inner.variant_page(after, limit).await
    }
    async fn claim_variant(&self, record: &VariantRecord, now: Millis) -> StoreResult<Claim> {
        self.check()?;
        self.inner.claim_variant(record, now).await
    }
    async fn finish_variant(&self, record: &VariantRecord) -> StoreResult<bool> {
        self.check()?;
        self.inner.finish_variant(record).await
    }
    async fn reclaim_lost_variant(&self, record: &VariantRecord, lost_object_key: &str) -> StoreResult<bool> {
        self.check()?;
        self.inner.reclaim_lost_variant(record, lost_object_key).await
    }
    async fn pending_variants(&self, fingerprint: &Fingerprint, now: Millis, limit: u64) -> StoreResult<u64> {
        self.check()?;
        self.inner.pending_variants(fingerprint, now, limit).await
    }
    async fn set_asset_summary(
        &self,
        fingerprint: &Fingerprint,
        summary: &catg_image::Summary,
        near_duplicate_of: Option<Fingerprint>,
    ) -> StoreResult<bool> {
        self.check()?;
        self.inner.set_asset_summary(fingerprint, summary, near_duplicate_of).await
    }
    async fn join_near_duplicate_group(
        &self,
        member: &Fingerprint,
        member_phash: u64,
        first: &Fingerprint,
    ) -> StoreResult<bool> {
        self.check()?;
        self.inner.join_near_duplicate_group(member, member_phash, first).await
    }
    async fn near_duplicate_candidates(
        &self,
        phash: u64,
        limit: usize,
    ) -> StoreResult<Vec<catg_core::near_duplicates::Candidate>> {
        self.check()?;
        self.inner.near_duplicate_candidates(phash, limit).await
    }
    async fn asset_page(&self, after: Option<&str>, limit: usize) -> StoreResult<Page<AssetRecord>> {
        self.check()?;
        self.inner.asset_page(after, limit).await
    }
    async fn ping(&self) -> StoreResult<()> {
        self.check()?;
        self.inner.ping().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manifest_outage_is_503_with_retry_after_and_recovers() {
    let down = Arc::new(AtomicBool::new(false));
    let switch = down.clone();
    let svc = start_with(
        &[("ok.png", corpus("png_rgb8.png"))],
        |_| {},
        move |mut resolver| {
            let inner = resolver.manifest.clone();
            resolver.manifest = Arc::new(Switchable { inner, down: switch });
            resolver
        },
    )
    .await;
    // A variant served once is remembered: at its immutable URL it survives the outage; at its
    // key URL only until the key's record expires from the cache (a key can change).
    let first = svc.get("/ok.png?w=40&fmt=png", &[]).await;
    assert_eq!(first.status, 200);
    let immutable = first.header("content-location").expect("immutable URL").to_string();
    down.store(true, Ordering::SeqCst);
    let remembered = svc.get(&immutable, &[]).await;
    assert_eq!((remembered.status, &remembered.body), (200, &first.body));
    tokio::time::sleep(HitCacheConfig::default().source_ttl).await;
    assert_eq!(svc.get("/ok.png?w=40&fmt=png", &[]).await.status, 503, "the key's record expired from the cache");
    let outage = svc.get("/ok.png?w=50", &[]).await;
    assert_eq!(outage.status, 503);
    assert_eq!(outage.header("retry-after"), Some("5"));
    assert_eq!(outage.json()["error"]["kind"], "unavailable");
    assert!(!String::from_utf8_lossy(&outage.body).contains("locked"), "no store internals in the body");
    let unhealthy = svc.get("/healthz", &[]).await;
    assert_eq!((unhealthy.status, unhealthy.header("cache-control")), (503, Some("public, max-age=10")));
    down.store(false, Ordering::SeqCst);
    assert_eq!(svc.get("/ok.png?w=50", &[]).await.status, 200);
    assert_eq!(svc.get("/healthz", &[]).await.status, 200);
    svc.embedded.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_removed_while_stopped_are_marked_removed_at_the_next_start() {
    let first = start(&[("kept.png", corpus("png_rgb8.png")), ("gone.png", corpus("png_rgba.png"))], |_| {}).await;
    assert_eq!(first.get("/gone.png?w=20&fmt=png", &[]).await.status, 200);
    let (source, data) = (first.source.clone(), first.data.clone());
    first.embedded.shutdown().await;

    std::fs::remove_file(source.join("gone.png")).expect("remove while stopped");
    let mut config = EmbeddedConfig::new(&source, &data);
    config.workers = 1;
    let reopened = Embedded::open(config).expect("open");
    let summary = reopened.scan(&|_, _| {}).await.expect("scan");
    assert_eq!((summary.seen, summary.unchanged, summary.removed), (1, 1, 1));
    let gone = reopened.store.source("gone.png").await.expect("source").expect("still recorded");
    assert_eq!(gone.state, catg_core::model::SourceState::Removed);
    reopened.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_signing_on_only_signed_urls_render_and_bad_ones_are_403_before_any_store() {
    use catg_core::{Recipe, RecipeLimits, SignedTarget, SigningKeys};
    let keys = SigningKeys::parse(
        "new:bmV3LXNlY3JldC1mb3ItdGhlLXNpZ25pbmctdGVzdC0wMTIz,old:b2xkLXNlY3JldC1mb3ItdGhlLXNpZ25pbmctdGVzdC0wMTIz",
    )
    .expect("keys");
    let old_only = SigningKeys::parse("old:b2xkLXNlY3JldC1mb3ItdGhlLXNpZ25pbmctdGVzdC0wMTIz").expect("old key");
    let down = Arc::new(AtomicBool::new(false));
    let switch = down.clone();
    let verifying = keys.clone();
    let svc = start_with(
        &[("cat.png", corpus("png_rgb8.png"))],
        move |config| config.resolver.signing = Some(catg_core::Keyring::fixed(verifying)),
        move |mut resolver| {
            let inner = resolver.manifest.clone();
            resolver.manifest = Arc::new(Switchable { inner, down: switch });
            resolver
        },
    )
    .await;
    let recipe = |q: &str| Recipe::parse(q, &RecipeLimits::default()).expect("recipe");
    let sig =
        |k: &SigningKeys, key: &str, q: &str, expires: Option<u64>| k.sign(SignedTarget::Key(key), &recipe(q), expires);
    let now = catg_core::signing::unix_now();

    // Signed with the current key, or with the retiring one: both render.
    let good =
        svc.get(&format!("/cat.png?w=40&fmt=png&sig={}", sig(&keys, "cat.png", "w=40&fmt=png", None)), &[]).await;
    assert_eq!(good.status, 200, "{}", String::from_utf8_lossy(&good.body));
    let by_old = sig(&old_only, "cat.png", "w=41&fmt=png", Some(now + 600));
    assert_eq!(svc.get(&format!("/cat.png?sig={by_old}&width=41&fmt=png"), &[]).await.status, 200);
    // The immutable URL needs its own signature too.
    let immutable = good.header("content-location").expect("immutable URL").to_string();
    assert_eq!(svc.get(&immutable, &[]).await.status, 403);

    // With the manifest down, anything that reached a store would be 503: these are all 403.
    down.store(true, Ordering::SeqCst);
    let good_sig = sig(&keys, "cat.png", "w=40&fmt=png", None);
    let expired = sig(&keys, "cat.png", "w=40&fmt=png", Some(now - 1));
    for (path, why) in [
        ("/cat.png?w=40&fmt=png".to_string(), "no signature"),
        (format!("/cat.png?w=41&fmt=png&sig={good_sig}"), "another recipe"),
        (format!("/dog.png?w=40&fmt=png&sig={good_sig}"), "another key"),
        (format!("/cat.png?w=40&fmt=png&sig={expired}"), "expired"),
        (format!("/cat.png?w=40&fmt=png&sig={}", good_sig.replacen("new.", "gone.", 1)), "unknown key id"),
        (format!("/cat.png?w=40&fmt=png&sig={good_sig}&sig={good_sig}"), "two signatures"),
    ] {
        let reply = svc.get(&path, &[]).await;
        assert_eq!(reply.status, 403, "{why}: {}", String::from_utf8_lossy(&reply.body));
        assert_eq!(reply.json()["error"]["kind"], "forbidden", "{why}");
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{why}");
    }
    let expired_reply = svc.get(&format!("/cat.png?w=40&fmt=png&sig={expired}"), &[]).await;
    assert!(expired_reply.json()["error"]["message"].as_str().unwrap_or("").contains("expired"));
    // A malformed recipe is still a 400, also before any store.
    assert_eq!(svc.get(&format!("/cat.png?w=abc&sig={good_sig}"), &[]).await.status, 400);
    down.store(false, Ordering::SeqCst);
    assert_eq!(svc.jobs_ever_queued().await, 2, "only the two signed recipes were ever rendered");
    svc.embedded.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_finds_and_repairs_what_the_manifest_and_storage_disagree_on() {
    use catg_core::model::VariantState;
    let svc = start(&[("a.png", corpus("png_rgb8.png")), ("b.png", corpus("png_rgba.png"))], |_| {}).await;
    assert_eq!(svc.get("/a.png?w=10&fmt=png", &[]).await.status, 200);
    assert_eq!(svc.get("/b.png?w=10&fmt=png", &[]).await.status, 200);
    // A render that died: a claim long past its lease.
    let stale = VariantRecord {
        cache_key: CacheKey([9; 32]),
        fingerprint: Fingerprint::of(b"some asset"),
        canonical: "w=11&fit=cover&fmt=png&enlarge=0".into(),
        format: catg_image::OutputFormat::Png,
        state: VariantState::Pending { lease_until_ms: 1 },
        updated_ms: 1,
        origin: catg_core::model::Origin::Requested,
    };
    assert!(matches!(svc.embedded.store.claim_variant(&stale, 2).await.expect("claim"), Claim::Claimed));
    let (source, data) = (svc.source.clone(), svc.data.clone());
    let rendered = svc.variant_files();
    assert_eq!(rendered, 2);
    svc.embedded.shutdown().await;

    // While catg is stopped: one variant's object is lost, a stray object appears, a source goes.
    let variants = data.join("variants");
    let lost = visible_files(&variants).into_iter().next().expect("a variant file");
    std::fs::remove_file(&lost).expect("remove variant");
    let orphan = variants.join("ff/ff").join(format!("{}.png", "f".repeat(64)));
    std::fs::create_dir_all(orphan.parent().expect("dir")).expect("mkdir");
    std::fs::write(&orphan, b"not named by any record").expect("orphan");
    std::fs::remove_file(source.join("b.png")).expect("remove source");

    let run = |extra: &[&str]| {
        let mut args =
            vec!["reconcile", "--source", source.to_str().expect("utf-8"), "--data", data.to_str().expect("utf-8")];
        args.extend_from_slice(extra);
        let run = support::catg(&args, &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.json()
    };
    let dry = run(&["--dry-run"]);
    assert_eq!(
        (dry["ready_without_object"].as_u64(), dry["stale_claims"].as_u64(), dry["orphan_objects"].as_u64()),
        (Some(1), Some(1), Some(1)),
        "{dry}"
    );
    assert!(orphan.exists(), "a dry run changes nothing");
    let fixed = run(&[]);
    assert_eq!(
        (fixed["ready_without_object"].as_u64(), fixed["stale_claims"].as_u64(), fixed["orphan_objects"].as_u64()),
        (Some(1), Some(1), Some(1)),
        "{fixed}"
    );
    assert_eq!(fixed["sources_removed"].as_u64(), Some(1), "{fixed}");
    assert_eq!(fixed["complete"].as_bool(), Some(true), "{fixed}");
    assert!(!orphan.exists(), "the orphan is deleted");
    let again = run(&[]);
    assert_eq!(
        (again["ready_without_object"].as_u64(), again["stale_claims"].as_u64(), again["orphan_objects"].as_u64()),
        (Some(0), Some(0), Some(0)),
        "{again}"
    );
    assert_eq!(again["variants_checked"].as_u64(), Some(1), "the healthy variant is kept: {again}");
    assert_eq!(again["sources_removed"].as_u64(), Some(0), "{again}");
}

/// A bounded mixed workload against `catg serve` with manifest outages injected: uploads (also
/// of hostile files and duplicates), hits, misses, bad URLs. Clients may see 503 only while a
/// fault is on and never a 5xx otherwise; afterwards every variant a client was served is still
/// served, byte for byte, and the manifest agrees with storage (reconcile finds nothing).
/// `CATG_SOAK_SECONDS` sets the length (default 20); figures are printed for the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_mixed_workload_with_outages_loses_nothing() {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    let seconds: u64 = std::env::var("CATG_SOAK_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let images =
        ["jpeg_baseline.jpg", "png_rgba.png", "jpeg_exif_orientation_6.jpg", "gif_static.gif", "png_palette_trns.png"];
    let hostile = ["png_bomb.png", "random_bytes.jpg", "jpeg_truncated.jpg", "vector.svg"];
    let initial: Vec<(String, PathBuf)> = images.iter().map(|f| (format!("seed/{f}"), corpus(f))).collect();
    let initial_refs: Vec<(&str, PathBuf)> = initial.iter().map(|(k, p)| (k.as_str(), p.clone())).collect();
    let down = Arc::new(AtomicBool::new(false));
    let switch = down.clone();
    let svc = Arc::new(
        start_with(
            &initial_refs,
            |c| c.resolver.wait = Duration::from_secs(3),
            move |mut resolver| {
                let inner = resolver.manifest.clone();
                resolver.manifest = Arc::new(Switchable { inner, down: switch });
                resolver
            },
        )
        .await,
    );
    let keys: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(initial.iter().map(|(k, _)| k.clone()).collect()));
    let outcomes: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    /// Path → (ETag, body) of every 200 a client got.
    type Served = BTreeMap<String, (String, Vec<u8>)>;
    let served: Arc<Mutex<Served>> = Arc::default();
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);

    // Faults: the manifest is down for 700 ms of every 3 s.
    let faults = {
        let down = down.clone();
        tokio::spawn(async move {
            let mut injected = 0u64;
            while std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(2300)).await;
                down.store(true, Ordering::SeqCst);
                injected += 1;
                tokio::time::sleep(Duration::from_millis(700)).await;
                down.store(false, Ordering::SeqCst);
            }
            injected
        })
    };
    let mut clients = Vec::new();
    for client in 0..6u64 {
        let (svc, keys, outcomes, served, down) =
            (svc.clone(), keys.clone(), outcomes.clone(), served.clone(), down.clone());
        clients.push(tokio::spawn(async move {
            let mut n = client.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = move |m: u64| {
                n ^= n << 13;
                n ^= n >> 7;
                n ^= n << 17;
                n % m
            };
            let mut op = 0u64;
            while std::time::Instant::now() < deadline {
                op += 1;
                let choice = next(100);
                let (kind, path) = if choice < 10 {
                    // A new upload: a known image with a unique trailer (new bytes, new asset) or
                    // an exact duplicate, or a hostile file.
                    let key = format!("up/c{client}-{op}");
                    let (file, name) = if choice < 3 {
                        (corpus(hostile[next(hostile.len() as u64) as usize]), format!("{key}.bin"))
                    } else {
                        (corpus(images[next(images.len() as u64) as usize]), format!("{key}.img"))
                    };
                    let mut bytes = std::fs::read(&file).expect("corpus file");
                    if choice >= 6 {
                        bytes.extend_from_slice(format!("{client}-{op}").as_bytes());
                    }
                    let path = svc.source.join(&name);
                    std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
                    let temp = path.with_extension("part");
                    std::fs::write(&temp, &bytes).expect("write upload");
                    std::fs::rename(&temp, &path).expect("publish upload");
                    keys.lock().expect("keys").push(name.clone());
                    ("upload", format!("/{name}?w=24&fmt=png"))
                } else if choice < 15 {
                    ("bad_url", "/seed/png_rgba.png?w=abc&zoom=9".to_string())
                } else {
                    let key = {
                        let k = keys.lock().expect("keys");
                        k[next(k.len() as u64) as usize].clone()
                    };
                    let width = if choice < 60 { 32 } else { 8 + next(120) };
                    let fmt = ["png", "webp", "jpeg"][next(3) as usize];
                    (if choice < 60 { "hit" } else { "miss" }, format!("/{key}?w={width}&fmt={fmt}"))
                };
                let fault_before = down.load(Ordering::SeqCst);
                let reply = svc.get(&path, &[]).await;
                let fault = fault_before || down.load(Ordering::SeqCst);
                let class = match reply.status {
                    200 => {
                        served
                            .lock()
                            .expect("served")
                            .insert(path.clone(), (reply.header("etag").unwrap_or("").to_string(), reply.body.clone()));
                        "200"
                    }
                    202 => "202 pending",
                    400 => "400 invalid_recipe",
                    404 => "404 not_found",
                    422 => "422 rejected",
                    503 if fault => "503 during a fault",
                    other => panic!(
                        "{kind} {path}: unexpected {other} (fault: {fault}): {}",
                        String::from_utf8_lossy(&reply.body)
                    ),
                };
                if reply.status == 400 {
                    assert_eq!(kind, "bad_url", "{path}: 400 for a valid URL");
                }
                *outcomes.lock().expect("outcomes").entry(format!("{kind}: {class}")).or_default() += 1;
                if reply.status == 503 {
                    // A client honouring Retry-After (scaled down: the test's outages are short).
                    assert_eq!(reply.header("retry-after"), Some("5"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
    }
    for client in clients {
        client.await.expect("client");
    }
    let injected = faults.await.expect("faults");
    down.store(false, Ordering::SeqCst);

    // Let the queue drain, then check that nothing was lost and nothing is left dangling.
    for _ in 0..600 {
        if svc.embedded.store.counts().await.expect("counts").queued == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(svc.embedded.store.counts().await.expect("counts").queued, 0, "the queue drained");
    let served = served.lock().expect("served").clone();
    for (path, (etag, body)) in &served {
        let again = svc.get(path, &[]).await;
        assert_eq!(again.status, 200, "{path} was served once and is gone now");
        assert_eq!((again.header("etag").unwrap_or(""), &again.body), (etag.as_str(), body), "{path} changed");
    }
    let report = svc.embedded.reconcile(true, &|_| {}).await.expect("reconcile");
    assert_eq!(
        (report.ready_without_object, report.stale_claims, report.orphan_objects),
        (0, 0, 0),
        "manifest and storage disagree: {report:?}"
    );
    let outcomes = outcomes.lock().expect("outcomes").clone();
    let total: u64 = outcomes.values().sum();
    let counts = svc.embedded.store.counts().await.expect("counts");
    eprintln!(
        "soak: {seconds} s, {total} requests, {injected} manifest outages, {} variants served and re-checked, \
         {} variants checked by reconcile, manifest {counts:?}; outcomes: {outcomes:#?}",
        served.len(),
        report.variants_checked
    );
    assert!(
        outcomes.keys().any(|k| k.starts_with("upload")) && outcomes.keys().any(|k| k.contains("503")),
        "{outcomes:?}"
    );
}

/// Log lines written by this test process, as JSON (installed once, for every test in it).
fn captured_logs() -> Arc<std::sync::Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(std::sync::Mutex::new(Vec::new()));
        #[derive(Clone)]
        struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("logs").extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink(logs.clone());
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_writer(move || sink.clone())
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        logs
    })
    .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_request_is_one_json_log_line_with_its_outcome_and_no_query() {
    let logs = captured_logs();
    let svc = start(&[("logged-cat.png", corpus("png_rgb8.png"))], |_| {}).await;
    let fresh = svc.get("/logged-cat.png?w=24&fmt=png", &[]).await;
    assert_eq!(fresh.status, 200);
    let etag = fresh.header("etag").expect("etag").to_string();
    assert_eq!(svc.get("/logged-cat.png?width=24&format=png", &[]).await.status, 200);
    assert_eq!(svc.get("/logged-cat.png?w=24&fmt=png", &[("if-none-match", etag.as_str())]).await.status, 304);
    assert_eq!(svc.get("/logged-cat.png?w=24&password=hunter2", &[]).await.status, 400);
    assert_eq!(svc.get("/logged-cat-missing.png?w=24", &[]).await.status, 404);
    svc.embedded.shutdown().await;

    let text = String::from_utf8(logs.lock().expect("logs").clone()).expect("UTF-8 logs");
    let answered: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("every log line is JSON"))
        .filter(|line| {
            line["fields"]["message"] == "answered"
                && line["span"]["target"].as_str().is_some_and(|t| t.starts_with("logged-cat"))
        })
        .collect();
    let seen: Vec<(u64, &str)> = answered
        .iter()
        .map(|line| (line["fields"]["status"].as_u64().unwrap_or(0), line["fields"]["outcome"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        seen,
        vec![(200, "wait_hit"), (200, "hit"), (304, "not_modified"), (400, "invalid_recipe"), (404, "not_found")],
        "one line per request, in order: {text}"
    );
    let first = &answered[0]["span"];
    assert_eq!(first["name"], "request");
    assert_eq!(first["method"], "GET");
    assert_eq!(first["cache_key"].as_str(), Some(etag.trim_matches('"')), "{first}");
    assert_eq!(first["recipe"], "w=24&fit=cover&fmt=png&enlarge=0", "the canonical recipe: {first}");
    assert_eq!(first["fingerprint"].as_str().map(str::len), Some(64), "{first}");
    assert!(answered.iter().all(|line| line["fields"]["ms"].as_f64().is_some_and(|ms| ms >= 0.0)));
    assert!(!text.contains("hunter2") && !text.contains("password"), "a query never reaches the logs");
}

/// A half-size, quality-60 JPEG of `path` (made by catg's pipeline, libjpeg-turbo): the copy
/// near-duplicate detection must find.
fn half_size_q60_copy(path: &Path, dir: &Path) -> PathBuf {
    use catg_core::{Recipe, RecipeLimits};
    let data = std::fs::read(path).expect("read");
    let limits = catg_image::Limits::default();
    let probe = catg_image::probe(&data, &limits).expect("probe");
    let query = format!("w={}&fit=inside&fmt=jpeg&q=60", probe.width() / 2);
    let spec = Recipe::parse(&query, &RecipeLimits::default())
        .expect("recipe")
        .resolve(None, false, (probe.width(), probe.height()))
        .expect("resolve")
        .render_spec();
    let copy = catg_image::render(&data, &spec, &limits).expect("render");
    let out = dir.join(format!("{}-copy.jpg", path.file_stem().and_then(|s| s.to_str()).unwrap_or("x")));
    std::fs::write(&out, copy.bytes).expect("write");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingest_records_placeholders_and_near_duplicates_and_the_info_urls_answer_them() {
    let scratch = tempdir();
    let flat = scratch.join("flat.png");
    image::RgbImage::from_pixel(120, 60, image::Rgb([0x33, 0x66, 0xcc])).save(&flat).expect("flat png");
    let chelsea = repo_file("samples/chelsea.png");
    let copy = half_size_q60_copy(&chelsea, &scratch);
    let svc = start(
        &[
            ("a/chelsea.png", chelsea),
            ("b/chelsea-copy.jpg", copy),
            ("coffee.jpg", repo_file("samples/coffee.jpg")),
            ("flat.png", flat),
        ],
        |_| {},
    )
    .await;
    let info = |reply: &Reply| -> serde_json::Value {
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
        assert_eq!(reply.header("content-type"), Some("application/json"));
        reply.json()
    };

    // A flat colour: its own colour, and a ThumbHash of that colour and aspect ratio.
    let flat = svc.get("/flat.png?info=1", &[]).await;
    assert_eq!(flat.header("cache-control"), Some("public, max-age=60, stale-while-revalidate=600"));
    let flat = info(&flat);
    assert_eq!(
        (flat["format"].as_str(), flat["width"].as_u64(), flat["height"].as_u64()),
        (Some("png"), Some(120), Some(60))
    );
    assert_eq!(flat["dominant_color"], "#3366cc");
    assert_eq!(flat["phash"].as_str().map(str::len), Some(16));
    assert!(flat.get("near_duplicate_of").is_none());
    use base64::Engine;
    let hash = base64::engine::general_purpose::STANDARD
        .decode(flat["thumbhash"].as_str().expect("thumbhash"))
        .expect("base64");
    assert!(flat["thumbhash"].as_str().unwrap_or("").ends_with('=') || hash.len() % 3 == 0, "padded base64");
    let (w, h, rgba) = thumbhash::thumb_hash_to_rgba(&hash).expect("a ThumbHash");
    assert!((w as f64 / h as f64 - 2.0).abs() < 0.3, "aspect {w}x{h}");
    let mean = |c: usize| rgba.chunks_exact(4).map(|p| f64::from(p[c])).sum::<f64>() / (w * h) as f64;
    for (c, want) in [0x33, 0x66, 0xcc].into_iter().enumerate() {
        assert!((mean(c) - f64::from(want)).abs() < 8.0, "channel {c}: {} vs {want}", mean(c));
    }

    // By fingerprint: the same answer, immutable.
    let fingerprint = flat["fingerprint"].as_str().expect("fingerprint").to_string();
    let by_fingerprint = svc.get(&format!("/_/{fingerprint}/info"), &[]).await;
    assert_eq!(by_fingerprint.header("cache-control"), Some("public, max-age=31536000, immutable"));
    assert_eq!(info(&by_fingerprint), flat);

    // The half-size q60 copy and its original are one group; coffee is in none.
    let original = info(&svc.get("/a/chelsea.png?info=1", &[]).await);
    let copy = info(&svc.get("/b/chelsea-copy.jpg?info=1", &[]).await);
    let linked =
        original["near_duplicate_of"] == copy["fingerprint"] || copy["near_duplicate_of"] == original["fingerprint"];
    assert!(linked, "a half-size q60 copy is a near-duplicate: {original} / {copy}");
    let coffee = info(&svc.get("/coffee.jpg?info=1", &[]).await);
    assert!(coffee.get("near_duplicate_of").is_none(), "a different picture: {coffee}");
    let inventory = catg_core::report::inventory(&svc.embedded.store).await.expect("inventory");
    assert_eq!((inventory.near_duplicate_groups, inventory.near_duplicates), (1, 1), "{inventory:?}");
    let status = String::from_utf8_lossy(&svc.get("/_catg/", &[]).await.body).to_string();
    assert!(status.contains("Near-duplicates") && status.contains("chelsea-copy.jpg"), "grouped: {status}");

    // Info stands alone, and only for ready assets that exist.
    for bad in ["/flat.png?info=1&w=10", "/flat.png?info=2", &format!("/_/{fingerprint}/info?w=10")] {
        let reply = svc.get(bad, &[]).await;
        assert_eq!((reply.status, reply.json()["error"]["kind"].as_str()), (400, Some("invalid_recipe")), "{bad}");
    }
    assert_eq!(svc.get("/nothing.png?info=1", &[]).await.status, 404);
    assert_eq!(svc.get(&format!("/_/{}/info", "0".repeat(64)), &[]).await.status, 404);
    svc.embedded.shutdown().await;
}

/// Asks for `w=20&fmt=png` then `w=40&fmt=webp` of three images, so the second is learned as
/// the first's companion; returns the fourth image's fingerprint after asking for the first
/// recipe of it alone.
async fn teach_a_pair_then_ask_for_half_of_it(svc: &Service) -> Fingerprint {
    for key in ["a.png", "b.png", "c.jpg"] {
        for recipe in ["w=20&fmt=png", "w=40&fmt=webp"] {
            let reply = svc.get(&format!("/{key}?{recipe}"), &[]).await;
            assert_eq!(reply.status, 200, "{key}?{recipe}: {}", String::from_utf8_lossy(&reply.body));
        }
    }
    assert_eq!(svc.get("/d.jpg?w=20&fmt=png", &[]).await.status, 200);
    svc.embedded.store.source("d.jpg").await.expect("source").expect("recorded").fingerprint
}

const TEACHING_SET: [(&str, &str); 4] = [
    ("a.png", "png_rgb8.png"),
    ("b.png", "png_rgba.png"),
    ("c.jpg", "jpeg_baseline.jpg"),
    ("d.jpg", "jpeg_exif_orientation_6.jpg"),
];

/// Pre-warming, measured on serve: after three images teach it that viewers who get one recipe
/// also get another, asking for the first of a new image renders the second before anyone asks
/// for it; that request is then a hit that queues nothing, and the report counts it served.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_learned_companion_is_prewarmed_and_its_first_request_is_a_hit() {
    use catg_core::model::{Origin, VariantState};
    let files: Vec<(&str, PathBuf)> = TEACHING_SET.iter().map(|(key, file)| (*key, corpus(file))).collect();
    let svc = start(&files, |config| config.prewarm.relearn_every = Duration::ZERO).await;
    let fingerprint = teach_a_pair_then_ask_for_half_of_it(&svc).await;

    // The guess is rendered once the viewers' lane is empty, with no request for it.
    let mut guessed = None;
    for _ in 0..200 {
        let records = svc.embedded.store.variants_of(&fingerprint, 10).await.expect("variants");
        guessed = records.into_iter().find(|v| v.canonical.starts_with("w=40&") && v.canonical.contains("fmt=webp"));
        if guessed.as_ref().is_some_and(|v| matches!(v.state, VariantState::Ready { .. })) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let guessed = guessed.expect("the companion was queued for the new image");
    assert!(matches!(guessed.state, VariantState::Ready { .. }), "not rendered: {guessed:?}");
    assert_eq!(guessed.origin, Origin::Prewarmed);
    assert_eq!(svc.jobs_ever_queued().await, 8, "the viewers' seven renders and one guess");

    let hit = svc.get("/d.jpg?w=40&fmt=webp", &[]).await;
    assert_eq!(hit.status, 200);
    assert_eq!(size(&hit), (40, 28), "the upright image's companion");
    assert_eq!(svc.jobs_ever_queued().await, 8, "the first request for it queued nothing: a hit");
    let served = svc.embedded.store.variant(&guessed.cache_key).await.expect("variant").expect("kept");
    assert_eq!(served.origin, Origin::PrewarmedServed);
    let inventory = catg_core::report::inventory(&svc.embedded.store).await.expect("inventory");
    assert_eq!((inventory.prewarmed, inventory.prewarmed_served), (1, 1));
    // The guess taught nothing new, and a served guess does not pre-warm again.
    assert_eq!(svc.get("/d.jpg?w=40&fmt=webp", &[]).await.status, 200);
    assert_eq!(svc.jobs_ever_queued().await, 8);
    svc.embedded.shutdown().await;
}

/// The switch: with pre-warming off, the same teaching queues nothing beyond the viewers' jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prewarming_switched_off_queues_no_guesses() {
    let files: Vec<(&str, PathBuf)> = TEACHING_SET.iter().map(|(key, file)| (*key, corpus(file))).collect();
    let svc = start(&files, |config| {
        config.prewarm.relearn_every = Duration::ZERO;
        config.prewarm.per_asset = 0;
    })
    .await;
    let fingerprint = teach_a_pair_then_ask_for_half_of_it(&svc).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(svc.jobs_ever_queued().await, 7);
    assert_eq!(svc.embedded.store.variants_of(&fingerprint, 10).await.expect("variants").len(), 1);
    svc.embedded.shutdown().await;
}

/// A viewer never waits behind a guess: a request for a variant whose pre-warm claim is still
/// waiting (here: claimed, with a long lease, its job never run) takes the claim over, queues it
/// as its own, and gets the variant within its wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_viewer_takes_over_a_waiting_guess() {
    use catg_core::model::{now_ms, Origin, VariantState};
    let svc = start(&[("a.png", corpus("png_rgb8.png"))], |config| {
        config.resolver.wait = Duration::from_secs(10);
    })
    .await;
    let fingerprint = svc.embedded.store.source("a.png").await.expect("source").expect("recorded").fingerprint;
    let recipe = catg_core::Recipe::parse("w=30&fmt=png", &Default::default())
        .expect("recipe")
        .resolve(None, false, (200, 150))
        .expect("resolves");
    let now = now_ms();
    let guess = VariantRecord {
        cache_key: CacheKey::derive(&fingerprint, &recipe),
        fingerprint,
        canonical: recipe.canonical(),
        format: recipe.format,
        state: VariantState::Pending { lease_until_ms: now + 3_600_000 },
        updated_ms: now,
        origin: Origin::Prewarmed,
    };
    assert_eq!(svc.embedded.store.claim_variant(&guess, now).await.expect("claim"), Claim::Claimed);
    let reply = svc.get("/a.png?w=30&fmt=png", &[]).await;
    assert_eq!(reply.status, 200, "the viewer waited for the guess: {}", String::from_utf8_lossy(&reply.body));
    let record = svc.embedded.store.variant(&guess.cache_key).await.expect("variant").expect("kept");
    assert_eq!(record.origin, Origin::Requested, "now the viewer's variant");
    assert_eq!(svc.jobs_ever_queued().await, 1, "the viewer's own job");
    svc.embedded.shutdown().await;
}

/// Animations over HTTP: `fmt=auto` keeps one animated (WebP where accepted, else GIF), every
/// frame at the size asked; `frames=1` gives the first alone; an animation whose frames together
/// pass the output-pixel cap is refused before anything is queued; a frame bomb was refused at
/// upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn animations_are_served_animated() {
    use image::AnimationDecoder;
    let frames = |body: &[u8], gif: bool| -> usize {
        let cursor = std::io::Cursor::new(body.to_vec());
        let decoded = if gif {
            image::codecs::gif::GifDecoder::new(cursor).expect("gif").into_frames().collect_frames()
        } else {
            image::codecs::webp::WebPDecoder::new(cursor).expect("webp").into_frames().collect_frames()
        };
        decoded.expect("frames").len()
    };
    let svc = start(&[("anim.gif", corpus("gif_animated.gif")), ("bomb.gif", corpus("gif_bomb_frames.gif"))], |c| {
        c.resolver.limits.max_output_pixels = 100_000;
    })
    .await;
    let webp = svc.get("/anim.gif?w=48", &[("Accept", "image/avif,image/webp,*/*")]).await;
    assert_eq!((webp.status, webp.header("content-type")), (200, Some("image/webp")));
    assert_eq!(frames(&webp.body, false), 12);
    let gif = svc.get("/anim.gif?w=48", &[("Accept", "image/png,*/*")]).await;
    assert_eq!((gif.status, gif.header("content-type")), (200, Some("image/gif")));
    assert_eq!(frames(&gif.body, true), 12);
    let first = svc.get("/anim.gif?w=48&fmt=webp&frames=1", &[]).await;
    assert_eq!((first.status, first.header("content-type")), (200, Some("image/webp")));
    assert!(!first.body.windows(4).any(|w| w == b"ANIM"), "a still WebP: no animation chunk");
    assert_eq!(size(&first), (48, 48));
    let queued = svc.jobs_ever_queued().await;
    // 12 frames of 96×96 are 110,592 pixels: over this service's cap of 100,000.
    let too_many = svc.get("/anim.gif?w=96&fmt=gif", &[]).await;
    assert_eq!(too_many.status, 422, "{}", String::from_utf8_lossy(&too_many.body));
    assert!(String::from_utf8_lossy(&too_many.body).contains("frames=1"), "the message says what to ask for");
    assert_eq!(svc.get("/anim.gif?w=96&fmt=gif&frames=1", &[]).await.status, 200);
    assert_eq!(svc.jobs_ever_queued().await, queued + 1, "the refused animation queued nothing");
    let bomb = svc.get("/bomb.gif?w=48&fmt=gif", &[]).await;
    assert_eq!(bomb.status, 422);
    assert!(String::from_utf8_lossy(&bomb.body).contains("too_many_frames"));
    svc.embedded.shutdown().await;
}
