//! Ports: the small async interfaces the use cases need from the outside world. AWS adapters
//! (S3, DynamoDB, SQS) and local adapters (a folder, SQLite) implement them, and one conformance
//! suite checks both against the same contract.

use crate::cache_key::CacheKey;
use crate::fingerprint::Fingerprint;
use crate::model::{AssetRecord, Job, Millis, SourceRecord, SourceState, VariantRecord, VariantState};
use crate::near_duplicates::Candidate;
use async_trait::async_trait;
use catg_image::Summary;
use tokio::io::AsyncRead;

/// Why a port call failed. Adapters map every SDK or OS error to one of these; nothing
/// adapter-specific crosses the port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    /// A conditional write lost: the precondition did not hold.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store is down, slow or throttling: retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The request itself is wrong (an invalid key, say): retrying will not help.
    #[error("invalid: {0}")]
    Invalid(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Changes whenever the object's content may have changed.
    pub etag: String,
    /// When it was last written (0 when the store does not say).
    pub modified_ms: Millis,
}

/// One page of a listing, with the cursor of the next (`None`: this was the last). A page may be
/// empty and still have a next one (DynamoDB filters after it reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    /// Something was already stored under the key; nothing was written.
    AlreadyExists,
}

pub type ObjectReader = Box<dyn AsyncRead + Send + Unpin>;

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// The whole object, refusing (as `Invalid`) anything over `max_bytes`.
    async fn get(&self, key: &str, max_bytes: u64) -> StoreResult<Vec<u8>>;
    /// A stream over the object, for reading large objects in constant memory.
    async fn open(&self, key: &str) -> StoreResult<(ObjectMeta, ObjectReader)>;
    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>>;
    /// Write only if nothing is stored under `key`. Readers never see a partial object.
    async fn put_if_absent(
        &self,
        key: &str,
        bytes: &[u8],
        content_type: &str,
        cache_control: &str,
    ) -> StoreResult<PutOutcome>;
    /// Keys under `prefix` in lexical order, starting after `after`; at most `limit`.
    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> StoreResult<Vec<ObjectMeta>>;
    async fn delete(&self, key: &str) -> StoreResult<()>;
}

/// The outcome of trying to claim a variant for rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This caller owns the render: it must queue the job.
    Claimed,
    /// Someone else holds a live claim, or the variant is finished: the current record.
    Held(VariantRecord),
}

#[async_trait]
pub trait ManifestStore: Send + Sync {
    async fn source(&self, key: &str) -> StoreResult<Option<SourceRecord>>;
    /// Record a key's current state (the newest observation wins).
    async fn put_source(&self, record: &SourceRecord) -> StoreResult<()>;
    async fn asset(&self, fingerprint: &Fingerprint) -> StoreResult<Option<AssetRecord>>;
    /// Create the asset if it does not exist; `false` if it already did (nothing changed). A
    /// ready asset with a summary enters the near-duplicate index in the same write.
    async fn create_asset(&self, record: &AssetRecord) -> StoreResult<bool>;
    /// Give a ready asset recorded without a summary (before ingest made them) its summary and
    /// group, entering it in the near-duplicate index. `false`, changing nothing, if the asset
    /// is not ready or already has a summary.
    async fn set_asset_summary(
        &self,
        fingerprint: &Fingerprint,
        summary: &Summary,
        near_duplicate_of: Option<Fingerprint>,
    ) -> StoreResult<bool>;
    /// Make `member` (a ready asset with hash `member_phash` that starts its own group) a
    /// member of `first`'s group, in one write with the index, if `first` still starts its own
    /// group too. `false`, changing nothing, if either already belongs to another: so two
    /// ingests settling the same pair the same way cannot link them in a cycle.
    async fn join_near_duplicate_group(
        &self,
        member: &Fingerprint,
        member_phash: u64,
        first: &Fingerprint,
    ) -> StoreResult<bool>;
    /// The assets whose perceptual hash shares at least one band with `phash`
    /// ([`crate::near_duplicates::band_keys`]), read from the index: never a scan. At most
    /// `limit`, each once.
    async fn near_duplicate_candidates(&self, phash: u64, limit: usize) -> StoreResult<Vec<Candidate>>;
    /// Asset records in no particular order, `limit` at most per page, from cursor `after`.
    async fn asset_page(&self, after: Option<&str>, limit: usize) -> StoreResult<Page<AssetRecord>>;
    /// Point an existing asset at a key that now holds its bytes.
    async fn set_asset_source(&self, fingerprint: &Fingerprint, source_key: &str) -> StoreResult<()>;
    async fn variant(&self, key: &CacheKey) -> StoreResult<Option<VariantRecord>>;
    /// Claim `record` (state `Pending`) if no record exists or the existing one is a pending
    /// claim whose lease ended before `now_ms`. One caller wins; everyone else gets `Held`.
    async fn claim_variant(&self, record: &VariantRecord, now_ms: Millis) -> StoreResult<Claim>;
    /// Write a finished (`Ready` or `Failed`) variant record, creating it if needed. A `Ready`
    /// record is never overwritten (returns `false`): state never goes backwards.
    async fn finish_variant(&self, record: &VariantRecord) -> StoreResult<bool>;
    /// The one way back from `Ready`: its object is gone (the variants bucket's lifecycle rule
    /// expired it, or someone deleted it), so `record` (state `Pending`) replaces the ready record
    /// that still names `lost_object_key`, and the variant is rendered again. One caller wins
    /// (`true`); everyone else, and any record in another state, changes nothing.
    async fn reclaim_lost_variant(&self, record: &VariantRecord, lost_object_key: &str) -> StoreResult<bool>;
    /// Replace `seen`, a live pre-warm claim, with `record` (a viewer's claim, state `Pending`),
    /// so a viewer never waits behind a guess: the viewer's job goes to the viewers' queue. Only
    /// while the stored claim is still exactly `seen` (pending, `Prewarmed`, same lease); `true`
    /// if this caller replaced it.
    async fn take_over_prewarm_claim(&self, record: &VariantRecord, seen: &VariantRecord) -> StoreResult<bool>;
    /// A request got a pre-warmed variant: `Prewarmed` becomes `PrewarmedServed`. `true` only
    /// for the caller that changed it, so each variant is counted served once.
    async fn mark_prewarm_served(&self, key: &CacheKey) -> StoreResult<bool>;
    /// Give up `record`, a claim this caller won, because its job could not be queued: removed
    /// only while it is still exactly that claim (pending, same lease), so the next request
    /// claims again at once instead of waiting out the lease. `true` if it was released.
    async fn release_claim(&self, record: &VariantRecord) -> StoreResult<bool>;
    /// Delete `seen` only while it is still exactly that record (same state, same update time):
    /// reconciliation drops what it found broken without clobbering a record that moved on
    /// meanwhile. The next request claims and renders the variant afresh. `true` if dropped.
    async fn forget_variant(&self, seen: &VariantRecord) -> StoreResult<bool>;
    /// Source records in no particular order, `limit` at most per page, from cursor `after`.
    async fn source_page(&self, after: Option<&str>, limit: usize) -> StoreResult<Page<SourceRecord>>;
    /// Variant records in no particular order, `limit` at most per page, from cursor `after`.
    async fn variant_page(&self, after: Option<&str>, limit: usize) -> StoreResult<Page<VariantRecord>>;
    /// The pending variants of one asset whose claims are still live at `now_ms`, counted up to
    /// `limit` (a cap only needs to know whether it is reached). May lag a moment behind writes.
    async fn pending_variants(&self, fingerprint: &Fingerprint, now_ms: Millis, limit: u64) -> StoreResult<u64>;
    /// Present sources and variants by state. The default pages through every record; a store
    /// that can count (SQLite) answers with a count query instead.
    async fn totals(&self) -> StoreResult<Totals> {
        let mut totals = Totals::default();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.source_page(cursor.as_deref(), 1000).await?;
            totals.sources += page.items.iter().filter(|s| s.state == SourceState::Present).count() as u64;
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut cursor: Option<String> = None;
        loop {
            let page = self.variant_page(cursor.as_deref(), 1000).await?;
            for variant in &page.items {
                match variant.state {
                    VariantState::Ready { .. } => totals.ready += 1,
                    VariantState::Pending { .. } => totals.pending += 1,
                    VariantState::Failed { .. } => totals.failed += 1,
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(totals),
            }
        }
    }
    /// Up to `limit` variant records of one asset. The default pages through every variant
    /// record; SQLite answers from its index by fingerprint.
    async fn variants_of(&self, fingerprint: &Fingerprint, limit: usize) -> StoreResult<Vec<VariantRecord>> {
        let (mut found, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let page = self.variant_page(cursor.as_deref(), 1000).await?;
            found.extend(page.items.into_iter().filter(|v| v.fingerprint == *fingerprint));
            match page.next {
                Some(next) if found.len() < limit => cursor = Some(next),
                _ => {
                    found.truncate(limit);
                    return Ok(found);
                }
            }
        }
    }
    /// A cheap round trip, for health checks.
    async fn ping(&self) -> StoreResult<()>;
}

/// Record counts ([`ManifestStore::totals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Source records of keys that are present.
    pub sources: u64,
    pub ready: u64,
    pub pending: u64,
    pub failed: u64,
}

#[async_trait]
pub trait JobQueue: Send + Sync {
    async fn enqueue(&self, job: &Job) -> StoreResult<()>;
    /// Jobs queued or being worked on and not yet finished; approximate (and a little late)
    /// where the queue itself only knows approximately (SQS).
    async fn pending_jobs(&self) -> StoreResult<u64>;
}

/// A delivered job, invisible to other receivers until its lease ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Opaque: a row id locally, a receipt handle on SQS.
    pub id: String,
    pub job: Job,
    /// 1 on first delivery.
    pub attempt: u32,
}

/// A queue the process itself pulls from (the local worker). On AWS, SQS pushes to Lambda.
#[async_trait]
pub trait LeasedJobQueue: JobQueue {
    async fn receive(&self, lease_ms: u64) -> StoreResult<Option<Delivery>>;
    async fn ack(&self, id: &str) -> StoreResult<()>;
    /// Make the job visible again after `delay_ms`.
    async fn retry_later(&self, id: &str, delay_ms: u64) -> StoreResult<()>;
}
