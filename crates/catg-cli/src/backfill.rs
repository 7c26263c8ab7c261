//! `catg backfill`: ingest a folder or bucket that predates catg (`catg_core::backfill`), with a
//! progress bar (rate, ETA), Ctrl-C that stops after the page in hand, and a checkpoint file so
//! the next run resumes where this one stopped, even after `kill -9` (everything before the
//! checkpoint is recorded; a page in flight is simply ingested again, which is idempotent).

use catg_core::config::{image_limits, process_env, render_memory_mib};
use catg_core::ports::{ManifestStore, ObjectStore};
use catg_core::{backfill, BackfillOptions, BackfillReport, Decoding, Flow, RenderBudget};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    stores: crate::StoreArgs,
    /// Only keys under this prefix.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Objects ingested at the same time.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Keys per page: the unit of progress and of resuming.
    #[arg(long, default_value_t = 500)]
    page_size: usize,
    /// Only count what would be ingested.
    #[arg(long)]
    dry_run: bool,
    /// Where the last key done is kept (default: `backfill.checkpoint` in the data folder, or
    /// `./catg-backfill.checkpoint` with --aws).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Ignore a saved checkpoint and start from the first key.
    #[arg(long)]
    restart: bool,
}

pub fn run(args: BackfillArgs) -> Result<serde_json::Value, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: BackfillArgs) -> Result<serde_json::Value, String> {
    let limits = image_limits(process_env).map_err(|e| e.to_string())?;
    let budget = RenderBudget::new(render_memory_mib(process_env).map_err(|e| e.to_string())?);
    let decoding = Decoding::new(limits, Arc::new(budget));
    let (sources, manifest, checkpoint): (Arc<dyn ObjectStore>, Arc<dyn ManifestStore>, PathBuf) = if args.stores.aws {
        let deployed = crate::deployed::stores().await?;
        let checkpoint = args.checkpoint.clone().unwrap_or_else(|| PathBuf::from("catg-backfill.checkpoint"));
        (deployed.sources, deployed.manifest, checkpoint)
    } else {
        let config = catg_local::EmbeddedConfig::new(&args.stores.source, &args.stores.data);
        let embedded = catg_local::Embedded::open(config).map_err(|e| format!("cannot open the data folder: {e}"))?;
        let checkpoint = args.checkpoint.clone().unwrap_or_else(|| args.stores.data.join("backfill.checkpoint"));
        (embedded.sources.clone(), Arc::new(embedded.store.clone()), checkpoint)
    };
    let start_after = if args.restart { None } else { read_checkpoint(&checkpoint)? };
    if let Some(key) = &start_after {
        eprintln!("resuming after {key} (from {}; --restart to start over)", checkpoint.display());
    }

    let terminal = std::io::stderr().is_terminal();
    let bar = if terminal { indicatif::ProgressBar::new_spinner() } else { indicatif::ProgressBar::hidden() };
    bar.set_message("counting objects");
    let total = count(sources.as_ref(), &args.prefix, start_after.as_deref(), &bar).await?;
    bar.set_length(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} objects  {per_sec}  ETA {eta}  {msg}")
            .map_err(|e| e.to_string())?,
    );
    bar.set_message("");

    let stop = Arc::new(AtomicBool::new(false));
    let stop_on_signal = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop_on_signal.store(true, Ordering::SeqCst);
        }
    });
    let options = BackfillOptions {
        prefix: args.prefix.clone(),
        start_after: start_after.clone(),
        concurrency: args.concurrency,
        page_size: args.page_size,
        dry_run: args.dry_run,
    };
    let mut saved: Result<(), String> = Ok(());
    let mut on_page = |report: &BackfillReport| {
        bar.set_position(report.listed);
        bar.set_message(format!(
            "{} new, {} duplicates, {} rejected, {} summarised",
            report.new_assets, report.duplicates, report.rejected, report.summarised
        ));
        if !args.dry_run {
            if let Some(key) = &report.resume_after {
                saved = save_checkpoint(&checkpoint, key);
            }
        }
        if saved.is_err() || stop.load(Ordering::SeqCst) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    };
    let report = backfill(sources.as_ref(), manifest.as_ref(), &decoding, &options, &mut on_page)
        .await
        .map_err(|e| format!("backfill stopped: {e} (run again to resume)"))?;
    bar.finish_and_clear();
    saved?;
    if report.complete && !args.dry_run {
        let _ = std::fs::remove_file(&checkpoint);
    } else if !report.complete {
        eprintln!(
            "stopped; run the same command again to resume after {}",
            report.resume_after.as_deref().unwrap_or("the start")
        );
    }
    let mut value = serde_json::to_value(&report).map_err(|e| e.to_string())?;
    value["resumed_after"] = serde_json::json!(start_after);
    Ok(value)
}

/// How many objects are left to do, for the progress bar's length and ETA (listing is cheap:
/// one request per 1,000 keys on S3, a directory walk locally).
async fn count(
    sources: &dyn ObjectStore,
    prefix: &str,
    start_after: Option<&str>,
    bar: &indicatif::ProgressBar,
) -> Result<u64, String> {
    let (mut total, mut after) = (0u64, start_after.map(str::to_string));
    loop {
        let page =
            sources.list(prefix, after.as_deref(), 1000).await.map_err(|e| format!("cannot list the sources: {e}"))?;
        let Some(last) = page.last() else { return Ok(total) };
        total += page.len() as u64;
        after = Some(last.key.clone());
        bar.set_message(format!("counting objects: {total}"));
        bar.tick();
    }
}

fn read_checkpoint(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim_end_matches('\n').to_string()).filter(|k| !k.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Written to a temporary file and renamed: a crash never leaves half a key.
fn save_checkpoint(path: &Path, key: &str) -> Result<(), String> {
    let temporary = path.with_extension("checkpoint.tmp");
    std::fs::write(&temporary, format!("{key}\n"))
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|e| format!("cannot save the checkpoint {}: {e}", path.display()))
}
