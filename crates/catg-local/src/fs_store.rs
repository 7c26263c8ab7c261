//! A folder as an object store. Keys are relative paths. Writes go to a temporary file in the
//! same folder, are synced, then linked into place (which fails if the name exists): readers
//! never see half an object, and "put if absent" is atomic.

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
        Ok(self.root.join(key))
    }

    /// The key for a path under the root, if it is one (temporary and hidden files are not).
    pub fn key_of(&self, path: &Path) -> Option<String> {
        let relative = path.strip_prefix(&self.root).ok()?;
        let key = relative.to_str()?.replace(std::path::MAIN_SEPARATOR, "/");
        let hidden = key.split('/').any(|segment| segment.starts_with('.'));
        (!hidden && validate_key(&key).is_ok()).then_some(key)
    }
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
        let path = self.path(key)?;
        let key = key.to_string();
        blocking(move || {
            let file = std::fs::File::open(&path).map_err(|e| io_error(&key, e))?;
            let size = file.metadata().map_err(|e| io_error(&key, e))?.len();
            if !file.metadata().map_err(|e| io_error(&key, e))?.is_file() {
                return Err(StoreError::NotFound(key));
            }
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
        let path = self.path(key)?;
        let file = tokio::fs::File::open(&path).await.map_err(|e| io_error(key, e))?;
        let metadata = file.metadata().await.map_err(|e| io_error(key, e))?;
        if !metadata.is_file() {
            return Err(StoreError::NotFound(key.to_string()));
        }
        Ok((meta_of(key.to_string(), &metadata), Box::new(file)))
    }

    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>> {
        let path = self.path(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(meta_of(key.to_string(), &m))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::NotADirectory => Ok(None),
            Err(e) => Err(io_error(key, e)),
        }
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
