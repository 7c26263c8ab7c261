//! The port contract (`catg-conformance`) against the local adapters. The AWS adapters run the
//! same suite against moto and DynamoDB Local.

use catg_local::{FsObjectStore, SqliteStore};
use std::sync::Arc;

/// Removed when dropped: keep it alive for as long as the store that lives in it.
fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("catg-conformance-").tempdir().expect("temp dir")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn folder_object_store_meets_the_contract() {
    let dir = tempdir();
    let store = Arc::new(FsObjectStore::new(dir.path()).expect("store"));
    catg_conformance::object_store(store, "conformance").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_manifest_meets_the_contract() {
    let dir = tempdir();
    let store = Arc::new(SqliteStore::open(&dir.path().join("catg.db")).expect("store"));
    catg_conformance::manifest(store, "conformance").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_job_queue_meets_the_contract() {
    let dir = tempdir();
    let store = Arc::new(SqliteStore::open(&dir.path().join("catg.db")).expect("store"));
    catg_conformance::leased_queue(store).await;
}

/// A source folder, a variant folder and a database in `dir`.
fn fresh_stores(dir: &tempfile::TempDir) -> (Arc<FsObjectStore>, Arc<FsObjectStore>, Arc<SqliteStore>) {
    (
        Arc::new(FsObjectStore::new(dir.path().join("images")).expect("sources")),
        Arc::new(FsObjectStore::new(dir.path().join("variants")).expect("variants")),
        Arc::new(SqliteStore::open(&dir.path().join("catg.db")).expect("store")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingest_and_render_hold_under_concurrency_and_redelivery_locally() {
    let dir = tempdir();
    let (sources, variants, manifest) = fresh_stores(&dir);
    catg_conformance::ingest_and_render(sources, variants, manifest, &catg_conformance::sample_image(), "usecases")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_repairs_drift_locally() {
    let dir = tempdir();
    let (sources, variants, manifest) = fresh_stores(&dir);
    catg_conformance::reconcile_repairs_drift(sources, variants, manifest, &catg_conformance::sample_image()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backfill_resumes_locally() {
    let dir = tempdir();
    let (sources, _, manifest) = fresh_stores(&dir);
    catg_conformance::backfill_resumes(sources, manifest, &catg_conformance::sample_image()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backfill_adds_summaries_locally() {
    let dir = tempdir();
    let (sources, _, manifest) = fresh_stores(&dir);
    catg_conformance::backfill_adds_summaries(sources, manifest, &catg_conformance::sample_image()).await;
}
