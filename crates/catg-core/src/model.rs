//! The manifest model: what DynamoDB holds on AWS and SQLite holds locally. Three record kinds:
//! a *source* per object key, an *asset* per fingerprint, a *variant* per cache key.

use crate::cache_key::CacheKey;
use crate::fingerprint::Fingerprint;
use crate::recipe::ResolvedRecipe;
use catg_image::{OutputFormat, Probe, Summary};
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
    /// Placeholder, colour and perceptual hash of the upright image, from ingest's one decode.
    /// `None` for an asset recorded before catg made them, until `catg backfill` fills it in.
    pub summary: Option<Summary>,
    /// An earlier asset that is the same picture resized, re-encoded or mildly recoloured (see
    /// [`crate::near_duplicates`]): the first of its group, never itself a near-duplicate.
    pub near_duplicate_of: Option<Fingerprint>,
}

impl AssetFacts {
    /// Whether the asset is an animation catg can keep animated (GIF or WebP, several frames).
    pub fn is_animation(&self) -> bool {
        self.frames > 1 && matches!(self.format.as_str(), "gif" | "webp")
    }

    /// The frames an animated output of the asset holds (1 for a still, or a TIFF's pages).
    pub fn animation_frames(&self) -> u32 {
        if self.is_animation() {
            self.frames
        } else {
            1
        }
    }

    pub fn from_probe(probe: &Probe) -> AssetFacts {
        AssetFacts {
            format: probe.format.as_str().to_string(),
            width: probe.width(),
            height: probe.height(),
            orientation: probe.orientation.exif_value(),
            has_alpha: probe.has_alpha,
            frames: probe.frames,
            summary: None,
            near_duplicate_of: None,
        }
    }
}

/// A summary's stored and public form, the same in both manifests and in every answer:
/// `thumbhash` in standard base64 with padding, `dominant_color` as `#rrggbb`, `phash` as 16
/// lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryText {
    pub thumbhash: String,
    pub dominant_color: String,
    pub phash: String,
}

impl SummaryText {
    pub fn of(summary: &Summary) -> SummaryText {
        use base64::Engine;
        SummaryText {
            thumbhash: base64::engine::general_purpose::STANDARD.encode(&summary.thumbhash),
            dominant_color: summary.dominant_colour_hex(),
            phash: summary.phash_hex(),
        }
    }

    /// Back to a summary; `None` if any field is not in its stored form.
    pub fn parse(&self) -> Option<Summary> {
        use base64::Engine;
        let thumbhash = base64::engine::general_purpose::STANDARD.decode(&self.thumbhash).ok()?;
        let colour = self.dominant_color.strip_prefix('#').filter(|hex| hex.len() == 6)?;
        let channel = |i: usize| u8::from_str_radix(colour.get(i..i + 2)?, 16).ok();
        let dominant_colour = [channel(0)?, channel(2)?, channel(4)?];
        if self.phash.len() != 16 {
            return None;
        }
        let phash = u64::from_str_radix(&self.phash, 16).ok()?;
        Some(Summary { thumbhash, dominant_colour, phash })
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

/// Why a variant exists: a viewer asked for it, or catg guessed a viewer soon would (see
/// [`crate::prewarm`]). A guess turns `PrewarmedServed` the first time a request gets it, which
/// is how `catg report` shows what pre-warming bought.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Origin {
    #[default]
    Requested,
    Prewarmed,
    PrewarmedServed,
}

impl Origin {
    /// The stored form; `Requested` is stored as nothing (records written before pre-warming).
    pub fn stored(self) -> Option<&'static str> {
        match self {
            Origin::Requested => None,
            Origin::Prewarmed => Some("prewarmed"),
            Origin::PrewarmedServed => Some("prewarmed_served"),
        }
    }

    /// Back from the stored form; anything unknown reads as `Requested`.
    pub fn from_stored(stored: Option<&str>) -> Origin {
        match stored {
            Some("prewarmed") => Origin::Prewarmed,
            Some("prewarmed_served") => Origin::PrewarmedServed,
            _ => Origin::Requested,
        }
    }

    /// Whether a viewer has asked for the variant: what pre-warming learns from.
    pub fn viewer_asked(self) -> bool {
        self != Origin::Prewarmed
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
    pub origin: Origin,
}

/// Where a variant's bytes live in the variant store.
pub fn variant_object_key(cache_key: &CacheKey, format: OutputFormat) -> String {
    let hex = cache_key.to_hex();
    format!("{}/{}/{hex}.{}", &hex[..2], &hex[2..4], format.extension())
}

/// A render job: everything the transform needs, carried by the queue. Its wire form, JSON
/// with the key, fingerprint and canonical recipe as strings, is written and read only here,
/// and checked on reading: the cache key must be the one the fingerprint and recipe make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "JobWire", into = "JobWire")]
pub struct Job {
    pub cache_key: CacheKey,
    pub fingerprint: Fingerprint,
    pub recipe: ResolvedRecipe,
    /// Where the source was when the job was queued (it may have moved: the renderer also
    /// looks where the asset's record says).
    pub source_key: String,
    /// Queued by pre-warming, not by a viewer: rendered only while its claim is still the
    /// pre-warm's, and never a reason to pre-warm more.
    pub prewarm: bool,
}

#[derive(Serialize, Deserialize)]
struct JobWire {
    cache_key: String,
    fingerprint: String,
    canonical: String,
    source_key: String,
    /// Absent in viewers' jobs (and in every job queued before pre-warming existed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    prewarm: bool,
}

impl Job {
    pub fn new(fingerprint: Fingerprint, recipe: ResolvedRecipe, source_key: impl Into<String>) -> Job {
        Job {
            cache_key: CacheKey::derive(&fingerprint, &recipe),
            fingerprint,
            recipe,
            source_key: source_key.into(),
            prewarm: false,
        }
    }

    /// The message body a queue carries.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A message body back as a job; [`Error::InvalidJob`](crate::Error::InvalidJob) says why
    /// it is not one.
    pub fn from_json(body: &str) -> Result<Job, crate::Error> {
        serde_json::from_str(body).map_err(|e| crate::Error::InvalidJob(e.to_string()))
    }
}

impl From<Job> for JobWire {
    fn from(job: Job) -> JobWire {
        JobWire {
            cache_key: job.cache_key.to_hex(),
            fingerprint: job.fingerprint.to_hex(),
            canonical: job.recipe.canonical(),
            source_key: job.source_key,
            prewarm: job.prewarm,
        }
    }
}

impl TryFrom<JobWire> for Job {
    type Error = String;

    fn try_from(wire: JobWire) -> Result<Job, String> {
        let fingerprint: Fingerprint = wire.fingerprint.parse().map_err(|_| "bad fingerprint".to_string())?;
        let recipe = ResolvedRecipe::from_canonical(&wire.canonical).map_err(|e| format!("bad recipe: {e}"))?;
        let job = Job { prewarm: wire.prewarm, ..Job::new(fingerprint, recipe, wire.source_key) };
        if job.cache_key.to_hex() != wire.cache_key {
            return Err("the cache key does not match the fingerprint and recipe".into());
        }
        Ok(job)
    }
}

#[cfg(test)]
mod job_tests {
    use super::*;
    use crate::recipe::{Recipe, RecipeLimits};

    fn job() -> Job {
        let recipe = Recipe::parse("w=300&fmt=webp", &RecipeLimits::default())
            .expect("recipe")
            .resolve(None, false, (4000, 3000))
            .expect("resolves");
        Job::new(Fingerprint::of(b"cat"), recipe, "cats/tom.jpg")
    }

    /// The wire form is the one queues already hold (key, fingerprint, canonical recipe, key).
    #[test]
    fn a_job_round_trips_through_its_wire_form() {
        let job = job();
        let body = job.to_json();
        let wire: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(wire["canonical"], "w=300&fit=cover&fmt=webp&q=80&enlarge=0");
        assert_eq!(wire["cache_key"], job.cache_key.to_hex());
        assert_eq!(Job::from_json(&body).expect("read back"), job);
        assert!(wire.get("prewarm").is_none(), "a viewer's job keeps the old wire form");
        let prewarm = Job { prewarm: true, ..job };
        assert_eq!(Job::from_json(&prewarm.to_json()).expect("read back"), prewarm);
    }

    #[test]
    fn a_job_whose_parts_disagree_is_not_read() {
        let body = job().to_json();
        let other = Job::new(Fingerprint::of(b"dog"), job().recipe, "x").cache_key.to_hex();
        let forged = body.replace(&job().cache_key.to_hex(), &other);
        assert!(Job::from_json(&forged).expect_err("forged").to_string().contains("cache key"));
        assert!(Job::from_json(&body.replace("w=300", "w=0300"))
            .expect_err("not canonical")
            .to_string()
            .contains("recipe"));
        assert!(Job::from_json("{}").is_err());
    }
}
