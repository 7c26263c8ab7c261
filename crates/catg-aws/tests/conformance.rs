//! The port contract (`catg-conformance`) against the AWS adapters, over the wire: S3 and SQS
//! on moto, DynamoDB on DynamoDB Local, started by the test command (`infra/local-stack.sh`).
//! Without them this fails, naming what to start: it never skips.

use catg_aws::{create_table, s3_client, sdk_config, DynamoManifest, S3ObjectStore, SqsQueue};
use std::sync::Arc;

fn require_local_stack() {
    for var in ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_DYNAMODB"] {
        assert!(
            std::env::var_os(var).is_some(),
            "{var} is not set: these tests run against moto and DynamoDB Local; run scripts/test, or \
             `infra/local-stack.sh up /tmp/stack.env && source /tmp/stack.env` first"
        );
    }
}

/// A name no other test run uses.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), catg_core::model::now_ms() % 1_000_000_000)
}

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
