//! The embedded deployment: the three roles of catg (ingest, resolve, transform) in one
//! process, over a source folder, a data folder (variants + SQLite) and a pool of workers.
//! `catg serve` is a thin shell around this; the end-to-end tests drive it directly too.

use crate::{FsObjectStore, SqliteStore};
use catg_core::ports::{LeasedJobQueue, ObjectStore, StoreError};
use catg_core::{
    backfill, ingest, reconcile, remove_source, run_worker, BackfillOptions, BackfillReport, Decoding, Error, Flow,
    PrewarmConfig, ReconcileOptions, ReconcileReport, RenderBudget, Renderer, Resolver, ResolverConfig, Stores,
    WorkerConfig,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    pub source_dir: PathBuf,
    pub data_dir: PathBuf,
    pub workers: usize,
    pub resolver: ResolverConfig,
    pub worker: WorkerConfig,
    /// Memory budget for renders running at once (see `RenderBudget`), in MiB.
    pub render_memory_mib: u32,
    /// Pre-warming (`per_asset` 0: off). Guesses are rendered by one worker of their own, only
    /// while no viewer's job is queued or rendering.
    pub prewarm: PrewarmConfig,
}

impl EmbeddedConfig {
    pub fn new(source_dir: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> EmbeddedConfig {
        EmbeddedConfig {
            source_dir: source_dir.into(),
            data_dir: data_dir.into(),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            resolver: ResolverConfig::default(),
            worker: WorkerConfig::default(),
            render_memory_mib: 1024,
            prewarm: PrewarmConfig::default(),
        }
    }
}

/// The assembled service.
pub struct Embedded {
    pub config: EmbeddedConfig,
    pub sources: Arc<FsObjectStore>,
    pub variants: Arc<FsObjectStore>,
    pub store: SqliteStore,
    /// The same stores as the port set the roles are built from.
    pub stores: Stores,
    pub renderer: Arc<Renderer>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Source changes the watcher has acted on (ingests and removals), for tests and the log.
    watched_changes: Arc<AtomicU64>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Scan progress: how many source objects are done out of how many.
pub type Progress = dyn Fn(u64, u64) + Send + Sync;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanSummary {
    pub seen: u64,
    pub new_assets: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub unchanged: u64,
    pub failed: u64,
    /// Recorded as present, but gone from the folder (deleted while catg was not running).
    pub removed: u64,
}

impl Embedded {
    pub fn open(config: EmbeddedConfig) -> Result<Embedded, StoreError> {
        let unavailable = |what: &Path, e: std::io::Error| StoreError::Unavailable(format!("{}: {e}", what.display()));
        let sources = Arc::new(FsObjectStore::new(&config.source_dir).map_err(|e| unavailable(&config.source_dir, e))?);
        let variants_dir = config.data_dir.join("variants");
        let variants = Arc::new(FsObjectStore::new(&variants_dir).map_err(|e| unavailable(&variants_dir, e))?);
        let store = SqliteStore::open(&config.data_dir.join("catg.db"))?;
        let stores = Stores {
            sources: sources.clone(),
            variants: variants.clone(),
            manifest: Arc::new(store.clone()),
            queue: Some(Arc::new(store.clone())),
            prewarm_queue: Some(Arc::new(store.prewarm_lane())),
            budget: Arc::new(RenderBudget::new(config.render_memory_mib)),
        };
        let renderer = Arc::new(stores.prewarming_renderer(
            &config.resolver.limits,
            &config.resolver.recipe_limits,
            &config.prewarm,
        ));
        let (shutdown, _) = watch::channel(false);
        let watched_changes = Arc::new(AtomicU64::new(0));
        Ok(Embedded {
            config,
            sources,
            variants,
            store,
            stores,
            renderer,
            shutdown,
            tasks: Vec::new(),
            watched_changes,
        })
    }

    pub fn resolver(&self) -> Resolver {
        self.stores.resolver_queueing_to(Arc::new(self.store.clone()), self.config.resolver.clone())
    }

    /// Limits and the process's one memory budget, for every ingest.
    fn decoding(&self) -> Decoding {
        self.stores.decoding(&self.config.resolver.limits)
    }

    /// Ingest everything already in the source folder, `workers` at a time (`catg_core::backfill`),
    /// and mark removed the keys whose files went away while catg was not watching.
    pub async fn scan(&self, progress: &Progress) -> Result<ScanSummary, Error> {
        let mut present = std::collections::HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.sources.list("", after.as_deref(), 1000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            present.extend(page.into_iter().map(|m| m.key));
        }
        let total = present.len() as u64;
        let mut summary = ScanSummary { seen: total, ..ScanSummary::default() };
        for key in self.store.present_source_keys().await? {
            if !present.contains(&key) && remove_source(&self.store, &key).await? {
                summary.removed += 1;
            }
        }
        progress(0, total);
        let options = BackfillOptions { concurrency: self.config.workers.max(1), page_size: 100, ..Default::default() };
        let mut on_page = |done: &BackfillReport| {
            progress(done.listed, total);
            Flow::Continue
        };
        let done = backfill(self.sources.as_ref(), &self.store, &self.decoding(), &options, &mut on_page).await?;
        summary.unchanged = done.already_recorded;
        summary.new_assets = done.new_assets;
        summary.duplicates = done.duplicates;
        summary.rejected = done.rejected;
        summary.failed = done.failed;
        Ok(summary)
    }

    /// Bring the manifest and the stored objects back into agreement (`catg_core::reconcile`).
    /// One process owns a data folder, so run it while `catg serve` is stopped; then no render
    /// is in flight and no grace period is needed for fresh variant objects.
    pub async fn reconcile(
        &self,
        dry_run: bool,
        progress: &(dyn Fn(&ReconcileReport) + Send + Sync),
    ) -> Result<ReconcileReport, Error> {
        let now_ms = catg_core::model::now_ms();
        let options = ReconcileOptions { dry_run, source_prefix: String::new(), now_ms, grace_ms: 0, deadline: None };
        reconcile(self.sources.as_ref(), self.variants.as_ref(), &self.store, &self.decoding(), &options, progress)
            .await
    }

    /// Start the render workers, first re-queueing jobs a previous process held when it died.
    pub async fn start_workers(&mut self) -> Result<(), StoreError> {
        let released = self.store.release_leases().await?;
        if released > 0 {
            tracing::info!(jobs = released, "re-queued jobs left leased by a previous run");
        }
        let viewer_lane = std::iter::repeat_n(self.store.clone(), self.config.workers.max(1));
        // One worker for guesses: its lane hands out work only while viewers' is empty.
        let prewarm_lane = (self.config.prewarm.per_asset > 0).then(|| self.store.prewarm_lane());
        for lane in viewer_lane.chain(prewarm_lane) {
            let wake = lane.wake();
            let queue: Arc<dyn LeasedJobQueue> = Arc::new(lane);
            let task = tokio::spawn(run_worker(
                queue,
                self.renderer.clone(),
                self.config.worker.clone(),
                wake,
                self.shutdown.subscribe(),
            ));
            self.tasks.push(task);
        }
        Ok(())
    }

    /// Watch the source folder: new and changed files are ingested, removed ones marked removed.
    pub fn start_watcher(&mut self) -> Result<(), notify::Error> {
        use notify::{RecursiveMode, Watcher};
        let (tx, rx) = mpsc::unbounded_channel::<PathBuf>();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Some(event) = event.ok().filter(|event| changes_content(&event.kind)) {
                for path in event.paths {
                    let _ = tx.send(path);
                }
            }
        })?;
        watcher.watch(&self.config.source_dir, RecursiveMode::Recursive)?;
        let (sources, store, decoding) = (self.sources.clone(), self.store.clone(), self.decoding());
        let shutdown = self.shutdown.subscribe();
        let changes = self.watched_changes.clone();
        self.tasks.push(tokio::spawn(async move {
            // The watcher lives as long as this task.
            let _watcher = watcher;
            settle_and_ingest(rx, sources, store, decoding, changes, shutdown).await;
        }));
        Ok(())
    }

    /// Stop workers and the watcher, and wait for them.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }

    /// How many source changes the folder watcher has acted on since start.
    pub fn watched_changes(&self) -> u64 {
        self.watched_changes.load(Ordering::Relaxed)
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

/// Whether a watcher event can mean a file's bytes or its name changed: creation, a write (or
/// its close), a rename, a removal. Opening, reading and closing a file after reading (which every
/// ingest does) and metadata changes (atime) are not: counting them made each ingest schedule the
/// next, forever.
fn changes_content(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        // Data (a write: backends without close events report only this), Name (a rename), Any.
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

/// A file being copied in fires many events: act once it has been quiet for a moment.
const SETTLE: Duration = Duration::from_millis(300);

async fn settle_and_ingest(
    mut rx: mpsc::UnboundedReceiver<PathBuf>,
    sources: Arc<FsObjectStore>,
    store: SqliteStore,
    decoding: Decoding,
    changes: Arc<AtomicU64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut pending: HashMap<String, tokio::time::Instant> = HashMap::new();
    loop {
        let next_due = pending.values().min().copied();
        tokio::select! {
            path = rx.recv() => match path {
                Some(path) => {
                    if let Some(key) = sources.key_of(&path) {
                        pending.insert(key, tokio::time::Instant::now() + SETTLE);
                    }
                }
                None => return,
            },
            _ = async { if let Some(due) = next_due { tokio::time::sleep_until(due).await } else { std::future::pending::<()>().await } } => {
                let now = tokio::time::Instant::now();
                let due: Vec<String> = pending.iter().filter(|(_, t)| **t <= now).map(|(k, _)| k.clone()).collect();
                for key in due {
                    pending.remove(&key);
                    changes.fetch_add(1, Ordering::Relaxed);
                    apply_change(&sources, &store, &key, &decoding).await;
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

async fn apply_change(sources: &FsObjectStore, store: &SqliteStore, key: &str, decoding: &Decoding) {
    let outcome = match sources.head(key).await {
        Ok(Some(_)) => ingest(sources, store, key, decoding).await.map(|r| format!("{r:?}")),
        Ok(None) => {
            remove_source(store, key).await.map(|removed| if removed { "removed".into() } else { "gone".into() })
        }
        Err(e) => Err(e.into()),
    };
    match outcome {
        Ok(what) => tracing::info!(key, outcome = %what, "source changed"),
        Err(e) => tracing::warn!(key, error = %e, "could not ingest a changed source"),
    }
}

#[cfg(test)]
mod tests {
    use super::changes_content;
    use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, EventKind, MetadataKind, ModifyKind};
    use notify::event::{RemoveKind, RenameMode};

    #[test]
    fn reading_a_file_is_not_a_change() {
        for quiet in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Access(AccessKind::Read),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
            EventKind::Other,
        ] {
            assert!(!changes_content(&quiet), "{quiet:?}");
        }
        for change in [
            EventKind::Create(CreateKind::File),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Remove(RemoveKind::File),
        ] {
            assert!(changes_content(&change), "{change:?}");
        }
    }
}
