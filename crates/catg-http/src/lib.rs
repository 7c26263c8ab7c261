//! The HTTP contract, in one place: `catg serve` and the resolver Lambda both serve this
//! router, so they cannot drift.
//!
//! - `GET|HEAD /{key}?{recipe}` — a variant of the source object `key` (URL-encoded path).
//! - `GET|HEAD /_/{fingerprint}?{canonical recipe}` — the same variant by its immutable,
//!   content-addressed URL (named in every 200's `Content-Location`).
//! - `GET /_/{fingerprint}/info` — the asset's facts, placeholder and hashes as JSON
//!   (immutable once complete); `GET /{key}?info=1` — the same for the asset a key holds now.
//! - `GET /healthz` — 200 when the stores answer; cached for seconds (see [`HEALTH_CACHE_CONTROL`]).
//! - `GET /_catg/metrics` — Prometheus text (`catg serve` only; Lambda writes EMF instead).
//! - `GET /_catg/` — the status page (`catg serve` only; see `status.rs`).
//!
//! The two operator pages list every key and recipe. With an operator token configured they ask
//! for it (HTTP Basic, any user name, or `Authorization: Bearer`); without one they are open only
//! while signing is off: a deployment that signs its URLs does not publish its keys.
//!
//! Keys under `_/` and `_catg/`, and the key `healthz`, are reserved.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use catg_core::placeholder::Placeholder;
use catg_core::ports::{ManifestStore, ObjectStore, StoreError};
use catg_core::{Error, Fingerprint, Request, Resolution, Resolver, Served, Target, IMMUTABLE_CACHE_CONTROL};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

mod status;

/// Everything the router needs.
pub struct HttpState {
    pub resolver: Resolver,
    /// `max-age` for responses to key URLs: a key can be re-uploaded, so keep it short.
    pub key_max_age: Duration,
    /// `stale-while-revalidate` for key URLs: how long past `max-age` an edge may still answer
    /// with what it holds while it asks the origin again, so a popular key never stalls on its
    /// revalidation.
    pub key_stale_while_revalidate: Duration,
    /// The process's Prometheus recorder, whose text `/_catg/metrics` serves and whose request
    /// counts the status page `/_catg/` shows (`None` on Lambda, where metrics leave as
    /// Embedded Metric Format log lines and there is no status page: the manifest is not public).
    pub metrics: Option<PrometheusHandle>,
    /// The secret the operator pages ask for (`CATG_OPERATOR_TOKEN`); see the module docs.
    pub operator_token: Option<String>,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState").field("key_max_age", &self.key_max_age).finish_non_exhaustive()
    }
}

pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route("/_catg/metrics", get(metrics_text))
        .route("/_catg/", get(status_page))
        .route("/_/{fingerprint}", get(by_fingerprint))
        .route("/_/{fingerprint}/info", get(info_by_fingerprint))
        .route("/{*key}", get(by_key))
        .with_state(state)
}

/// Behind CloudFront `/healthz` is a public URL, and each answer costs a function call and two
/// store requests: an edge may reuse one for this long, which a health checker can live with.
pub const HEALTH_CACHE_CONTROL: &str = "public, max-age=10";

async fn health(State(state): State<Arc<HttpState>>) -> Response {
    let manifest: &dyn ManifestStore = state.resolver.manifest.as_ref();
    let variants: &dyn ObjectStore = state.resolver.variants.as_ref();
    let mut response = match (manifest.ping().await, variants.head("healthz").await) {
        (Ok(()), Ok(_)) => (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response(),
        (Err(e), _) | (_, Err(e)) => error_response(&Error::Store(e)),
    };
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(HEALTH_CACHE_CONTROL));
    response
}

/// Why an operator page does not answer.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// No such page here (Lambda), or signing is on and no operator token is configured.
    Off,
    /// The token is configured and was not presented.
    Unauthorized,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Off => error_response(&Error::NotFound("no such image".into())),
            Refusal::Unauthorized => {
                let body =
                    json!({"error": {"kind": "unauthorized", "message": "the operator pages need the operator token"}});
                let mut response =
                    (StatusCode::UNAUTHORIZED, [(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"catg operator\""));
                response
            }
        }
    }
}

/// Whether the operator pages answer this request (see the module docs).
fn operator_access<'a>(state: &'a HttpState, headers: &HeaderMap) -> Result<&'a PrometheusHandle, Refusal> {
    let handle = state.metrics.as_ref().ok_or(Refusal::Off)?;
    let Some(token) = state.operator_token.as_deref().filter(|t| !t.is_empty()) else {
        return match state.resolver.config.signing {
            None => Ok(handle),
            Some(_) => Err(Refusal::Off),
        };
    };
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(presented_secret);
    match given {
        Some(given) if same_secret(&given, token) => Ok(handle),
        _ => Err(Refusal::Unauthorized),
    }
}

/// The secret in an `Authorization` header: a bearer token, or a Basic password (any user).
fn presented_secret(value: &str) -> Option<String> {
    use base64::Engine;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        return text.split_once(':').map(|(_, password)| password.to_string());
    }
    None
}

/// Compare secrets in time that does not depend on where they differ.
fn same_secret(given: &str, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(given.as_bytes()), Sha256::digest(expected.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn status_page(State(state): State<Arc<HttpState>>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let handle = match operator_access(&state, &headers) {
        Ok(handle) => handle,
        Err(refused) => return refused.into_response(),
    };
    let gallery = status::Gallery::from_query(query.as_deref());
    match status::page(state.resolver.manifest.as_ref(), &handle.render(), &gallery).await {
        Ok(html) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
            html,
        )
            .into_response(),
        Err(e) => error_response(&e),
    }
}

async fn metrics_text(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    match operator_access(&state, &headers) {
        Ok(handle) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4"), (header::CACHE_CONTROL, "no-store")],
            handle.render(),
        )
            .into_response(),
        Err(refused) => refused.into_response(),
    }
}

/// A Prometheus recorder for the process, with catg's histogram buckets, installed as the
/// `metrics` facade's global recorder. Its upkeep (draining histogram samples into buckets)
/// runs every few seconds on the current tokio runtime.
pub fn install_prometheus() -> Result<PrometheusHandle, String> {
    use catg_core::metrics as m;
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(m::RENDER_SECONDS.into()), m::RENDER_SECONDS_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(m::SOURCE_MEGAPIXELS.into()), m::SOURCE_MEGAPIXELS_BUCKETS)
        })
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

async fn by_key(
    State(state): State<Arc<HttpState>>,
    method: Method,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match catg_core::Resolver::asks_for_info(query.as_deref().unwrap_or_default()) {
        Ok(true) => info(&state, Target::Key(key), query).await,
        Ok(false) => serve(&state, Target::Key(key), method, query, &headers).await,
        Err(e) => error_response(&e),
    }
}

async fn info_by_fingerprint(
    State(state): State<Arc<HttpState>>,
    Path(fingerprint): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    match fingerprint.parse::<Fingerprint>() {
        Ok(fp) => info(&state, Target::Asset(fp), query).await,
        Err(_) => error_response(&Error::NotFound("no such image".into())),
    }
}

/// An info URL's answer: the asset's info as JSON, cached for good when it can never change
/// (by fingerprint, summary made), otherwise as key URLs are.
async fn info(state: &HttpState, target: Target, query: Option<String>) -> Response {
    let immutable = matches!(target, Target::Asset(_));
    let request = Request {
        target,
        query: query.unwrap_or_default(),
        accept: None,
        fetch_dest: None,
        if_none_match: None,
        want_body: true,
    };
    let answer = state.resolver.info(&request).await;
    let outcome = match &answer {
        Ok(_) => "info".to_string(),
        Err(e) => error_parts(e).1.to_string(),
    };
    let response = match answer {
        Ok(info) => {
            let cache_control = if immutable && info.is_final() {
                IMMUTABLE_CACHE_CONTROL.to_string()
            } else {
                key_cache_control(state)
            };
            (StatusCode::OK, [(header::CACHE_CONTROL, cache_control)], axum::Json(info)).into_response()
        }
        Err(e) => error_response(&e),
    };
    catg_core::metrics::request(&outcome, response.status().as_u16(), 0);
    response
}

/// `Cache-Control` for key URLs: short, and revalidated without a stall (a zero window turns
/// that off, for operators whose re-uploads must show at once).
fn key_cache_control(state: &HttpState) -> String {
    match state.key_stale_while_revalidate.as_secs() {
        0 => format!("public, max-age={}", state.key_max_age.as_secs()),
        swr => format!("public, max-age={}, stale-while-revalidate={swr}", state.key_max_age.as_secs()),
    }
}

async fn by_fingerprint(
    State(state): State<Arc<HttpState>>,
    method: Method,
    Path(fingerprint): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match fingerprint.parse::<Fingerprint>() {
        Ok(fp) => serve(&state, Target::Asset(fp), method, query, &headers).await,
        Err(_) => error_response(&Error::NotFound("no such image".into())),
    }
}

async fn serve(
    state: &HttpState,
    target: Target,
    method: Method,
    query: Option<String>,
    headers: &HeaderMap,
) -> Response {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    // One span per request. The raw query is never logged (it may carry a signature); the
    // canonical recipe is, once it is known.
    let span = tracing::info_span!(
        "request",
        method = %method,
        target = %match &target { Target::Key(key) => loggable_key(key), Target::Asset(fp) => format!("_/{fp}") },
        fingerprint = tracing::field::Empty,
        cache_key = tracing::field::Empty,
        recipe = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let request = Request {
        target,
        query: query.unwrap_or_default(),
        accept: text(header::ACCEPT),
        fetch_dest: text(header::HeaderName::from_static("sec-fetch-dest")),
        if_none_match: text(header::IF_NONE_MATCH),
        want_body: method != Method::HEAD,
    };
    let resolution = state.resolver.resolve(&request).instrument(span.clone()).await;
    let record = |served: &catg_core::Served| {
        span.record("fingerprint", tracing::field::display(&served.fingerprint));
        span.record("cache_key", tracing::field::display(&served.cache_key));
        span.record("recipe", served.canonical.as_str());
    };
    let body_bytes = match &resolution {
        Ok(Resolution::Ready(served)) if served.body.is_some() => served.bytes,
        _ => 0,
    };
    let outcome: String = match &resolution {
        Ok(Resolution::Ready(served)) => {
            record(served);
            served.from.outcome().into()
        }
        Ok(Resolution::NotModified(served)) => {
            record(served);
            "not_modified".into()
        }
        Ok(Resolution::Pending { placeholder: Some(_), .. }) => "placeholder".into(),
        Ok(Resolution::Pending { .. }) => "queued".into(),
        Err(e) => error_parts(e).1.into(),
    };
    let response = match resolution {
        Ok(Resolution::Ready(served)) => variant_response(StatusCode::OK, served, &key_cache_control(state)),
        Ok(Resolution::NotModified(served)) => {
            variant_response(StatusCode::NOT_MODIFIED, served, &key_cache_control(state))
        }
        Ok(Resolution::Pending { retry_after, placeholder }) => pending_response(retry_after, placeholder),
        Err(e) => error_response(&e),
    };
    catg_core::metrics::request(&outcome, response.status().as_u16(), body_bytes);
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            outcome = outcome.as_str(),
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "answered"
        )
    });
    response
}

/// 202 while the variant renders: a placeholder image for a request that shows its answer as
/// an image (browsers draw an image body whatever the status), JSON for everyone else. Never
/// stored, and the body depends on the request's headers.
fn pending_response(retry_after: Duration, placeholder: Option<Placeholder>) -> Response {
    let headers = [
        (header::RETRY_AFTER, retry_after.as_secs().max(1).to_string()),
        (header::CACHE_CONTROL, "no-store".to_string()),
        (header::VARY, "Accept, Sec-Fetch-Dest".to_string()),
    ];
    match placeholder {
        Some(placeholder) => (
            StatusCode::ACCEPTED,
            headers,
            [
                (header::CONTENT_TYPE, placeholder.content_type),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                // The SVG is catg's own, but opened on its own it may load nothing but its image.
                (header::CONTENT_SECURITY_POLICY, "default-src 'none'; img-src data:"),
            ],
            placeholder.body,
        )
            .into_response(),
        None => (
            StatusCode::ACCEPTED,
            headers,
            axum::Json(json!({"status": "pending", "message": "the variant is being rendered; retry shortly"})),
        )
            .into_response(),
    }
}

/// A key as the log shows it: checked first (an invalid key is not echoed at all), then escaped
/// (no control character can start a forged line) and cut to a length a log line can afford.
fn loggable_key(key: &str) -> String {
    const SHOWN: usize = 200;
    if catg_core::validate_key(key).is_err() {
        return "(invalid key)".to_string();
    }
    let mut shown: String = key.chars().take(SHOWN).flat_map(char::escape_debug).collect();
    if key.chars().nth(SHOWN).is_some() {
        shown.push('…');
    }
    shown
}

fn variant_response(status: StatusCode, served: Served, key_cache_control: &str) -> Response {
    let cache_control = if served.immutable { IMMUTABLE_CACHE_CONTROL } else { key_cache_control };
    let mut response = Response::builder()
        .status(status)
        .header(header::ETAG, format!("\"{}\"", served.cache_key))
        .header(header::CONTENT_LOCATION, served.immutable_path())
        .header(header::CACHE_CONTROL, cache_control)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if served.negotiated {
        response = response.header(header::VARY, "Accept");
    }
    if status == StatusCode::OK {
        response = response
            .header(header::CONTENT_TYPE, served.format.mime_type())
            .header(header::CONTENT_LENGTH, served.bytes);
    }
    let body = served.body.map(Body::from).unwrap_or_else(Body::empty);
    response.body(body).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The one mapping from core errors to HTTP. Bodies say what is wrong with the request, never
/// how catg is built (no paths, no stack traces, no store messages).
pub fn error_response(e: &Error) -> Response {
    let (status, kind, message) = error_parts(e);
    let mut response = (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"error": {"kind": kind, "message": message}})),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

/// Status, public error kind and public message for an error.
fn error_parts(e: &Error) -> (StatusCode, &str, String) {
    match e {
        Error::InvalidRecipe(r) => (StatusCode::BAD_REQUEST, "invalid_recipe", r.message().to_string()),
        Error::Forbidden(reason) => (StatusCode::FORBIDDEN, "forbidden", reason.to_string()),
        Error::NotFound(_) | Error::Store(StoreError::NotFound(_)) | Error::Store(StoreError::Invalid(_)) => {
            (StatusCode::NOT_FOUND, "not_found", "no such image".to_string())
        }
        Error::AssetRejected { reason, message } | Error::RenderFailed { reason, message } => {
            (StatusCode::UNPROCESSABLE_ENTITY, reason.as_str(), message.clone())
        }
        Error::Image(image) if image.reject_kind().is_some() => {
            (StatusCode::UNPROCESSABLE_ENTITY, image.reject_kind().map_or("corrupt", |k| k.as_str()), image.to_string())
        }
        Error::Busy(which) => {
            tracing::info!(cap = %which, "refused a new render: too much work is waiting");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "too many renders are waiting; retry shortly".to_string())
        }
        Error::Store(_) | Error::Io(_) | Error::Image(_) | Error::InvalidJob(_) => {
            tracing::warn!(error = %e, "request failed for want of storage");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "storage is unavailable; retry shortly".to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_logged_escaped_truncated_and_only_when_valid() {
        assert_eq!(loggable_key("cats/tom.jpg"), "cats/tom.jpg");
        // A control character makes the key invalid: not echoed.
        assert_eq!(loggable_key("a.jpg\nforged line"), "(invalid key)");
        assert_eq!(loggable_key("../etc/passwd"), "(invalid key)");
        // Quotes and backslashes cannot end a field early.
        assert_eq!(loggable_key("a\"b\\c.jpg"), "a\\\"b\\\\c.jpg");
        let long = "x".repeat(1000);
        let shown = loggable_key(&long);
        assert_eq!(shown.chars().count(), 201);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn operator_secrets_come_as_bearer_or_basic() {
        use base64::Engine;
        assert_eq!(presented_secret("Bearer s3cret").as_deref(), Some("s3cret"));
        let basic = base64::engine::general_purpose::STANDARD.encode("anyone:s3cret");
        assert_eq!(presented_secret(&format!("Basic {basic}")).as_deref(), Some("s3cret"));
        assert_eq!(presented_secret("Digest x"), None);
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cre", "s3cret"));
    }
}
