//! The ports' contract, as executable checks. Every adapter family runs exactly these: the local
//! adapters in `catg-local`'s tests, the AWS adapters over the wire against moto and DynamoDB
//! Local. A check panics with what broke.
//!
//! Each check uses keys under a fresh `prefix`, so suites can share a store.

use catg_core::model::{
    now_ms, variant_object_key, AssetFacts, AssetRecord, AssetState, Job, Origin, SourceRecord, SourceState,
    VariantRecord, VariantState,
};
use catg_core::ports::{Claim, LeasedJobQueue, ManifestStore, ObjectStore, PutOutcome, StoreError};
use catg_core::{CacheKey, Fingerprint};
use catg_image::{OutputFormat, Summary};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Fail, naming what to start, unless the local AWS stack's endpoints are in the environment.
/// Tests over the wire never skip.
pub fn require_local_aws_stack() {
    for var in
        ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SECRETS_MANAGER"]
    {
        assert!(
            std::env::var_os(var).is_some(),
            "{var} is not set: these tests run against moto and DynamoDB Local; run scripts/test, or \
             `infra/local-stack.sh up /tmp/stack.env && source /tmp/stack.env` first"
        );
    }
}

/// A small valid image from the shared corpus (`../shared/corpus` beside the repo).
pub fn sample_image() -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/png_rgb8.png");
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the shared corpus must sit beside the repo)", path.display()))
}

/// A resource name no other test run uses.
pub fn unique_name(prefix: &str) -> String {
    // The counter: tests running at once in one process can ask within the same millisecond.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{}-{}-{n}", std::process::id(), now_ms() % 1_000_000_000)
}

/// Object store: reads, atomic put-if-absent (also under contention), listing, deletion.
pub async fn object_store(store: Arc<dyn ObjectStore>, prefix: &str) {
    let key = |name: &str| format!("{prefix}/{name}");
    let k = key("a b+c/ünï.bin");
    assert_eq!(store.head(&k).await.expect("head"), None);
    assert!(matches!(store.get(&k, 100).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.open(&k).await.map(|_| ()), Err(StoreError::NotFound(_))));

    let data: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(store.put_if_absent(&k, &data, "image/png", "no-store").await.expect("put"), PutOutcome::Created);
    assert_eq!(
        store.put_if_absent(&k, b"other", "image/png", "no-store").await.expect("put again"),
        PutOutcome::AlreadyExists
    );
    assert_eq!(store.get(&k, u64::MAX).await.expect("get"), data, "the first write wins and stays");
    assert!(matches!(store.get(&k, 10).await, Err(StoreError::Invalid(_))), "max_bytes is enforced");
    let meta = store.head(&k).await.expect("head").expect("exists");
    assert_eq!((meta.key.as_str(), meta.size), (k.as_str(), data.len() as u64));
    let (opened, mut reader) = store.open(&k).await.expect("open");
    assert_eq!(opened.size, data.len() as u64);
    let mut streamed = Vec::new();
    reader.read_to_end(&mut streamed).await.expect("stream");
    assert_eq!(streamed, data);

    // Contention: exactly one of many concurrent writers creates the object.
    let contended = key("contended.bin");
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let (store, contended) = (store.clone(), contended.clone());
        tasks.push(tokio::spawn(
            async move { store.put_if_absent(&contended, &[i; 1000], "image/png", "no-store").await },
        ));
    }
    let mut created = 0;
    for task in tasks {
        if task.await.expect("task").expect("put") == PutOutcome::Created {
            created += 1;
        }
    }
    assert_eq!(created, 1, "one writer wins");
    let winner = store.get(&contended, u64::MAX).await.expect("get");
    assert!(winner.len() == 1000 && winner.iter().all(|b| *b == winner[0]), "no torn object");

    // Listing: sorted, paged with `after`, limited, prefix-scoped.
    for name in ["list/c", "list/a", "list/b"] {
        store.put_if_absent(&key(name), b"x", "image/png", "no-store").await.expect("put");
    }
    let listed: Vec<String> =
        store.list(&key("list/"), None, 10).await.expect("list").into_iter().map(|m| m.key).collect();
    assert_eq!(listed, vec![key("list/a"), key("list/b"), key("list/c")]);
    let page: Vec<String> =
        store.list(&key("list/"), Some(&key("list/a")), 1).await.expect("list").into_iter().map(|m| m.key).collect();
    assert_eq!(page, vec![key("list/b")]);
    // Byte order across "folders": '-' < '.' < '/', so a.png sorts between a-b.png and a/x.png,
    // and paging one key at a time from the start visits each once, in that order.
    for name in ["order/a/x.png", "order/a.png", "order/a-b.png", "order/b/c/d.png", "order/ab.png"] {
        store.put_if_absent(&key(name), b"x", "image/png", "no-store").await.expect("put");
    }
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    while let Some(next) = store.list(&key("order/"), after.as_deref(), 1).await.expect("list").pop() {
        after = Some(next.key.clone());
        paged.push(next.key);
        assert!(paged.len() <= 5, "paging does not end: {paged:?}");
    }
    let expected: Vec<String> =
        ["order/a-b.png", "order/a.png", "order/a/x.png", "order/ab.png", "order/b/c/d.png"].map(key).into();
    assert_eq!(paged, expected);
    let young = store.head(&key("order/ab.png")).await.expect("head").expect("exists");
    assert!(young.modified_ms.abs_diff(now_ms()) < 600_000, "modified_ms is when it was written: {young:?}");

    store.delete(&k).await.expect("delete");
    assert_eq!(store.head(&k).await.expect("head"), None);
    store.delete(&k).await.expect("deleting a missing object is fine");
}

fn fingerprint(seed: &str) -> Fingerprint {
    Fingerprint::of(seed.as_bytes())
}

fn asset(fp: Fingerprint, source_key: &str) -> AssetRecord {
    AssetRecord {
        fingerprint: fp,
        bytes: 123,
        state: AssetState::Ready(AssetFacts {
            format: "png".into(),
            width: 10,
            height: 20,
            orientation: 1,
            has_alpha: true,
            frames: 1,
            summary: None,
            near_duplicate_of: None,
        }),
        first_seen_ms: 1,
        source_key: source_key.into(),
    }
}

fn variant(prefix: &str, state: VariantState) -> VariantRecord {
    let fp = fingerprint(prefix);
    VariantRecord {
        cache_key: CacheKey(*fp.0.first_chunk::<32>().expect("32 bytes")),
        fingerprint: fp,
        canonical: "w=10&fit=cover&fmt=webp&q=80&enlarge=0".into(),
        format: OutputFormat::Webp,
        state,
        updated_ms: now_ms(),
        origin: Origin::Requested,
    }
}

/// Manifest: records round-trip; conditional creates and claims have exactly one winner; a
/// ready variant never goes back.
pub async fn manifest(store: Arc<dyn ManifestStore>, prefix: &str) {
    store.ping().await.expect("ping");

    // Sources: the newest observation wins.
    let key = format!("{prefix}/photo.jpg");
    assert_eq!(store.source(&key).await.expect("source"), None);
    let newer = SourceRecord {
        key: key.clone(),
        fingerprint: fingerprint("new"),
        bytes: 10,
        etag: "e2".into(),
        state: SourceState::Present,
        updated_ms: 2_000,
    };
    store.put_source(&newer).await.expect("put");
    let older = SourceRecord { fingerprint: fingerprint("old"), etag: "e1".into(), updated_ms: 1_000, ..newer.clone() };
    store.put_source(&older).await.expect("put older");
    assert_eq!(store.source(&key).await.expect("source"), Some(newer.clone()), "an older observation is ignored");
    let removed = SourceRecord { state: SourceState::Removed, updated_ms: 3_000, ..newer.clone() };
    store.put_source(&removed).await.expect("remove");
    assert_eq!(store.source(&key).await.expect("source").map(|s| s.state), Some(SourceState::Removed));

    // Assets: created once, even by many at once.
    let fp = fingerprint(&format!("{prefix}/asset"));
    assert_eq!(store.asset(&fp).await.expect("asset"), None);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let record = asset(fp, &format!("{prefix}/key{i}"));
        tasks.push(tokio::spawn(async move { store.create_asset(&record).await }));
    }
    let mut created = 0;
    for task in tasks {
        created += usize::from(task.await.expect("task").expect("create"));
    }
    assert_eq!(created, 1, "one creator wins");
    let stored = store.asset(&fp).await.expect("asset").expect("exists");
    assert_eq!(stored.state, asset(fp, "").state);
    store.set_asset_source(&fp, "elsewhere.png").await.expect("set source");
    assert_eq!(store.asset(&fp).await.expect("asset").expect("exists").source_key, "elsewhere.png");
    let rejected_fp = fingerprint(&format!("{prefix}/rejected"));
    let rejected = AssetRecord {
        state: AssetState::Rejected { reason: "truncated".into(), message: "ends early".into() },
        ..asset(rejected_fp, "bad.jpg")
    };
    assert!(store.create_asset(&rejected).await.expect("create"));
    assert_eq!(store.asset(&rejected_fp).await.expect("asset"), Some(rejected));

    // Variants: one claimant among many; stale claims are re-claimable; ready is final.
    let now = now_ms();
    let pending = variant(prefix, VariantState::Pending { lease_until_ms: now + 60_000 });
    assert_eq!(store.variant(&pending.cache_key).await.expect("variant"), None);
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (store, record) = (store.clone(), pending.clone());
        tasks.push(tokio::spawn(async move { store.claim_variant(&record, now).await }));
    }
    let mut claimed = 0;
    for task in tasks {
        match task.await.expect("task").expect("claim") {
            Claim::Claimed => claimed += 1,
            Claim::Held(current) => assert!(matches!(current.state, VariantState::Pending { .. })),
        }
    }
    assert_eq!(claimed, 1, "one claimant wins");
    let later = now + 120_000;
    let retake = VariantRecord { state: VariantState::Pending { lease_until_ms: later + 60_000 }, ..pending.clone() };
    assert_eq!(
        store.claim_variant(&retake, later).await.expect("claim"),
        Claim::Claimed,
        "an expired lease is re-claimable"
    );
    // A claim whose job could not be queued is released, but only by its holder's exact lease.
    assert!(!store.release_claim(&pending).await.expect("release"), "another lease's release changes nothing");
    assert!(store.release_claim(&retake).await.expect("release"), "the holder releases its claim");
    assert_eq!(store.variant(&retake.cache_key).await.expect("variant"), None);
    assert!(!store.release_claim(&retake).await.expect("release"), "released once");
    assert_eq!(store.claim_variant(&retake, later).await.expect("claim"), Claim::Claimed, "claimable again at once");

    let ready = VariantRecord {
        state: VariantState::Ready { object_key: "ab/cd/x.webp".into(), bytes: 42, render_ms: 7 },
        ..pending.clone()
    };
    assert!(store.finish_variant(&ready).await.expect("finish"));
    let failed = VariantRecord {
        state: VariantState::Failed { reason: "corrupt".into(), message: "x".into() },
        ..pending.clone()
    };
    assert!(!store.finish_variant(&failed).await.expect("finish"), "ready never regresses");
    assert!(!store.finish_variant(&ready).await.expect("finish"), "ready is written once");
    let far_future = later + 10_000_000;
    match store.claim_variant(&pending, far_future).await.expect("claim") {
        Claim::Held(current) => assert_eq!(current.state, ready.state),
        Claim::Claimed => panic!("a ready variant was claimed again"),
    }
    assert_eq!(store.variant(&ready.cache_key).await.expect("variant").map(|v| v.state), Some(ready.state.clone()));
    assert!(!store.release_claim(&retake).await.expect("release"), "a ready variant is never released");

    // A ready variant whose object is gone goes back to pending once, and only while the record
    // still names that object.
    let rerender = VariantRecord { updated_ms: far_future, ..pending.clone() };
    assert!(!store.reclaim_lost_variant(&rerender, "ab/cd/other.webp").await.expect("reclaim"), "another object");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, rerender) = (store.clone(), rerender.clone());
        tasks.push(tokio::spawn(async move { store.reclaim_lost_variant(&rerender, "ab/cd/x.webp").await }));
    }
    let mut reclaimed = 0;
    for task in tasks {
        reclaimed += task.await.expect("task").expect("reclaim") as usize;
    }
    assert_eq!(reclaimed, 1, "one caller re-claims a lost variant");
    assert_eq!(store.variant(&ready.cache_key).await.expect("variant").map(|v| v.state), Some(rerender.state.clone()));
    assert!(!store.reclaim_lost_variant(&rerender, "ab/cd/x.webp").await.expect("reclaim"), "only a ready record");
    assert!(store.finish_variant(&ready).await.expect("finish"), "the re-render finishes it again");

    // Finishing a variant nobody claimed creates its record (a redelivered job after cleanup).
    let orphan =
        variant(&format!("{prefix}/orphan"), VariantState::Failed { reason: "corrupt".into(), message: "m".into() });
    assert!(store.finish_variant(&orphan).await.expect("finish"));
    assert_eq!(store.variant(&orphan.cache_key).await.expect("variant"), Some(orphan.clone()));

    // Paging: every record is listed exactly once, however small the pages.
    let mut mine = std::collections::BTreeSet::new();
    for i in 0..5 {
        let record = SourceRecord { key: format!("{prefix}/paged/{i}.png"), ..newer.clone() };
        store.put_source(&record).await.expect("put");
        mine.insert(record.key);
    }
    mine.insert(key.clone());
    let listed = all_pages(|after| {
        let store = store.clone();
        async move { store.source_page(after.as_deref(), 2).await.map(|p| (p.items, p.next)) }
    })
    .await;
    let listed: Vec<String> = listed.into_iter().map(|r| r.key).filter(|k| mine.contains(k)).collect();
    assert_eq!(listed.len(), mine.len(), "each source record once: {listed:?}");
    assert_eq!(listed.iter().collect::<std::collections::BTreeSet<_>>().len(), mine.len());
    let listed = all_pages(|after| {
        let store = store.clone();
        async move { store.variant_page(after.as_deref(), 1).await.map(|p| (p.items, p.next)) }
    })
    .await;
    let ours: Vec<&VariantRecord> =
        listed.iter().filter(|r| r.cache_key == ready.cache_key || r.cache_key == orphan.cache_key).collect();
    assert_eq!(ours.len(), 2, "each variant record once");
    assert!(ours.contains(&&orphan), "records come back whole");

    // Forgetting is conditional on the record being exactly as it was seen.
    let moved_on = VariantRecord { updated_ms: orphan.updated_ms + 1, ..orphan.clone() };
    assert!(!store.forget_variant(&moved_on).await.expect("forget"), "a record that moved on is kept");
    let as_ready = VariantRecord { state: ready.state.clone(), ..orphan.clone() };
    assert!(!store.forget_variant(&as_ready).await.expect("forget"), "another state is kept");
    assert!(store.forget_variant(&orphan).await.expect("forget"));
    assert_eq!(store.variant(&orphan.cache_key).await.expect("variant"), None);
    assert!(!store.forget_variant(&orphan).await.expect("forget"), "forgotten once");

    pending_per_asset(store.as_ref(), prefix).await;
    prewarm_records(store.as_ref(), prefix).await;
    near_duplicate_index(store, prefix).await;
}

/// Pre-warm records: the origin round-trips; a viewer takes over a guess's claim only while it
/// is exactly that guess; a pre-warmed variant is counted served once.
async fn prewarm_records(store: &dyn ManifestStore, prefix: &str) {
    let now = now_ms();
    let guess = VariantRecord {
        origin: Origin::Prewarmed,
        ..variant(&format!("{prefix}/prewarm"), VariantState::Pending { lease_until_ms: now + 600_000 })
    };
    assert_eq!(store.claim_variant(&guess, now).await.expect("claim"), Claim::Claimed);
    assert_eq!(store.variant(&guess.cache_key).await.expect("variant").map(|v| v.origin), Some(Origin::Prewarmed));
    let viewer = VariantRecord {
        origin: Origin::Requested,
        state: VariantState::Pending { lease_until_ms: now + 60_000 },
        ..guess.clone()
    };
    let other_lease = VariantRecord { state: VariantState::Pending { lease_until_ms: now + 1 }, ..guess.clone() };
    assert!(!store.take_over_prewarm_claim(&viewer, &other_lease).await.expect("take over"), "another lease");
    assert!(store.take_over_prewarm_claim(&viewer, &guess).await.expect("take over"), "the viewer takes the guess");
    assert_eq!(store.variant(&guess.cache_key).await.expect("variant"), Some(viewer.clone()));
    assert!(!store.take_over_prewarm_claim(&viewer, &guess).await.expect("take over"), "taken over once");
    assert!(!store.mark_prewarm_served(&viewer.cache_key).await.expect("mark"), "a viewer's variant is not a guess");

    let made = VariantRecord {
        origin: Origin::Prewarmed,
        state: VariantState::Ready { object_key: "pw/x.webp".into(), bytes: 9, render_ms: 1 },
        ..variant(&format!("{prefix}/prewarm-made"), VariantState::Pending { lease_until_ms: 0 })
    };
    assert!(store.finish_variant(&made).await.expect("finish"));
    let taken = VariantRecord { origin: Origin::Requested, ..viewer.clone() };
    assert!(!store.take_over_prewarm_claim(&taken, &made).await.expect("take over"), "a ready guess is not a claim");
    assert!(store.mark_prewarm_served(&made.cache_key).await.expect("mark"), "first request");
    assert!(!store.mark_prewarm_served(&made.cache_key).await.expect("mark"), "counted once");
    let read = store.variant(&made.cache_key).await.expect("variant").expect("recorded");
    assert_eq!((read.origin, read.state), (Origin::PrewarmedServed, made.state.clone()));
}

fn summary(phash: u64) -> Summary {
    Summary { thumbhash: vec![0x1f, 0x08, 0x0a, 0x0d, 0x82, 0x56], dominant_colour: [0x12, 0xab, 0xff], phash }
}

/// The near-duplicate index: a summary round-trips; the candidates of a hash are exactly the
/// assets sharing one of its bands, whatever their distance (so the index is what answers, not
/// a scan filtered by distance); a summary is added once, and only to a ready asset.
async fn near_duplicate_index(store: Arc<dyn ManifestStore>, prefix: &str) {
    use catg_core::near_duplicates::{group_of, MAX_DISTANCE};
    // Hashes of this run's own, so other suites sharing the store rarely share a band.
    let base = u64::from_be_bytes(*fingerprint(&format!("{prefix}/phash")).0.first_chunk::<8>().expect("8 bytes"));
    let one_bit_in_bands = |bands: std::ops::Range<usize>| bands.fold(0u64, |m, band| m | 1 << (56 - 8 * band));
    let first = fingerprint(&format!("{prefix}/near/first"));
    let close = fingerprint(&format!("{prefix}/near/close"));
    let one_band = fingerprint(&format!("{prefix}/near/one-band"));
    let no_band = fingerprint(&format!("{prefix}/near/no-band"));
    let with = |fp: Fingerprint, phash: u64, group: Option<Fingerprint>| {
        let mut record = asset(fp, "near.png");
        if let AssetState::Ready(facts) = &mut record.state {
            facts.summary = Some(summary(phash));
            facts.near_duplicate_of = group;
        }
        record
    };
    // Created by many at once: one wins, and the index names it once.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (store, record) = (store.clone(), with(first, base, None));
        tasks.push(tokio::spawn(async move { store.create_asset(&record).await }));
    }
    let mut created = 0;
    for task in tasks {
        created += usize::from(task.await.expect("task").expect("create"));
    }
    assert_eq!(created, 1, "one creator wins");
    assert_eq!(store.asset(&first).await.expect("asset"), Some(with(first, base, None)), "a summary round-trips");

    // An asset recorded before summaries gets one, once.
    let close_hash = base ^ one_bit_in_bands(0..MAX_DISTANCE as usize);
    assert!(store.create_asset(&asset(close, "near.png")).await.expect("create"));
    assert!(store.set_asset_summary(&close, &summary(close_hash), Some(first)).await.expect("summarise"));
    assert!(!store.set_asset_summary(&close, &summary(base), None).await.expect("again"), "added once");
    assert_eq!(store.asset(&close).await.expect("asset"), Some(with(close, close_hash, Some(first))));
    let rejected = fingerprint(&format!("{prefix}/near/rejected"));
    let record = AssetRecord {
        state: AssetState::Rejected { reason: "truncated".into(), message: "m".into() },
        ..asset(rejected, "bad.png")
    };
    assert!(store.create_asset(&record).await.expect("create"));
    assert!(!store.set_asset_summary(&rejected, &summary(base), None).await.expect("rejected"), "only ready assets");
    assert!(!store.set_asset_summary(&fingerprint("nobody"), &summary(base), None).await.expect("absent"));

    // Sharing one band at 56 bits' distance is a candidate; 8 bits' distance spread over every
    // band is not.
    let one_band_hash = base ^ 0xffff_ff00_ffff_ffff;
    assert!(store.create_asset(&with(one_band, one_band_hash, None)).await.expect("create"));
    let no_band_hash = base ^ one_bit_in_bands(0..8);
    assert!(store.create_asset(&with(no_band, no_band_hash, None)).await.expect("create"));
    let candidates = store.near_duplicate_candidates(base, 1000).await.expect("candidates");
    let named = |fp: Fingerprint| candidates.iter().filter(|c| c.fingerprint == fp).collect::<Vec<_>>();
    assert_eq!(named(first).len(), 1, "each candidate once: {candidates:?}");
    assert_eq!(named(close).first().map(|c| (c.phash, c.near_duplicate_of)), Some((close_hash, Some(first))));
    assert_eq!(named(one_band).len(), 1, "one shared band makes a candidate");
    assert!(named(no_band).is_empty(), "no shared band, no candidate");
    assert_eq!(group_of(&fingerprint("new"), base ^ 1, &candidates), Some(first), "joins the first's group");
    assert!(store.near_duplicate_candidates(base, 1).await.expect("limit").len() <= 1, "at most the limit");

    // Two that each started a group (ingested at the same moment) are linked once, one way.
    let (early, late) = (fingerprint(&format!("{prefix}/near/early")), fingerprint(&format!("{prefix}/near/late")));
    let race_hash = !base;
    assert!(store.create_asset(&with(early, race_hash, None)).await.expect("create"));
    assert!(store.create_asset(&with(late, race_hash ^ 0b101, None)).await.expect("create"));
    assert!(!store.join_near_duplicate_group(&early, race_hash, &early).await.expect("self"), "never its own");
    assert!(store.join_near_duplicate_group(&late, race_hash ^ 0b101, &early).await.expect("join"));
    assert!(!store.join_near_duplicate_group(&late, race_hash ^ 0b101, &early).await.expect("again"), "once");
    assert!(!store.join_near_duplicate_group(&early, race_hash, &late).await.expect("back"), "never both ways");
    assert!(!store.join_near_duplicate_group(&rejected, base, &early).await.expect("rejected"), "only ready");
    assert!(
        !store.join_near_duplicate_group(&one_band, one_band_hash, &close).await.expect("member"),
        "into a group's first only"
    );
    assert_eq!(store.asset(&late).await.expect("asset"), Some(with(late, race_hash ^ 0b101, Some(early))));
    assert_eq!(store.asset(&early).await.expect("asset"), Some(with(early, race_hash, None)));
    let candidates = store.near_duplicate_candidates(race_hash, 1000).await.expect("candidates");
    let linked = candidates.iter().find(|c| c.fingerprint == late).map(|c| c.near_duplicate_of);
    assert_eq!(linked, Some(Some(early)), "the index names the group too: {candidates:?}");

    // Assets page through whole.
    let listed = all_pages(|after| {
        let store = store.clone();
        async move { store.asset_page(after.as_deref(), 2).await.map(|p| (p.items, p.next)) }
    })
    .await;
    for fp in [first, close, one_band, no_band, rejected] {
        assert_eq!(listed.iter().filter(|a| a.fingerprint == fp).count(), 1, "{fp} listed once");
    }
    assert!(listed.contains(&with(close, close_hash, Some(first))), "records come back whole");
}

/// Live claims of one asset are counted, up to the limit asked; expired claims, finished
/// variants and other assets' claims are not.
async fn pending_per_asset(store: &dyn ManifestStore, prefix: &str) {
    let now = now_ms();
    let claim = |n: u8, lease: u64| {
        let mut record = variant(&format!("{prefix}/pending"), VariantState::Pending { lease_until_ms: lease });
        record.cache_key.0[0] = n;
        record
    };
    let fp = claim(0, 0).fingerprint;
    assert_eq!(store.pending_variants(&fp, now, 10).await.expect("count"), 0);
    for n in 1..=4 {
        assert_eq!(store.claim_variant(&claim(n, now + 60_000), now).await.expect("claim"), Claim::Claimed);
    }
    // Expired already: not counted.
    assert_eq!(store.claim_variant(&claim(5, now - 1), now - 10).await.expect("claim"), Claim::Claimed);
    // Finished: not pending any more.
    let done = VariantRecord {
        state: VariantState::Failed { reason: "corrupt".into(), message: "m".into() },
        ..claim(4, now + 60_000)
    };
    assert!(store.finish_variant(&done).await.expect("finish"));
    let other = variant(&format!("{prefix}/other-asset"), VariantState::Pending { lease_until_ms: now + 60_000 });
    assert_eq!(store.claim_variant(&other, now).await.expect("claim"), Claim::Claimed);
    // Indexes may lag writes a moment (DynamoDB's secondary indexes): look until it settles.
    let mut counted = 0;
    for _ in 0..50 {
        counted = store.pending_variants(&fp, now, 10).await.expect("count");
        if counted == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(counted, 3, "three live claims of the asset");
    assert_eq!(store.pending_variants(&fp, now, 2).await.expect("count"), 2, "counted up to the limit");
    assert_eq!(store.pending_variants(&fp, now + 120_000, 10).await.expect("count"), 0, "leases ended");
    // Every record of the asset, whatever its state, and no other asset's.
    let of_asset = store.variants_of(&fp, 10).await.expect("variants of");
    assert_eq!(of_asset.len(), 5, "{of_asset:?}");
    assert!(of_asset.iter().all(|v| v.fingerprint == fp));
    assert_eq!(store.variants_of(&fp, 2).await.expect("variants of").len(), 2);
}

/// Every item of a paged listing, following cursors to the end (bounded, so a cursor that never
/// ends fails the check instead of hanging it).
async fn all_pages<T, F, Fut>(mut page: F) -> Vec<T>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = catg_core::ports::StoreResult<(Vec<T>, Option<String>)>>,
{
    let (mut out, mut cursor) = (Vec::new(), None);
    for _ in 0..10_000 {
        let (items, next) = page(cursor.take()).await.expect("page");
        out.extend(items);
        match next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
    panic!("a listing did not end after 10,000 pages");
}

fn job(n: u32) -> Job {
    let recipe = catg_core::Recipe::parse("fmt=png", &catg_core::RecipeLimits::default())
        .expect("recipe")
        .resolve(None, false, (4000, 3000))
        .expect("resolves");
    Job::new(Fingerprint::of(&n.to_be_bytes()), recipe, "k")
}

/// Leased queue: delivery hides a job for its lease, redelivers it after, ack removes it; many
/// receivers never get the same job at once. Needs an empty queue.
pub async fn leased_queue(queue: Arc<dyn LeasedJobQueue>) {
    assert_eq!(queue.receive(60_000).await.expect("receive"), None);
    queue.enqueue(&job(1)).await.expect("enqueue");
    // Leases are whole seconds on SQS.
    let first = queue.receive(1_000).await.expect("receive").expect("a job");
    assert_eq!((first.job.clone(), first.attempt), (job(1), 1));
    assert_eq!(queue.receive(60_000).await.expect("receive"), None, "leased jobs are invisible");
    assert_eq!(queue.pending_jobs().await.expect("pending"), 1, "a leased job is still pending");
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let again = queue.receive(60_000).await.expect("receive").expect("redelivered after the lease");
    assert_eq!((again.job.clone(), again.attempt), (first.job.clone(), 2));
    queue.retry_later(&again.id, 0).await.expect("retry");
    let third = queue.receive(60_000).await.expect("receive").expect("visible again");
    assert_eq!(third.attempt, 3);
    queue.ack(&third.id).await.expect("ack");
    assert_eq!(queue.receive(0).await.expect("receive"), None, "acknowledged jobs are gone");
    assert_eq!(queue.pending_jobs().await.expect("pending"), 0, "acknowledged jobs are not pending");

    for n in 0..20 {
        queue.enqueue(&job(100 + n)).await.expect("enqueue");
    }
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(d) = queue.receive(60_000).await.expect("receive") {
                got.push(d.job.cache_key);
                queue.ack(&d.id).await.expect("ack");
            }
            got
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!((before, all.len()), (20, 20), "every job delivered exactly once");
}

/// The use cases over one adapter family, with real parallelism: the same bytes ingested under
/// `copies` keys at once are one asset; a duplicate upload event changes nothing; a render job
/// delivered again after it finished renders nothing and leaves the variant `ready`; nobody can
/// claim a ready variant back to `pending`. `image` must be a valid image; `sources` and
/// `variants` may be the same store; keys go under `prefix`.
pub async fn ingest_and_render(
    sources: Arc<dyn ObjectStore>,
    variants: Arc<dyn ObjectStore>,
    manifest: Arc<dyn ManifestStore>,
    image: &[u8],
    prefix: &str,
) {
    use catg_core::{ingest, Ingested, Recipe, RecipeLimits, RenderBudget, RenderOutcome, Renderer};
    let limits = catg_image::Limits::default();
    let copies = 8;
    let keys: Vec<String> = (0..copies).map(|i| format!("{prefix}/uploads/copy-{i}.img")).collect();
    for key in &keys {
        sources.put_if_absent(key, image, "application/octet-stream", "no-store").await.expect("put source");
    }
    let mut tasks = Vec::new();
    for key in keys.clone() {
        let (sources, manifest, limits) = (sources.clone(), manifest.clone(), limits.clone());
        tasks.push(tokio::spawn(
            async move { ingest(sources.as_ref(), manifest.as_ref(), &key, &decoding(&limits)).await },
        ));
    }
    let mut fingerprints = std::collections::BTreeSet::new();
    let mut new_assets = 0;
    for task in tasks {
        match task.await.expect("ingest task").expect("ingest") {
            Ingested::Recorded { fingerprint, new_asset, rejected: None } => {
                fingerprints.insert(fingerprint);
                new_assets += usize::from(new_asset);
            }
            other => panic!("a fresh upload was not recorded as an image: {other:?}"),
        }
    }
    assert_eq!(fingerprints.len(), 1, "identical bytes under {copies} keys are one asset");
    assert_eq!(new_assets, 1, "exactly one of {copies} concurrent ingests created the asset");
    let fingerprint = *fingerprints.first().expect("one fingerprint");
    let recorded = manifest.asset(&fingerprint).await.expect("asset").expect("recorded");
    let AssetState::Ready(facts) = &recorded.state else { panic!("not ready: {recorded:?}") };
    let expected =
        catg_image::verify(image, &catg_image::probe(image, &limits).expect("probe"), &limits).expect("verify").summary;
    assert!(expected.is_some() && facts.summary == expected, "ingest records the summary: {facts:?}");
    for key in &keys {
        let source = manifest.source(key).await.expect("source").expect("every key recorded");
        assert_eq!(source.fingerprint, fingerprint, "{key}");
    }
    // The same upload event again (S3 delivers at least once): nothing changes.
    let again = ingest(sources.as_ref(), manifest.as_ref(), &keys[0], &decoding(&limits)).await.expect("re-ingest");
    assert!(matches!(again, Ingested::Unchanged { .. }), "a duplicate event re-recorded the key: {again:?}");

    // A near-duplicate whose ingest looked before this asset was indexed, so both started a
    // group: the next ingest of either links them, the lower fingerprint first.
    let phash = expected.expect("summary").phash;
    let rival = Fingerprint::of(format!("{prefix}/near-duplicate").as_bytes());
    let mut rival_record = asset(rival, "rival.png");
    if let AssetState::Ready(facts) = &mut rival_record.state {
        facts.summary = Some(summary(phash ^ 0b1001));
    }
    assert!(manifest.create_asset(&rival_record).await.expect("create rival"));
    let key = format!("{prefix}/uploads/once-more.img");
    sources.put_if_absent(&key, image, "application/octet-stream", "no-store").await.expect("put source");
    ingest(sources.as_ref(), manifest.as_ref(), &key, &decoding(&limits)).await.expect("ingest once more");
    let group_of = |record: Option<AssetRecord>| match record.expect("recorded").state {
        AssetState::Ready(facts) => facts.near_duplicate_of,
        other => panic!("not ready: {other:?}"),
    };
    let (ours, theirs) = (
        group_of(manifest.asset(&fingerprint).await.expect("asset")),
        group_of(manifest.asset(&rival).await.expect("rival")),
    );
    let (low, high) = if fingerprint.to_hex() < rival.to_hex() { (fingerprint, rival) } else { (rival, fingerprint) };
    let expected_groups = if low == fingerprint { (None, Some(low)) } else { (Some(low), None) };
    assert_eq!((ours, theirs), expected_groups, "linked once, {high} into {low}'s group");

    // A render job, claimed once, delivered twice (the second after the first finished).
    let recipe = Recipe::parse("w=16&fmt=png", &RecipeLimits::default())
        .expect("recipe")
        .resolve(None, false, (4000, 3000))
        .expect("resolves");
    let cache_key = CacheKey::derive(&fingerprint, &recipe);
    let now = now_ms();
    let pending = VariantRecord {
        cache_key,
        fingerprint,
        canonical: recipe.canonical(),
        format: recipe.format,
        state: VariantState::Pending { lease_until_ms: now + 60_000 },
        updated_ms: now,
        origin: Origin::Requested,
    };
    assert!(matches!(manifest.claim_variant(&pending, now).await.expect("claim"), Claim::Claimed));
    let job = Job::new(fingerprint, recipe, keys[copies - 1].clone());
    assert_eq!(job.cache_key, cache_key);
    let renderer = Renderer {
        sources: sources.clone(),
        variants: variants.clone(),
        manifest: manifest.clone(),
        limits: limits.clone(),
        budget: Arc::new(RenderBudget::new(256)),
        prewarm: None,
    };
    let first = renderer.render(&job).await.expect("first delivery");
    assert!(matches!(first, RenderOutcome::Stored { .. }), "first delivery: {first:?}");
    let ready = manifest.variant(&cache_key).await.expect("variant").expect("recorded");
    let VariantState::Ready { object_key, .. } = ready.state.clone() else { panic!("not ready: {:?}", ready.state) };
    let second = renderer.render(&job).await.expect("second delivery");
    assert!(matches!(second, RenderOutcome::AlreadyDone), "a redelivered job rendered again: {second:?}");
    let later = now_ms() + 120_000;
    let stale_claim = VariantRecord { state: VariantState::Pending { lease_until_ms: later + 60_000 }, ..pending };
    assert!(
        !matches!(manifest.claim_variant(&stale_claim, later).await.expect("claim"), Claim::Claimed),
        "a ready variant was claimed back to pending"
    );
    let after = manifest.variant(&cache_key).await.expect("variant").expect("recorded");
    assert_eq!(after.state, ready.state, "the ready record changed");
    let listed = variants.list(&object_key, None, 10).await.expect("list");
    assert_eq!(listed.len(), 1, "one stored object for the variant");
}

/// Reconcile (`catg_core::reconcile`) over one adapter family, on stores of its own (it walks
/// everything in them): it finds each kind of drift, a dry run changes nothing, a real run
/// repairs exactly that and leaves live work alone, and a second run finds nothing.
pub async fn reconcile_repairs_drift(
    sources: Arc<dyn ObjectStore>,
    variants: Arc<dyn ObjectStore>,
    manifest: Arc<dyn ManifestStore>,
    image: &[u8],
) {
    use catg_core::{reconcile, ReconcileOptions, ReconcileReport};
    let limits = catg_image::Limits::default();
    let run = |dry_run: bool, grace_ms: u64| {
        let (sources, variants, manifest, limits) =
            (sources.clone(), variants.clone(), manifest.clone(), limits.clone());
        async move {
            let options =
                ReconcileOptions { dry_run, source_prefix: String::new(), now_ms: now_ms(), grace_ms, deadline: None };
            reconcile(sources.as_ref(), variants.as_ref(), manifest.as_ref(), &decoding(&limits), &options, &|_| {})
                .await
                .expect("reconcile")
        }
    };
    // Two uploads whose events were lost: only reconcile knows about them.
    for key in ["kept.png", "deleted.png"] {
        sources.put_if_absent(key, image, "image/png", "no-store").await.expect("put source");
    }
    let dry = run(true, 0).await;
    assert_eq!((dry.sources_listed, dry.sources_unrecorded), (2, 2), "{dry:?}");
    assert_eq!(manifest.source("kept.png").await.expect("source"), None, "a dry run records nothing");
    let first = run(false, 0).await;
    assert_eq!((first.sources_unrecorded, first.sources_failed), (2, 0), "{first:?}");
    let kept = manifest.source("kept.png").await.expect("source").expect("ingested by reconcile");
    assert_eq!(kept.state, SourceState::Present);

    // Drift of every kind.
    sources.delete("deleted.png").await.expect("delete source");
    let now = now_ms();
    let record = |seed: &str, state: VariantState| VariantRecord {
        cache_key: CacheKey(*Fingerprint::of(seed.as_bytes()).0.first_chunk::<32>().expect("32 bytes")),
        fingerprint: kept.fingerprint,
        canonical: format!("w={}&fit=cover&fmt=png&enlarge=0", seed.len()),
        format: OutputFormat::Png,
        state,
        updated_ms: now,
        origin: Origin::Requested,
    };
    let object_key_of = |seed: &str| {
        let cache_key = record(seed, VariantState::Failed { reason: String::new(), message: String::new() }).cache_key;
        variant_object_key(&cache_key, OutputFormat::Png)
    };
    let (healthy_key, lost_key, in_flight_key) =
        (object_key_of("healthy"), object_key_of("lost"), object_key_of("in flight"));
    let ready = |seed: &str, object_key: &str| {
        record(seed, VariantState::Ready { object_key: object_key.to_string(), bytes: 3, render_ms: 1 })
    };
    let healthy = ready("healthy", &healthy_key);
    let lost = ready("lost", &lost_key);
    let in_flight = record("in flight", VariantState::Pending { lease_until_ms: now + 600_000 });
    let stale = record("stale", VariantState::Pending { lease_until_ms: now - 1 });
    for object_key in [&healthy_key, &in_flight_key] {
        variants.put_if_absent(object_key, b"png", "image/png", "immutable").await.expect("put variant");
    }
    let orphan_key = variant_object_key(&CacheKey([0xff; 32]), OutputFormat::Png);
    variants.put_if_absent(&orphan_key, b"named by nothing", "image/png", "immutable").await.expect("put orphan");
    variants.put_if_absent("not-a-variant.txt", b"junk", "text/plain", "no-store").await.expect("put junk");
    for finished in [&healthy, &lost] {
        assert!(manifest.finish_variant(finished).await.expect("finish"));
    }
    for claim in [&in_flight, &stale] {
        assert_eq!(manifest.claim_variant(claim, now - 2).await.expect("claim"), Claim::Claimed);
    }

    let expect_found = |report: &ReconcileReport, what: &str| {
        assert!(report.complete, "{what}: {report:?}");
        assert_eq!(
            (report.sources_unrecorded, report.sources_removed, report.ready_without_object, report.stale_claims),
            (0, 1, 1, 1),
            "{what}: {report:?}"
        );
        assert_eq!(report.variants_checked, 4, "{what}: {report:?}");
        assert_eq!(report.variant_objects_listed, 4, "{what}: {report:?}");
    };
    // Within the grace period the unnamed objects are kept: a render may be about to record one.
    let young = run(true, 3_600_000).await;
    expect_found(&young, "dry run with grace");
    assert_eq!((young.orphan_objects, young.young_objects_kept), (0, 2), "{young:?}");
    let dry = run(true, 0).await;
    expect_found(&dry, "dry run");
    assert_eq!(dry.orphan_objects, 2, "{dry:?}");
    assert!(variants.head(&orphan_key).await.expect("head").is_some(), "a dry run deletes nothing");
    assert_eq!(manifest.variant(&stale.cache_key).await.expect("variant"), Some(stale.clone()));

    let repaired = run(false, 0).await;
    expect_found(&repaired, "repair");
    assert_eq!(repaired.orphan_objects, 2, "{repaired:?}");
    assert!(variants.head(&orphan_key).await.expect("head").is_none(), "the orphan is deleted");
    assert!(variants.head("not-a-variant.txt").await.expect("head").is_none(), "junk is deleted");
    assert_eq!(manifest.variant(&lost.cache_key).await.expect("variant"), None, "the lost variant is forgotten");
    assert_eq!(manifest.variant(&stale.cache_key).await.expect("variant"), None, "the stale claim is released");
    assert_eq!(manifest.variant(&healthy.cache_key).await.expect("variant"), Some(healthy), "healthy is kept");
    assert_eq!(manifest.variant(&in_flight.cache_key).await.expect("variant"), Some(in_flight), "live claim kept");
    assert!(variants.head(&in_flight_key).await.expect("head").is_some(), "an in-flight render's object is kept");
    let removed = manifest.source("deleted.png").await.expect("source").expect("record kept");
    assert_eq!(removed.state, SourceState::Removed);

    let again = run(false, 0).await;
    assert!(again.complete && !again.found_anything(), "a second run finds nothing: {again:?}");

    // Out of time: it stops before the next page and says so.
    let options = ReconcileOptions {
        dry_run: true,
        source_prefix: String::new(),
        now_ms: now_ms(),
        grace_ms: 0,
        deadline: Some(tokio::time::Instant::now()),
    };
    let late = reconcile(sources.as_ref(), variants.as_ref(), manifest.as_ref(), &decoding(&limits), &options, &|_| {})
        .await
        .expect("reconcile");
    assert!(!late.complete && late.sources_listed == 0, "{late:?}");
    assert_eq!((again.variants_checked, again.variant_objects_listed), (2, 2), "{again:?}");
}

/// Backfill (`catg_core::backfill`) over one adapter family, on a source store of its own: a run
/// stopped after its first page (as Ctrl-C stops it) resumes after that page's last key without
/// listing it again, several objects at a time; a dry run records nothing; a run from scratch
/// afterwards finds everything recorded; an identical copy under a second key is a duplicate.
pub async fn backfill_resumes(sources: Arc<dyn ObjectStore>, manifest: Arc<dyn ManifestStore>, image: &[u8]) {
    use catg_core::{backfill, BackfillOptions, BackfillReport, Flow};
    let limits = catg_image::Limits::default();
    // Distinct bytes per key: the same pixels with a different trailing chunk are other assets.
    let keys: Vec<String> = (0..7).map(|n| format!("old/{n:02}.png")).collect();
    for (n, key) in keys.iter().enumerate() {
        let mut bytes = image.to_vec();
        bytes.extend_from_slice(&[n as u8; 4]);
        sources.put_if_absent(key, &bytes, "image/png", "no-store").await.expect("put source");
    }
    sources
        .put_if_absent("old/99-copy.png", &[image, &[0u8; 4]].concat(), "image/png", "no-store")
        .await
        .expect("copy");
    sources.put_if_absent("other/x.png", image, "image/png", "no-store").await.expect("outside the prefix");
    let options = |start_after: Option<String>, concurrency: usize, dry_run: bool| BackfillOptions {
        prefix: "old/".into(),
        start_after,
        concurrency,
        page_size: 3,
        dry_run,
    };
    let run = |options: BackfillOptions, stop_after_pages: usize| {
        let (sources, manifest, limits) = (sources.clone(), manifest.clone(), limits.clone());
        async move {
            let mut pages = 0;
            let mut on_page = |_: &BackfillReport| {
                pages += 1;
                if pages >= stop_after_pages {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            };
            backfill(sources.as_ref(), manifest.as_ref(), &decoding(&limits), &options, &mut on_page)
                .await
                .expect("backfill")
        }
    };

    let dry = run(options(None, 2, true), usize::MAX).await;
    assert_eq!((dry.complete, dry.listed, dry.unrecorded, dry.new_assets), (true, 8, 8, 0), "{dry:?}");
    assert_eq!(manifest.source("old/00.png").await.expect("source"), None, "a dry run records nothing");

    let first = run(options(None, 1, false), 1).await;
    assert!(!first.complete, "stopped after a page: {first:?}");
    assert_eq!((first.listed, first.new_assets), (3, 3), "{first:?}");
    assert_eq!(first.resume_after.as_deref(), Some("old/02.png"));
    assert_eq!(manifest.source("old/03.png").await.expect("source"), None, "nothing past the stop");

    let rest = run(options(first.resume_after.clone(), 3, false), usize::MAX).await;
    assert!(rest.complete, "{rest:?}");
    assert_eq!(rest.listed, 5, "the first page is not listed again: {rest:?}");
    assert_eq!((rest.new_assets, rest.duplicates, rest.already_recorded), (4, 1, 0), "{rest:?}");
    assert_eq!(rest.resume_after.as_deref(), Some("old/99-copy.png"));
    for key in keys.iter().map(String::as_str).chain(["old/99-copy.png"]) {
        assert!(manifest.source(key).await.expect("source").is_some(), "{key} recorded");
    }
    assert_eq!(manifest.source("other/x.png").await.expect("source"), None, "outside the prefix");

    let again = run(options(None, 4, false), usize::MAX).await;
    assert_eq!((again.listed, again.already_recorded, again.unrecorded), (8, 8, 0), "{again:?}");
}

/// Backfill gives an asset recorded before ingest made summaries (its source recorded at the
/// object's current version) its summary, without a new upload; a dry run only counts it.
pub async fn backfill_adds_summaries(sources: Arc<dyn ObjectStore>, manifest: Arc<dyn ManifestStore>, image: &[u8]) {
    use catg_core::{backfill, BackfillOptions, Flow};
    let limits = catg_image::Limits::default();
    let key = "older/photo.png";
    sources.put_if_absent(key, image, "image/png", "no-store").await.expect("put source");
    let meta = sources.head(key).await.expect("head").expect("stored");
    let fp = Fingerprint::of(image);
    let probe = catg_image::probe(image, &limits).expect("probe");
    let facts = AssetFacts::from_probe(&probe);
    let old = AssetRecord {
        fingerprint: fp,
        bytes: image.len() as u64,
        state: AssetState::Ready(facts.clone()),
        first_seen_ms: 1,
        source_key: key.into(),
    };
    assert!(manifest.create_asset(&old).await.expect("create"));
    let source = SourceRecord {
        key: key.into(),
        fingerprint: fp,
        bytes: image.len() as u64,
        etag: meta.etag,
        state: SourceState::Present,
        updated_ms: now_ms(),
    };
    manifest.put_source(&source).await.expect("source");
    let options = |dry_run| BackfillOptions { prefix: "older/".into(), dry_run, ..BackfillOptions::default() };
    let mut go_on = |_: &catg_core::BackfillReport| Flow::Continue;
    let dry = backfill(sources.as_ref(), manifest.as_ref(), &decoding(&limits), &options(true), &mut go_on)
        .await
        .expect("dry run");
    assert_eq!((dry.already_recorded, dry.summarised), (1, 1), "{dry:?}");
    assert_eq!(manifest.asset(&fp).await.expect("asset"), Some(old.clone()), "a dry run changes nothing");
    let run = backfill(sources.as_ref(), manifest.as_ref(), &decoding(&limits), &options(false), &mut go_on)
        .await
        .expect("backfill");
    assert_eq!((run.already_recorded, run.summarised, run.new_assets), (1, 1, 0), "{run:?}");
    let expected = catg_image::verify(image, &probe, &limits).expect("verify").summary;
    let now = manifest.asset(&fp).await.expect("asset").expect("asset");
    assert!(expected.is_some());
    assert_eq!(now.state, AssetState::Ready(AssetFacts { summary: expected, ..facts }), "the summary is filled in");
    let again = backfill(sources.as_ref(), manifest.as_ref(), &decoding(&limits), &options(false), &mut go_on)
        .await
        .expect("again");
    assert_eq!((again.already_recorded, again.summarised), (1, 0), "once: {again:?}");
}

/// Limits with a budget of their own (each check runs alone).
fn decoding(limits: &catg_image::Limits) -> catg_core::Decoding {
    catg_core::Decoding::new(limits.clone(), Arc::new(catg_core::RenderBudget::new(256)))
}
