//! The stack the over-the-wire tests share: fresh buckets, table and queues on moto and
//! DynamoDB Local, and the payloads in `events/` filled in for them.
#![allow(dead_code)] // each test binary uses a part

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_s3::primitives::ByteStream;
use catg_lambda::{Aws, Config};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

pub fn corpus(file: &str) -> Vec<u8> {
    let dir = std::env::var_os("CATG_CORPUS").map(PathBuf::from).unwrap_or_else(|| repo("../shared/corpus"));
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("the test corpus is needed ({}): {e}", dir.display()))
}

pub fn event(name: &str) -> Value {
    let text = std::fs::read_to_string(repo("events").join(name)).expect("read event");
    serde_json::from_str(&text).expect("event is JSON")
}

/// A fresh stack: two buckets, a table, a queue with a dead-letter queue (redrive after 2).
pub struct Stack {
    pub config: Config,
    pub aws: Aws,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub dlq_url: String,
}

pub async fn stack() -> Stack {
    stack_with(&[]).await
}

/// A queue's ARN, as a redrive policy or a bucket notification names it.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .expect("queue arn")
}

pub async fn stack_with(extra_env: &[(&'static str, &str)]) -> Stack {
    catg_conformance::require_local_aws_stack();
    let id = catg_conformance::unique_name("t");
    let sdk = catg_aws::sdk_config().await;
    let s3 = catg_aws::s3_client(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (source, variants, table) = (format!("src-{id}"), format!("var-{id}"), format!("catg-{id}"));
    for bucket in [&source, &variants] {
        s3.create_bucket().bucket(bucket).send().await.expect("create bucket");
    }
    catg_aws::create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await.expect("create table");
    let dlq_url = sqs.create_queue().queue_name(format!("dlq-{id}")).send().await.expect("dlq").queue_url.expect("url");
    let dlq_arn = queue_arn(&sqs, &dlq_url).await;
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("jobs-{id}"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}).to_string(),
        )
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    // Pre-warm guesses: a queue of their own, as the template makes.
    let prewarm_url = sqs
        .create_queue()
        .queue_name(format!("prewarm-{id}"))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .expect("prewarm queue")
        .queue_url
        .expect("url");
    let env = [
        ("CATG_SOURCE_BUCKET", source),
        ("CATG_VARIANTS_BUCKET", variants),
        ("CATG_TABLE", table),
        ("CATG_QUEUE_URL", queue_url),
        ("CATG_PREWARM_QUEUE_URL", prewarm_url),
        ("CATG_WAIT_MS", "0".to_string()),
    ];
    let lookup = |name: &str| {
        let extra = extra_env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
        extra.or_else(|| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))
    };
    let config = Config::from_lookup(lookup).expect("config");
    let aws = Aws::connect(&config).await;
    Stack { config, aws, s3, sqs, dlq_url }
}

/// An endpoint nothing listens on: a service there is down, as when moto or DynamoDB Local is
/// stopped, while the shared servers keep answering the other tests.
pub fn closed_endpoint() -> String {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    format!("http://{closed}")
}

impl Stack {
    /// The same stack seen through other adapters (some of them pointed at a dead endpoint).
    /// This stack over other stores (one that is down, say).
    pub fn with_stores(&self, stores: catg_core::Stores) -> Stack {
        Stack {
            config: self.config.clone(),
            aws: self.aws.with_stores(stores),
            s3: self.s3.clone(),
            sqs: self.sqs.clone(),
            dlq_url: self.dlq_url.clone(),
        }
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(&self.config.source_bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .expect("put");
    }

    /// `events/s3-put.json` (or -delete) for this bucket and a form-encoded key.
    pub fn s3_event(&self, template: &str, encoded_key: &str) -> S3Event {
        let mut value = event(template);
        let record = &mut value["Records"][0]["s3"];
        record["bucket"]["name"] = Value::from(self.config.source_bucket.clone());
        record["bucket"]["arn"] = Value::from(format!("arn:aws:s3:::{}", self.config.source_bucket));
        record["object"]["key"] = Value::from(encoded_key);
        serde_json::from_value(value).expect("an S3 event")
    }

    /// `events/function-url-get.json` for a path and query.
    pub async fn get(&self, raw_path: &str, query: &str, accept: &str) -> (u16, axum::http::HeaderMap, Vec<u8>) {
        let mut value = event("function-url-get.json");
        value["rawPath"] = Value::from(raw_path);
        value["rawQueryString"] = Value::from(query);
        value["requestContext"]["http"]["path"] = Value::from(raw_path);
        value["headers"]["accept"] = Value::from(accept);
        let request = lambda_http::request::from_str(&value.to_string()).expect("a Function URL event");
        let router =
            catg_http::router(Arc::new(catg_lambda::http_state(&self.aws, &self.config).await.expect("state")));
        let response = router.oneshot(request).await.expect("router");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 64 << 20).await.expect("body").to_vec();
        (status, headers, body)
    }

    /// Run the transform over everything in a queue, as its event source mapping would: receive
    /// batches, handle them, delete what succeeded. Returns how many jobs were handled.
    pub async fn drain(&self, queue_url: &str) -> usize {
        let renderer = self.aws.renderer(&self.config);
        let mut handled = 0;
        loop {
            let (batch, handles) = self.sqs_event(queue_url).await;
            if batch.records.is_empty() {
                return handled;
            }
            handled += batch.records.len();
            let response = catg_lambda::handle_sqs_event(&renderer, batch).await;
            assert!(response.batch_item_failures.is_empty(), "a job failed: {:?}", response.batch_item_failures);
            for handle in handles {
                self.sqs.delete_message().queue_url(queue_url).receipt_handle(handle).send().await.expect("delete");
            }
        }
    }

    /// Receive job messages the way Lambda's SQS poller would and wrap them in
    /// `events/sqs-batch.json`.
    pub async fn sqs_event(&self, queue_url: &str) -> (SqsEvent, Vec<String>) {
        self.sqs_event_from(queue_url, "sqs-batch.json").await
    }

    /// The same, wrapped in any SQS event fixture.
    pub async fn sqs_event_from(&self, queue_url: &str, fixture: &str) -> (SqsEvent, Vec<String>) {
        let out = self
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let messages = out.messages.unwrap_or_default();
        let mut value = event(fixture);
        let template = value["Records"][0].clone();
        value["Records"] = Value::Array(
            messages
                .iter()
                .map(|m| {
                    let mut record = template.clone();
                    record["messageId"] = Value::from(m.message_id().unwrap_or_default());
                    record["receiptHandle"] = Value::from(m.receipt_handle().unwrap_or_default());
                    record["body"] = Value::from(m.body().unwrap_or_default());
                    record
                })
                .collect(),
        );
        let handles = messages.iter().filter_map(|m| m.receipt_handle().map(str::to_string)).collect();
        (serde_json::from_value(value).expect("an SQS event"), handles)
    }

    pub async fn queue_depth(&self, queue_url: &str) -> usize {
        let out = self
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .expect("peek");
        out.messages.unwrap_or_default().len()
    }
}
