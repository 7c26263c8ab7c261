//! Cache keys: `sha256(fingerprint-hex "\n" canonical-recipe "\n" "pipeline=" version)`.
//! Reproducible from a shell:
//! `printf '%s\n%s\npipeline=%s' "$FP" "$CANONICAL" 1 | sha256sum`.

use crate::fingerprint::Fingerprint;
use crate::recipe::ResolvedRecipe;
use sha2::{Digest, Sha256};
use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(pub [u8; 32]);

impl CacheKey {
    pub fn derive(fingerprint: &Fingerprint, recipe: &ResolvedRecipe) -> CacheKey {
        Self::derive_with_version(fingerprint, recipe, catg_image::PIPELINE_VERSION)
    }

    fn derive_with_version(fingerprint: &Fingerprint, recipe: &ResolvedRecipe, version: u32) -> CacheKey {
        let mut hasher = Sha256::new();
        hasher.update(fingerprint.to_hex());
        hasher.update(b"\n");
        hasher.update(recipe.canonical());
        hasher.update(format!("\npipeline={version}"));
        CacheKey(hasher.finalize().into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::str::FromStr for CacheKey {
    type Err = crate::fingerprint::BadFingerprint;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        crate::fingerprint::decode_hex32(s, &mut out)?;
        Ok(CacheKey(out))
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::{Recipe, RecipeLimits};

    fn resolved(q: &str) -> ResolvedRecipe {
        Recipe::parse(q, &RecipeLimits::default()).expect("valid").resolve(None, false, (4000, 3000)).expect("resolves")
    }

    #[test]
    fn key_is_the_documented_hash() {
        let fp = Fingerprint::of(b"image");
        let recipe = resolved("w=400&h=300&fmt=webp");
        let mut expected = Sha256::new();
        expected.update(format!("{}\n{}\npipeline={}", fp.to_hex(), recipe.canonical(), catg_image::PIPELINE_VERSION));
        assert_eq!(CacheKey::derive(&fp, &recipe).0, <[u8; 32]>::from(expected.finalize()));
    }

    #[test]
    fn key_changes_with_each_input() {
        let fp = Fingerprint::of(b"image");
        let recipe = resolved("w=400");
        let key = CacheKey::derive(&fp, &recipe);
        assert_ne!(key, CacheKey::derive(&Fingerprint::of(b"other"), &recipe));
        assert_ne!(key, CacheKey::derive(&fp, &resolved("w=401")));
        assert_ne!(key, CacheKey::derive_with_version(&fp, &recipe, catg_image::PIPELINE_VERSION + 1));
    }
}
