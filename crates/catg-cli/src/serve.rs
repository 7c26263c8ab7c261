//! `catg serve`: configuration from flags and the environment, then the embedded service.

use catg_core::config::{
    image_limits, pending_caps, prewarm_config, process_env, recipe_limits, render_memory_mib, signing_keys,
};
use catg_core::ports::ObjectStore;
use catg_http::{router, HttpState};
use catg_local::{Embedded, EmbeddedConfig};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The folder of source images; its relative paths are the URL keys.
    #[arg(long, default_value = "./images")]
    source: PathBuf,
    /// Where catg keeps its database and rendered variants.
    #[arg(long, default_value = "./.catg")]
    data: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Render workers (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// How long a request for a variant not rendered yet waits before answering 202.
    #[arg(long, default_value_t = 5000)]
    wait_ms: u64,
    /// `Cache-Control: max-age` for key URLs (a key may be re-uploaded; immutable URLs are
    /// cached for a year).
    #[arg(long, default_value_t = 60)]
    key_max_age: u64,
    /// `Cache-Control: stale-while-revalidate` for key URLs: how long past `max-age` an edge may
    /// keep answering with the variant it holds while it checks for a re-upload.
    #[arg(long, default_value_t = 86_400)]
    key_stale_while_revalidate: u64,
    /// Named recipes, as a JSON object of names to recipe queries (`preset=NAME` in a URL);
    /// overrides CATG_PRESETS.
    #[arg(long, value_name = "JSON")]
    presets: Option<String>,
    /// Serve presets only: refuse any recipe that is not `preset=NAME` (CATG_PRESETS_ONLY=1).
    #[arg(long)]
    presets_only: bool,
    /// Most variants pre-warmed after each viewer's render: the recipes viewers usually ask for
    /// with it, learned from the manifest. 0 turns pre-warming off. Overrides
    /// CATG_PREWARM_PER_ASSET (default 3).
    #[arg(long, value_name = "N")]
    prewarm_per_asset: Option<usize>,
}

pub fn run(args: ServeArgs) -> Result<(), String> {
    init_logging();
    let mut config = EmbeddedConfig::new(&args.source, &args.data);
    if let Some(workers) = args.workers {
        config.workers = workers.max(1);
    }
    config.resolver.wait = Duration::from_millis(args.wait_ms);
    config.resolver.limits = image_limits(process_env).map_err(|e| e.to_string())?;
    let env = |name: &str| match name {
        "CATG_PRESETS" if args.presets.is_some() => args.presets.clone(),
        "CATG_PRESETS_ONLY" if args.presets_only => Some("1".into()),
        _ => process_env(name),
    };
    config.resolver.recipe_limits = recipe_limits(env).map_err(|e| e.to_string())?;
    config.resolver.signing = signing_keys(process_env).map_err(|e| e.to_string())?.map(catg_core::Keyring::fixed);
    (config.resolver.max_pending_jobs, config.resolver.max_pending_per_asset) =
        pending_caps(process_env).map_err(|e| e.to_string())?;
    config.render_memory_mib = render_memory_mib(process_env).map_err(|e| e.to_string())?;
    let prewarm_env = |name: &str| match (name, args.prewarm_per_asset) {
        ("CATG_PREWARM_PER_ASSET", Some(n)) => Some(n.to_string()),
        _ => process_env(name),
    };
    config.prewarm = prewarm_config(prewarm_env).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let key_caching = (Duration::from_secs(args.key_max_age), Duration::from_secs(args.key_stale_while_revalidate));
    runtime.block_on(serve(config, args.listen, key_caching))
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// `key_caching`: `max-age` and `stale-while-revalidate` of key URLs.
async fn serve(config: EmbeddedConfig, listen: SocketAddr, key_caching: (Duration, Duration)) -> Result<(), String> {
    // Before the first scan, so what it ingests is counted.
    let metrics = catg_http::install_prometheus().map_err(|e| format!("cannot start metrics: {e}"))?;
    let source = config.source_dir.clone();
    let mut embedded = Embedded::open(config).map_err(|e| format!("cannot open the data folder: {e}"))?;
    // Bind first: a taken port should fail before minutes of scanning.
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    embedded.start_workers().await.map_err(|e| format!("cannot start the workers: {e}"))?;
    embedded.start_watcher().map_err(|e| format!("cannot watch {}: {e}", source.display()))?;

    let bar = progress_bar();
    let progress_bar = bar.clone();
    let summary = embedded
        .scan(&move |done, total| {
            progress_bar.set_length(total);
            progress_bar.set_position(done);
        })
        .await
        .map_err(|e| format!("cannot scan {}: {e}", source.display()))?;
    bar.finish_and_clear();
    tracing::info!(
        images = summary.seen,
        new = summary.new_assets,
        duplicates = summary.duplicates,
        rejected = summary.rejected,
        unchanged = summary.unchanged,
        failed = summary.failed,
        removed = summary.removed,
        "source folder scanned"
    );
    let example = example_key(&embedded).await.map(|key| format!("{key}?w=400")).unwrap_or_default();
    eprintln!("catg is serving {} at http://{address}/{example}", source.display());

    let operator_token = process_env("CATG_OPERATOR_TOKEN").filter(|t| !t.trim().is_empty());
    if embedded.config.resolver.signing.is_some() && operator_token.is_none() {
        tracing::info!("signing is on and CATG_OPERATOR_TOKEN is unset: /_catg/ and /_catg/metrics are off");
    }
    let (key_max_age, key_stale_while_revalidate) = key_caching;
    let state = Arc::new(HttpState {
        resolver: embedded.resolver(),
        key_max_age,
        key_stale_while_revalidate,
        metrics: Some(metrics),
        operator_token,
    });
    let mut stop = embedded.shutdown_signal();
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate() => {}
            _ = stop.changed() => {}
        }
    });
    let result = server.await.map_err(|e| e.to_string());
    tracing::info!("shutting down");
    embedded.shutdown().await;
    result
}

/// The first source key whose image was accepted, to print a URL that shows something.
async fn example_key(embedded: &Embedded) -> Option<String> {
    use catg_core::model::AssetState;
    use catg_core::ports::ManifestStore;
    for meta in embedded.sources.list("", None, 100).await.ok()? {
        let Ok(Some(source)) = embedded.store.source(&meta.key).await else { continue };
        if let Ok(Some(asset)) = embedded.store.asset(&source.fingerprint).await {
            if matches!(asset.state, AssetState::Ready(_)) {
                return Some(meta.key);
            }
        }
    }
    None
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending::<()>().await,
    }
}

/// A progress bar on a terminal; nothing (just the final log line) otherwise.
fn progress_bar() -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("ingesting {bar:40} {pos}/{len} images, {per_sec}, eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}
