//! The manifest model: what DynamoDB holds on AWS and SQLite holds locally. Three record kinds:
//! a *source* per object key, an *asset* per fingerprint, a *variant* per cache key.

use crate::cache_key::CacheKey;
use crate::fingerprint::Fingerprint;
use catg_image::{OutputFormat, Probe};
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

pub fn now_ms() -> Millis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as Millis).unwrap_or(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    Present,
    Removed,
}

impl SourceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Present => "present",
            SourceState::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<SourceState> {
        match s {
            "present" => Some(SourceState::Present),
            "removed" => Some(SourceState::Removed),
            _ => None,
        }
    }
}

/// An object key in the source store, and which asset its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    pub key: String,
    pub fingerprint: Fingerprint,
    pub bytes: u64,
    /// What the store says identifies this version of the object (S3 ETag; size + mtime locally).
    pub etag: String,
    pub state: SourceState,
    pub updated_ms: Millis,
}

/// What the header of an accepted asset says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetFacts {
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub orientation: u8,
    /// Some pixel is not opaque (checked by decoding, not just declared).
    pub has_alpha: bool,
    pub frames: u32,
}

impl AssetFacts {
    pub fn from_probe(probe: &Probe) -> AssetFacts {
        AssetFacts {
            format: probe.format.as_str().to_string(),
            width: probe.width(),
            height: probe.height(),
            orientation: probe.orientation.exif_value(),
            has_alpha: probe.has_alpha,
            frames: probe.frames,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetState {
    Ready(AssetFacts),
    /// `reason` is a public reject kind (`truncated`, `too_many_pixels`, …).
    Rejected {
        reason: String,
        message: String,
    },
}

/// One asset per distinct content: identical bytes under many keys are one asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetRecord {
    pub fingerprint: Fingerprint,
    pub bytes: u64,
    pub state: AssetState,
    pub first_seen_ms: Millis,
    /// A key whose object held these bytes when last seen: where renders read them from.
    pub source_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariantState {
    /// Claimed by one request; the claim is stale (and may be re-claimed) after the lease.
    Pending {
        lease_until_ms: Millis,
    },
    Ready {
        object_key: String,
        bytes: u64,
        render_ms: u64,
    },
    /// Permanent: the source cannot be rendered (`reason` is a public reject kind).
    Failed {
        reason: String,
        message: String,
    },
}

impl VariantState {
    pub fn name(&self) -> &'static str {
        match self {
            VariantState::Pending { .. } => "pending",
            VariantState::Ready { .. } => "ready",
            VariantState::Failed { .. } => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantRecord {
    pub cache_key: CacheKey,
    pub fingerprint: Fingerprint,
    pub canonical: String,
    pub format: OutputFormat,
    pub state: VariantState,
    pub updated_ms: Millis,
}

/// Where a variant's bytes live in the variant store.
pub fn variant_object_key(cache_key: &CacheKey, format: OutputFormat) -> String {
    let hex = cache_key.to_hex();
    format!("{}/{}/{hex}.{}", &hex[..2], &hex[2..4], format.extension())
}

/// A render job: everything the transform needs, carried by the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub cache_key: String,
    pub fingerprint: String,
    pub canonical: String,
    pub source_key: String,
}
