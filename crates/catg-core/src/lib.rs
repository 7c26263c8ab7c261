//! catg's core: fingerprints, recipes and cache keys, examining sources and rendering variants.
//!
//! Depends on the image pipeline and nothing that does network I/O; it never names AWS or
//! Lambda. The ports (object store, manifest store, job queue) and the use cases that drive them
//! join this crate with `catg serve` (issue 3).

pub mod cache_key;
pub mod config;
pub mod error;
pub mod examine;
pub mod fingerprint;
pub mod negotiate;
pub mod recipe;
pub mod variant;

pub use cache_key::CacheKey;
pub use error::Error;
pub use examine::{examine, Examined};
pub use fingerprint::{fingerprint, Fingerprint, HashingReader};
pub use negotiate::negotiate;
pub use recipe::{FormatChoice, Recipe, RecipeError, RecipeLimits, ResolvedRecipe};
pub use variant::{render_variant, Variant};
