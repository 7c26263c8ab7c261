//! The handlers (ingest, resolver, transform, reconcile), driven by the real event payloads in `events/`, over the wire: S3 and
//! SQS on moto, DynamoDB on DynamoDB Local (started by the test command). Never skipped.

use aws_sdk_s3::primitives::ByteStream;
use catg_core::model::{AssetState, SourceState};
use catg_core::Stores;
use catg_lambda::{handle_ingest_queue, handle_s3_event, handle_sqs_event, IngestEvent};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

mod support;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upload_ingest_resolve_transform_resolve() {
    let stack = stack().await;
    let key = "photos/my cat+1 ü.jpg";
    stack.put(key, corpus("jpeg_baseline.jpg")).await;

    // Ingest, from the S3 put event with the key as S3 encodes it.
    let put = stack.s3_event("s3-put.json", "photos/my+cat%2B1+%C3%BC.jpg");
    let report = handle_s3_event(&stack.aws, &stack.aws.decoding(&stack.config), put.clone()).await.expect("ingest");
    assert_eq!(report.ingested, vec![key.to_string()]);
    let source = stack.aws.stores.manifest.source(key).await.expect("source").expect("recorded");
    let asset = stack.aws.stores.manifest.asset(&source.fingerprint).await.expect("asset").expect("recorded");
    assert!(matches!(asset.state, AssetState::Ready(ref f) if (f.width, f.height) == (320, 240)));

    // A duplicate event changes nothing.
    handle_s3_event(&stack.aws, &stack.aws.decoding(&stack.config), put).await.expect("again");
    assert_eq!(stack.aws.stores.manifest.source(key).await.expect("source"), Some(source.clone()));

    // The resolver: a miss is queued (202), exactly one message.
    let path = "/photos/my%20cat%2B1%20%C3%BC.jpg";
    let (status, headers, _) = stack.get(path, "w=200&fmt=webp", "image/webp").await;
    assert_eq!(status, 202);
    assert_eq!(headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let (status, _, _) = stack.get(path, "width=200&format=webp", "image/webp").await;
    assert_eq!(status, 202, "still pending, and not queued twice");

    // The transform, from the SQS batch Lambda would receive.
    let queue_url = stack.config.queue_url.clone().expect("queue");
    let (batch, handles) = stack.sqs_event(&queue_url).await;
    assert_eq!(batch.records.len(), 1, "one job for two requests");
    let renderer = stack.aws.renderer(&stack.config);
    let response = handle_sqs_event(&renderer, batch.clone()).await;
    assert!(response.batch_item_failures.is_empty());
    for handle in handles {
        stack.sqs.delete_message().queue_url(&queue_url).receipt_handle(handle).send().await.expect("delete");
    }
    // Redelivery of the same batch: acknowledged without rendering again.
    assert!(handle_sqs_event(&renderer, batch).await.batch_item_failures.is_empty());

    let (status, headers, body) = stack.get(path, "w=200&fmt=webp", "image/webp").await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("content-type").and_then(|v| v.to_str().ok()), Some("image/webp"));
    let img = image::load_from_memory(&body).expect("a WebP");
    assert_eq!((img.width(), img.height()), (200, 150));
    let etag = headers.get("etag").cloned().expect("etag");

    // The same bytes under a second key share the asset and the variant: no new job.
    stack.put("copy.jpg", corpus("jpeg_baseline.jpg")).await;
    handle_s3_event(&stack.aws, &stack.aws.decoding(&stack.config), stack.s3_event("s3-put.json", "copy.jpg"))
        .await
        .expect("ingest copy");
    let (status, headers, _) = stack.get("/copy.jpg", "w=200&fmt=webp", "image/webp").await;
    assert_eq!((status, headers.get("etag")), (200, Some(&etag)));
    assert_eq!(stack.queue_depth(&queue_url).await, 0);

    // Removal: the delete event marks the key removed; the resolver answers 404.
    stack.s3.delete_object().bucket(&stack.config.source_bucket).key(key).send().await.expect("delete");
    let report = handle_s3_event(
        &stack.aws,
        &stack.aws.decoding(&stack.config),
        stack.s3_event("s3-delete.json", "photos/my+cat%2B1+%C3%BC.jpg"),
    )
    .await
    .expect("remove");
    assert_eq!(report.removed, vec![key.to_string()]);
    assert_eq!(
        stack.aws.stores.manifest.source(key).await.expect("source").map(|s| s.state),
        Some(SourceState::Removed)
    );
    assert_eq!(stack.get(path, "w=200&fmt=webp", "image/webp").await.0, 404);
}

/// What phones upload: an iPhone-style HEIC (512-pixel HEVC tiles, stored landscape and turned
/// upright by `irot`, its EXIF orientation agreeing, in Display P3) is ingested with its upright
/// size, and rendered upright in sRGB by the transform.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_iphone_heic_is_ingested_and_rendered_upright_in_srgb() {
    let stack = stack().await;
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("iphone-style.json")).expect("manifest")).expect("JSON");
    stack.put("phone/IMG_0001.HEIC", std::fs::read(fixtures.join("iphone-style.heic")).expect("fixture")).await;
    let put = stack.s3_event("s3-put.json", "phone/IMG_0001.HEIC");
    handle_s3_event(&stack.aws, &stack.aws.decoding(&stack.config), put).await.expect("ingest");
    let source = stack.aws.stores.manifest.source("phone/IMG_0001.HEIC").await.expect("source").expect("recorded");
    let asset = stack.aws.stores.manifest.asset(&source.fingerprint).await.expect("asset").expect("recorded");
    assert!(
        matches!(asset.state, AssetState::Ready(ref f) if (f.width, f.height) == (960, 1280)),
        "ready and upright: {:?}",
        asset.state
    );

    let (status, _, _) = stack.get("/phone/IMG_0001.HEIC", "w=480&fmt=png", "image/png").await;
    assert_eq!(status, 202);
    let queue_url = stack.config.queue_url.clone().expect("queue");
    let (batch, _) = stack.sqs_event(&queue_url).await;
    assert!(handle_sqs_event(&stack.aws.renderer(&stack.config), batch).await.batch_item_failures.is_empty());
    let (status, _, body) = stack.get("/phone/IMG_0001.HEIC", "w=480&fmt=png", "image/png").await;
    assert_eq!(status, 200);
    let image = image::load_from_memory(&body).expect("a PNG").to_rgb8();
    assert_eq!(image.dimensions(), (480, 640), "upright");
    let tolerance = expected["tolerance"].as_i64().expect("tolerance");
    for probe in expected["probes"].as_array().expect("probes") {
        let at = |k: &str| probe[k].as_u64().expect("coordinate") as u32 / 2;
        let got = image.get_pixel(at("x"), at("y")).0;
        let want: Vec<i64> = probe["rgb"].as_array().expect("rgb").iter().map(|v| v.as_i64().expect("value")).collect();
        assert!(
            (0..3).all(|c| (i64::from(got[c]) - want[c]).abs() <= tolerance),
            "{}: {got:?}, want {want:?} (sRGB from Display P3)",
            probe["name"]
        );
    }
}

/// The deployed stack's `SourcePrefix`: keys outside it are never served, even when they exist
/// and a caller knows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_outside_the_source_prefix_are_not_served() {
    let stack = stack_with(&[("CATG_SOURCE_PREFIX", "public/")]).await;
    stack.put("private/secret.jpg", corpus("jpeg_baseline.jpg")).await;
    stack.put("public/cat.jpg", corpus("jpeg_baseline.jpg")).await;
    assert_eq!(stack.get("/private/secret.jpg", "w=20&fmt=png", "").await.0, 404);
    assert!(
        stack.aws.stores.manifest.source("private/secret.jpg").await.expect("source").is_none(),
        "not even ingested"
    );
    assert_eq!(stack.get("/public/cat.jpg", "w=20&fmt=png", "").await.0, 202);
}

/// `CATG_SIGNING_KEYS` on the resolver: the Function URL event path refuses unsigned and
/// mis-signed URLs with 403, and takes signed ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_signing_keys_only_signed_urls_are_taken() {
    let spec = "k1:bGFtYmRhLXNpZ25pbmcta2V5LWZvci10aGUtdGVzdHMtMDEyMzQ1";
    let stack = stack_with(&[("CATG_SIGNING_KEYS", spec)]).await;
    stack.put("cat.jpg", corpus("jpeg_baseline.jpg")).await;
    let keys = catg_core::SigningKeys::parse(spec).expect("keys");
    let recipe = catg_core::Recipe::parse("w=20&fmt=png", &catg_core::RecipeLimits::default()).expect("recipe");
    let sig = keys.sign(catg_core::SignedTarget::Key("cat.jpg"), &recipe, None);
    let (status, _, body) = stack.get("/cat.jpg", "w=20&fmt=png", "").await;
    assert_eq!(status, 403);
    assert_eq!(serde_json::from_slice::<Value>(&body).expect("json")["error"]["kind"], "forbidden");
    assert_eq!(stack.get("/cat.jpg", &format!("w=21&fmt=png&sig={sig}"), "").await.0, 403);
    assert_eq!(stack.get("/cat.jpg", &format!("w=20&fmt=png&sig={sig}"), "").await.0, 202);
}

/// The deployed resolver's keys live in Secrets Manager (`CATG_SIGNING_KEYS_SECRET`, the
/// secret's ARN): read when the function starts, re-read once older than the TTL, so a rotation
/// (a new secret value) takes effect without a redeploy. A secret that cannot be read stops
/// the start rather than serving unsigned.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signing_keys_come_from_secrets_manager_and_rotate_without_a_restart() {
    let (old, new) = (
        "old:b2xkLWtleS1mb3ItdGhlLXNlY3JldHMtbWFuYWdlci10ZXN0LTAx",
        "new:bmV3LWtleS1mb3ItdGhlLXNlY3JldHMtbWFuYWdlci10ZXN0LTAx",
    );
    let sdk = catg_aws::sdk_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let name = catg_conformance::unique_name("catg-signing");
    let arn = secrets.create_secret().name(&name).secret_string(old).send().await.expect("create").arn.expect("arn");
    let stack = stack_with(&[("CATG_SIGNING_KEYS_SECRET", &arn), ("CATG_SIGNING_KEYS_TTL_S", "0")]).await;
    stack.put("cat.jpg", corpus("jpeg_baseline.jpg")).await;
    // One resolver for the whole test, as one warm function instance.
    let router = catg_http::router(Arc::new(
        catg_lambda::http_state(&stack.aws, &stack.config).await.expect("keys read at start"),
    ));
    let get = |query: String| {
        let router = router.clone();
        async move {
            let mut value = event("function-url-get.json");
            value["rawPath"] = Value::from("/cat.jpg");
            value["requestContext"]["http"]["path"] = Value::from("/cat.jpg");
            value["rawQueryString"] = Value::from(query);
            let request = lambda_http::request::from_str(&value.to_string()).expect("a Function URL event");
            router.oneshot(request).await.expect("router").status().as_u16()
        }
    };
    let recipe = catg_core::Recipe::parse("w=20&fmt=png", &catg_core::RecipeLimits::default()).expect("recipe");
    let signed = |spec: &str| {
        let keys = catg_core::SigningKeys::parse(spec).expect("keys");
        format!("w=20&fmt=png&sig={}", keys.sign(catg_core::SignedTarget::Key("cat.jpg"), &recipe, None))
    };
    assert_eq!(get("w=20&fmt=png".into()).await, 403, "unsigned");
    assert_eq!(get(signed(old)).await, 202, "signed with the secret's key");
    assert_eq!(get(signed(new)).await, 403, "a key not in the secret");

    secrets.put_secret_value().secret_id(&arn).secret_string(new).send().await.expect("rotate");
    assert_eq!(get(signed(new)).await, 202, "the rotated key is taken once the TTL has passed");
    assert_eq!(get(signed(old)).await, 403, "the retired key is refused");

    // A configuration naming a secret that is not there does not start.
    let missing = format!("{arn}-gone");
    let broken = stack_with(&[("CATG_SIGNING_KEYS_SECRET", &missing)]).await;
    let Err(refused) = catg_lambda::http_state(&broken.aws, &broken.config).await else { panic!("no keys, no start") };
    assert!(refused.to_string().contains("could not be read"), "{refused}");
    assert!(!refused.to_string().contains("bmV3"), "no secret in the message: {refused}");
}

/// The deployed stack's upload path: S3 notifies the ingest queue (moto's S3 sends real
/// notifications, its test message first), and the ingest function takes the batch in the
/// shape of `events/sqs-s3-notification.json`, acknowledging what it ingested and the test
/// message, and reporting a message it could not read as a batch item failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_reach_ingest_through_the_ingest_queue() {
    let stack = stack().await;
    let queue_url = stack
        .sqs
        .create_queue()
        .queue_name(catg_conformance::unique_name("uploads"))
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let queue_arn = queue_arn(&stack.sqs, &queue_url).await;
    use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
    let notify = QueueConfiguration::builder()
        .queue_arn(queue_arn)
        .events(Event::S3ObjectCreated)
        .events(Event::S3ObjectRemoved)
        .build()
        .expect("queue configuration");
    stack
        .s3
        .put_bucket_notification_configuration()
        .bucket(&stack.config.source_bucket)
        .notification_configuration(NotificationConfiguration::builder().queue_configurations(notify).build())
        .send()
        .await
        .expect("notifications");
    stack.put("queued/cat one.jpg", corpus("jpeg_baseline.jpg")).await;
    stack.sqs.send_message().queue_url(&queue_url).message_body("not an S3 event").send().await.expect("junk");

    let mut bodies = Vec::new();
    let mut failed = Vec::new();
    for _ in 0..5 {
        let (batch, _) = stack.sqs_event_from(&queue_url, "sqs-s3-notification.json").await;
        if batch.records.is_empty() {
            break;
        }
        bodies.extend(batch.records.iter().map(|r| r.body.clone().unwrap_or_default()));
        let ids: Vec<(String, String)> = batch
            .records
            .iter()
            .map(|r| (r.message_id.clone().unwrap_or_default(), r.body.clone().unwrap_or_default()))
            .collect();
        // The function's entry point reads the batch as an SQS event, not a bare S3 one.
        let IngestEvent::Queued(batch) =
            IngestEvent::from_value(serde_json::to_value(&batch).expect("json")).expect("event")
        else {
            panic!("an SQS batch read as a bare S3 event");
        };
        let response = handle_ingest_queue(&stack.aws, &stack.aws.decoding(&stack.config), batch).await;
        for f in response.batch_item_failures {
            failed.push(ids.iter().find(|(id, _)| *id == f.item_identifier).expect("a message of the batch").1.clone());
        }
    }
    assert!(bodies.iter().any(|b| b.contains("s3:TestEvent")), "moto's S3 sends its test message first: {bodies:?}");
    assert_eq!(failed, vec!["not an S3 event".to_string()], "only the junk is left for the dead-letter queue");
    let source = stack.aws.stores.manifest.source("queued/cat one.jpg").await.expect("source").expect("ingested");
    assert_eq!(source.state, SourceState::Present);
    assert_eq!(stack.get("/queued/cat%20one.jpg", "w=20&fmt=png", "").await.0, 202);

    // A bare S3 event (a replay by hand) is still an S3 event.
    let direct = IngestEvent::from_value(event("s3-put.json")).expect("event");
    assert!(matches!(direct, IngestEvent::Direct(_)), "{direct:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hostile_upload_is_recorded_as_rejected_and_the_invocation_succeeds() {
    let stack = stack().await;
    stack.put("bomb.png", corpus("png_bomb.png")).await;
    stack.put("logo.png", corpus("vector.svg")).await;
    let mut event = stack.s3_event("s3-put.json", "bomb.png");
    let mut second = event.records[0].clone();
    second.s3.object.key = Some("logo.png".into());
    event.records.push(second);
    let report =
        handle_s3_event(&stack.aws, &stack.aws.decoding(&stack.config), event).await.expect("the invocation succeeds");
    assert_eq!(report.ingested.len(), 2);
    for (key, reason) in [("bomb.png", "too_many_pixels"), ("logo.png", "unsupported_format")] {
        let source = stack.aws.stores.manifest.source(key).await.expect("source").expect("recorded");
        let asset = stack.aws.stores.manifest.asset(&source.fingerprint).await.expect("asset").expect("recorded");
        assert!(
            matches!(asset.state, AssetState::Rejected { reason: ref r, .. } if r == reason),
            "{key}: {:?}",
            asset.state
        );
        let (status, _, body) = stack.get(&format!("/{key}"), "w=10", "*/*").await;
        assert_eq!(status, 422);
        assert_eq!(serde_json::from_slice::<Value>(&body).expect("json")["error"]["kind"], reason);
    }
}

/// DynamoDB unreachable (its endpoint pointed at a closed port, as when DynamoDB Local is
/// stopped; the shared servers keep running for the other tests): the resolver answers 503 with
/// Retry-After, an ingest invocation fails (Lambda retries it, then its DLQ keeps it), a render
/// job is reported as a batch item failure and stays on the queue. Once DynamoDB answers again,
/// the same event, the same message and the same request all succeed: nothing was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manifest_outage_fails_cleanly_everywhere_and_everything_succeeds_after() {
    let stack = stack().await;
    stack.put("cat.jpg", corpus("jpeg_baseline.jpg")).await;
    let sdk = catg_aws::sdk_config().await;
    let dead = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk).endpoint_url(closed_endpoint()).build(),
    );
    let down = stack.with_stores(Stores {
        manifest: Arc::new(catg_aws::DynamoManifest::new(dead, &stack.config.table)),
        ..stack.aws.stores.clone()
    });

    // Ingest during the outage: the invocation fails, retryably; then it succeeds.
    let put = stack.s3_event("s3-put.json", "cat.jpg");
    let failed = handle_s3_event(&down.aws, &down.aws.decoding(&down.config), put.clone()).await.expect_err("outage");
    assert!(failed.is_retryable(), "{failed}");
    handle_s3_event(&stack.aws, &stack.aws.decoding(&stack.config), put).await.expect("after the outage");

    // The resolver during the outage: 503 + Retry-After, a JSON body without internals.
    let (status, headers, body) = down.get("/cat.jpg", "w=20&fmt=png", "").await;
    assert_eq!(status, 503);
    assert!(headers.get("retry-after").is_some());
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("unavailable") && !body.contains("127.0.0.1") && !body.contains("dispatch"), "{body}");

    // A job queued while up, delivered while down: reported failed, left on the queue.
    assert_eq!(stack.get("/cat.jpg", "w=20&fmt=png", "").await.0, 202);
    let queue_url = stack.config.queue_url.clone().expect("queue");
    let (batch, _) = stack.sqs_event(&queue_url).await;
    assert_eq!(batch.records.len(), 1);
    let response = handle_sqs_event(&down.aws.renderer(&down.config), batch).await;
    assert_eq!(response.batch_item_failures.len(), 1, "the render job is reported, not dropped");

    // After the outage the same message comes back (visibility timeout) and renders.
    let mut rendered = false;
    for _ in 0..20 {
        let (batch, _) = stack.sqs_event(&queue_url).await;
        if batch.records.is_empty() {
            continue;
        }
        let response = handle_sqs_event(&stack.aws.renderer(&stack.config), batch).await;
        assert!(response.batch_item_failures.is_empty());
        rendered = true;
        break;
    }
    assert!(rendered, "the job came back after its visibility timeout");
    assert_eq!(stack.get("/cat.jpg", "w=20&fmt=png", "").await.0, 200);
}

/// S3, then SQS, unreachable (endpoints pointed at a closed port): ingest fails retryably,
/// serving a stored variant is 503, a render job is a batch item failure; a miss whose job
/// cannot be queued is 503 and gives its claim back, so the first request after the queue
/// recovers queues it at once instead of waiting out the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_and_sqs_outages_fail_cleanly_and_leave_nothing_stuck() {
    let stack = stack().await;
    stack.put("dog.jpg", corpus("jpeg_baseline.jpg")).await;
    let sdk = catg_aws::sdk_config().await;
    let dead_s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk).endpoint_url(closed_endpoint()).force_path_style(true).build(),
    );
    let dead_sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk).endpoint_url(closed_endpoint()).build(),
    );
    let s3_down = stack.with_stores(Stores {
        sources: Arc::new(catg_aws::S3ObjectStore::new(dead_s3.clone(), &stack.config.source_bucket)),
        variants: Arc::new(catg_aws::S3ObjectStore::new(dead_s3, &stack.config.variants_bucket)),
        ..stack.aws.stores.clone()
    });
    let queue_url = stack.config.queue_url.clone().expect("queue");
    let sqs_down = stack.with_stores(Stores {
        queue: Some(Arc::new(catg_aws::SqsQueue::new(dead_sqs, &queue_url)) as Arc<dyn catg_core::ports::JobQueue>),
        ..stack.aws.stores.clone()
    });

    // S3 down: ingest fails retryably; then it succeeds.
    let put = stack.s3_event("s3-put.json", "dog.jpg");
    let failed =
        handle_s3_event(&s3_down.aws, &s3_down.aws.decoding(&stack.config), put.clone()).await.expect_err("outage");
    assert!(failed.is_retryable(), "{failed}");
    handle_s3_event(&stack.aws, &stack.aws.decoding(&stack.config), put).await.expect("after the outage");

    // SQS down: a miss cannot be queued: 503, and the claim is given back.
    let (status, headers, _) = sqs_down.get("/dog.jpg", "w=24&fmt=png", "").await;
    assert_eq!(status, 503);
    assert!(headers.get("retry-after").is_some());
    // Queue back: the very next request claims and queues it (202), rather than waiting out
    // the 60 s lease of a claim nobody will render.
    assert_eq!(stack.get("/dog.jpg", "w=24&fmt=png", "").await.0, 202);
    let (batch, _) = stack.sqs_event(&queue_url).await;
    assert_eq!(batch.records.len(), 1, "queued once, after the outage");

    // S3 down while rendering: the job is a batch item failure and comes back later.
    let response = handle_sqs_event(&s3_down.aws.renderer(&s3_down.config), batch).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    let mut rendered = false;
    for _ in 0..20 {
        let (batch, _) = stack.sqs_event(&queue_url).await;
        if !batch.records.is_empty() {
            assert!(handle_sqs_event(&stack.aws.renderer(&stack.config), batch).await.batch_item_failures.is_empty());
            rendered = true;
            break;
        }
    }
    assert!(rendered, "the job came back after its visibility timeout");
    assert_eq!(stack.get("/dog.jpg", "w=24&fmt=png", "").await.0, 200);

    // S3 down while serving a stored variant: 503, then 200 again.
    let (status, headers, _) = s3_down.get("/dog.jpg", "w=24&fmt=png", "").await;
    assert_eq!(status, 503);
    assert!(headers.get("retry-after").is_some());
    assert_eq!(stack.get("/dog.jpg", "w=24&fmt=png", "").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_message_ends_in_the_dead_letter_queue() {
    let stack = stack().await;
    let queue_url = stack.config.queue_url.clone().expect("queue");
    stack.sqs.send_message().queue_url(&queue_url).message_body("{\"not\": \"a job\"}").send().await.expect("send");
    let renderer = stack.aws.renderer(&stack.config);
    let mut failures = 0;
    for _ in 0..20 {
        let (batch, _) = stack.sqs_event(&queue_url).await;
        if batch.records.is_empty() {
            if stack.queue_depth(&stack.dlq_url).await == 1 {
                assert_eq!(failures, 2, "reported as failed on each of the 2 receives");
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        // The function reports it; Lambda's poller leaves it on the queue; SQS redrives it.
        failures += handle_sqs_event(&renderer, batch).await.batch_item_failures.len();
    }
    panic!("the poison message never reached the dead-letter queue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_scheduled_reconcile_repairs_lost_events_and_expired_variants() {
    let stack = stack_with(&[("CATG_RECONCILE_GRACE_S", "0")]).await;
    stack.put("a.jpg", corpus("jpeg_baseline.jpg")).await;
    handle_s3_event(&stack.aws, &stack.aws.decoding(&stack.config), stack.s3_event("s3-put.json", "a.jpg"))
        .await
        .expect("ingest");
    let queue_url = stack.config.queue_url.clone().expect("queue");
    assert_eq!(stack.get("/a.jpg", "w=64&fmt=png", "*/*").await.0, 202);
    let renderer = stack.aws.renderer(&stack.config);
    let (batch, _) = stack.sqs_event(&queue_url).await;
    assert!(handle_sqs_event(&renderer, batch).await.batch_item_failures.is_empty());
    assert_eq!(stack.get("/a.jpg", "w=64&fmt=png", "*/*").await.0, 200);

    // Drift: the variant expires (the bucket's lifecycle rule), an upload's event is lost, and
    // something no record names lands in the variants bucket.
    let listed = stack.s3.list_objects_v2().bucket(&stack.config.variants_bucket).send().await.expect("list");
    let variant_key = listed.contents()[0].key().expect("key").to_string();
    stack.s3.delete_object().bucket(&stack.config.variants_bucket).key(&variant_key).send().await.expect("expire");
    stack.put("missed.png", corpus("png_rgb8.png")).await;
    let stray = format!("ff/ff/{}.webp", "f".repeat(64));
    stack
        .s3
        .put_object()
        .bucket(&stack.config.variants_bucket)
        .key(&stray)
        .body(ByteStream::from_static(b"stray"))
        .send()
        .await
        .expect("stray");

    let scheduled = event("scheduled.json");
    let deadline = std::time::SystemTime::now() + Duration::from_secs(900);
    let run = |payload: Value| {
        let stack = &stack;
        async move {
            let report =
                catg_lambda::handle_reconcile(&stack.aws, &stack.config, &payload, deadline).await.expect("reconcile");
            serde_json::to_value(report).expect("the function's result is JSON")
        }
    };
    let dry = run(serde_json::json!({"dry_run": true})).await;
    let found = |r: &Value| {
        ["sources_unrecorded", "ready_without_object", "orphan_objects"].map(|k| r[k].as_u64().unwrap_or(99))
    };
    assert_eq!((dry["dry_run"].as_bool(), found(&dry)), (Some(true), [1, 1, 1]), "{dry}");
    assert_eq!(
        stack.aws.stores.manifest.source("missed.png").await.expect("source"),
        None,
        "a dry run changes nothing"
    );

    let repaired = run(scheduled.clone()).await;
    assert_eq!((repaired["dry_run"].as_bool(), found(&repaired)), (Some(false), [1, 1, 1]), "{repaired}");
    assert_eq!(repaired["complete"].as_bool(), Some(true), "{repaired}");
    let missed = stack.aws.stores.manifest.source("missed.png").await.expect("source").expect("ingested by reconcile");
    assert_eq!(missed.state, SourceState::Present);
    let stray_left = stack.s3.head_object().bucket(&stack.config.variants_bucket).key(&stray).send().await;
    assert!(stray_left.is_err(), "the stray object is deleted");
    // The expired variant is rendered again on the next request, not served as missing.
    assert_eq!(stack.get("/a.jpg", "w=64&fmt=png", "*/*").await.0, 202);
    assert_eq!(stack.queue_depth(&queue_url).await, 1);

    let again = run(scheduled.clone()).await;
    assert_eq!(found(&again), [0, 0, 0], "{again}");

    // cargo lambda's emulator sends its timeout as the deadline (600 s after 1970): not a
    // reason to stop at once.
    let emulated = std::time::UNIX_EPOCH + Duration::from_secs(600);
    let report = catg_lambda::handle_reconcile(&stack.aws, &stack.config, &scheduled, emulated).await.expect("run");
    assert!(report.complete, "{report:?}");
}

/// Pre-warming on AWS: after three images teach it a pair of recipes, the transform that renders
/// the first recipe of a fourth queues the second on the pre-warm queue (never the viewers');
/// rendered from there, its first request is a hit, counted served in the manifest.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_transform_prewarms_learned_companions_on_their_own_queue() {
    use catg_core::model::{Origin, VariantState};
    let stack = stack_with(&[("CATG_PREWARM_RELEARN_S", "0")]).await;
    let jobs = stack.config.queue_url.clone().expect("queue");
    let guesses = stack.config.prewarm_queue_url.clone().expect("prewarm queue");
    let images = [("a.png", "png_rgb8.png"), ("b.png", "png_rgba.png"), ("c.jpg", "jpeg_baseline.jpg")];
    for (key, file) in images.iter().chain(&[("d.jpg", "jpeg_exif_orientation_6.jpg")]) {
        stack.put(key, corpus(file)).await;
    }
    for (key, _) in images {
        for recipe in ["w=20&fmt=png", "w=40&fmt=webp"] {
            assert_eq!(stack.get(&format!("/{key}"), recipe, "image/png").await.0, 202, "{key}?{recipe}");
            assert_eq!(stack.drain(&jobs).await, 1);
        }
    }
    assert_eq!(stack.drain(&guesses).await, 0, "nothing learned yet: no guesses");
    assert_eq!(stack.get("/d.jpg", "w=20&fmt=png", "image/png").await.0, 202);
    assert_eq!(stack.drain(&jobs).await, 1, "the viewer's render");
    assert_eq!(stack.queue_depth(&jobs).await, 0, "the guess is not in the viewers' queue");
    assert_eq!(stack.drain(&guesses).await, 1, "one guess, rendered from its own queue");

    let manifest = stack.aws.stores.manifest.clone();
    let fingerprint = manifest.source("d.jpg").await.expect("source").expect("recorded").fingerprint;
    let guessed = manifest.variants_of(&fingerprint, 10).await.expect("variants");
    let guessed = guessed.iter().find(|v| v.canonical.starts_with("w=40&")).expect("the companion").clone();
    assert!(matches!(guessed.state, VariantState::Ready { .. }) && guessed.origin == Origin::Prewarmed, "{guessed:?}");
    let (status, _, body) = stack.get("/d.jpg", "w=40&fmt=webp", "image/webp").await;
    assert_eq!(status, 200, "the first request for the guess is a hit");
    assert!(body.starts_with(b"RIFF"), "a WebP");
    assert_eq!(stack.queue_depth(&jobs).await, 0, "and queued nothing");
    let served = manifest.variant(&guessed.cache_key).await.expect("variant").expect("kept");
    assert_eq!(served.origin, Origin::PrewarmedServed);
    let inventory = catg_core::report::inventory(manifest.as_ref()).await.expect("inventory");
    assert_eq!((inventory.prewarmed, inventory.prewarmed_served), (1, 1));
}
