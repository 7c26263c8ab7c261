//! Render: turn a queued job into a stored variant. Safe to run twice for one job (redelivery,
//! a crash mid-render): the object is written if absent and a ready record never changes.

use crate::error::Error;
use crate::fingerprint::Fingerprint;
use crate::metrics;
use crate::model::{now_ms, variant_object_key, Job, Origin, VariantRecord, VariantState};
use crate::ports::{ManifestStore, ObjectStore, StoreError};
use crate::prewarm::Prewarmer;
use crate::render_budget::{Decoding, RenderBudget};
use catg_image::{memory_estimate, probe, render_probed, Limits};
use std::sync::Arc;
use std::time::Instant;

/// Variants never change once rendered: caches may keep them forever.
pub const IMMUTABLE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderOutcome {
    Stored {
        bytes: u64,
        render_ms: u64,
    },
    /// Already ready or failed: nothing to do (a duplicate delivery).
    AlreadyDone,
    /// The source cannot be rendered; recorded as failed with this reason.
    Failed {
        reason: String,
    },
}

pub struct Renderer {
    pub sources: Arc<dyn ObjectStore>,
    pub variants: Arc<dyn ObjectStore>,
    pub manifest: Arc<dyn ManifestStore>,
    pub limits: Limits,
    /// Shared by every render in the process: each waits for room for its estimated peak.
    pub budget: Arc<RenderBudget>,
    /// Queues what viewers usually ask for next after a viewer's render; `None`: off.
    pub prewarm: Option<Arc<Prewarmer>>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Renderer {
    /// This renderer's limits and budget, for the other decodes of the process (ingest).
    pub fn decoding(&self) -> Decoding {
        Decoding::new(self.limits.clone(), self.budget.clone())
    }

    pub async fn render(&self, job: &Job) -> Result<RenderOutcome, Error> {
        let (cache_key, fingerprint, resolved) = (job.cache_key, job.fingerprint, job.recipe);
        let existing = self.manifest.variant(&cache_key).await?;
        let pending = existing.as_ref().filter(|v| matches!(v.state, VariantState::Pending { .. }));
        match pending {
            Some(_) if !job.prewarm => {}
            // A guess is rendered only while its claim is still the guess's: a viewer who took
            // it over has a job of their own in the viewers' queue.
            Some(claim) if claim.origin == Origin::Prewarmed => {}
            None if existing.is_none() && !job.prewarm => {}
            _ => return Ok(RenderOutcome::AlreadyDone),
        }
        let origin = if job.prewarm { Origin::Prewarmed } else { Origin::Requested };
        let record = |state: VariantState| VariantRecord {
            cache_key,
            fingerprint,
            canonical: resolved.canonical(),
            format: resolved.format,
            state,
            updated_ms: now_ms(),
            origin,
        };
        let body = match self.source_bytes(job, &fingerprint).await? {
            Some(body) => body,
            None => {
                let reason = "source_missing".to_string();
                let message = "the source image is no longer stored".to_string();
                self.manifest.finish_variant(&record(VariantState::Failed { reason: reason.clone(), message })).await?;
                metrics::rejected("render", &reason);
                return Ok(RenderOutcome::Failed { reason });
            }
        };
        let limits = self.limits.clone();
        let spec = resolved.render_spec();
        // The probe walks the whole file (it counts progressive scans): off the async threads.
        let probe_limits = limits.clone();
        let (body, probed) = tokio::task::spawn_blocking(move || {
            let probed = probe(&body, &probe_limits);
            (body, probed)
        })
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        let outcome = match probed {
            Err(e) => Err(e),
            Ok(probed) => match self.budget.reserve(memory_estimate(&probed, &spec, body.len(), &limits)).await {
                Err(refused) => Err(refused),
                Ok(_room) => {
                    let started = Instant::now();
                    tokio::task::spawn_blocking(move || render_probed(&body, &probed, &spec, &limits))
                        .await
                        .map_err(|e| Error::Io(std::io::Error::other(e)))?
                        .map(|rendered| (rendered, started.elapsed()))
                }
            },
        };
        let (rendered, render_time) = match outcome {
            Ok(done) => done,
            Err(e) => match e.reject_kind() {
                Some(kind) => {
                    let reason = kind.as_str().to_string();
                    let state = VariantState::Failed { reason: reason.clone(), message: e.to_string() };
                    self.manifest.finish_variant(&record(state)).await?;
                    metrics::rejected("render", &reason);
                    return Ok(RenderOutcome::Failed { reason });
                }
                None => return Err(Error::Image(e)),
            },
        };
        let render_ms = render_time.as_millis() as u64;
        let object_key = variant_object_key(&cache_key, resolved.format);
        self.variants
            .put_if_absent(&object_key, &rendered.bytes, resolved.format.mime_type(), IMMUTABLE_CACHE_CONTROL)
            .await?;
        let bytes = rendered.bytes.len() as u64;
        self.manifest.finish_variant(&record(VariantState::Ready { object_key, bytes, render_ms })).await?;
        metrics::rendered(resolved.format.as_str(), render_time);
        if let Some(prewarm) = &self.prewarm {
            prewarm.after_render(job).await;
        }
        Ok(RenderOutcome::Stored { bytes, render_ms })
    }

    /// The source's bytes, checked against the job's fingerprint: the key may have been
    /// re-uploaded since the job was queued. `None` if no stored object holds those bytes.
    async fn source_bytes(&self, job: &Job, fingerprint: &Fingerprint) -> Result<Option<Vec<u8>>, Error> {
        let mut candidates = vec![job.source_key.clone()];
        if let Some(asset) = self.manifest.asset(fingerprint).await? {
            if asset.source_key != job.source_key {
                candidates.push(asset.source_key);
            }
        }
        for key in candidates {
            match self.sources.get(&key, self.limits.max_input_bytes).await {
                Ok(bytes) if Fingerprint::of(&bytes) == *fingerprint => return Ok(Some(bytes)),
                Ok(_) | Err(StoreError::NotFound(_)) | Err(StoreError::Invalid(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }
}
