//! What the info URLs answer: an asset's facts and summary as JSON, for front ends that want the
//! size, a placeholder or a dominant colour before (or instead of) any variant.
//!
//! - `GET /_/{fingerprint}/info`: immutable, as the asset's content is;
//! - `GET /{key}?info=1`: the asset the key holds now, cached as key URLs are.

use crate::error::Error;
use crate::fingerprint::Fingerprint;
use crate::model::{AssetFacts, SummaryText};
use crate::recipe::RecipeError;
use serde::Serialize;

/// The query parameter that asks a key URL for its info.
pub const INFO_PARAM: &str = "info";

/// The info of one asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssetInfo {
    pub fingerprint: String,
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
    pub frames: u32,
    pub bytes: u64,
    /// Absent until ingest (or `catg backfill`, for older assets) has made them.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub summary: Option<SummaryText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub near_duplicate_of: Option<String>,
}

impl AssetInfo {
    pub fn new(fingerprint: &Fingerprint, bytes: u64, facts: &AssetFacts) -> AssetInfo {
        AssetInfo {
            fingerprint: fingerprint.to_hex(),
            format: facts.format.clone(),
            width: facts.width,
            height: facts.height,
            has_alpha: facts.has_alpha,
            frames: facts.frames,
            bytes,
            summary: facts.summary.as_ref().map(SummaryText::of),
            near_duplicate_of: facts.near_duplicate_of.map(|f| f.to_hex()),
        }
    }

    /// Whether the answer can never change: everything in it is derived from the bytes, and the
    /// summary is there (an older asset's is still to come).
    pub fn is_final(&self) -> bool {
        self.summary.is_some()
    }
}

/// Whether a key URL's query (without its signature) asks for info: `info=1` alone. `info` with
/// any other value, or beside recipe parameters, is an invalid recipe.
pub fn asks_for_info(query: &str) -> Result<bool, Error> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mentions = query.split('&').any(|piece| piece.split('=').next() == Some(INFO_PARAM));
    match (mentions, query) {
        (false, _) => Ok(false),
        (true, "info=1") => Ok(true),
        (true, _) => Err(RecipeError::new("`info` takes the value 1 and no recipe parameters beside it").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_asked_for_alone() {
        assert!(asks_for_info("info=1").expect("info"));
        assert!(asks_for_info("?info=1").expect("info"));
        assert!(!asks_for_info("w=100").expect("a recipe"));
        assert!(!asks_for_info("").expect("empty"));
        assert!(!asks_for_info("infox=1").expect("another name"));
        for bad in ["info=0", "info=yes", "info=1&w=100", "w=100&info=1", "info=1&info=1", "info"] {
            assert!(asks_for_info(bad).is_err(), "{bad}");
        }
    }
}
