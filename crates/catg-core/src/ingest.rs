//! Ingest: examine a source object and record it. Idempotent, so redelivered and duplicate
//! events are harmless; identical bytes under any number of keys become one asset.

use crate::error::Error;
use crate::examine::examine;
use crate::fingerprint::Fingerprint;
use crate::metrics;
use crate::model::{now_ms, AssetFacts, AssetRecord, AssetState, SourceRecord, SourceState};
use crate::near_duplicates;
use crate::ports::{ManifestStore, ObjectStore, StoreError};
use crate::render_budget::{Decoding, RenderBudget};
use catg_image::{verify, verify_memory_estimate, Limits};
use tokio_util::io::SyncIoBridge;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// This version of the object was already recorded.
    Unchanged { fingerprint: Fingerprint },
    /// This version of the object was already recorded, and its asset, recorded before ingest
    /// made summaries, now has one (what `catg backfill` does for older assets).
    Summarised { fingerprint: Fingerprint },
    /// Recorded; `new_asset` is false when the bytes were already known (a duplicate).
    Recorded { fingerprint: Fingerprint, new_asset: bool, rejected: Option<String> },
}

impl Ingested {
    pub fn fingerprint(&self) -> Fingerprint {
        match self {
            Ingested::Unchanged { fingerprint }
            | Ingested::Summarised { fingerprint }
            | Ingested::Recorded { fingerprint, .. } => *fingerprint,
        }
    }
}

/// Ingest `key`. The check that decodes a new asset waits for room in the process's one memory
/// budget, like every render.
pub async fn ingest(
    sources: &dyn ObjectStore,
    manifest: &dyn ManifestStore,
    key: &str,
    decoding: &Decoding,
) -> Result<Ingested, Error> {
    let limits = &decoding.limits;
    let (meta, reader) = sources.open(key).await.map_err(|e| match e {
        StoreError::NotFound(_) => Error::NotFound(key.to_string()),
        other => Error::Store(other),
    })?;
    let mut unchanged = false;
    if let Some(known) = manifest.source(key).await? {
        if known.etag == meta.etag && known.state == SourceState::Present {
            let asset = manifest.asset(&known.fingerprint).await?;
            if !asset.as_ref().is_some_and(lacks_summary) {
                metrics::ingested("unchanged", 0, None);
                return Ok(Ingested::Unchanged { fingerprint: known.fingerprint });
            }
            // Read on, to decode it once more for the summary it lacks.
            unchanged = true;
        }
    }
    // Hashing and probing are CPU work over a blocking reader: off the async threads.
    let bridge = SyncIoBridge::new(reader);
    let examine_limits = limits.clone();
    let size = meta.size;
    let examined = tokio::task::spawn_blocking(move || examine(bridge, size, &examine_limits))
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))??;
    let fingerprint = examined.fingerprint;
    let mut rejected = None;
    let new_asset = match manifest.asset(&fingerprint).await? {
        Some(existing) => {
            if lacks_summary(&existing) {
                if let (Ok(probe), Some(body)) = (examined.verdict, examined.body) {
                    if let AssetState::Ready(AssetFacts { summary: Some(summary), .. }) =
                        verify_within(&decoding.budget, probe, body, limits).await?
                    {
                        let group = near_duplicate_group(manifest, &fingerprint, summary.phash).await?;
                        manifest.set_asset_summary(&fingerprint, &summary, group).await?;
                    }
                }
                if unchanged {
                    metrics::ingested("summarised", 0, None);
                    return Ok(Ingested::Summarised { fingerprint });
                }
            }
            if let Some(phash) = starts_own_group(&existing.state) {
                // Also where a retried ingest settles what its failed attempt left unsettled.
                settle_near_duplicate_race(manifest, &fingerprint, phash).await?;
            }
            manifest.set_asset_source(&fingerprint, key).await?;
            metrics::ingested("duplicate", examined.bytes, None);
            false
        }
        None => {
            let state = match (examined.verdict, examined.body) {
                (Ok(probe), Some(body)) => {
                    let mut state = verify_within(&decoding.budget, probe, body, limits).await?;
                    if let AssetState::Ready(AssetFacts { summary: Some(summary), near_duplicate_of, .. }) = &mut state
                    {
                        *near_duplicate_of = near_duplicate_group(manifest, &fingerprint, summary.phash).await?;
                    }
                    state
                }
                (Err(e), _) => reject_state(e)?,
                (Ok(_), None) => return Err(Error::Io(std::io::Error::other("examined image without its body"))),
            };
            if let AssetState::Rejected { reason, .. } = &state {
                rejected = Some(reason.clone());
            }
            let megapixels = match &state {
                AssetState::Ready(facts) => Some(f64::from(facts.width) * f64::from(facts.height) / 1e6),
                AssetState::Rejected { .. } => None,
            };
            let record = AssetRecord {
                fingerprint,
                bytes: examined.bytes,
                state,
                first_seen_ms: now_ms(),
                source_key: key.to_string(),
            };
            // Counted by who created the asset: the same bytes ingested under two keys at
            // once are one new asset and one duplicate.
            let created = manifest.create_asset(&record).await?;
            if let (true, Some(phash)) = (created, starts_own_group(&record.state)) {
                settle_near_duplicate_race(manifest, &fingerprint, phash).await?;
            }
            match (&rejected, created) {
                (_, false) => metrics::ingested("duplicate", examined.bytes, None),
                (Some(reason), true) => {
                    metrics::rejected("ingest", reason);
                    metrics::ingested("rejected", examined.bytes, None);
                }
                (None, true) => metrics::ingested("new", examined.bytes, megapixels),
            }
            created
        }
    };
    manifest
        .put_source(&SourceRecord {
            key: key.to_string(),
            fingerprint,
            bytes: examined.bytes,
            etag: meta.etag,
            state: SourceState::Present,
            updated_ms: now_ms(),
        })
        .await?;
    Ok(Ingested::Recorded { fingerprint, new_asset, rejected })
}

/// Decode the whole image once (`catg_image::verify`) inside the memory budget: the asset's
/// state, ready or rejected.
async fn verify_within(
    budget: &RenderBudget,
    mut probe: catg_image::Probe,
    body: Vec<u8>,
    limits: &Limits,
) -> Result<AssetState, Error> {
    let _room = match budget.reserve(verify_memory_estimate(&probe, body.len())).await {
        Ok(room) => room,
        Err(refused) => return reject_state(refused),
    };
    let limits = limits.clone();
    tokio::task::spawn_blocking(move || match verify(&body, &probe, &limits) {
        Ok(verified) => {
            probe.has_alpha = verified.has_alpha;
            Ok(AssetState::Ready(AssetFacts { summary: verified.summary, ..AssetFacts::from_probe(&probe) }))
        }
        Err(e) => reject_state(e),
    })
    .await
    .map_err(|e| Error::Io(std::io::Error::other(e)))?
}

/// A ready asset recorded before ingest made summaries.
fn lacks_summary(asset: &AssetRecord) -> bool {
    matches!(&asset.state, AssetState::Ready(facts) if facts.summary.is_none())
}

/// The near-duplicate group an asset with `phash` joins, from the manifest's band index (see
/// [`crate::near_duplicates`]). Two near-duplicates ingested at the same moment may each look
/// before the other is indexed: [`settle_near_duplicate_race`] links them afterwards.
async fn near_duplicate_group(
    manifest: &dyn ManifestStore,
    fingerprint: &Fingerprint,
    phash: u64,
) -> Result<Option<Fingerprint>, Error> {
    let candidates = manifest.near_duplicate_candidates(phash, MAX_CANDIDATES).await?;
    Ok(near_duplicates::group_of(fingerprint, phash, &candidates))
}

/// The hash of a ready asset that starts its own near-duplicate group.
fn starts_own_group(state: &AssetState) -> Option<u64> {
    match state {
        AssetState::Ready(AssetFacts { summary: Some(summary), near_duplicate_of: None, .. }) => Some(summary.phash),
        _ => None,
    }
}

/// Look again once the asset is indexed: a near-duplicate that also starts its own group was
/// ingested at the same moment, and each missed the other. Whichever ingest looks last sees
/// both, and both settle the pair the same way: the lower fingerprint stays first, the other
/// joins it (a conditional write, so a pair is linked once and never both ways). On DynamoDB
/// the band index is eventually consistent, so a pair indexed within about a second of each
/// other may still stay apart there; any later copy of either still joins one of them.
async fn settle_near_duplicate_race(
    manifest: &dyn ManifestStore,
    fingerprint: &Fingerprint,
    phash: u64,
) -> Result<(), Error> {
    let candidates = manifest.near_duplicate_candidates(phash, MAX_CANDIDATES).await?;
    let group_firsts = candidates.iter().filter(|c| c.near_duplicate_of.is_none());
    let Some(rival) = near_duplicates::nearest(fingerprint, phash, group_firsts) else { return Ok(()) };
    let joined = if rival.fingerprint.to_hex() < fingerprint.to_hex() {
        manifest.join_near_duplicate_group(fingerprint, phash, &rival.fingerprint).await?
    } else {
        manifest.join_near_duplicate_group(&rival.fingerprint, rival.phash, fingerprint).await?
    };
    if joined {
        tracing::info!(%fingerprint, rival = %rival.fingerprint, "near-duplicates ingested together, linked");
    }
    Ok(())
}

/// Candidates read per ingest at most: a band value shared by more assets than this is a flat
/// or near-empty picture's, and the nearest of the first ones is as good an answer.
const MAX_CANDIDATES: usize = 1000;

/// A rejection becomes a recorded state; an internal failure stays an error (to retry).
fn reject_state(e: catg_image::ImageError) -> Result<AssetState, Error> {
    match e.reject_kind() {
        Some(kind) => Ok(AssetState::Rejected { reason: kind.as_str().to_string(), message: e.to_string() }),
        None => Err(Error::Image(e)),
    }
}

/// The object under `key` is gone: mark its source record removed (its asset stays; other keys
/// may share it, and its variants stay valid under their immutable URLs).
pub async fn remove_source(manifest: &dyn ManifestStore, key: &str) -> Result<bool, Error> {
    match manifest.source(key).await? {
        Some(mut record) if record.state == SourceState::Present => {
            record.state = SourceState::Removed;
            record.updated_ms = now_ms();
            manifest.put_source(&record).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}
