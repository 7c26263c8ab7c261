//! Resolve: answer a request for a variant. A hit returns the stored bytes; a miss claims the
//! variant exactly once, queues it, and waits a little for it to land.

use crate::cache_key::CacheKey;
use crate::error::Error;
use crate::fingerprint::Fingerprint;
use crate::hit_cache::HitCache;
use crate::info::{asks_for_info, AssetInfo};
use crate::ingest::ingest;
use crate::keyring::Keyring;
use crate::metrics;
use crate::model::{now_ms, AssetState, Job, Origin, SourceState, VariantRecord, VariantState};
use crate::placeholder::Placeholder;
use crate::ports::{Claim, JobQueue, ManifestStore, ObjectStore, StoreError};
use crate::recipe::{FormatChoice, Recipe, RecipeLimits, ResolvedRecipe};
use crate::render_budget::{Decoding, RenderBudget};
use crate::signing::{split_signature, unix_now, SignedTarget, INFO_SIGNED_FORM};
use catg_image::{Limits, OutputFormat};
use std::sync::Arc;
use std::time::Duration;

/// The longest object key accepted (S3's own limit).
pub const MAX_KEY_BYTES: usize = 1024;

/// Keys are relative paths: no empty, `.` or `..` segments, no control characters.
pub fn validate_key(key: &str) -> Result<(), Error> {
    let bad = key.is_empty()
        || key.len() > MAX_KEY_BYTES
        || key.chars().any(char::is_control)
        || key.split('/').any(|segment| segment.is_empty() || segment == "." || segment == "..");
    if bad {
        return Err(Error::NotFound("no such image".into()));
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct ResolverConfig {
    pub recipe_limits: RecipeLimits,
    pub limits: Limits,
    /// How long a miss waits for its render before answering 202.
    pub wait: Duration,
    /// How long a claim holds before another request may take it over.
    pub lease: Duration,
    /// How often a waiting request looks again.
    pub poll: Duration,
    /// Only keys under this prefix are images (the deployed stack's `SourcePrefix`): anything
    /// else in the source bucket is not served, even to a caller who knows its key.
    pub source_prefix: String,
    /// When set, every request must carry a valid `sig` (see [`crate::signing`]).
    pub signing: Option<Keyring>,
    /// Most jobs waiting in the queue (all assets) before a new variant is refused (503).
    pub max_pending_jobs: u64,
    /// Most variants of one asset waiting to render before another is refused (503): a flood of
    /// distinct recipes of one image cannot push everyone else's renders back.
    pub max_pending_per_asset: u64,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            recipe_limits: RecipeLimits::default(),
            limits: Limits::default(),
            wait: Duration::from_secs(5),
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(25),
            source_prefix: String::new(),
            signing: None,
            max_pending_jobs: 1000,
            max_pending_per_asset: 32,
        }
    }
}

/// What is asked for: a source key (mutable: it may be re-uploaded), or an asset by
/// fingerprint (immutable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Key(String),
    Asset(Fingerprint),
}

#[derive(Debug, Clone)]
pub struct Request {
    pub target: Target,
    pub query: String,
    pub accept: Option<String>,
    /// `Sec-Fetch-Dest`: `image` when a browser will show the answer as an image.
    pub fetch_dest: Option<String>,
    pub if_none_match: Option<String>,
    /// False for HEAD: everything but the bytes.
    pub want_body: bool,
}

/// A variant that can be served.
#[derive(Debug, Clone)]
pub struct Served {
    /// Where the bytes came from: what the request log and metrics call hit or wait-hit.
    pub from: ServedFrom,
    pub cache_key: CacheKey,
    pub fingerprint: Fingerprint,
    pub canonical: String,
    pub format: OutputFormat,
    /// The format came from `Accept` (`fmt=auto`): responses must `Vary: Accept`.
    pub negotiated: bool,
    /// Asked for by its immutable URL.
    pub immutable: bool,
    pub body: Option<Vec<u8>>,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServedFrom {
    /// The resolver's in-process cache: no store touched for the record.
    Cache,
    /// Ready in the manifest at the first look: a hit.
    Store,
    /// Rendered while the request waited: a miss that still answered 200.
    Render,
}

impl ServedFrom {
    /// The outcome's name in logs and metrics.
    pub fn outcome(self) -> &'static str {
        match self {
            ServedFrom::Cache | ServedFrom::Store => "hit",
            ServedFrom::Render => "wait_hit",
        }
    }
}

impl Served {
    /// The variant's immutable, content-addressed URL path: `/_/{fingerprint}?{canonical}`.
    pub fn immutable_path(&self) -> String {
        immutable_path(&self.fingerprint, &self.canonical)
    }
}

/// The placeholder a waiting request gets, if it shows its answer as an image and the asset has
/// a ThumbHash. One that cannot be drawn is logged and left out: the JSON body still answers.
fn placeholder_for(request: &Request, facts: &crate::model::AssetFacts, size: (u32, u32)) -> Option<Placeholder> {
    let kind = crate::placeholder::choose(request.accept.as_deref(), request.fetch_dest.as_deref())?;
    let summary = facts.summary.as_ref()?;
    crate::placeholder::render(&summary.thumbhash, size, kind)
        .map_err(|e| tracing::warn!(error = %e, "placeholder not drawn"))
        .ok()
}

pub fn immutable_path(fingerprint: &Fingerprint, canonical: &str) -> String {
    format!("/_/{fingerprint}?{canonical}")
}

#[derive(Debug, Clone)]
pub enum Resolution {
    Ready(Served),
    NotModified(Served),
    /// Queued but not done within the wait: ask again after `retry_after`. A request that shows
    /// its answer as an image gets a `placeholder` to show meanwhile (see [`crate::placeholder`]).
    Pending {
        retry_after: Duration,
        placeholder: Option<Placeholder>,
    },
}

/// The resolver use case, holding the ports it needs.
pub struct Resolver {
    pub sources: Arc<dyn ObjectStore>,
    pub variants: Arc<dyn ObjectStore>,
    pub manifest: Arc<dyn ManifestStore>,
    pub queue: Arc<dyn JobQueue>,
    pub config: ResolverConfig,
    /// What a hit needs, remembered: see [`HitCache`].
    pub cache: Arc<HitCache>,
    /// The process's memory budget: an on-demand ingest decodes within it.
    pub budget: Arc<RenderBudget>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Resolver {
    pub async fn resolve(&self, request: &Request) -> Result<Resolution, Error> {
        let (query, sig) = split_signature(&request.query)?;
        let recipe = Recipe::parse(&query, &self.config.recipe_limits)?;
        self.check_signature(&request.target, &recipe.signed_form(), sig.as_deref()).await?;
        let immutable = matches!(request.target, Target::Asset(_));
        if immutable && recipe.format == FormatChoice::Auto {
            return Err(crate::recipe::RecipeError::new(
                "immutable URLs name a concrete format: add fmt=jpeg, png, webp, avif or jxl",
            )
            .into());
        }
        let (fingerprint, source_key) = self.locate(&request.target).await?;
        let (asset, facts) = self.ready_asset(&fingerprint).await?;
        let resolved = recipe
            .resolve_animated(
                request.accept.as_deref(),
                facts.has_alpha,
                facts.is_animation(),
                (facts.width, facts.height),
            )
            .map_err(Error::InvalidRecipe)?;
        // Too large an output (every frame of an animation counted), or too much enlargement:
        // refused before anything is claimed or queued (the render would refuse it too, after a
        // trip through the queue).
        let spec = resolved.render_spec();
        let frames = facts.animation_frames();
        let output_size = catg_image::check_output(facts.width, facts.height, frames, &spec, &self.config.limits)
            .map_err(Error::Image)?;
        let cache_key = CacheKey::derive(&fingerprint, &resolved);
        let served = |from: ServedFrom, body: Option<Vec<u8>>, bytes: u64| Served {
            from,
            cache_key,
            fingerprint,
            canonical: resolved.canonical(),
            format: resolved.format,
            negotiated: recipe.format == FormatChoice::Auto,
            immutable,
            body,
            bytes,
        };
        // The ETag is the cache key: if the client holds it, it holds these exact bytes.
        if request.if_none_match.as_deref().is_some_and(|tags| etag_matches(tags, &cache_key)) {
            return Ok(Resolution::NotModified(served(ServedFrom::Cache, None, 0)));
        }
        if let Some(hit) = self.cache.variant(&cache_key) {
            match (request.want_body, hit.body) {
                (false, _) => return Ok(Resolution::Ready(served(ServedFrom::Cache, None, hit.bytes))),
                (true, Some(body)) => return Ok(Resolution::Ready(served(ServedFrom::Cache, Some(body), hit.bytes))),
                (true, None) => match self.variants.get(&hit.object_key, u64::MAX).await {
                    Ok(body) => return Ok(Resolution::Ready(served(ServedFrom::Cache, Some(body), hit.bytes))),
                    // Gone since: the manifest path below notices and renders it again.
                    Err(StoreError::NotFound(_)) => self.cache.forget_variant(&cache_key),
                    Err(e) => return Err(e.into()),
                },
            }
        }
        let source_key = source_key.unwrap_or(asset.source_key);
        let deadline = tokio::time::Instant::now() + self.config.wait;
        let mut queued = false;
        let mut from = ServedFrom::Store;
        loop {
            let now = now_ms();
            match self.manifest.variant(&cache_key).await? {
                Some(VariantRecord { state: VariantState::Ready { object_key, bytes, .. }, origin, .. }) => {
                    if origin == Origin::Prewarmed {
                        self.note_prewarm_served(&cache_key).await;
                    }
                    if !request.want_body {
                        return Ok(Resolution::Ready(served(from, None, bytes)));
                    }
                    match self.variants.get(&object_key, u64::MAX).await {
                        Ok(body) => {
                            self.cache.put_variant(cache_key, &object_key, bytes, Some(&body));
                            return Ok(Resolution::Ready(served(from, Some(body), bytes)));
                        }
                        // Expired by the variants bucket's lifecycle rule, or deleted: variants
                        // are re-renderable, so render it again rather than fail.
                        Err(StoreError::NotFound(_)) => {
                            tracing::info!(cache_key = %cache_key, "ready variant's object is gone: rendering again");
                            let lost = Replacing::Lost(&object_key);
                            queued =
                                self.claim(&cache_key, &fingerprint, &resolved, &source_key, lost).await? || queued;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Some(VariantRecord { state: VariantState::Failed { reason, message }, .. }) => {
                    return Err(Error::RenderFailed { reason, message });
                }
                // A guess still waiting behind viewers' jobs: take it over and queue it as this
                // viewer's, rather than wait for it.
                Some(guess @ VariantRecord { state: VariantState::Pending { .. }, origin: Origin::Prewarmed, .. })
                    if !queued =>
                {
                    let replacing = Replacing::Guess(&guess);
                    queued = self.claim(&cache_key, &fingerprint, &resolved, &source_key, replacing).await?;
                }
                Some(VariantRecord { state: VariantState::Pending { lease_until_ms }, .. }) if lease_until_ms > now => {
                }
                // Absent, or a claim whose holder died: claim it; one caller wins.
                _ => {
                    queued = queued
                        || self.claim(&cache_key, &fingerprint, &resolved, &source_key, Replacing::Nothing).await?
                }
            }
            if tokio::time::Instant::now() >= deadline {
                let placeholder = placeholder_for(request, &facts, output_size);
                return Ok(Resolution::Pending { retry_after: Duration::from_secs(1), placeholder });
            }
            from = ServedFrom::Render;
            tokio::time::sleep(self.config.poll).await;
        }
    }

    /// Whether a request's query (`sig` aside) asks for the asset's info rather than a variant.
    pub fn asks_for_info(query: &str) -> Result<bool, Error> {
        let (query, _) = split_signature(query)?;
        asks_for_info(&query)
    }

    /// The info of the asset a request names: `/_/{fingerprint}/info` (query empty or
    /// `info=1`) or `/{key}?info=1`, `sig` beside it when signing is on.
    pub async fn info(&self, request: &Request) -> Result<AssetInfo, Error> {
        let (query, sig) = split_signature(&request.query)?;
        if !query.is_empty() && !asks_for_info(&query)? {
            return Err(crate::recipe::RecipeError::new("an info URL takes no recipe parameters").into());
        }
        self.check_signature(&request.target, INFO_SIGNED_FORM, sig.as_deref()).await?;
        let (fingerprint, _) = self.locate(&request.target).await?;
        let (asset, facts) = self.ready_asset(&fingerprint).await?;
        Ok(AssetInfo::new(&fingerprint, asset.bytes, &facts))
    }

    /// With signing on, `sig` must sign `form` for the request's target.
    async fn check_signature(&self, target: &Target, form: &str, sig: Option<&str>) -> Result<(), Error> {
        let Some(keyring) = &self.config.signing else { return Ok(()) };
        let keys = keyring.current().await;
        let hex;
        let target = match target {
            Target::Key(key) => SignedTarget::Key(key),
            Target::Asset(fingerprint) => {
                hex = fingerprint.to_hex();
                SignedTarget::Asset(&hex)
            }
        };
        keys.verify_form(target, form, sig, unix_now())?;
        Ok(())
    }

    /// The asset record and its facts, from the hit cache or the manifest; a rejected asset is
    /// an error.
    async fn ready_asset(
        &self,
        fingerprint: &Fingerprint,
    ) -> Result<(crate::model::AssetRecord, crate::model::AssetFacts), Error> {
        let asset = match self.cache.asset(fingerprint) {
            Some(asset) => asset,
            None => {
                let asset =
                    self.manifest.asset(fingerprint).await?.ok_or_else(|| Error::NotFound("no such image".into()))?;
                self.cache.put_asset(&asset);
                asset
            }
        };
        match &asset.state {
            AssetState::Ready(facts) => Ok((asset.clone(), facts.clone())),
            AssetState::Rejected { reason, message } => {
                Err(Error::AssetRejected { reason: reason.clone(), message: message.clone() })
            }
        }
    }

    /// The fingerprint (and, for key requests, the key to read the source from).
    async fn locate(&self, target: &Target) -> Result<(Fingerprint, Option<String>), Error> {
        match target {
            Target::Asset(fingerprint) => Ok((*fingerprint, None)),
            Target::Key(key) => {
                validate_key(key)?;
                if !key.starts_with(&self.config.source_prefix) {
                    return Err(Error::NotFound("no such image".into()));
                }
                let record = match self.cache.source(key) {
                    Some(record) => record,
                    None => match self.manifest.source(key).await? {
                        Some(record) => {
                            self.cache.put_source(&record);
                            record
                        }
                        // Not seen yet (the upload event may still be on its way): ingest it
                        // now if the object exists.
                        None => {
                            let decoding = Decoding::new(self.config.limits.clone(), self.budget.clone());
                            ingest(self.sources.as_ref(), self.manifest.as_ref(), key, &decoding).await?;
                            self.manifest.source(key).await?.ok_or_else(|| Error::NotFound("no such image".into()))?
                        }
                    },
                };
                if record.state == SourceState::Removed {
                    return Err(Error::NotFound("no such image".into()));
                }
                Ok((record.fingerprint, Some(key.clone())))
            }
        }
    }

    /// Refuse a new claim while either pending-job cap is reached: nothing is claimed or queued,
    /// and the caller is told to come back (503 with `Retry-After`).
    ///
    /// A count the store cannot give for want of configuration (a table created without the
    /// pending index, or one still building it after an update) does not stop every render: the
    /// cap is skipped and the log says why. An outage is an outage (503 as for any store).
    async fn check_pending_caps(&self, fingerprint: &Fingerprint, now: u64) -> Result<(), Error> {
        let per_asset = self.config.max_pending_per_asset;
        let waiting = self.manifest.pending_variants(fingerprint, now, per_asset).await;
        if counted("per-image", waiting)? >= per_asset {
            return Err(Error::Busy(format!("{per_asset} variants of this image are waiting")));
        }
        let total = self.config.max_pending_jobs;
        if counted("total", self.queue.pending_jobs().await)? >= total {
            return Err(Error::Busy(format!("{total} jobs are waiting")));
        }
        Ok(())
    }

    /// A request got a pre-warmed variant: count it served, once (the first caller wins).
    async fn note_prewarm_served(&self, cache_key: &CacheKey) {
        match self.manifest.mark_prewarm_served(cache_key).await {
            Ok(true) => metrics::prewarm_served(),
            Ok(false) => {}
            Err(e) => tracing::warn!(cache_key = %cache_key, error = %e, "could not count a pre-warmed variant served"),
        }
    }

    async fn claim(
        &self,
        cache_key: &CacheKey,
        fingerprint: &Fingerprint,
        resolved: &ResolvedRecipe,
        source_key: &str,
        replacing: Replacing<'_>,
    ) -> Result<bool, Error> {
        let now = now_ms();
        self.check_pending_caps(fingerprint, now).await?;
        let record = VariantRecord {
            cache_key: *cache_key,
            fingerprint: *fingerprint,
            canonical: resolved.canonical(),
            format: resolved.format,
            state: VariantState::Pending { lease_until_ms: now + self.config.lease.as_millis() as u64 },
            updated_ms: now,
            origin: Origin::Requested,
        };
        let replaced = |won: bool| if won { Claim::Claimed } else { Claim::Held(record.clone()) };
        let claim = match replacing {
            Replacing::Nothing => self.manifest.claim_variant(&record, now).await?,
            Replacing::Lost(lost) => replaced(self.manifest.reclaim_lost_variant(&record, lost).await?),
            Replacing::Guess(guess) => replaced(self.manifest.take_over_prewarm_claim(&record, guess).await?),
        };
        match claim {
            Claim::Claimed => {
                let job = Job {
                    cache_key: *cache_key,
                    fingerprint: *fingerprint,
                    recipe: *resolved,
                    source_key: source_key.to_string(),
                    prewarm: false,
                };
                if let Err(e) = self.queue.enqueue(&job).await {
                    // Nobody will render it: give the claim back so the next request, once the
                    // queue answers again, claims and queues it at once. If even that fails,
                    // the claim's lease runs out and a later request takes it over.
                    if let Err(release) = self.manifest.release_claim(&record).await {
                        tracing::warn!(cache_key = %cache_key, error = %release, "could not release a claim");
                    }
                    return Err(e.into());
                }
                tracing::debug!(cache_key = %cache_key, "variant claimed and queued");
                Ok(true)
            }
            Claim::Held(_) => Ok(false),
        }
    }
}

/// What a claim replaces: nothing (no record, or a dead claim), a ready record whose object is
/// gone, or a pre-warm's live claim.
enum Replacing<'a> {
    Nothing,
    Lost(&'a str),
    Guess(&'a VariantRecord),
}

/// A pending-job count for a cap: an outage is an error; any other failure skips the cap.
fn counted(cap: &str, count: Result<u64, StoreError>) -> Result<u64, Error> {
    match count {
        Ok(n) => Ok(n),
        Err(e) if e.is_retryable() => Err(e.into()),
        Err(e) => {
            tracing::warn!(cap, error = %e, "cannot count pending jobs: the cap is not enforced");
            Ok(0)
        }
    }
}

/// `If-None-Match` holds our ETag (`"<cache key>"`, weak or strong) or `*`.
fn etag_matches(header: &str, cache_key: &CacheKey) -> bool {
    let hex = cache_key.to_hex();
    header.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_relative_paths_without_tricks() {
        for good in ["a.jpg", "photos/2024/cat.jpg", "with space+plus%.png", "ünïcode/ß.webp"] {
            assert!(validate_key(good).is_ok(), "{good}");
        }
        for bad in ["", "/abs.jpg", "a//b.jpg", "../etc/passwd", "a/./b", "a/..", "nul\0.jpg", "tab\t.jpg"] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        assert!(validate_key(&"a".repeat(MAX_KEY_BYTES + 1)).is_err());
    }

    /// A store that cannot count (no pending index) skips the cap; an outage is still an error.
    #[test]
    fn a_cap_the_store_cannot_count_is_skipped_but_an_outage_is_not() {
        assert_eq!(counted("t", Ok(5)).ok(), Some(5));
        assert_eq!(counted("t", Err(StoreError::Invalid("no such index".into()))).ok(), Some(0));
        assert!(counted("t", Err(StoreError::Unavailable("down".into()))).is_err());
    }

    #[test]
    fn etags_match_weak_strong_and_star() {
        let key = CacheKey([7; 32]);
        let tag = format!("\"{}\"", key.to_hex());
        assert!(etag_matches(&tag, &key));
        assert!(etag_matches(&format!("W/{tag}"), &key));
        assert!(etag_matches(&format!("\"other\", {tag}"), &key));
        assert!(etag_matches("*", &key));
        assert!(!etag_matches("\"nope\"", &key));
    }
}
