//! The local worker loop: pull jobs from a leased queue, render, acknowledge. A job whose
//! worker dies is redelivered when its lease ends.

use crate::model::{now_ms, Origin, VariantRecord, VariantState};
use crate::ports::{Delivery, LeasedJobQueue};
use crate::render_job::{RenderOutcome, Renderer};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How long a received job stays invisible to other workers. Longer than any render.
    pub lease: Duration,
    /// How often an idle worker looks for work it was not woken for (redeliveries).
    pub idle_poll: Duration,
    /// Deliveries before a job that keeps failing transiently is given up (and marked failed).
    pub max_attempts: u32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig { lease: Duration::from_secs(120), idle_poll: Duration::from_millis(500), max_attempts: 5 }
    }
}

/// Run until `shutdown` turns true. `wake` is notified when a job is queued.
pub async fn run_worker(
    queue: Arc<dyn LeasedJobQueue>,
    renderer: Arc<Renderer>,
    config: WorkerConfig,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        let delivery = match queue.receive(config.lease.as_millis() as u64).await {
            Ok(Some(delivery)) => delivery,
            Ok(None) => {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(config.idle_poll) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "job queue unavailable");
                tokio::time::sleep(config.idle_poll).await;
                continue;
            }
        };
        let span = tracing::info_span!("job", id = %delivery.id, cache_key = %delivery.job.cache_key, attempt = delivery.attempt);
        // Attached to the future, not entered: a guard held across `.await` would leak the span
        // into other tasks on this thread.
        handle_delivery(queue.as_ref(), &renderer, &config, &delivery).instrument(span).await;
    }
}

/// Render one delivered job, then acknowledge it or schedule its retry.
async fn handle_delivery(queue: &dyn LeasedJobQueue, renderer: &Renderer, config: &WorkerConfig, delivery: &Delivery) {
    let done = match &renderer.render(&delivery.job).await {
        Ok(RenderOutcome::Stored { bytes, render_ms }) => {
            tracing::info!(bytes, render_ms, "variant rendered");
            true
        }
        Ok(RenderOutcome::AlreadyDone) => true,
        Ok(RenderOutcome::Failed { reason }) => {
            tracing::info!(reason, "variant failed permanently");
            true
        }
        Err(e) if e.is_retryable() && delivery.attempt < config.max_attempts => {
            tracing::warn!(error = %e, "render failed, will retry");
            let backoff = 250u64 << delivery.attempt.min(8);
            if let Err(e) = queue.retry_later(&delivery.id, backoff).await {
                tracing::warn!(error = %e, "could not reschedule; the lease will expire instead");
            }
            false
        }
        Err(e) if e.is_retryable() => {
            tracing::error!(error = %e, "render kept failing on an outage; dropping the job until asked again");
            release_for_later(renderer, &delivery.job).await;
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "render failed; giving up");
            give_up(renderer, &delivery.job, &e.to_string()).await;
            true
        }
    };
    if done {
        if let Err(e) = queue.ack(&delivery.id).await {
            tracing::warn!(error = %e, "ack failed; the job will be redelivered and found done");
        }
    }
}

/// A job that only ever met outages (a full disk, a store that stayed down) is not the
/// variant's fault: recording it `failed` would refuse it forever. Release its claim instead, so
/// the next request claims and queues it afresh. If even that fails, the claim's lease ends.
async fn release_for_later(renderer: &Renderer, job: &crate::model::Job) {
    match renderer.manifest.variant(&job.cache_key).await {
        Ok(Some(record)) if matches!(record.state, VariantState::Pending { .. }) => {
            if let Err(e) = renderer.manifest.release_claim(&record).await {
                tracing::warn!(error = %e, "could not release the claim; its lease will end instead");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the claim; its lease will end instead"),
    }
}

/// Record a job that cannot succeed, so waiting requests get an answer instead of a timeout.
async fn give_up(renderer: &Renderer, job: &crate::model::Job, message: &str) {
    let record = VariantRecord {
        cache_key: job.cache_key,
        fingerprint: job.fingerprint,
        canonical: job.recipe.canonical(),
        format: job.recipe.format,
        state: VariantState::Failed { reason: "render_error".into(), message: message.chars().take(200).collect() },
        updated_ms: now_ms(),
        origin: if job.prewarm { Origin::Prewarmed } else { Origin::Requested },
    };
    if let Err(e) = renderer.manifest.finish_variant(&record).await {
        tracing::warn!(error = %e, "could not record the failure");
    }
}
