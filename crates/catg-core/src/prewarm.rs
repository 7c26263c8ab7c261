//! Predictive pre-warm: when a viewer's variant of an asset is rendered, queue the recipes that
//! viewers usually ask for together with it, so their first request is a hit.
//!
//! What "usually together" means is learned from the manifest across assets: recipe R2 is a
//! companion of R when at least `min_support` assets that have R also have R2, and they are at
//! least `min_confidence` of the assets that have R. Only variants a viewer asked for teach
//! (a pre-warmed variant counts once a request has got it), so guesses never teach themselves.
//! The table is learned from a bounded sample of variant records and relearned now and then.
//!
//! Pre-warm jobs go to their own queue, behind every viewer's: locally a lane the workers take
//! only while no viewer job waits; on AWS a second SQS queue with a capped concurrency. A viewer
//! who asks for a variant still waiting as a pre-warm takes its claim over (see
//! [`crate::ports::ManifestStore::take_over_prewarm_claim`]), so a guess never delays a viewer.

use crate::cache_key::CacheKey;
use crate::fingerprint::Fingerprint;
use crate::metrics;
use crate::model::{now_ms, AssetState, Job, Origin, VariantRecord, VariantState};
use crate::ports::{Claim, JobQueue, ManifestStore, StoreResult};
use crate::recipe::{Recipe, RecipeLimits};
use catg_image::Limits;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub struct PrewarmConfig {
    /// Most companions queued per viewer render; 0 turns pre-warming off.
    pub per_asset: usize,
    /// Fewest assets that must have both recipes.
    pub min_support: u64,
    /// Smallest share of the assets having R that also have R2.
    pub min_confidence: f64,
    /// Most variant records read when learning.
    pub sample: usize,
    /// How long a learned table is used before it is learned again.
    pub relearn_every: Duration,
    /// Most pre-warm jobs waiting before no more are queued.
    pub max_waiting: u64,
    /// How long a pre-warm claim holds (its job may wait behind viewers' for a while).
    pub lease: Duration,
}

impl Default for PrewarmConfig {
    fn default() -> Self {
        PrewarmConfig {
            per_asset: 3,
            min_support: 3,
            min_confidence: 0.5,
            sample: 10_000,
            relearn_every: Duration::from_secs(300),
            max_waiting: 1000,
            lease: Duration::from_secs(600),
        }
    }
}

/// Recipes an asset may hold that count when learning: more are ignored, which bounds the
/// pairs counted per asset.
const RECIPES_PER_ASSET: usize = 32;
/// Companions kept per recipe.
const COMPANIONS_KEPT: usize = 8;

/// Recipe → the recipes viewers ask for with it, most often first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompanionTable {
    companions: HashMap<String, Vec<String>>,
}

impl CompanionTable {
    /// Learn from `(asset, canonical recipe)` pairs of variants viewers asked for.
    pub fn learn(variants: impl IntoIterator<Item = (Fingerprint, String)>, config: &PrewarmConfig) -> CompanionTable {
        let mut by_asset: HashMap<Fingerprint, BTreeSet<String>> = HashMap::new();
        for (fingerprint, canonical) in variants {
            let recipes = by_asset.entry(fingerprint).or_default();
            if recipes.len() < RECIPES_PER_ASSET {
                recipes.insert(canonical);
            }
        }
        let mut having: HashMap<&str, u64> = HashMap::new();
        let mut both: HashMap<(&str, &str), u64> = HashMap::new();
        for recipes in by_asset.values() {
            for r in recipes {
                *having.entry(r).or_default() += 1;
                for r2 in recipes.iter().filter(|r2| *r2 != r) {
                    *both.entry((r, r2)).or_default() += 1;
                }
            }
        }
        let mut companions: HashMap<String, Vec<(u64, String)>> = HashMap::new();
        for ((r, r2), count) in both {
            let confidence = count as f64 / having[r] as f64;
            if count >= config.min_support && confidence >= config.min_confidence {
                companions.entry(r.to_string()).or_default().push((count, r2.to_string()));
            }
        }
        let companions = companions
            .into_iter()
            .map(|(r, mut found)| {
                // Most shared first; ties in a fixed order, so a table is the same every time.
                found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
                (r, found.into_iter().take(COMPANIONS_KEPT).map(|(_, r2)| r2).collect())
            })
            .collect();
        CompanionTable { companions }
    }

    pub fn companions(&self, canonical: &str) -> &[String] {
        self.companions.get(canonical).map_or(&[], Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.companions.is_empty()
    }
}

/// Queues companions after a viewer's render.
pub struct Prewarmer {
    pub manifest: Arc<dyn ManifestStore>,
    /// The pre-warm queue, never the viewers'.
    pub queue: Arc<dyn JobQueue>,
    pub config: PrewarmConfig,
    pub recipe_limits: RecipeLimits,
    pub limits: Limits,
    learned: tokio::sync::Mutex<Option<(Instant, Arc<CompanionTable>)>>,
}

impl std::fmt::Debug for Prewarmer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prewarmer").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Prewarmer {
    pub fn new(
        manifest: Arc<dyn ManifestStore>,
        queue: Arc<dyn JobQueue>,
        config: PrewarmConfig,
        recipe_limits: RecipeLimits,
        limits: Limits,
    ) -> Prewarmer {
        // Companions are canonical recipes, a preset's expansion included: checked against the
        // limits, never refused for not being a preset name.
        let recipe_limits = RecipeLimits { presets_only: false, ..recipe_limits };
        Prewarmer { manifest, queue, config, recipe_limits, limits, learned: tokio::sync::Mutex::new(None) }
    }

    /// After `job` (a viewer's) rendered: claim and queue up to `per_asset` of its recipe's
    /// companions for the same asset. Returns how many were queued. Never fails the render: a
    /// store that does not answer costs only the guess, and the log says so.
    pub async fn after_render(&self, job: &Job) -> usize {
        if self.config.per_asset == 0 || job.prewarm {
            return 0;
        }
        match self.queue_companions(job).await {
            Ok(queued) => {
                if queued > 0 {
                    metrics::prewarm_queued(queued as u64);
                    tracing::info!(fingerprint = %job.fingerprint, queued, "pre-warm queued");
                }
                queued
            }
            Err(e) => {
                tracing::warn!(error = %e, "pre-warm skipped");
                0
            }
        }
    }

    async fn queue_companions(&self, job: &Job) -> StoreResult<usize> {
        let table = self.table().await?;
        let companions = table.companions(&job.recipe.canonical());
        if companions.is_empty() {
            return Ok(0);
        }
        let Some(asset) = self.manifest.asset(&job.fingerprint).await? else { return Ok(0) };
        let AssetState::Ready(facts) = &asset.state else { return Ok(0) };
        if self.queue.pending_jobs().await? >= self.config.max_waiting {
            tracing::info!("pre-warm queue full: no guesses queued");
            return Ok(0);
        }
        let mut queued = 0;
        for canonical in companions {
            if queued == self.config.per_asset {
                break;
            }
            // Re-checked for this asset: today's limits, its own size and alpha.
            let Ok(recipe) = Recipe::parse(canonical, &self.recipe_limits) else { continue };
            let size = (facts.width, facts.height);
            let Ok(resolved) = recipe.resolve_animated(None, facts.has_alpha, facts.is_animation(), size) else {
                continue;
            };
            let (spec, frames) = (resolved.render_spec(), facts.animation_frames());
            if catg_image::check_output(size.0, size.1, frames, &spec, &self.limits).is_err() {
                continue;
            }
            let now = now_ms();
            let record = VariantRecord {
                cache_key: CacheKey::derive(&job.fingerprint, &resolved),
                fingerprint: job.fingerprint,
                canonical: resolved.canonical(),
                format: resolved.format,
                state: VariantState::Pending { lease_until_ms: now + self.config.lease.as_millis() as u64 },
                updated_ms: now,
                origin: Origin::Prewarmed,
            };
            if self.manifest.claim_variant(&record, now).await? != Claim::Claimed {
                continue;
            }
            let guess = Job { prewarm: true, ..Job::new(job.fingerprint, resolved, job.source_key.clone()) };
            if let Err(e) = self.queue.enqueue(&guess).await {
                // As for a viewer's claim: give it back so nothing waits on a job never queued.
                let _ = self.manifest.release_claim(&record).await;
                return Err(e);
            }
            queued += 1;
        }
        Ok(queued)
    }

    /// The companion table, learned again when it is older than `relearn_every`.
    async fn table(&self) -> StoreResult<Arc<CompanionTable>> {
        let mut learned = self.learned.lock().await;
        if let Some((at, table)) = learned.as_ref() {
            if at.elapsed() < self.config.relearn_every && !self.config.relearn_every.is_zero() {
                return Ok(table.clone());
            }
        }
        let table = Arc::new(CompanionTable::learn(self.sample().await?, &self.config));
        *learned = Some((Instant::now(), table.clone()));
        Ok(table)
    }

    /// Variants viewers asked for, from up to `sample` variant records of the manifest. A
    /// DynamoDB page may hold few variants (the scan passes over other records too), so the
    /// pages read are capped as well: at most four times the sample's worth.
    async fn sample(&self) -> StoreResult<Vec<(Fingerprint, String)>> {
        const PAGE: usize = 1000;
        let max_pages = self.config.sample.div_ceil(PAGE) * 4;
        let (mut sample, mut read, mut pages, mut cursor) = (Vec::new(), 0, 0, None::<String>);
        loop {
            let page = self.manifest.variant_page(cursor.as_deref(), PAGE).await?;
            read += page.items.len();
            pages += 1;
            sample.extend(
                page.items
                    .into_iter()
                    .filter(|v| v.origin.viewer_asked() && !matches!(v.state, VariantState::Failed { .. }))
                    .map(|v| (v.fingerprint, v.canonical)),
            );
            match page.next {
                Some(next) if read < self.config.sample && pages < max_pages => cursor = Some(next),
                _ => return Ok(sample),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(n: u8) -> Fingerprint {
        Fingerprint::of(&[n])
    }

    fn config() -> PrewarmConfig {
        PrewarmConfig { min_support: 3, min_confidence: 0.5, ..PrewarmConfig::default() }
    }

    #[test]
    fn a_pair_most_assets_share_is_learned_both_ways() {
        let mut seen = Vec::new();
        for n in 0..4 {
            seen.push((asset(n), "w=200".to_string()));
            seen.push((asset(n), "w=800".to_string()));
        }
        seen.push((asset(9), "w=200".to_string()));
        let table = CompanionTable::learn(seen, &config());
        assert_eq!(table.companions("w=200"), ["w=800"]);
        assert_eq!(table.companions("w=800"), ["w=200"]);
        assert!(table.companions("w=999").is_empty());
    }

    #[test]
    fn too_few_assets_or_too_small_a_share_teaches_nothing() {
        let pair = |n| [(asset(n), "a".to_string()), (asset(n), "b".to_string())];
        let two: Vec<_> = (0..2).flat_map(pair).collect();
        assert!(CompanionTable::learn(two.clone(), &config()).is_empty(), "support 2 < 3");
        // Three assets have both, but seven more have only `a`: 3 of 10 is under half.
        let mut diluted: Vec<_> = (0..3).flat_map(pair).collect();
        diluted.extend((10..17).map(|n| (asset(n), "a".to_string())));
        let table = CompanionTable::learn(diluted, &config());
        assert!(table.companions("a").is_empty());
        assert_eq!(table.companions("b"), ["a"], "every asset with b also has a");
    }

    #[test]
    fn companions_come_most_shared_first_and_never_the_recipe_itself() {
        let mut seen = Vec::new();
        for n in 0..6 {
            seen.push((asset(n), "r".to_string()));
            seen.push((asset(n), "r".to_string()));
            seen.push((asset(n), "often".to_string()));
            if n < 4 {
                seen.push((asset(n), "sometimes".to_string()));
            }
        }
        let table = CompanionTable::learn(seen, &config());
        assert_eq!(table.companions("r"), ["often", "sometimes"]);
    }
}
