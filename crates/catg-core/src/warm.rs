//! Warm-up: ask for given recipes of many assets before anyone else does, so the first real
//! request is a hit. Each (source, recipe) goes through the resolver exactly as a request would
//! (same validation, same cache key, claimed and queued once), so warming cannot produce a
//! variant a request would not, and a variant already there costs one manifest read.

use crate::error::Error;
use crate::model::SourceState;
use crate::ports::ManifestStore;
use crate::resolve::{Request, Resolution, Resolver, Target};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use std::collections::BTreeMap;

const PAGE: usize = 500;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WarmReport {
    /// Present sources under the prefix.
    pub sources: u64,
    /// (source, recipe) pairs asked for.
    pub requested: u64,
    /// Already rendered (or rendered within the resolver's wait).
    pub ready: u64,
    /// Claimed and queued now: the render workers (or the transform function) make them.
    pub queued: u64,
    /// Refused, by error kind (a rejected source, a recipe over the limits, …).
    pub refused: BTreeMap<String, u64>,
}

/// Ask `resolver` for every recipe of every present source under `prefix`, `concurrency` at a
/// time. Recipes are query strings as in a URL (`w=400&fmt=webp`); a recipe that does not parse
/// is counted under `invalid_recipe` for each source, like a bad URL would be. A store outage
/// ends the run with its error.
pub async fn warm(
    resolver: &Resolver,
    manifest: &dyn ManifestStore,
    recipes: &[String],
    prefix: &str,
    concurrency: usize,
    progress: &mut (dyn FnMut(&WarmReport) + Send),
) -> Result<WarmReport, Error> {
    let mut report = WarmReport::default();
    let mut cursor = None;
    loop {
        let page = manifest.source_page(cursor.as_deref(), PAGE).await?;
        let keys: Vec<String> = page
            .items
            .into_iter()
            .filter(|s| s.state == SourceState::Present && s.key.starts_with(prefix))
            .map(|s| s.key)
            .collect();
        report.sources += keys.len() as u64;
        let pairs = keys.iter().flat_map(|key| recipes.iter().map(move |recipe| (key, recipe)));
        let outcomes: Vec<Result<Resolution, Error>> = stream::iter(pairs)
            .map(|(key, recipe)| {
                let request = Request {
                    target: Target::Key(key.clone()),
                    query: recipe.clone(),
                    accept: None,
                    fetch_dest: None,
                    if_none_match: None,
                    want_body: false,
                };
                async move { resolver.resolve(&request).await }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        for outcome in outcomes {
            report.requested += 1;
            match outcome {
                Ok(Resolution::Ready(_) | Resolution::NotModified(_)) => report.ready += 1,
                Ok(Resolution::Pending { .. }) => report.queued += 1,
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => {
                    let kind = e.reject_kind().unwrap_or(match e {
                        Error::Forbidden(_) => "forbidden",
                        // The pending-job caps: run warm again once the queue has drained.
                        Error::Busy(_) => "busy",
                        _ => "not_found",
                    });
                    *report.refused.entry(kind.to_string()).or_default() += 1;
                }
            }
        }
        progress(&report);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(report),
        }
    }
}
