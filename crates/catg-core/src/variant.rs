//! Rendering one variant of an examined source.

use crate::cache_key::CacheKey;
use crate::error::Error;
use crate::fingerprint::Fingerprint;
use crate::recipe::{Recipe, ResolvedRecipe};
use catg_image::{render_probed, Limits, Probe, Rendered};

#[derive(Debug)]
pub struct Variant {
    pub cache_key: CacheKey,
    pub recipe: ResolvedRecipe,
    pub rendered: Rendered,
}

/// Resolve `recipe` for this image and client, derive its key and render it.
pub fn render_variant(
    body: &[u8],
    fingerprint: &Fingerprint,
    probe: &Probe,
    recipe: &Recipe,
    accept: Option<&str>,
    limits: &Limits,
) -> Result<Variant, Error> {
    let resolved = recipe
        .resolve_animated(accept, probe.has_alpha, catg_image::is_animation(probe), (probe.width(), probe.height()))
        .map_err(Error::InvalidRecipe)?;
    let cache_key = CacheKey::derive(fingerprint, &resolved);
    let rendered = render_probed(body, probe, &resolved.render_spec(), limits)?;
    Ok(Variant { cache_key, recipe: resolved, rendered })
}
