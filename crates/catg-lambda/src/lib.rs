//! What catg's Lambda functions do (ingest, resolver, transform, and the scheduled reconcile).
//! The binaries in `functions/` are thin: they call [`Config::from_env`], [`Aws::connect`]
//! (both from `catg_aws`), then run one of the handlers here under
//! `lambda_runtime` / `lambda_http`. The handlers take plain event types, so tests drive them
//! with the real payloads in `events/`.

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
pub use catg_aws::{Aws, Config, ConfigFailure};
use catg_core::model::Job;
use catg_core::{
    ingest, reconcile, remove_source, Decoding, Error, ReconcileOptions, ReconcileReport, RenderOutcome, Renderer,
};
use catg_http::HttpState;
pub use catg_image::memory::reuse_large_buffers;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing::Instrument;

/// The resolver's HTTP state: the same router `catg serve` runs.
pub async fn http_state(aws: &Aws, config: &Config) -> Result<HttpState, ConfigFailure> {
    let resolver = aws.resolver(config).await?;
    Ok(HttpState {
        resolver,
        key_max_age: config.key_max_age,
        key_stale_while_revalidate: config.key_stale_while_revalidate,
        metrics: None,
        operator_token: None,
    })
}

/// S3 event keys are form-encoded: `+` is a space, then `%XX`.
pub fn decode_s3_key(raw: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&raw.replace('+', " ")).decode_utf8().ok().map(|k| k.into_owned())
}

/// What one S3 event did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestReport {
    pub ingested: Vec<String>,
    pub removed: Vec<String>,
    pub skipped: Vec<String>,
}

/// The ingest function. A rejected image is recorded and the invocation succeeds; a transient
/// failure fails the invocation (`Err`) so Lambda retries the whole event, which is safe
/// because ingest is idempotent.
pub async fn handle_s3_event(aws: &Aws, decoding: &Decoding, event: S3Event) -> Result<IngestReport, Error> {
    let mut report = IngestReport::default();
    for record in event.records {
        let Some(key) = record.s3.object.key.as_deref().and_then(decode_s3_key) else {
            tracing::warn!("an S3 record without a readable key");
            continue;
        };
        let event_name = record.event_name.as_deref().unwrap_or("");
        // A span per object, attached to the future (a guard held across `.await` would leak
        // into whatever else runs on the thread meanwhile).
        let span = tracing::info_span!("object", key = %key, event = event_name);
        let removed_event = event_name.starts_with("ObjectRemoved");
        let done = ingest_record(aws, decoding, key, removed_event, &mut report).instrument(span).await;
        if done.is_err() {
            flush_metrics();
        }
        done?;
    }
    flush_metrics();
    Ok(report)
}

/// What the ingest function is invoked with: S3's notifications arrive through the ingest
/// queue (an SQS batch whose message bodies are S3 events; the queue is what caps how many
/// ingests run at once), and a bare S3 event, as replayed by hand with `aws lambda invoke`,
/// is taken too.
#[derive(Debug)]
pub enum IngestEvent {
    Queued(SqsEvent),
    Direct(S3Event),
}

impl IngestEvent {
    pub fn from_value(value: serde_json::Value) -> Result<IngestEvent, serde_json::Error> {
        let source = value.pointer("/Records/0/eventSource").and_then(serde_json::Value::as_str);
        if source == Some("aws:sqs") {
            serde_json::from_value(value).map(IngestEvent::Queued)
        } else {
            s3_event(value).map(IngestEvent::Direct)
        }
    }
}

/// An S3 event, read leniently: ingest needs only the event name, bucket and key, and
/// S3-compatible senders (MinIO, moto) leave out `userIdentity` and `requestParameters`,
/// which the event type requires.
fn s3_event(mut value: serde_json::Value) -> Result<S3Event, serde_json::Error> {
    if let Some(records) = value.get_mut("Records").and_then(serde_json::Value::as_array_mut) {
        for record in records.iter_mut().filter_map(serde_json::Value::as_object_mut) {
            for field in ["userIdentity", "requestParameters"] {
                record.entry(field).or_insert_with(|| serde_json::json!({}));
            }
        }
    }
    serde_json::from_value(value)
}

/// The ingest function: one S3 event per queued message. A transient failure is reported as a
/// batch item failure, so SQS delivers the notification again (ingest is idempotent) and, past
/// the redrive count, keeps it in the ingest dead-letter queue; S3's test message on setup and
/// everything that ingested or was rejected is acknowledged.
pub async fn handle_ingest_queue(aws: &Aws, decoding: &Decoding, event: SqsEvent) -> SqsBatchResponse {
    batch_response(event, |body| ingest_message(aws, decoding, body)).await
}

/// One queued S3 notification; `false` if SQS should deliver it again.
async fn ingest_message(aws: &Aws, decoding: &Decoding, body: String) -> bool {
    let value: serde_json::Value = match serde_json::from_str(&body) {
        Ok(value) => value,
        Err(e) => {
            tracing::error!(error = %e, "not JSON: leaving it for the dead-letter queue");
            return false;
        }
    };
    if value.get("Event").and_then(serde_json::Value::as_str) == Some("s3:TestEvent") {
        tracing::info!("S3's test notification");
        return true;
    }
    let event = match s3_event(value) {
        Ok(event) => event,
        Err(e) => {
            tracing::error!(error = %e, "not an S3 event: leaving it for the dead-letter queue");
            return false;
        }
    };
    match handle_s3_event(aws, decoding, event).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "transient failure: SQS will deliver it again");
            false
        }
    }
}

/// Runs `handle` on each message body in its own span, and reports the messages it returned
/// `false` for as batch item failures (the event source mapping has ReportBatchItemFailures).
async fn batch_response<F, Fut>(event: SqsEvent, mut handle: F) -> SqsBatchResponse
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        let span = tracing::info_span!("message", message_id = %id);
        if !handle(message.body.unwrap_or_default()).instrument(span).await {
            let mut item = BatchItemFailure::default();
            item.item_identifier = id;
            response.batch_item_failures.push(item);
        }
    }
    response
}

async fn ingest_record(
    aws: &Aws,
    decoding: &Decoding,
    key: String,
    removed_event: bool,
    report: &mut IngestReport,
) -> Result<(), Error> {
    // Events arrive out of order: trust the bucket, not the event name.
    if removed_event && aws.stores.sources.head(&key).await?.is_none() {
        remove_source(aws.stores.manifest.as_ref(), &key).await?;
        tracing::info!("removed");
        report.removed.push(key);
        return Ok(());
    }
    match ingest(aws.stores.sources.as_ref(), aws.stores.manifest.as_ref(), &key, decoding).await {
        Ok(outcome) => {
            tracing::info!(fingerprint = %outcome.fingerprint(), ?outcome, "ingested");
            report.ingested.push(key);
        }
        // Deleted since the event was sent: the removal event will follow.
        Err(Error::NotFound(_)) => report.skipped.push(key),
        Err(e) if e.is_retryable() => return Err(e),
        Err(e) => {
            tracing::error!(error = %e, "could not ingest");
            report.skipped.push(key);
        }
    }
    Ok(())
}

/// The reconcile function, started by a schedule (`events/scheduled.json`) or by hand: walks
/// the buckets and the table and repairs what disagrees (`catg_core::reconcile`). An event
/// with `"dry_run": true` only counts. It stops cleanly shortly before `deadline` (the
/// invocation's) and says so with `complete: false`; the next run starts over. An outage fails
/// the invocation, so it shows in the function's error metric.
pub async fn handle_reconcile(
    aws: &Aws,
    config: &Config,
    event: &serde_json::Value,
    deadline: std::time::SystemTime,
) -> Result<ReconcileReport, Error> {
    let dry_run = event.get("dry_run").and_then(serde_json::Value::as_bool).unwrap_or(false);
    // A deadline already past is not one a real invocation gets (cargo lambda's emulator sends
    // its timeout, 600 s, as if it were a time): run without a deadline, as the CLI does.
    let deadline = match deadline.duration_since(std::time::SystemTime::now()) {
        Ok(left) => {
            // Time to finish the page in hand and report: a minute, or a tenth of a short timeout.
            Some(tokio::time::Instant::now() + left.saturating_sub((left / 10).min(Duration::from_secs(60))))
        }
        Err(_) => {
            tracing::warn!(?deadline, "the invocation's deadline has passed already; running without one");
            None
        }
    };
    let options = ReconcileOptions {
        dry_run,
        source_prefix: config.resolver.source_prefix.clone(),
        now_ms: catg_core::model::now_ms(),
        grace_ms: config.reconcile_grace.as_millis() as u64,
        deadline,
    };
    let progress = |report: &ReconcileReport| tracing::debug!(?report, "reconcile progress");
    let result = reconcile(
        aws.stores.sources.as_ref(),
        aws.stores.variants.as_ref(),
        aws.stores.manifest.as_ref(),
        &aws.decoding(config),
        &options,
        &progress,
    )
    .await;
    // Reconcile ingests what the bucket had and the table lacked: those count too.
    flush_metrics();
    let report = result?;
    tracing::info!(
        dry_run = report.dry_run,
        complete = report.complete,
        sources_unrecorded = report.sources_unrecorded,
        sources_removed = report.sources_removed,
        ready_without_object = report.ready_without_object,
        stale_claims = report.stale_claims,
        orphan_objects = report.orphan_objects,
        "reconciled"
    );
    Ok(report)
}

/// The transform function: render each job. Transient failures (and messages that are not
/// jobs at all) are reported as batch item failures, so SQS retries them and, past the redrive
/// count, moves them to the dead-letter queue. Everything else is acknowledged.
pub async fn handle_sqs_event(renderer: &Renderer, event: SqsEvent) -> SqsBatchResponse {
    let response = batch_response(event, |body| async move { render_message(renderer, &body).await }).await;
    flush_metrics();
    response
}

/// One job message; `false` if SQS should deliver it again (or, past the redrive count, move
/// it to the dead-letter queue).
async fn render_message(renderer: &Renderer, body: &str) -> bool {
    let job = match Job::from_json(body) {
        Ok(job) => job,
        Err(e) => {
            tracing::error!(error = %e, "not a job: leaving it for the dead-letter queue");
            return false;
        }
    };
    match renderer.render(&job).await {
        Ok(RenderOutcome::Stored { bytes, render_ms }) => {
            tracing::info!(cache_key = %job.cache_key, bytes, render_ms, "rendered");
            true
        }
        Ok(RenderOutcome::AlreadyDone) => {
            tracing::info!(cache_key = %job.cache_key, "already done");
            true
        }
        Ok(RenderOutcome::Failed { reason }) => {
            tracing::warn!(cache_key = %job.cache_key, reason, "cannot be rendered");
            true
        }
        Err(e) if e.is_retryable() => {
            tracing::warn!(cache_key = %job.cache_key, error = %e, "transient failure: SQS will retry");
            false
        }
        Err(e) => {
            tracing::error!(cache_key = %job.cache_key, error = %e, "permanent failure: leaving it for the dead-letter queue");
            false
        }
    }
}

static METRICS: OnceLock<&'static metrics_cloudwatch_embedded::Collector> = OnceLock::new();

/// Record catg's metrics (`catg_core::metrics`) for CloudWatch: in namespace `catg`, with the
/// function's name as a dimension, written by [`flush_metrics`] as Embedded Metric Format lines
/// on stdout, which CloudWatch Logs turns into metrics without any API call. Call once in `main`;
/// returns the collector (tests flush it into a buffer), `None` if a recorder was set already.
pub fn init_metrics(function: &'static str) -> Option<&'static metrics_cloudwatch_embedded::Collector> {
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace("catg")
        .with_dimension("function", function)
        .init();
    match collector {
        Ok(collector) => {
            let _ = METRICS.set(collector);
            Some(collector)
        }
        // Metrics are worth a log line, never a failed start.
        Err(e) => {
            tracing::warn!(error = %e, "metrics are off");
            None
        }
    }
}

/// Write what was recorded since the last flush (one EMF document per label set) to stdout.
/// Each handler calls it at the end of an invocation; a no-op before [`init_metrics`].
pub fn flush_metrics() {
    if let Some(collector) = METRICS.get() {
        flush_metrics_to(collector, std::io::stdout().lock());
    }
}

/// [`flush_metrics`] into any writer (tests read the lines back).
pub fn flush_metrics_to(collector: &metrics_cloudwatch_embedded::Collector, writer: impl std::io::Write) {
    if let Err(e) = collector.flush(writer) {
        tracing::warn!(error = %e, "metrics could not be written");
    }
}

/// The resolver's router: `catg_http::router` with a metrics flush after each request.
pub fn resolver_router(state: HttpState) -> axum::Router {
    catg_http::router(Arc::new(state)).layer(axum::middleware::map_response(
        |response: axum::response::Response| async {
            flush_metrics();
            response
        },
    ))
}

/// Logs as Lambda wants them: JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`, plain text otherwise.
pub fn init_logging() {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let _ = tracing::subscriber::set_global_default(log_subscriber(json, std::io::stdout));
}

/// The functions' log format, writing to `writer` (stdout in the functions; tests read it back):
/// one line per event, with its spans (`object`, `message`, `request`) and their fields; the
/// level from `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`), `info` by default. No timestamps: Lambda
/// adds its own.
pub fn log_subscriber<W>(json: bool, writer: W) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).without_time().with_ansi(false).with_writer(writer);
    if json {
        Box::new(builder.json().finish())
    } else {
        Box::new(builder.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_keys_are_form_decoded() {
        assert_eq!(decode_s3_key("photos/my+cat.jpg").as_deref(), Some("photos/my cat.jpg"));
        assert_eq!(decode_s3_key("a%2Bb.jpg").as_deref(), Some("a+b.jpg"));
        assert_eq!(decode_s3_key("100%25.png").as_deref(), Some("100%.png"));
        assert_eq!(decode_s3_key("%C3%BCn%C3%AF.png").as_deref(), Some("ünï.png"));
        assert_eq!(decode_s3_key("%FF.png"), None);
    }

    #[test]
    fn config_names_the_missing_variable() {
        let env = |pairs: &'static [(&str, &str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        let e = Config::from_lookup(env(&[("CATG_SOURCE_BUCKET", "s")])).expect_err("incomplete");
        assert_eq!(e.to_string(), "missing environment variable CATG_VARIANTS_BUCKET");
        let e = Config::from_lookup(env(&[
            ("CATG_SOURCE_BUCKET", "s"),
            ("CATG_VARIANTS_BUCKET", "v"),
            ("CATG_TABLE", "t"),
            ("CATG_WAIT_MS", "soon"),
        ]))
        .expect_err("invalid");
        assert!(e.to_string().starts_with("CATG_WAIT_MS=\"soon\""));
        let ok = Config::from_lookup(env(&[
            ("CATG_SOURCE_BUCKET", "s"),
            ("CATG_VARIANTS_BUCKET", "v"),
            ("CATG_TABLE", "t"),
        ]))
        .expect("valid");
        assert_eq!((ok.wait, ok.queue_url), (Duration::from_millis(3000), None));
    }
}
