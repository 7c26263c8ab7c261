//! The set of stores a deployment runs on, and the roles built from it. Each backend connects
//! one set (`catg_aws::Aws::connect`, `catg_local::Embedded::open`); the resolver, the renderer
//! and ingest's decoding are then made here, the same way for both.

use crate::ports::{JobQueue, ManifestStore, ObjectStore};
use crate::{
    Decoding, HitCache, PrewarmConfig, Prewarmer, RecipeLimits, RenderBudget, Renderer, Resolver, ResolverConfig,
};
use catg_image::Limits;
use std::sync::Arc;

#[derive(Clone)]
pub struct Stores {
    pub sources: Arc<dyn ObjectStore>,
    pub variants: Arc<dyn ObjectStore>,
    pub manifest: Arc<dyn ManifestStore>,
    /// Where misses are queued for rendering; `None` in a process that never queues (the
    /// ingest and transform functions).
    pub queue: Option<Arc<dyn JobQueue>>,
    /// Where pre-warm guesses are queued, behind every viewer's job; `None`: no pre-warming
    /// from this process.
    pub prewarm_queue: Option<Arc<dyn JobQueue>>,
    /// The process's one memory budget: renders and ingest's decodes share it.
    pub budget: Arc<RenderBudget>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores")
            .field("queue", &self.queue.is_some())
            .field("prewarm_queue", &self.prewarm_queue.is_some())
            .finish_non_exhaustive()
    }
}

impl Stores {
    /// Limits and the process's budget, for ingest's decodes.
    pub fn decoding(&self, limits: &Limits) -> Decoding {
        Decoding::new(limits.clone(), self.budget.clone())
    }

    pub fn renderer(&self, limits: &Limits) -> Renderer {
        Renderer {
            sources: self.sources.clone(),
            variants: self.variants.clone(),
            manifest: self.manifest.clone(),
            limits: limits.clone(),
            budget: self.budget.clone(),
            prewarm: None,
        }
    }

    /// The renderer, queueing companions of each viewer's render to the pre-warm queue (when
    /// there is one and `prewarm.per_asset` is not 0).
    pub fn prewarming_renderer(
        &self,
        limits: &Limits,
        recipe_limits: &RecipeLimits,
        prewarm: &PrewarmConfig,
    ) -> Renderer {
        let prewarmer = self.prewarm_queue.clone().filter(|_| prewarm.per_asset > 0).map(|queue| {
            Arc::new(Prewarmer::new(
                self.manifest.clone(),
                queue,
                prewarm.clone(),
                recipe_limits.clone(),
                limits.clone(),
            ))
        });
        Renderer { prewarm: prewarmer, ..self.renderer(limits) }
    }

    /// The resolver, with a fresh hit cache; `None` without a queue to send misses to.
    pub fn resolver(&self, config: ResolverConfig) -> Option<Resolver> {
        Some(self.resolver_queueing_to(self.queue.clone()?, config))
    }

    /// The resolver, sending misses to `queue`.
    pub fn resolver_queueing_to(&self, queue: Arc<dyn JobQueue>, config: ResolverConfig) -> Resolver {
        Resolver {
            sources: self.sources.clone(),
            variants: self.variants.clone(),
            manifest: self.manifest.clone(),
            queue,
            config,
            cache: Arc::new(HitCache::default()),
            budget: self.budget.clone(),
        }
    }
}
