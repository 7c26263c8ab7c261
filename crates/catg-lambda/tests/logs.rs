//! The Lambda functions' log lines, in a test binary of their own: the test installs a
//! thread-local subscriber, and other tests registering the same callsites at the same moment
//! from other threads could leave a span out of what it captures.

use catg_lambda::{handle_s3_event, handle_sqs_event};
use serde_json::Value;
use std::sync::Arc;

mod support;
use support::*;

/// A log writer the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// With `AWS_LAMBDA_LOG_FORMAT=JSON` (as the template sets it), every log line of an ingest, a
/// request and a render is one JSON object with its level, message and the span that names
/// what it is about (object key, message id, request target); the request's line carries the
/// outcome, the cache key and the canonical recipe, and never the raw query (a signature could
/// be in it).
#[tokio::test(flavor = "current_thread")]
async fn lambda_logs_are_json_lines_naming_the_object_request_and_message() {
    let stack = stack().await;
    let logs = Captured::default();
    let writer = logs.clone();
    // The current-thread runtime runs every task here, so the thread's default catches them all.
    let _guard = tracing::subscriber::set_default(catg_lambda::log_subscriber(true, move || writer.clone()));

    stack.put("cat.jpg", corpus("jpeg_baseline.jpg")).await;
    handle_s3_event(&stack.aws, &stack.aws.decoding(&stack.config), stack.s3_event("s3-put.json", "cat.jpg"))
        .await
        .expect("ingest");
    let query = "w=120&fmt=webp&zzsecretzz=1";
    assert_eq!(stack.get("/cat.jpg", query, "image/webp").await.0, 400, "an unknown parameter is refused");
    let (status, headers, body) = stack.get("/cat.jpg", "w=120&fmt=webp", "image/webp").await;
    assert_eq!(status, 202);
    // On the deployed path too, a waiting image request is answered with a placeholder image.
    assert_eq!(headers.get("content-type").and_then(|v| v.to_str().ok()), Some("image/webp"));
    assert!(body.starts_with(b"RIFF") && body.len() > 20, "a WebP placeholder");
    let (batch, _) = stack.sqs_event(&stack.config.queue_url.clone().expect("queue")).await;
    assert!(handle_sqs_event(&stack.aws.renderer(&stack.config), batch).await.batch_item_failures.is_empty());

    let text = String::from_utf8(logs.0.lock().expect("logs").clone()).expect("UTF-8");
    assert!(!text.contains("zzsecretzz"), "a query parameter reached the logs:\n{text}");
    let lines: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    for line in &lines {
        assert!(line["level"].is_string() && line["fields"]["message"].is_string(), "{line}");
    }
    let find = |message: &str| lines.iter().filter(|l| l["fields"]["message"] == message).cloned().collect::<Vec<_>>();
    let ingested = find("ingested");
    assert_eq!(ingested.len(), 1, "{text}");
    assert_eq!(ingested[0]["span"]["name"], "object");
    assert_eq!(ingested[0]["span"]["key"], "cat.jpg");
    assert_eq!(ingested[0]["fields"]["fingerprint"].as_str().map(str::len), Some(64));
    let answered = find("answered");
    assert_eq!(answered.len(), 2, "{text}");
    assert_eq!(
        (answered[0]["fields"]["status"].as_u64(), answered[0]["fields"]["outcome"].as_str()),
        (Some(400), Some("invalid_recipe"))
    );
    assert_eq!(
        (answered[1]["fields"]["status"].as_u64(), answered[1]["fields"]["outcome"].as_str()),
        (Some(202), Some("placeholder")),
        "an Accept naming an image type gets a placeholder while the variant renders"
    );
    assert_eq!(answered[1]["span"]["name"], "request");
    assert_eq!(answered[1]["span"]["target"], "cat.jpg");
    let rendered = find("rendered");
    assert_eq!(rendered.len(), 1, "{text}");
    assert_eq!(rendered[0]["span"]["name"], "message");
    assert_eq!(rendered[0]["fields"]["cache_key"].as_str().map(str::len), Some(64));
}
