//! Backfill: ingest what a source store already holds (a bucket or folder that predates catg,
//! or uploads whose events were lost), page by page, several objects at a time.
//!
//! Resumable twice over: ingesting is idempotent (an object recorded at its current version is
//! skipped after one manifest read), and after every page the report names the last key done
//! (`resume_after`), which a caller saves and passes back as `start_after` to skip the listing
//! and reading of everything before it. The progress callback may stop the run after any page
//! (Ctrl-C, a deadline): the report then says `complete: false`.

use crate::error::Error;
use crate::ingest::{ingest, Ingested};
use crate::model::{AssetFacts, AssetState, SourceState};
use crate::ports::{ManifestStore, ObjectMeta, ObjectStore};
use crate::render_budget::Decoding;
use futures::stream::{self, StreamExt};
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// Only keys under this prefix.
    pub prefix: String,
    /// Resume after this key (a previous run's `resume_after`).
    pub start_after: Option<String>,
    /// Objects ingested at the same time (each reads its object and decodes it once).
    pub concurrency: usize,
    /// Keys listed per page: the unit of progress and of resuming.
    pub page_size: usize,
    /// Only count what would be ingested.
    pub dry_run: bool,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        BackfillOptions { prefix: String::new(), start_after: None, concurrency: 4, page_size: 500, dry_run: false }
    }
}

/// What to do after a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackfillReport {
    pub dry_run: bool,
    /// Every listed object was dealt with.
    pub complete: bool,
    /// The last key of the last page done: where a new run resumes.
    pub resume_after: Option<String>,
    pub listed: u64,
    /// Already recorded at this version: nothing to do.
    pub already_recorded: u64,
    /// Not yet recorded (in a dry run: would be ingested).
    pub unrecorded: u64,
    pub new_assets: u64,
    /// Bytes another key already holds: recorded against the existing asset.
    pub duplicates: u64,
    pub rejected: u64,
    /// Already recorded, but their assets predate placeholders and hashes: decoded again to add
    /// them (in a dry run: would be).
    pub summarised: u64,
    /// Could not be ingested (gone meanwhile, or a permanent error); the run goes on.
    pub failed: u64,
    /// Bytes of the objects listed.
    pub bytes_listed: u64,
}

/// Ingest every object under `options.prefix` that the manifest lacks at its current version.
/// An outage (a retryable store error) ends the run with that error; `progress` has seen the
/// report of every page finished before it.
pub async fn backfill(
    sources: &dyn ObjectStore,
    manifest: &dyn ManifestStore,
    decoding: &Decoding,
    options: &BackfillOptions,
    progress: &mut (dyn FnMut(&BackfillReport) -> Flow + Send),
) -> Result<BackfillReport, Error> {
    let mut report = BackfillReport {
        dry_run: options.dry_run,
        resume_after: options.start_after.clone(),
        ..BackfillReport::default()
    };
    loop {
        let page = sources.list(&options.prefix, report.resume_after.as_deref(), options.page_size.max(1)).await?;
        let Some(last) = page.last().map(|o| o.key.clone()) else { break };
        let outcomes: Vec<Result<Outcome, Error>> = stream::iter(&page)
            .map(|object| one(sources, manifest, decoding, object, options.dry_run))
            .buffer_unordered(options.concurrency.max(1))
            .collect()
            .await;
        for (object, outcome) in page.iter().zip(&outcomes) {
            report.listed += 1;
            report.bytes_listed += object.size;
            match outcome {
                Ok(Outcome::Recorded) => report.already_recorded += 1,
                Ok(Outcome::Summarised | Outcome::WouldSummarise) => {
                    report.already_recorded += 1;
                    report.summarised += 1;
                }
                Ok(counted) => {
                    report.unrecorded += 1;
                    match counted {
                        Outcome::New => report.new_assets += 1,
                        Outcome::Duplicate => report.duplicates += 1,
                        Outcome::Rejected => report.rejected += 1,
                        Outcome::Failed => report.failed += 1,
                        Outcome::Recorded | Outcome::WouldIngest | Outcome::Summarised | Outcome::WouldSummarise => {}
                    }
                }
                Err(_) => {}
            }
        }
        // An outage stops the run before this page counts as done: it is redone on resume.
        if let Some(Err(e)) = outcomes.into_iter().find(Result::is_err) {
            return Err(e);
        }
        report.resume_after = Some(last);
        if progress(&report) == Flow::Stop {
            return Ok(report);
        }
    }
    report.complete = true;
    Ok(report)
}

enum Outcome {
    /// Recorded already, at this version.
    Recorded,
    /// Recorded, and its asset now has the summary it lacked.
    Summarised,
    WouldSummarise,
    WouldIngest,
    New,
    Duplicate,
    Rejected,
    Failed,
}

async fn one(
    sources: &dyn ObjectStore,
    manifest: &dyn ManifestStore,
    decoding: &Decoding,
    object: &ObjectMeta,
    dry_run: bool,
) -> Result<Outcome, Error> {
    let known = manifest.source(&object.key).await?;
    if let Some(known) = known.filter(|r| r.etag == object.etag && r.state == SourceState::Present) {
        // Recorded at this version; only an asset from before summaries needs its bytes again.
        let asset = manifest.asset(&known.fingerprint).await?;
        if !asset.is_some_and(|a| matches!(a.state, AssetState::Ready(AssetFacts { summary: None, .. }))) {
            return Ok(Outcome::Recorded);
        }
        if dry_run {
            return Ok(Outcome::WouldSummarise);
        }
    } else if dry_run {
        return Ok(Outcome::WouldIngest);
    }
    match ingest(sources, manifest, &object.key, decoding).await {
        Ok(Ingested::Unchanged { .. }) => Ok(Outcome::Recorded),
        Ok(Ingested::Summarised { .. }) => Ok(Outcome::Summarised),
        // Bytes another key recorded first (even a moment ago) are a duplicate, rejected or not.
        Ok(Ingested::Recorded { new_asset: false, .. }) => Ok(Outcome::Duplicate),
        Ok(Ingested::Recorded { rejected: Some(_), .. }) => Ok(Outcome::Rejected),
        Ok(Ingested::Recorded { .. }) => Ok(Outcome::New),
        Err(e) if e.is_retryable() => Err(e),
        Err(e) => {
            tracing::warn!(key = %object.key, error = %e, "could not ingest a source");
            Ok(Outcome::Failed)
        }
    }
}
