//! What catg counts, named in one place. The core records through the `metrics` facade; each
//! process installs the recorder that suits it — Prometheus text on `catg serve`'s `/metrics`,
//! CloudWatch Embedded Metric Format lines on Lambda — so both see the same names and labels.
//! A process without a recorder (tests, the CLI's one-shot commands) records nothing.

use metrics::{counter, histogram};
use std::time::Duration;

/// Requests answered, by `outcome` (hit, wait_hit, queued, not_modified, or the error kind:
/// invalid_recipe, not_found, rejected, unavailable, …) and HTTP `status`.
pub const REQUESTS: &str = "catg_requests_total";
/// Body bytes sent in answers.
pub const BYTES_OUT: &str = "catg_response_bytes_total";
/// Time to render one variant (decode to encode), in seconds, by output `format`.
pub const RENDER_SECONDS: &str = "catg_render_seconds";
/// Variants rendered and stored, by output `format`.
pub const RENDERS: &str = "catg_renders_total";
/// Source bytes read by ingest (new objects and new versions).
pub const BYTES_IN: &str = "catg_ingest_bytes_total";
/// Megapixels of each new asset (stored width × height).
pub const SOURCE_MEGAPIXELS: &str = "catg_source_megapixels";
/// Objects ingested, by `outcome`: new (a new asset), duplicate (bytes already known under
/// another key), rejected, unchanged (this version was already recorded).
pub const INGESTS: &str = "catg_ingests_total";
/// Uploads whose bytes were already known: one asset, no second verify, no new variants.
pub const DEDUP_HITS: &str = "catg_dedup_hits_total";
/// Sources and variants refused, by `stage` (ingest, render) and `reason` (the reject kind).
pub const REJECTS: &str = "catg_rejects_total";
/// Variants queued by pre-warming: recipes viewers usually ask for with one just rendered.
pub const PREWARM_QUEUED: &str = "catg_prewarm_queued_total";
/// Pre-warmed variants a request later got (each counted once): the hits pre-warming bought.
pub const PREWARM_SERVED: &str = "catg_prewarm_served_total";

/// Histogram bucket bounds for exporters that need them (Prometheus).
pub const RENDER_SECONDS_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
pub const SOURCE_MEGAPIXELS_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0];

pub fn request(outcome: &str, status: u16, body_bytes: u64) {
    counter!(REQUESTS, "outcome" => outcome.to_string(), "status" => status.to_string()).increment(1);
    if body_bytes > 0 {
        counter!(BYTES_OUT).increment(body_bytes);
    }
}

pub fn rendered(format: &str, took: Duration) {
    counter!(RENDERS, "format" => format.to_string()).increment(1);
    histogram!(RENDER_SECONDS, "format" => format.to_string()).record(took.as_secs_f64());
}

pub fn rejected(stage: &'static str, reason: &str) {
    counter!(REJECTS, "stage" => stage, "reason" => reason.to_string()).increment(1);
}

/// One object ingested: `outcome` as in [`INGESTS`]; `megapixels` for a new asset.
pub fn ingested(outcome: &'static str, bytes: u64, megapixels: Option<f64>) {
    counter!(INGESTS, "outcome" => outcome).increment(1);
    if outcome != "unchanged" {
        counter!(BYTES_IN).increment(bytes);
    }
    if outcome == "duplicate" {
        counter!(DEDUP_HITS).increment(1);
    }
    if let Some(mp) = megapixels {
        histogram!(SOURCE_MEGAPIXELS).record(mp);
    }
}

pub fn prewarm_queued(variants: u64) {
    counter!(PREWARM_QUEUED).increment(variants);
}

pub fn prewarm_served() {
    counter!(PREWARM_SERVED).increment(1);
}
