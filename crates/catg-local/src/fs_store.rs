//! A folder as an object store. Keys are relative paths. Writes go to a temporary file in the
//! same folder, are synced, then linked into place (which fails if the name exists): readers
//! never see half an object, and "put if absent" is atomic.
//!
//! One rule for every read, whoever asks (start-up scan, watcher, on-demand ingest, renders): a
//! key names a regular file reached from the root without a symlink and without a hidden (`.`)
//! segment. Anything else does not exist: it answers `NotFound` without the file being opened.

use async_trait::async_trait;
use catg_core::ports::{ObjectMeta, ObjectReader, ObjectStore, PutOutcome, StoreError, StoreResult};
use catg_core::validate_key;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Temporary files start with this; listings skip them.
const TEMP_PREFIX: &str = ".catg-tmp-";

#[derive(Debug, Clone)]
pub struct FsObjectStore {
    root: PathBuf,
}

impl FsObjectStore {
    pub fn new(root: impl Into<PathBuf>) -> std::io::Result<FsObjectStore> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(FsObjectStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> StoreResult<PathBuf> {
        validate_key(key).map_err(|_| StoreError::Invalid(format!("invalid key {key:?}")))?;
        if is_hidden(key) {
            return Err(StoreError::NotFound(key.to_string()));
        }
        Ok(self.root.join(key))
    }

    /// Open the file `key` names for reading, beneath the root and through no symlink.
    fn open_file(&self, key: &str) -> StoreResult<std::fs::File> {
        self.path(key)?;
        let file = open_beneath(&self.root, key).map_err(|e| io_error(key, e))?;
        let metadata = file.metadata().map_err(|e| io_error(key, e))?;
        if !metadata.is_file() {
            return Err(StoreError::NotFound(key.to_string()));
        }
        Ok(file)
    }

    /// The key for a path under the root, if it is one (temporary and hidden files are not).
    pub fn key_of(&self, path: &Path) -> Option<String> {
        let relative = path.strip_prefix(&self.root).ok()?;
        let key = relative.to_str()?.replace(std::path::MAIN_SEPARATOR, "/");
        (!is_hidden(&key) && validate_key(&key).is_ok()).then_some(key)
    }
}

/// A segment starting with `.`: temporary files, and what the folder's owner keeps out of sight.
fn is_hidden(key: &str) -> bool {
    key.split('/').any(|segment| segment.starts_with('.'))
}

/// Open `relative` beneath `root`, refusing any symlink on the way (the kernel resolves the path
/// with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, so a swap of a folder for a link between a check
/// and the open cannot race it). A refused link reads as "not found".
#[cfg(target_os = "linux")]
fn open_beneath(root: &Path, relative: &str) -> std::io::Result<std::fs::File> {
    use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
    let dir = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    // NONBLOCK: a FIFO dropped in the folder must not hang the open (it is refused as not a file).
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    match openat2(&dir, relative, flags, Mode::empty(), ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS) {
        Ok(fd) => Ok(std::fs::File::from(fd)),
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::XDEV) => Err(ErrorKind::NotFound.into()),
        // Kernels before 5.6 have no openat2: check every segment, then open without following.
        Err(rustix::io::Errno::NOSYS) => open_checking_segments(root, relative),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn open_beneath(root: &Path, relative: &str) -> std::io::Result<std::fs::File> {
    open_checking_segments(root, relative)
}

/// The portable fallback: no segment may be a symlink and the last must be a regular file, both
/// checked with `lstat` before opening. Only a concurrent swap of a folder for a link could get
/// past it, which openat2 rules out where it exists.
fn open_checking_segments(root: &Path, relative: &str) -> std::io::Result<std::fs::File> {
    let mut path = root.to_path_buf();
    let mut last = None;
    for segment in relative.split('/') {
        path.push(segment);
        let metadata = std::fs::symlink_metadata(&path)?;
        if metadata.file_type().is_symlink() {
            return Err(ErrorKind::NotFound.into());
        }
        last = Some(metadata);
    }
    if !last.is_some_and(|m| m.is_file()) {
        return Err(ErrorKind::NotFound.into());
    }
    std::fs::File::open(&path)
}

impl FsObjectStore {
    /// Depth-first in key order, from after `after`, until `limit` keys are found. Entries are
    /// sorted by name with a `/` after directory names, which is exactly the order of the keys
    /// beneath them; subtrees wholly before `after` or outside `prefix` are never read, so paging
    /// through a large store costs one pass, not one pass per page.
    fn walk_sorted(
        &self,
        dir: &Path,
        dir_key: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        out: &mut Vec<ObjectMeta>,
    ) -> StoreResult<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error(&dir.display().to_string(), e)),
        };
        let mut children: Vec<(String, std::fs::DirEntry, bool)> = Vec::new();
        for entry in entries.flatten() {
            let Ok(file_type) = entry.file_type() else { continue };
            let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
            if name.starts_with('.') || !(file_type.is_dir() || file_type.is_file()) {
                continue;
            }
            let sort_key = if file_type.is_dir() { format!("{dir_key}{name}/") } else { format!("{dir_key}{name}") };
            children.push((sort_key, entry, file_type.is_dir()));
        }
        children.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, entry, is_dir) in children {
            if out.len() >= limit {
                return Ok(());
            }
            // Nothing under (or at) this key can match the prefix, or come after `after`.
            let overlaps_prefix = key.starts_with(prefix) || (is_dir && prefix.starts_with(&key));
            let before_after = after.is_some_and(|a| key.as_str() <= a && !(is_dir && a.starts_with(&key)));
            if !overlaps_prefix || before_after {
                continue;
            }
            if is_dir {
                self.walk_sorted(&entry.path(), &key, prefix, after, limit, out)?;
            } else if let Some(key) = self.key_of(&entry.path()) {
                if let Ok(metadata) = entry.metadata() {
                    out.push(meta_of(key, &metadata));
                }
            }
        }
        Ok(())
    }
}

fn meta_of(key: String, metadata: &std::fs::Metadata) -> ObjectMeta {
    let mtime = metadata.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).unwrap_or_default();
    ObjectMeta {
        key,
        size: metadata.len(),
        etag: format!("{:x}-{:x}", metadata.len(), mtime.as_nanos()),
        modified_ms: mtime.as_millis() as u64,
    }
}

fn io_error(key: &str, e: std::io::Error) -> StoreError {
    match e.kind() {
        ErrorKind::NotFound => StoreError::NotFound(key.to_string()),
        ErrorKind::InvalidInput | ErrorKind::IsADirectory | ErrorKind::NotADirectory => {
            StoreError::Invalid(format!("{key}: {e}"))
        }
        // A full disk, a permission problem, an I/O error: the operator can fix these.
        _ => StoreError::Unavailable(format!("{key}: {e}")),
    }
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> StoreResult<T> + Send + 'static) -> StoreResult<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| StoreError::Unavailable(format!("worker thread: {e}")))?
}

#[async_trait]
impl ObjectStore for FsObjectStore {
    async fn get(&self, key: &str, max_bytes: u64) -> StoreResult<Vec<u8>> {
        let store = self.clone();
        let key = key.to_string();
        blocking(move || {
            let file = store.open_file(&key)?;
            let size = file.metadata().map_err(|e| io_error(&key, e))?.len();
            if size > max_bytes {
                return Err(StoreError::Invalid(format!("{key} is {size} bytes, over {max_bytes}")));
            }
            let mut bytes = Vec::with_capacity(size as usize);
            std::io::Read::read_to_end(&mut std::io::Read::take(file, max_bytes), &mut bytes)
                .map_err(|e| io_error(&key, e))?;
            Ok(bytes)
        })
        .await
    }

    async fn open(&self, key: &str) -> StoreResult<(ObjectMeta, ObjectReader)> {
        let store = self.clone();
        let owned = key.to_string();
        let (file, metadata) = blocking(move || {
            let file = store.open_file(&owned)?;
            let metadata = file.metadata().map_err(|e| io_error(&owned, e))?;
            Ok((file, metadata))
        })
        .await?;
        Ok((meta_of(key.to_string(), &metadata), Box::new(tokio::fs::File::from_std(file))))
    }

    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>> {
        let store = self.clone();
        let key = key.to_string();
        blocking(move || {
            match store.path(&key) {
                Err(StoreError::NotFound(_)) => return Ok(None),
                other => other?,
            };
            let file = match open_beneath(&store.root, &key) {
                Ok(file) => file,
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => return Ok(None),
                Err(e) => return Err(io_error(&key, e)),
            };
            let metadata = file.metadata().map_err(|e| io_error(&key, e))?;
            Ok(metadata.is_file().then(|| meta_of(key, &metadata)))
        })
        .await
    }

    async fn put_if_absent(
        &self,
        key: &str,
        bytes: &[u8],
        _content_type: &str,
        _cache_control: &str,
    ) -> StoreResult<PutOutcome> {
        let path = self.path(key)?;
        let key = key.to_string();
        let bytes = bytes.to_vec();
        blocking(move || {
            let dir = path.parent().ok_or_else(|| StoreError::Invalid(key.clone()))?;
            std::fs::create_dir_all(dir).map_err(|e| io_error(&key, e))?;
            if path.exists() {
                return Ok(PutOutcome::AlreadyExists);
            }
            let temp = dir.join(format!("{TEMP_PREFIX}{}-{:x}", std::process::id(), rand_suffix()));
            let written = (|| {
                let mut file = std::fs::File::create_new(&temp)?;
                file.write_all(&bytes)?;
                file.sync_all()
            })();
            if let Err(e) = written {
                let _ = std::fs::remove_file(&temp);
                return Err(io_error(&key, e));
            }
            // link(2) refuses to replace an existing name: the atomic "if absent".
            let linked = std::fs::hard_link(&temp, &path);
            let _ = std::fs::remove_file(&temp);
            match linked {
                Ok(()) => {
                    if let Ok(d) = std::fs::File::open(dir) {
                        let _ = d.sync_all();
                    }
                    Ok(PutOutcome::Created)
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(PutOutcome::AlreadyExists),
                Err(e) => Err(io_error(&key, e)),
            }
        })
        .await
    }

    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> StoreResult<Vec<ObjectMeta>> {
        let store = self.clone();
        let prefix = prefix.to_string();
        let after = after.map(str::to_string);
        blocking(move || {
            let mut out = Vec::new();
            store.walk_sorted(&store.root, "", &prefix, after.as_deref(), limit, &mut out)?;
            Ok(out)
        })
        .await
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(key, e)),
        }
    }
}

/// Unique enough for temp names within one process and across restarts.
fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() as u64);
    (nanos << 20) ^ COUNTER.fetch_add(1, Ordering::Relaxed)
}
