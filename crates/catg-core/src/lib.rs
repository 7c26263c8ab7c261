//! catg's core: fingerprints, recipes and cache keys, examining sources and rendering variants.
//!
//! Depends on the image pipeline and on no adapter; it never names AWS or Lambda. The outside
//! world is reached through the ports in [`ports`]; the use cases are [`ingest()`],
//! [`Resolver::resolve`], [`Renderer::render`] and the local [`run_worker`] loop.

pub mod backfill;
pub mod cache_key;
pub mod config;
pub mod error;
pub mod examine;
pub mod fingerprint;
pub mod hit_cache;
pub mod info;
pub mod ingest;
pub mod keyring;
pub mod metrics;
pub mod model;
pub mod near_duplicates;
pub mod negotiate;
pub mod placeholder;
pub mod ports;
pub mod prewarm;
pub mod recipe;
pub mod reconcile;
pub mod render_budget;
pub mod render_job;
pub mod report;
pub mod resolve;
pub mod signing;
pub mod stores;
pub mod variant;
pub mod warm;
pub mod worker;

pub use backfill::{backfill, BackfillOptions, BackfillReport, Flow};
pub use cache_key::CacheKey;
pub use error::Error;
pub use examine::{examine, Examined};
pub use fingerprint::{fingerprint, Fingerprint, HashingReader};
pub use hit_cache::{HitCache, HitCacheConfig};
pub use ingest::{ingest, remove_source, Ingested};
pub use keyring::{Keyring, KeyringError, SecretSource};
pub use negotiate::negotiate;
pub use prewarm::{CompanionTable, PrewarmConfig, Prewarmer};
pub use recipe::{FormatChoice, Recipe, RecipeError, RecipeLimits, ResolvedRecipe};
pub use reconcile::{reconcile, ReconcileOptions, ReconcileReport};
pub use render_budget::{Decoding, RenderBudget};
pub use render_job::{RenderOutcome, Renderer, IMMUTABLE_CACHE_CONTROL};
pub use resolve::{validate_key, Request, Resolution, Resolver, ResolverConfig, Served, ServedFrom, Target};
pub use signing::{SignatureError, SignedTarget, SigningKeys};
pub use stores::Stores;
pub use variant::{render_variant, Variant};
pub use warm::{warm, WarmReport};
pub use worker::{run_worker, WorkerConfig};
