//! The port contract (`catg-conformance`) against the local adapters. The AWS adapters run the
//! same suite against moto and DynamoDB Local.

use catg_local::{FsObjectStore, SqliteStore};
use std::sync::Arc;

fn tempdir() -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("catg-conformance-{}-{}", std::process::id(), catg_core::model::now_ms()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn folder_object_store_meets_the_contract() {
    let store = Arc::new(FsObjectStore::new(tempdir()).expect("store"));
    catg_conformance::object_store(store, "conformance").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_manifest_meets_the_contract() {
    let store = Arc::new(SqliteStore::open(&tempdir().join("catg.db")).expect("store"));
    catg_conformance::manifest(store, "conformance").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_job_queue_meets_the_contract() {
    let store = Arc::new(SqliteStore::open(&tempdir().join("catg.db")).expect("store"));
    catg_conformance::leased_queue(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingest_and_render_hold_under_concurrency_and_redelivery_locally() {
    let dir = tempdir();
    catg_conformance::ingest_and_render(
        Arc::new(FsObjectStore::new(dir.join("images")).expect("sources")),
        Arc::new(FsObjectStore::new(dir.join("variants")).expect("variants")),
        Arc::new(SqliteStore::open(&dir.join("catg.db")).expect("store")),
        &catg_conformance::sample_image(),
        "usecases",
    )
    .await;
}
