//! `catg warm`: pre-render given recipes for every asset under a prefix (`catg_core::warm`),
//! locally with this process's render workers (it waits until they are done), or with --aws by
//! queueing the jobs for the deployed transform function.

use catg_core::config::{image_limits, process_env};
use catg_core::{warm, WarmReport};
use std::io::IsTerminal;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct WarmArgs {
    /// A recipe, as in a URL query string ('w=400&fmt=webp'); repeat for several. Use concrete
    /// formats: `fmt=auto` warms what a client without an Accept header would get.
    #[arg(long = "recipe", required = true)]
    recipes: Vec<String>,
    /// Only sources whose key starts with this.
    #[arg(long, default_value = "")]
    prefix: String,
    #[command(flatten)]
    stores: crate::StoreArgs,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

pub fn run(args: WarmArgs) -> Result<serde_json::Value, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: WarmArgs) -> Result<serde_json::Value, String> {
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut on_page = |r: &WarmReport| {
        bar.set_message(format!("warming: {} asked, {} ready, {} queued", r.requested, r.ready, r.queued));
        bar.tick();
    };
    if args.stores.aws {
        let mut resolver = crate::deployed::resolver().await?;
        resolver.config.wait = Duration::ZERO;
        let report =
            warm(&resolver, resolver.manifest.as_ref(), &args.recipes, &args.prefix, args.concurrency, &mut on_page)
                .await
                .map_err(|e| format!("warming stopped: {e} (run again: what is done stays done)"))?;
        bar.finish_and_clear();
        return serde_json::to_value(&report).map_err(|e| e.to_string());
    }

    let mut config = catg_local::EmbeddedConfig::new(&args.stores.source, &args.stores.data);
    config.resolver.limits = image_limits(process_env).map_err(|e| e.to_string())?;
    // Queue at once; the workers below render.
    config.resolver.wait = Duration::ZERO;
    let mut embedded = catg_local::Embedded::open(config).map_err(|e| format!("cannot open the data folder: {e}"))?;
    embedded.start_workers().await.map_err(|e| format!("cannot start the render workers: {e}"))?;
    let resolver = embedded.resolver();
    let report = warm(&resolver, &embedded.store, &args.recipes, &args.prefix, args.concurrency, &mut on_page)
        .await
        .map_err(|e| format!("warming stopped: {e} (run again: what is done stays done)"))?;
    // Wait for the workers to render what was queued, showing how many are left.
    let total = report.queued;
    bar.set_length(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} rendered  {per_sec}  ETA {eta}")
            .map_err(|e| e.to_string())?,
    );
    loop {
        let left = embedded.store.counts().await.map_err(|e| e.to_string())?.queued;
        bar.set_position(total.saturating_sub(left));
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bar.finish_and_clear();
    embedded.shutdown().await;
    serde_json::to_value(&report).map_err(|e| e.to_string())
}
