//! What catg's Lambda functions do (ingest, resolver, transform, and the scheduled reconcile). The binaries in `functions/` are thin: they call
//! [`Config::from_env`], [`Aws::connect`], then run one of the handlers here under
//! `lambda_runtime` / `lambda_http`. The handlers take plain event types, so tests drive them
//! with the real payloads in `events/`.

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use catg_aws::{s3_client, DynamoManifest, S3ObjectStore, SecretsManagerSecret, SqsQueue};
use catg_core::config::{image_limits, pending_caps, recipe_limits, render_memory_mib, signing_keys, ConfigError};
use catg_core::model::Job;
use catg_core::ports::{JobQueue, ManifestStore, ObjectStore};
use catg_core::HitCache;
use catg_core::{
    ingest, reconcile, remove_source, Decoding, Error, JobRendered, Keyring, KeyringError, ReconcileOptions,
    ReconcileReport, RenderBudget, Renderer, Resolver, ResolverConfig,
};
use catg_http::HttpState;
pub use catg_image::memory::reuse_large_buffers;
use catg_image::Limits;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing::Instrument;

/// Everything the functions read from their environment, read in one place.
#[derive(Debug, Clone)]
pub struct Config {
    pub source_bucket: String,
    pub variants_bucket: String,
    pub table: String,
    /// Only the resolver queues jobs.
    pub queue_url: Option<String>,
    pub wait: Duration,
    pub key_max_age: Duration,
    pub resolver: ResolverConfig,
    /// Memory budget for renders running at once (transform), in MiB.
    pub render_memory_mib: u32,
    /// Reconcile leaves unnamed variant objects younger than this alone: a render may have
    /// stored one a moment before recording it.
    pub reconcile_grace: Duration,
    /// The Secrets Manager secret holding the signing keys, and how long a read is trusted
    /// (the resolver; `resolver.signing` is filled from it by [`Aws::http_state`]).
    pub signing_secret: Option<(String, Duration)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigFailure {
    #[error("missing environment variable {0}")]
    Missing(&'static str),
    #[error("{name}={value:?} is not valid: {expected}")]
    Invalid { name: &'static str, value: String, expected: &'static str },
    #[error(transparent)]
    Limit(#[from] ConfigError),
    #[error("CATG_SIGNING_KEYS and CATG_SIGNING_KEYS_SECRET are both set; give the keys one way")]
    TwoSigningSources,
    #[error(transparent)]
    Keys(#[from] KeyringError),
}

impl Config {
    /// `CATG_SOURCE_BUCKET`, `CATG_VARIANTS_BUCKET`, `CATG_TABLE` (required); `CATG_QUEUE_URL`
    /// (resolver); `CATG_SOURCE_PREFIX` (default none: every key); `CATG_WAIT_MS` (default 3000),
    /// `CATG_KEY_MAX_AGE` seconds (default 60); `CATG_RECONCILE_GRACE_S` (default 3600);
    /// the `CATG_MAX_*` limits; the signing keys as `CATG_SIGNING_KEYS_SECRET` (a Secrets
    /// Manager ARN, what the stack sets; re-read after `CATG_SIGNING_KEYS_TTL_S`, default 300)
    /// or `CATG_SIGNING_KEYS` (the value itself, for local emulators).
    pub fn from_env() -> Result<Config, ConfigFailure> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigFailure> {
        let required = |name: &'static str| env(name).filter(|v| !v.is_empty()).ok_or(ConfigFailure::Missing(name));
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigFailure> {
            match env(name) {
                None => Ok(default),
                Some(value) => {
                    value.trim().parse().map_err(|_| ConfigFailure::Invalid { name, value, expected: "a whole number" })
                }
            }
        };
        let wait = Duration::from_millis(number("CATG_WAIT_MS", 3000)?);
        let (max_pending_jobs, max_pending_per_asset) = pending_caps(&env)?;
        let resolver = ResolverConfig {
            max_pending_jobs,
            max_pending_per_asset,
            limits: image_limits(&env)?,
            recipe_limits: recipe_limits(&env)?,
            wait,
            source_prefix: env("CATG_SOURCE_PREFIX").unwrap_or_default(),
            signing: signing_keys(&env)?.map(Keyring::fixed),
            ..ResolverConfig::default()
        };
        let signing_secret = match env("CATG_SIGNING_KEYS_SECRET").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(_) if resolver.signing.is_some() => return Err(ConfigFailure::TwoSigningSources),
            Some(id) => Some((id.trim().to_string(), Duration::from_secs(number("CATG_SIGNING_KEYS_TTL_S", 300)?))),
        };
        Ok(Config {
            source_bucket: required("CATG_SOURCE_BUCKET")?,
            variants_bucket: required("CATG_VARIANTS_BUCKET")?,
            table: required("CATG_TABLE")?,
            queue_url: env("CATG_QUEUE_URL").filter(|v| !v.is_empty()),
            wait,
            key_max_age: Duration::from_secs(number("CATG_KEY_MAX_AGE", 60)?),
            resolver,
            render_memory_mib: render_memory_mib(&env)?,
            reconcile_grace: Duration::from_secs(number("CATG_RECONCILE_GRACE_S", 3600)?),
            signing_secret,
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.resolver.limits
    }
}

/// The AWS adapters, connected.
#[derive(Clone)]
pub struct Aws {
    pub sources: Arc<S3ObjectStore>,
    pub variants: Arc<S3ObjectStore>,
    pub manifest: Arc<DynamoManifest>,
    pub queue: Option<Arc<SqsQueue>>,
    pub secrets: aws_sdk_secretsmanager::Client,
    /// The process's one memory budget: renders and ingest's decodes share it.
    pub budget: Arc<RenderBudget>,
}

impl std::fmt::Debug for Aws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aws").finish_non_exhaustive()
    }
}

impl Aws {
    pub async fn connect(config: &Config) -> Aws {
        let sdk = catg_aws::sdk_config().await;
        let s3 = s3_client(&sdk);
        Aws {
            sources: Arc::new(S3ObjectStore::new(s3.clone(), &config.source_bucket)),
            variants: Arc::new(S3ObjectStore::new(s3, &config.variants_bucket)),
            manifest: Arc::new(DynamoManifest::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table)),
            queue: config.queue_url.as_ref().map(|url| Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), url))),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            budget: Arc::new(RenderBudget::new(config.render_memory_mib)),
        }
    }

    /// Limits and the process's budget, for ingest's decodes.
    pub fn decoding(&self, config: &Config) -> Decoding {
        Decoding::new(config.limits().clone(), self.budget.clone())
    }

    pub fn renderer(&self, config: &Config) -> Renderer {
        Renderer {
            sources: self.sources.clone(),
            variants: self.variants.clone(),
            manifest: self.manifest.clone(),
            limits: config.limits().clone(),
            budget: self.budget.clone(),
        }
    }

    /// The resolver's HTTP state: the same router `catg serve` runs. With a signing secret,
    /// its keys are read here, once before the first request.
    pub async fn http_state(&self, config: &Config) -> Result<HttpState, ConfigFailure> {
        let queue: Arc<dyn JobQueue> = self.queue.clone().ok_or(ConfigFailure::Missing("CATG_QUEUE_URL"))?;
        let mut config = config.clone();
        if let Some((secret, ttl)) = &config.signing_secret {
            let source = Arc::new(SecretsManagerSecret::new(self.secrets.clone(), secret));
            config.resolver.signing = Some(Keyring::fetched(source, *ttl).await?);
        }
        let resolver = Resolver {
            sources: self.sources.clone() as Arc<dyn ObjectStore>,
            variants: self.variants.clone() as Arc<dyn ObjectStore>,
            manifest: self.manifest.clone() as Arc<dyn ManifestStore>,
            queue,
            config: config.resolver.clone(),
            cache: Arc::new(HitCache::default()),
            budget: self.budget.clone(),
        };
        Ok(HttpState { resolver, key_max_age: config.key_max_age, metrics: None, operator_token: None })
    }
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
    if removed_event && aws.sources.head(&key).await?.is_none() {
        remove_source(aws.manifest.as_ref(), &key).await?;
        tracing::info!("removed");
        report.removed.push(key);
        return Ok(());
    }
    match ingest(aws.sources.as_ref(), aws.manifest.as_ref(), &key, decoding).await {
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
        aws.sources.as_ref(),
        aws.variants.as_ref(),
        aws.manifest.as_ref(),
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
    let job = match serde_json::from_str::<Job>(body) {
        Ok(job) => job,
        Err(e) => {
            tracing::error!(error = %e, "not a job: leaving it for the dead-letter queue");
            return false;
        }
    };
    match renderer.render(&job).await {
        Ok(JobRendered::Stored { bytes, render_ms }) => {
            tracing::info!(cache_key = %job.cache_key, bytes, render_ms, "rendered");
            true
        }
        Ok(JobRendered::AlreadyDone) => {
            tracing::info!(cache_key = %job.cache_key, "already done");
            true
        }
        Ok(JobRendered::Failed { reason }) => {
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
