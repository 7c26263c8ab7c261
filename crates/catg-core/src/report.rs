//! `catg report`: what is stored (inventory, read page by page through the manifest port, so
//! the same code counts SQLite and DynamoDB) and what running it costs a month, from that
//! inventory, the expected traffic and public prices, all of them inputs. The estimate is set
//! beside pre-generating a fixed set of variants per upload, which is what catg replaces.

use crate::error::Error;
use crate::fingerprint::Fingerprint;
use crate::model::{AssetState, Origin, SourceState, VariantState};
use crate::ports::ManifestStore;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

const PAGE: usize = 500;
const GB: f64 = 1e9;

/// What the manifest holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Inventory {
    /// Source keys present, and their bytes.
    pub sources: u64,
    pub source_bytes: u64,
    /// Source keys whose object was removed (their assets stay).
    pub sources_removed: u64,
    /// Distinct contents among the present sources; of them, refused at ingest.
    pub assets: u64,
    pub assets_rejected: u64,
    /// Present sources whose bytes another key already holds, and the bytes that saved.
    pub duplicates: u64,
    pub duplicate_bytes_saved: u64,
    /// Groups of assets that are one picture (resized, re-encoded, mildly recoloured: see
    /// [`crate::near_duplicates`]); the assets in them beyond each group's first; their bytes.
    pub near_duplicate_groups: u64,
    pub near_duplicates: u64,
    pub near_duplicate_bytes: u64,
    /// Ready assets recorded before ingest made placeholders and hashes: `catg backfill` adds them.
    pub assets_without_summary: u64,
    pub variants_ready: u64,
    pub variant_bytes: u64,
    pub variants_pending: u64,
    pub variants_failed: u64,
    /// Mean render time of the ready variants, in ms (0 when there are none).
    pub mean_render_ms: f64,
    /// Ready variants pre-warming made, and how many of them a request has since got.
    pub prewarmed: u64,
    pub prewarmed_served: u64,
}

/// Count everything in `manifest`. Holds one entry per distinct asset (about 100 bytes), so a
/// million assets take ~100 MB; everything else streams.
pub async fn inventory(manifest: &dyn ManifestStore) -> Result<Inventory, Error> {
    let mut inv = Inventory::default();
    let mut assets: HashMap<Fingerprint, u64> = HashMap::new();
    let mut cursor = None;
    loop {
        let page = manifest.source_page(cursor.as_deref(), PAGE).await?;
        for source in page.items {
            match source.state {
                SourceState::Removed => inv.sources_removed += 1,
                SourceState::Present => {
                    inv.sources += 1;
                    inv.source_bytes += source.bytes;
                    if assets.insert(source.fingerprint, source.bytes).is_some() {
                        inv.duplicates += 1;
                        inv.duplicate_bytes_saved += source.bytes;
                    }
                }
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    inv.assets = assets.len() as u64;
    let mut groups = std::collections::HashSet::new();
    for fingerprint in assets.keys() {
        match manifest.asset(fingerprint).await?.map(|a| (a.state, a.bytes)) {
            Some((AssetState::Rejected { .. }, _)) => inv.assets_rejected += 1,
            Some((AssetState::Ready(facts), bytes)) => {
                if let Some(first) = facts.near_duplicate_of {
                    groups.insert(first);
                    inv.near_duplicates += 1;
                    inv.near_duplicate_bytes += bytes;
                }
                inv.assets_without_summary += u64::from(facts.summary.is_none());
            }
            None => {}
        }
    }
    inv.near_duplicate_groups = groups.len() as u64;
    let mut render_ms = 0u64;
    let mut cursor = None;
    loop {
        let page = manifest.variant_page(cursor.as_deref(), PAGE).await?;
        for variant in page.items {
            match variant.state {
                VariantState::Ready { bytes, render_ms: ms, .. } => {
                    match variant.origin {
                        Origin::Requested => {}
                        Origin::Prewarmed => inv.prewarmed += 1,
                        Origin::PrewarmedServed => {
                            (inv.prewarmed, inv.prewarmed_served) = (inv.prewarmed + 1, inv.prewarmed_served + 1)
                        }
                    }
                    inv.variants_ready += 1;
                    inv.variant_bytes += bytes;
                    render_ms += ms;
                }
                VariantState::Pending { .. } => inv.variants_pending += 1,
                VariantState::Failed { .. } => inv.variants_failed += 1,
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if inv.variants_ready > 0 {
        inv.mean_render_ms = render_ms as f64 / inv.variants_ready as f64;
    }
    Ok(inv)
}

/// Public on-demand prices (USD). Defaults: us-east-1 list prices published in 2025; check the
/// pricing pages for your region and date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Prices {
    pub cloudfront_per_gb: f64,
    pub cloudfront_per_10k_requests: f64,
    pub lambda_per_gb_second: f64,
    pub lambda_per_million_requests: f64,
    pub s3_per_gb_month: f64,
    pub s3_per_1k_get: f64,
    pub s3_per_1k_put: f64,
    pub dynamodb_per_million_reads: f64,
    pub dynamodb_per_million_writes: f64,
    pub sqs_per_million_requests: f64,
    /// What the template costs while idle: CloudFront's additional metrics ($2.40), 13 alarm
    /// metrics ($1.30), the dashboard ($3.00), the alarm topic's KMS key ($1.00) and the two
    /// event source mappings' long polling (~$0.50).
    pub monitoring_per_month: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            cloudfront_per_gb: 0.085,
            cloudfront_per_10k_requests: 0.01,
            lambda_per_gb_second: 0.000_016_666_7,
            lambda_per_million_requests: 0.20,
            s3_per_gb_month: 0.023,
            s3_per_1k_get: 0.0004,
            s3_per_1k_put: 0.005,
            dynamodb_per_million_reads: 0.125,
            dynamodb_per_million_writes: 0.625,
            sqs_per_million_requests: 0.40,
            monitoring_per_month: 8.20,
        }
    }
}

/// Expected traffic. Defaults are the README's example; measured figures (the request metrics,
/// the inventory) should replace them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    pub requests_per_month: f64,
    /// Share of requests CloudFront answers from its cache.
    pub cdn_hit_ratio: f64,
    pub new_uploads_per_month: f64,
    /// Variants asked for per new asset; `None`: as many as the inventory shows per asset so far.
    pub variants_per_asset: Option<f64>,
    /// Render time per variant, in seconds; `None`: the inventory's mean.
    pub render_seconds: Option<f64>,
    pub transform_memory_gb: f64,
    pub resolver_memory_gb: f64,
    /// What pre-generation would render for every upload.
    pub pregenerated_per_upload: f64,
}

impl Default for Usage {
    fn default() -> Self {
        Usage {
            requests_per_month: 10e6,
            cdn_hit_ratio: 0.95,
            new_uploads_per_month: 10_000.0,
            variants_per_asset: None,
            render_seconds: None,
            transform_memory_gb: 1.769,
            resolver_memory_gb: 1.024,
            pregenerated_per_upload: 12.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostLine {
    pub item: &'static str,
    pub formula: String,
    pub usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub lines: Vec<CostLine>,
    pub total_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    /// catg: each variant rendered once, when first asked for.
    pub on_demand: Estimate,
    /// The alternative: `pregenerated_per_upload` variants rendered and stored for every asset.
    pub pregenerated: Estimate,
}

/// The monthly estimate for both ways of running, line by line with each line's formula.
pub fn monthly_cost(inv: &Inventory, usage: &Usage, prices: &Prices) -> CostReport {
    let assets = inv.assets.saturating_sub(inv.assets_rejected).max(1) as f64;
    let variants_per_asset = usage.variants_per_asset.unwrap_or(inv.variants_ready as f64 / assets).max(1.0);
    let render_s =
        usage.render_seconds.unwrap_or(if inv.mean_render_ms > 0.0 { inv.mean_render_ms / 1e3 } else { 0.5 });
    let mean_variant_bytes =
        if inv.variants_ready > 0 { inv.variant_bytes as f64 / inv.variants_ready as f64 } else { 40e3 };
    let origin_requests = usage.requests_per_month * (1.0 - usage.cdn_hit_ratio);
    let estimate = |renders: f64, stored_variant_bytes: f64, misses: f64| {
        let mut lines = Vec::new();
        let mut line =
            |item: &'static str, formula: String, usd: f64| lines.push(CostLine { item, formula, usd: cents(usd) });
        let transfer_gb = usage.requests_per_month * mean_variant_bytes / GB;
        line(
            "CloudFront transfer",
            format!("{transfer_gb:.1} GB × ${}/GB", prices.cloudfront_per_gb),
            transfer_gb * prices.cloudfront_per_gb,
        );
        line(
            "CloudFront requests",
            format!("{:.0} × ${} per 10,000", usage.requests_per_month, prices.cloudfront_per_10k_requests),
            usage.requests_per_month / 1e4 * prices.cloudfront_per_10k_requests,
        );
        // A hit costs the resolver ~50 ms; a miss waits up to a second for its render.
        let resolver_gb_s = ((origin_requests - misses).max(0.0) * 0.05 + misses * 1.0) * usage.resolver_memory_gb;
        line(
            "Resolver Lambda",
            format!("{resolver_gb_s:.0} GB-s × ${} + {origin_requests:.0} requests", prices.lambda_per_gb_second),
            resolver_gb_s * prices.lambda_per_gb_second + origin_requests / 1e6 * prices.lambda_per_million_requests,
        );
        let transform_gb_s = renders * render_s * usage.transform_memory_gb;
        line(
            "Transform Lambda",
            format!(
                "{renders:.0} renders × {render_s:.2} s × {} GB × ${}/GB-s",
                usage.transform_memory_gb, prices.lambda_per_gb_second
            ),
            transform_gb_s * prices.lambda_per_gb_second + renders / 1e6 * prices.lambda_per_million_requests,
        );
        let stored_gb = (inv.source_bytes as f64 + stored_variant_bytes) / GB;
        line(
            "S3 storage",
            format!("{stored_gb:.2} GB × ${}/GB-month", prices.s3_per_gb_month),
            stored_gb * prices.s3_per_gb_month,
        );
        let puts = renders + usage.new_uploads_per_month;
        line(
            "S3 requests",
            format!("{origin_requests:.0} GET, {puts:.0} PUT"),
            origin_requests / 1e3 * prices.s3_per_1k_get + puts / 1e3 * prices.s3_per_1k_put,
        );
        let (reads, writes) = (origin_requests * 3.0, renders * 2.0 + usage.new_uploads_per_month * 3.0);
        line(
            "DynamoDB",
            format!("{reads:.0} reads, {writes:.0} writes"),
            reads / 1e6 * prices.dynamodb_per_million_reads + writes / 1e6 * prices.dynamodb_per_million_writes,
        );
        line("SQS", format!("{renders:.0} jobs × 3 requests"), renders * 3.0 / 1e6 * prices.sqs_per_million_requests);
        line("Fixed", "metrics, alarms, dashboard, key, polling".into(), prices.monitoring_per_month);
        let total_usd = cents(lines.iter().map(|l| l.usd).sum());
        Estimate { lines, total_usd }
    };
    let on_demand_renders = usage.new_uploads_per_month * variants_per_asset;
    let on_demand = estimate(on_demand_renders, inv.variant_bytes as f64, on_demand_renders);
    let per_upload = usage.pregenerated_per_upload;
    let pregenerated =
        estimate(usage.new_uploads_per_month * per_upload, assets * per_upload * mean_variant_bytes, 0.0);
    CostReport { on_demand, pregenerated }
}

fn cents(usd: f64) -> f64 {
    (usd * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory() -> Inventory {
        Inventory {
            sources: 100_000,
            source_bytes: 300_000_000_000,
            assets: 100_000,
            variants_ready: 500_000,
            variant_bytes: 20_000_000_000,
            mean_render_ms: 600.0,
            ..Inventory::default()
        }
    }

    /// The README's worked example (100,000 originals, 10 M requests, 5 variants per asset)
    /// comes out at its published total, and pre-generating 12 per upload costs more.
    #[test]
    fn the_readme_example_and_pregeneration() {
        let report = monthly_cost(&inventory(), &Usage::default(), &Prices::default());
        let total = report.on_demand.total_usd;
        assert!((55.0..70.0).contains(&total), "on demand: {total} ({:#?})", report.on_demand.lines);
        assert!(report.pregenerated.total_usd > total, "{report:#?}");
        let storage = |e: &Estimate| e.lines.iter().find(|l| l.item == "S3 storage").map(|l| l.usd).unwrap_or(0.0);
        assert!((storage(&report.on_demand) - 7.36).abs() < 0.011);
        assert!((storage(&report.pregenerated) - (300.0 + 100_000.0 * 12.0 * 40e3 / 1e9) * 0.023).abs() < 0.011);
    }

    #[test]
    fn an_empty_store_still_gives_a_finite_estimate() {
        let report = monthly_cost(&Inventory::default(), &Usage::default(), &Prices::default());
        assert!(report.on_demand.total_usd.is_finite() && report.pregenerated.total_usd.is_finite());
    }
}
