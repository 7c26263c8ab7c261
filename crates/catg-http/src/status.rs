//! `GET /_catg/`: the status page of `catg serve`. A gallery of the assets, each thumbnail a
//! variant rendered by catg itself, with every variant made of it (recipe, bytes, render time);
//! the hit ratio and request outcomes (from this process's metrics), the render queue, and the
//! rejected uploads with their reasons. Plain server-rendered HTML: it has to work when the
//! rest does not, and it reads the manifest through the same port as everything else.
//!
//! The gallery is paged by key: `?after=KEY` starts after that key, `?n=` sets the page size
//! (default 60, at most 200), and a "Next" link carries on. Keys come in the order the
//! manifest pages them, which for `catg serve`'s SQLite is byte order, and `after` is its
//! cursor: a page reads its own records, not every one before it. Counts are the store's
//! totals (SQL counts in SQLite).

use catg_core::model::{AssetState, SourceState, VariantState};
use catg_core::ports::ManifestStore;
use catg_core::{Error, Fingerprint};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Assets shown per page of the gallery by default and at most; variants listed per asset;
/// source records read at most for one page (removed keys and duplicates are skipped).
pub const GALLERY: usize = 60;
pub const GALLERY_MAX: usize = 200;
const VARIANTS_PER_ASSET: usize = 50;
const RECORDS_READ: usize = 5000;
const PAGE: usize = 500;
/// Path characters left as they are in an image URL (unreserved ones, and `/`).
const PATH: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'/');
/// A key as a query value: unreserved characters only.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

struct Card {
    key: String,
    fingerprint: Fingerprint,
    /// The first asset of its near-duplicate group, when it is a near-duplicate.
    group: Option<Fingerprint>,
    facts: Option<(u32, u32, String)>,
    rejected: Option<String>,
    variants: Vec<(String, u64, u64)>,
}

/// Which part of the gallery to show.
#[derive(Debug, Clone, Default)]
pub struct Gallery {
    /// Show sources whose keys come after this one.
    pub after: Option<String>,
    /// Assets per page; clamped to 1..=[`GALLERY_MAX`], [`GALLERY`] when 0.
    pub per_page: usize,
}

impl Gallery {
    /// From `after=KEY&n=60`; anything malformed is ignored, since this page is for looking and
    /// the first page is a fine answer to a mangled link.
    pub fn from_query(query: Option<&str>) -> Gallery {
        let mut gallery = Gallery::default();
        for pair in query.unwrap_or("").split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = value.replace('+', " ");
            let Ok(value) = percent_decode_str(&value).decode_utf8() else { continue };
            match name {
                "after" if !value.is_empty() => gallery.after = Some(value.into_owned()),
                "n" => gallery.per_page = value.parse().unwrap_or(0),
                _ => {}
            }
        }
        gallery
    }
}

/// The page, from the manifest and the process's Prometheus text. It reads what one page shows:
/// the counts come from the store's totals, the gallery from the source cursor at `after`, and
/// each asset's variants from the store by fingerprint, so a request costs the same whatever
/// the size of the manifest.
pub async fn page(manifest: &dyn ManifestStore, metrics_text: &str, gallery: &Gallery) -> Result<String, Error> {
    let per_page = if gallery.per_page == 0 { GALLERY } else { gallery.per_page.min(GALLERY_MAX) };
    let after = gallery.after.as_deref();
    let totals = manifest.totals().await?;
    let (sources, ready, pending, failed) = (totals.sources, totals.ready, totals.pending, totals.failed);
    let mut cards = Vec::new();
    let mut by_fingerprint: BTreeMap<String, usize> = BTreeMap::new();
    let (mut shown, mut more, mut read, mut cursor) = (0usize, false, 0usize, after.map(str::to_string));
    // A page holds `per_page` good assets, and the rejected uploads among them; reading stops
    // at a bound even where most records are removed keys or duplicates.
    while shown < per_page && read < RECORDS_READ {
        let page = manifest.source_page(cursor.as_deref(), PAGE.min(per_page * 2)).await?;
        read += page.items.len();
        for source in page.items {
            if source.state != SourceState::Present || by_fingerprint.contains_key(&source.fingerprint.to_hex()) {
                continue;
            }
            if shown >= per_page {
                more = true;
                break;
            }
            let asset = manifest.asset(&source.fingerprint).await?;
            let (facts, rejected, group) = match asset.map(|a| a.state) {
                Some(AssetState::Ready(f)) => (Some((f.width, f.height, f.format)), None, f.near_duplicate_of),
                Some(AssetState::Rejected { reason, .. }) => (None, Some(reason), None),
                None => (None, None, None),
            };
            shown += usize::from(rejected.is_none());
            let variants = match rejected {
                Some(_) => Vec::new(),
                None => manifest
                    .variants_of(&source.fingerprint, VARIANTS_PER_ASSET)
                    .await?
                    .into_iter()
                    .filter_map(|v| match v.state {
                        VariantState::Ready { bytes, render_ms, .. } => Some((v.canonical, bytes, render_ms)),
                        _ => None,
                    })
                    .collect(),
            };
            by_fingerprint.insert(source.fingerprint.to_hex(), cards.len());
            cards.push(Card { key: source.key, fingerprint: source.fingerprint, group, facts, rejected, variants });
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        more = more || shown >= per_page;
    }
    let outcomes = request_outcomes(metrics_text);
    let ratio = hit_ratio(&outcomes);
    let rejected: Vec<&Card> = cards.iter().filter(|c| c.rejected.is_some()).collect();

    let mut html = String::with_capacity(16 << 10);
    html.push_str(HEAD);
    let _ = write!(
        html,
        r#"<header><h1>catg</h1><div class="stats">
<div><b>{sources}</b>source images</div><div><b>{}</b>assets shown</div><div><b>{ready}</b>variants ready</div>
<div><b>{pending}</b>in the render queue</div><div><b>{ratio}</b>hit ratio</div><div><b>{}</b>rejected here</div>
</div><p class="outcomes">{}</p></header><main>"#,
        cards.len() - rejected.len(),
        rejected.len() as u64 + failed,
        outcomes.iter().map(|(k, v)| format!("{} {v}", escape(k))).collect::<Vec<_>>().join(" · "),
    );
    for card in cards.iter().filter(|c| c.rejected.is_none()) {
        let src = format!("/{}?w=240&h=160&fit=cover&fmt=webp", utf8_percent_encode(&card.key, PATH));
        let size = card.facts.as_ref().map(|(w, h, f)| format!("{w}×{h} {f}")).unwrap_or_default();
        let _ = write!(
            html,
            r#"<figure><img src="{src}" data-src="{src}" width="240" height="160" alt="{key}" onload="this.classList.remove('pending');this.dataset.loaded=this.naturalWidth" onerror="this.classList.add('pending');setTimeout(()=>{{this.removeAttribute('src');this.src=this.dataset.src}},1500)"><figcaption><b>{key}</b> {size}<ul>"#,
            key = escape(&card.key),
        );
        for (recipe, bytes, ms) in &card.variants {
            let _ = write!(html, "<li><code>{}</code> {} KB · {ms} ms</li>", escape(recipe), bytes.div_ceil(1024));
        }
        html.push_str("</ul></figcaption></figure>");
    }
    html.push_str("</main><nav>");
    let link = |after: Option<&str>| match after {
        Some(key) => format!("?after={}&amp;n={per_page}", utf8_percent_encode(key, QUERY)),
        None => format!("?n={per_page}"),
    };
    if after.is_some() {
        let _ = write!(html, r#"<a href="{}">First page</a> "#, link(None));
    }
    if let (true, Some(last)) = (more, cards.last()) {
        let _ = write!(html, r#"<a rel="next" href="{}">Next {per_page} →</a>"#, link(Some(&last.key)));
    }
    html.push_str("</nav>");
    let groups = near_duplicate_groups(manifest, &cards).await?;
    if !groups.is_empty() {
        html.push_str("<section><h2>Near-duplicates on this page</h2><ul class=\"groups\">");
        for (first, members) in &groups {
            let members: Vec<String> = members.iter().map(|key| format!("<b>{}</b>", escape(key))).collect();
            let _ = write!(html, "<li><b>{}</b>: the same picture as {}</li>", escape(first), members.join(", "));
        }
        html.push_str("</ul></section>");
    }
    if !rejected.is_empty() {
        html.push_str("<section><h2>Rejected uploads</h2><ul class=\"rejects\">");
        for card in rejected {
            let _ = write!(
                html,
                "<li><b>{}</b> {}</li>",
                escape(&card.key),
                escape(card.rejected.as_deref().unwrap_or(""))
            );
        }
        html.push_str("</ul></section>");
    }
    html.push_str("</body></html>");
    Ok(html)
}

/// The near-duplicate groups among a page's cards, as (the group's first asset, the keys of
/// its near-duplicates on the page): the first by its key on the page, or else by the key the
/// manifest has for it.
async fn near_duplicate_groups(
    manifest: &dyn ManifestStore,
    cards: &[Card],
) -> Result<Vec<(String, Vec<String>)>, Error> {
    let mut groups: BTreeMap<String, (Fingerprint, Vec<String>)> = BTreeMap::new();
    for card in cards {
        if let Some(first) = card.group {
            groups.entry(first.to_hex()).or_insert_with(|| (first, Vec::new())).1.push(card.key.clone());
        }
    }
    let mut named = Vec::with_capacity(groups.len());
    for (_, (first, members)) in groups {
        let key = match cards.iter().find(|c| c.fingerprint == first) {
            Some(card) => card.key.clone(),
            None => manifest.asset(&first).await?.map_or_else(|| first.to_hex(), |asset| asset.source_key),
        };
        named.push((key, members));
    }
    Ok(named)
}

/// `catg_requests_total` by outcome, summed over statuses, from Prometheus text.
/// Hits and 304s over all variant requests, as a percentage. A wait-hit was a miss that
/// rendered within the wait: it counts against the ratio.
fn hit_ratio(outcomes: &BTreeMap<String, f64>) -> String {
    // fold from +0.0: an empty f64 `sum()` is -0.0, which printed as "-0%".
    let count = |names: &[&str]| -> f64 { names.iter().filter_map(|o| outcomes.get(*o)).fold(0.0, |a, b| a + b) };
    let hits = count(&["hit", "not_modified"]);
    let asked = hits + count(&["wait_hit", "queued"]);
    if asked > 0.0 {
        format!("{:.0}%", 100.0 * hits / asked)
    } else {
        "–".into()
    }
}

fn request_outcomes(text: &str) -> BTreeMap<String, f64> {
    let mut outcomes = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("catg_requests_total{")) {
        let outcome = line.split("outcome=\"").nth(1).and_then(|rest| rest.split('"').next());
        let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if let (Some(outcome), Some(value)) = (outcome, value) {
            *outcomes.entry(outcome.to_string()).or_default() += value;
        }
    }
    outcomes
}

/// Keys are whatever users named their files: never trusted as HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const HEAD: &str = r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>catg status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f4f2;color:#222}
header{background:#1f2933;color:#fff;padding:16px 24px}h1{margin:0 0 8px;font-size:20px}
.stats{display:flex;gap:28px;flex-wrap:wrap}.stats div{font-size:12px;opacity:.85}.stats b{display:block;font-size:24px}
.outcomes{margin:8px 0 0;font-size:12px;opacity:.7}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:16px;padding:24px}
figure{margin:0;background:#fff;border-radius:6px;box-shadow:0 1px 3px #0002;overflow:hidden}
img{display:block;width:100%;height:160px;object-fit:cover;background:#ddd}img.pending{opacity:.3}
figcaption{padding:8px 10px;font-size:12px}figcaption b{word-break:break-all}ul{margin:4px 0 0;padding-left:16px}
code{font-size:11px;word-break:break-all}section,nav{padding:0 24px 24px}h2{font-size:16px}.rejects li{color:#a1251b}
</style></head><body>"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_summed_over_statuses_and_keys_are_escaped() {
        let text = "catg_requests_total{outcome=\"hit\",status=\"200\"} 3\ncatg_requests_total{outcome=\"hit\",status=\"304\"} 2\ncatg_response_bytes_total 9\n";
        assert_eq!(request_outcomes(text).get("hit"), Some(&5.0));
        assert_eq!(escape(r#"<img src=x onerror="a">&'"#), "&lt;img src=x onerror=&quot;a&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn the_hit_ratio_before_any_hit_is_zero_not_minus_zero() {
        let misses = request_outcomes("catg_requests_total{outcome=\"queued\",status=\"202\"} 4\n");
        assert_eq!(hit_ratio(&misses), "0%");
        assert_eq!(hit_ratio(&BTreeMap::new()), "–");
        let some = request_outcomes("catg_requests_total{outcome=\"hit\",status=\"200\"} 1\ncatg_requests_total{outcome=\"queued\",status=\"202\"} 3\n");
        assert_eq!(hit_ratio(&some), "25%");
    }

    #[test]
    fn the_gallery_query_is_read_leniently() {
        let g = Gallery::from_query(Some("after=a%2Fb%20c.jpg&n=2"));
        assert_eq!((g.after.as_deref(), g.per_page), (Some("a/b c.jpg"), 2));
        let g = Gallery::from_query(Some("after=&n=lots&x=%FF"));
        assert_eq!((g.after, g.per_page), (None, 0));
        assert_eq!(Gallery::from_query(None).per_page, 0);
    }
}
