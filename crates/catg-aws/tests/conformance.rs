//! The port contract (`catg-conformance`) against the AWS adapters, over the wire: S3 and SQS
//! on moto, DynamoDB on DynamoDB Local, started by the test command (`infra/local-stack.sh`).
//! Without them this fails, naming what to start: it never skips.

use catg_aws::{create_table, s3_client, sdk_config, DynamoManifest, S3ObjectStore, SqsQueue};
use catg_conformance::{require_local_aws_stack as require_local_stack, unique_name as unique};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_object_store_meets_the_contract() {
    require_local_stack();
    let sdk = sdk_config().await;
    let client = s3_client(&sdk);
    let bucket = unique("catg-conformance");
    client.create_bucket().bucket(&bucket).send().await.expect("create bucket");
    catg_conformance::object_store(Arc::new(S3ObjectStore::new(client, bucket)), "conformance").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_manifest_meets_the_contract() {
    require_local_stack();
    let sdk = sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = unique("catg-conformance");
    create_table(&client, &table).await.expect("create table");
    catg_conformance::manifest(Arc::new(DynamoManifest::new(client, table)), "conformance").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqs_job_queue_meets_the_contract() {
    require_local_stack();
    let sdk = sdk_config().await;
    let client = aws_sdk_sqs::Client::new(&sdk);
    let queue = client.create_queue().queue_name(unique("catg-conformance")).send().await.expect("create queue");
    let url = queue.queue_url().expect("queue url").to_string();
    catg_conformance::leased_queue(Arc::new(SqsQueue::new(client, url))).await;
}

/// Fresh source and variant buckets and a fresh table: the use-case checks walk whole stores.
async fn fresh_stores(tag: &str) -> (Arc<S3ObjectStore>, Arc<S3ObjectStore>, Arc<DynamoManifest>) {
    require_local_stack();
    let sdk = sdk_config().await;
    let s3 = s3_client(&sdk);
    let (sources, variants) = (unique(&format!("catg-{tag}-src")), unique(&format!("catg-{tag}-var")));
    for bucket in [&sources, &variants] {
        s3.create_bucket().bucket(bucket).send().await.expect("create bucket");
    }
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let table = unique(&format!("catg-{tag}"));
    create_table(&dynamo, &table).await.expect("create table");
    (
        Arc::new(S3ObjectStore::new(s3.clone(), sources)),
        Arc::new(S3ObjectStore::new(s3, variants)),
        Arc::new(DynamoManifest::new(dynamo, table)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingest_and_render_hold_under_concurrency_and_redelivery_on_aws() {
    let (sources, variants, manifest) = fresh_stores("use").await;
    catg_conformance::ingest_and_render(sources, variants, manifest, &catg_conformance::sample_image(), "usecases")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_repairs_drift_on_aws() {
    let (sources, variants, manifest) = fresh_stores("rec").await;
    catg_conformance::reconcile_repairs_drift(sources, variants, manifest, &catg_conformance::sample_image()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backfill_resumes_on_aws() {
    let (sources, _, manifest) = fresh_stores("bf").await;
    catg_conformance::backfill_resumes(sources, manifest, &catg_conformance::sample_image()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backfill_adds_summaries_on_aws() {
    let (sources, _, manifest) = fresh_stores("sum").await;
    catg_conformance::backfill_adds_summaries(sources, manifest, &catg_conformance::sample_image()).await;
}
