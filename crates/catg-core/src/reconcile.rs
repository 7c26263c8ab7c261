//! Reconcile: bring the manifest and the two object stores back into agreement after whatever
//! events were lost (a missed S3 notification, a render that died, a lifecycle rule that expired
//! variants, files changed while `catg serve` was stopped). One use case over the ports, so
//! `catg reconcile` (local) and the scheduled reconcile Lambda (AWS) cannot drift.
//!
//! Every pass works page by page in constant memory, and every repair is conditional on what was
//! seen, so it is safe beside live traffic: a record that moved on meanwhile is left alone.
//!
//! 1. Source objects: one the manifest does not know (or knows at another version) is ingested.
//! 2. Source records: one marked present whose object is gone is marked removed.
//! 3. Variant records: `ready` without its object, or `pending` past its lease (a render that
//!    died), is forgotten, so the next request renders it afresh.
//! 4. Variant objects: one that no record names is deleted, unless it is younger than the
//!    grace period (a render may have stored it a moment before recording it).

use crate::backfill::{backfill, BackfillOptions, BackfillReport, Flow};
use crate::error::Error;
use crate::ingest::remove_source;
use crate::model::{variant_object_key, Millis, SourceRecord, SourceState, VariantState};
use crate::ports::{ManifestStore, ObjectStore};
use crate::render_budget::Decoding;
use crate::CacheKey;
use serde::Serialize;

/// How many records or objects one store call reads.
const PAGE: usize = 500;

#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// Count only; change nothing.
    pub dry_run: bool,
    /// Only source keys under this prefix are catg's (empty: all).
    pub source_prefix: String,
    /// "Now", for leases and the grace period.
    pub now_ms: Millis,
    /// Variant objects younger than this are never deleted as orphans.
    pub grace_ms: Millis,
    /// Stop (with `complete: false`) once this passes: a Lambda has 15 minutes at most.
    pub deadline: Option<tokio::time::Instant>,
}

/// What reconciliation found and, unless a dry run, repaired. Serialised as the CLI's output
/// and the reconcile Lambda's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    pub dry_run: bool,
    /// Every pass ran to the end (false: the deadline came first; run again).
    pub complete: bool,
    pub sources_listed: u64,
    /// Source objects the manifest did not know at their current version: ingested.
    pub sources_unrecorded: u64,
    /// Of those, how many could not be ingested (logged; the next run tries again).
    pub sources_failed: u64,
    /// Source records marked present whose object is gone: marked removed.
    pub sources_removed: u64,
    pub variants_checked: u64,
    /// `ready` records whose object is gone: forgotten, re-rendered on the next request.
    pub ready_without_object: u64,
    /// `pending` claims past their lease: forgotten.
    pub stale_claims: u64,
    pub variant_objects_listed: u64,
    /// Variant objects no record names: deleted.
    pub orphan_objects: u64,
    /// Unnamed variant objects left alone because they are younger than the grace period.
    pub young_objects_kept: u64,
}

impl ReconcileReport {
    /// Anything found that needed (or, in a dry run, would need) repair.
    pub fn found_anything(&self) -> bool {
        self.sources_unrecorded
            + self.sources_removed
            + self.ready_without_object
            + self.stale_claims
            + self.orphan_objects
            > 0
    }
}

/// Run the four passes in order; `progress` sees the report after every page.
pub async fn reconcile(
    sources: &dyn ObjectStore,
    variants: &dyn ObjectStore,
    manifest: &dyn ManifestStore,
    decoding: &Decoding,
    options: &ReconcileOptions,
    progress: &(dyn Fn(&ReconcileReport) + Send + Sync),
) -> Result<ReconcileReport, Error> {
    let mut report = ReconcileReport { dry_run: options.dry_run, ..ReconcileReport::default() };
    let out_of_time = || options.deadline.is_some_and(|d| tokio::time::Instant::now() >= d);

    // 1. Source objects the manifest does not know at this version: a backfill, one at a time.
    if out_of_time() {
        return Ok(report);
    }
    let pass = BackfillOptions {
        prefix: options.source_prefix.clone(),
        page_size: PAGE,
        concurrency: 1,
        dry_run: options.dry_run,
        ..BackfillOptions::default()
    };
    let mut on_page = |done: &BackfillReport| {
        report.sources_listed = done.listed;
        report.sources_unrecorded = done.unrecorded;
        report.sources_failed = done.failed;
        progress(&report);
        if out_of_time() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    };
    if !backfill(sources, manifest, decoding, &pass, &mut on_page).await?.complete {
        return Ok(report);
    }

    // 2. Source records whose object is gone.
    let mut cursor: Option<String> = None;
    loop {
        if out_of_time() {
            return Ok(report);
        }
        let page = manifest.source_page(cursor.as_deref(), PAGE).await?;
        let ours = |r: &&SourceRecord| r.state == SourceState::Present && r.key.starts_with(&options.source_prefix);
        for record in page.items.iter().filter(ours) {
            if sources.head(&record.key).await?.is_some() {
                continue;
            }
            if options.dry_run || remove_source(manifest, &record.key).await? {
                report.sources_removed += 1;
            }
        }
        progress(&report);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }

    // 3. Variant records whose object is gone, and claims past their lease.
    let mut cursor: Option<String> = None;
    loop {
        if out_of_time() {
            return Ok(report);
        }
        let page = manifest.variant_page(cursor.as_deref(), PAGE).await?;
        for record in &page.items {
            report.variants_checked += 1;
            let broken = match &record.state {
                VariantState::Ready { object_key, .. } => variants.head(object_key).await?.is_none(),
                VariantState::Pending { lease_until_ms } => *lease_until_ms < options.now_ms,
                VariantState::Failed { .. } => false,
            };
            if !broken || !(options.dry_run || manifest.forget_variant(record).await?) {
                continue;
            }
            match record.state {
                VariantState::Ready { .. } => report.ready_without_object += 1,
                _ => report.stale_claims += 1,
            }
        }
        progress(&report);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }

    // 4. Variant objects no record names.
    let mut after: Option<String> = None;
    loop {
        if out_of_time() {
            return Ok(report);
        }
        let page = variants.list("", after.as_deref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        for object in &page {
            report.variant_objects_listed += 1;
            if named_by_its_record(manifest, &object.key).await? {
                continue;
            }
            if object.modified_ms.saturating_add(options.grace_ms) > options.now_ms {
                report.young_objects_kept += 1;
                continue;
            }
            report.orphan_objects += 1;
            if !options.dry_run {
                variants.delete(&object.key).await?;
            }
        }
        progress(&report);
    }
    report.complete = true;
    Ok(report)
}

/// Whether the record for the cache key in `object_key` (`ab/cd/<cache key>.<ext>`) names this
/// object: as its stored object, or as the one an in-flight render is about to store.
async fn named_by_its_record(manifest: &dyn ManifestStore, object_key: &str) -> Result<bool, Error> {
    let stem = object_key.rsplit('/').next().and_then(|name| name.split('.').next()).unwrap_or_default();
    let Ok(cache_key) = stem.parse::<CacheKey>() else { return Ok(false) };
    Ok(match manifest.variant(&cache_key).await? {
        Some(record) => match &record.state {
            VariantState::Ready { object_key: named, .. } => named == object_key,
            VariantState::Pending { .. } => variant_object_key(&cache_key, record.format) == object_key,
            VariantState::Failed { .. } => false,
        },
        None => false,
    })
}
