//! SQLite (WAL) as the manifest and the durable job queue, in one database file.
//!
//! The conditional writes mirror the DynamoDB adapter's condition expressions: a claim is one
//! `INSERT … ON CONFLICT DO UPDATE … WHERE`, so exactly one of any number of concurrent
//! claimants wins. Jobs are rows with a visibility time: a received job is leased, and comes
//! back if its worker dies (even by `kill -9`) before acknowledging it.

use async_trait::async_trait;
use catg_core::model::{
    now_ms, AssetFacts, AssetRecord, AssetState, Job, Millis, Origin, SourceRecord, SourceState, SummaryText,
    VariantRecord, VariantState,
};
use catg_core::near_duplicates::{band_keys, Candidate};
use catg_core::ports::{
    Claim, Delivery, JobQueue, LeasedJobQueue, ManifestStore, Page, StoreError, StoreResult, Totals,
};
use catg_core::{CacheKey, Fingerprint};
use catg_image::{OutputFormat, Summary};
use rusqlite::{named_params, params, Connection, OptionalExtension, Row, ToSql};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sources (
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, bytes INTEGER NOT NULL, etag TEXT NOT NULL,
    state TEXT NOT NULL, updated_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS assets (
    fingerprint TEXT PRIMARY KEY, bytes INTEGER NOT NULL, state TEXT NOT NULL,
    format TEXT, width INTEGER, height INTEGER, orientation INTEGER, has_alpha INTEGER, frames INTEGER,
    reason TEXT, message TEXT, first_seen_ms INTEGER NOT NULL, source_key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS variants (
    cache_key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, canonical TEXT NOT NULL, format TEXT NOT NULL,
    state TEXT NOT NULL, lease_until_ms INTEGER, object_key TEXT, bytes INTEGER, render_ms INTEGER,
    reason TEXT, message TEXT, updated_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS variants_by_fingerprint ON variants (fingerprint);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, visible_at_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_by_visibility ON jobs (visible_at_ms);
CREATE TABLE IF NOT EXISTS phash_bands (
    band INTEGER NOT NULL, fingerprint TEXT NOT NULL, PRIMARY KEY (band, fingerprint)) WITHOUT ROWID;
";

/// Columns added since the first schema, as (table, column, type): a database made by an older
/// catg gains them when opened. Asset summaries stay empty until `catg backfill` fills them in;
/// old variants read as requested by viewers; old jobs are viewers' jobs.
const ADDED_COLUMNS: [(&str, &str, &str); 6] = [
    ("assets", "thumbhash", "TEXT"),
    ("assets", "dominant_color", "TEXT"),
    ("assets", "phash", "TEXT"),
    ("assets", "near_duplicate_of", "TEXT"),
    ("variants", "origin", "TEXT"),
    ("jobs", "lane", "TEXT NOT NULL DEFAULT 'viewer'"),
];

fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    for (table, name, kind) in ADDED_COLUMNS {
        let exists: bool = conn.query_row(
            "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
            params![table, name],
            |row| row.get(0),
        )?;
        if !exists {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {name} {kind}"))?;
        }
    }
    // After the lane column exists: each lane's workers look for their next visible job.
    conn.execute_batch("CREATE INDEX IF NOT EXISTS jobs_by_lane ON jobs (lane, visible_at_ms)")
}

/// The assets sharing a band with a hash: eight lookups in `phash_bands`' primary key
/// (`near_duplicate_index_is_searched_not_scanned` checks the plan).
const NEAR_DUPLICATE_CANDIDATES: &str = "
    SELECT a.fingerprint, a.phash, a.near_duplicate_of FROM assets a
    WHERE a.fingerprint IN (SELECT fingerprint FROM phash_bands WHERE band IN (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8))
      AND a.phash IS NOT NULL
    LIMIT ?9";

/// Enter an asset's hash bands in the near-duplicate index (idempotent).
fn index_bands(conn: &Connection, fingerprint: &str, phash: u64) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached("INSERT OR IGNORE INTO phash_bands (band, fingerprint) VALUES (?1, ?2)")?;
    for band in band_keys(phash) {
        insert.execute(params![band, fingerprint])?;
    }
    Ok(())
}

/// The manifest and the job queue, sharing one connection. The queue has two lanes: viewers'
/// jobs, and pre-warm guesses ([`SqliteStore::prewarm_lane`]), which are handed out only while
/// no viewer's job is queued or being rendered.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    wake: Arc<Notify>,
    prewarm_wake: Arc<Notify>,
    lane: Lane,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Viewer,
    Prewarm,
}

impl Lane {
    fn as_str(self) -> &'static str {
        match self {
            Lane::Viewer => "viewer",
            Lane::Prewarm => "prewarm",
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn db_error(e: rusqlite::Error) -> StoreError {
    // Busy, locked, full, I/O: all things that pass or that an operator fixes.
    StoreError::Unavailable(format!("sqlite: {e}"))
}

impl SqliteStore {
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(db_error)?;
        // WAL: readers never block the writer; NORMAL sync is durable against process crashes.
        conn.pragma_update(None, "journal_mode", "WAL").map_err(db_error)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(db_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(db_error)?;
        conn.execute_batch(SCHEMA).map_err(db_error)?;
        add_missing_columns(&conn).map_err(db_error)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            wake: Arc::new(Notify::new()),
            prewarm_wake: Arc::new(Notify::new()),
            lane: Lane::Viewer,
        })
    }

    /// The same store, queueing and receiving in the pre-warm lane.
    pub fn prewarm_lane(&self) -> SqliteStore {
        SqliteStore { lane: Lane::Prewarm, ..self.clone() }
    }

    /// Notified whenever a job is queued in this lane, so idle workers start at once.
    pub fn wake(&self) -> Arc<Notify> {
        match self.lane {
            Lane::Viewer => self.wake.clone(),
            Lane::Prewarm => self.prewarm_wake.clone(),
        }
    }

    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError::Unavailable("sqlite connection poisoned".into()))?;
            work(&mut guard).map_err(db_error)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("worker thread: {e}")))?
    }

    /// Make every leased job visible again. Called at start-up: one process owns a data folder,
    /// so any job still leased was held by a process that died (crash, `kill -9`).
    pub async fn release_leases(&self) -> StoreResult<u64> {
        self.with(|c| c.execute("UPDATE jobs SET visible_at_ms = 0 WHERE visible_at_ms > 0", []).map(|n| n as u64))
            .await
    }

    /// How many jobs were ever queued (SQLite's autoincrement counter): for tests and status.
    pub async fn jobs_ever_queued(&self) -> StoreResult<u64> {
        self.with(|c| {
            c.query_row("SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0)", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
        })
        .await
    }

    /// Keys of every source currently recorded as present.
    pub async fn present_source_keys(&self) -> StoreResult<Vec<String>> {
        self.with(|c| {
            let mut statement = c.prepare("SELECT key FROM sources WHERE state = 'present' ORDER BY key")?;
            let keys = statement.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(keys)
        })
        .await
    }

    /// Counts for status output.
    pub async fn counts(&self) -> StoreResult<Counts> {
        self.with(|c| {
            let one = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0));
            Ok(Counts {
                sources: one("SELECT count(*) FROM sources WHERE state = 'present'")? as u64,
                assets: one("SELECT count(*) FROM assets WHERE state = 'ready'")? as u64,
                rejected: one("SELECT count(*) FROM assets WHERE state = 'rejected'")? as u64,
                variants: one("SELECT count(*) FROM variants WHERE state = 'ready'")? as u64,
                queued: one("SELECT count(*) FROM jobs")? as u64,
            })
        })
        .await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub sources: u64,
    pub assets: u64,
    pub rejected: u64,
    pub variants: u64,
    pub queued: u64,
}

fn row_id(id: &str) -> StoreResult<i64> {
    id.parse().map_err(|_| StoreError::Invalid(format!("not a job id: {id:?}")))
}

fn bad_row(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, what.to_string(), rusqlite::types::Type::Text)
}

fn fingerprint_at(row: &Row<'_>, column: &str) -> rusqlite::Result<Fingerprint> {
    row.get::<_, String>(column)?.parse().map_err(|_| bad_row("fingerprint"))
}

fn source_from(row: &Row<'_>) -> rusqlite::Result<SourceRecord> {
    Ok(SourceRecord {
        key: row.get(0)?,
        fingerprint: fingerprint_at(row, "fingerprint")?,
        bytes: row.get::<_, i64>(2)? as u64,
        etag: row.get(3)?,
        state: SourceState::parse(&row.get::<_, String>(4)?).ok_or_else(|| bad_row("source state"))?,
        updated_ms: row.get::<_, i64>(5)? as Millis,
    })
}

const ASSET_COLUMNS: &str =
    "fingerprint, bytes, state, format, width, height, orientation, has_alpha, frames, reason, \
     message, first_seen_ms, source_key, thumbhash, dominant_color, phash, near_duplicate_of";

fn asset_from(row: &Row<'_>) -> rusqlite::Result<AssetRecord> {
    let state = match row.get::<_, String>("state")?.as_str() {
        "ready" => AssetState::Ready(AssetFacts {
            format: row.get("format")?,
            width: row.get("width")?,
            height: row.get("height")?,
            orientation: row.get("orientation")?,
            has_alpha: row.get("has_alpha")?,
            frames: row.get("frames")?,
            summary: summary_from(row)?,
            near_duplicate_of: match row.get::<_, Option<String>>("near_duplicate_of")? {
                Some(hex) => Some(hex.parse().map_err(|_| bad_row("near_duplicate_of"))?),
                None => None,
            },
        }),
        "rejected" => AssetState::Rejected { reason: row.get("reason")?, message: row.get("message")? },
        _ => return Err(bad_row("asset state")),
    };
    Ok(AssetRecord {
        fingerprint: fingerprint_at(row, "fingerprint")?,
        bytes: row.get::<_, i64>("bytes")? as u64,
        state,
        first_seen_ms: row.get::<_, i64>("first_seen_ms")? as Millis,
        source_key: row.get("source_key")?,
    })
}

fn summary_from(row: &Row<'_>) -> rusqlite::Result<Option<Summary>> {
    let (Some(thumbhash), Some(dominant_color), Some(phash)) =
        (row.get("thumbhash")?, row.get("dominant_color")?, row.get("phash")?)
    else {
        return Ok(None);
    };
    SummaryText { thumbhash, dominant_color, phash }.parse().map(Some).ok_or_else(|| bad_row("summary"))
}

const VARIANT_COLUMNS: &str =
    "cache_key, fingerprint, canonical, format, state, lease_until_ms, object_key, bytes, render_ms, reason, message, updated_ms, origin";

fn variant_from(row: &Row<'_>) -> rusqlite::Result<VariantRecord> {
    let hex_key: String = row.get("cache_key")?;
    let key: CacheKey = hex_key.parse().map_err(|_| bad_row("cache key"))?;
    let state = match row.get::<_, String>("state")?.as_str() {
        "pending" => VariantState::Pending { lease_until_ms: row.get::<_, i64>("lease_until_ms")? as Millis },
        "ready" => VariantState::Ready {
            object_key: row.get("object_key")?,
            bytes: row.get::<_, i64>("bytes")? as u64,
            render_ms: row.get::<_, i64>("render_ms")? as u64,
        },
        "failed" => VariantState::Failed { reason: row.get("reason")?, message: row.get("message")? },
        _ => return Err(bad_row("variant state")),
    };
    Ok(VariantRecord {
        cache_key: key,
        fingerprint: fingerprint_at(row, "fingerprint")?,
        canonical: row.get("canonical")?,
        format: OutputFormat::parse(&row.get::<_, String>("format")?).ok_or_else(|| bad_row("format"))?,
        state,
        updated_ms: row.get::<_, i64>("updated_ms")? as Millis,
        origin: Origin::from_stored(row.get::<_, Option<String>>("origin")?.as_deref()),
    })
}

/// A variant record as the values of [`VARIANT_UPSERT`]'s named parameters.
struct VariantRow {
    cache_key: String,
    fingerprint: String,
    canonical: String,
    format: &'static str,
    state: &'static str,
    lease_until_ms: Option<i64>,
    object_key: Option<String>,
    bytes: Option<i64>,
    render_ms: Option<i64>,
    reason: Option<String>,
    message: Option<String>,
    updated_ms: i64,
    origin: Option<&'static str>,
}

impl VariantRow {
    fn of(r: &VariantRecord) -> VariantRow {
        let mut row = VariantRow {
            cache_key: r.cache_key.to_hex(),
            fingerprint: r.fingerprint.to_hex(),
            canonical: r.canonical.clone(),
            format: r.format.as_str(),
            state: r.state.name(),
            lease_until_ms: None,
            object_key: None,
            bytes: None,
            render_ms: None,
            reason: None,
            message: None,
            updated_ms: r.updated_ms as i64,
            origin: r.origin.stored(),
        };
        match &r.state {
            VariantState::Pending { lease_until_ms } => row.lease_until_ms = Some(*lease_until_ms as i64),
            VariantState::Ready { object_key, bytes, render_ms } => {
                (row.object_key, row.bytes, row.render_ms) =
                    (Some(object_key.clone()), Some(*bytes as i64), Some(*render_ms as i64));
            }
            VariantState::Failed { reason, message } => {
                (row.reason, row.message) = (Some(reason.clone()), Some(message.clone()));
            }
        }
        row
    }

    /// The upsert's parameters, followed by `extra` (what the statement's `WHERE` names).
    fn params<'a>(&'a self, extra: &[(&'a str, &'a dyn ToSql)]) -> Vec<(&'a str, &'a dyn ToSql)> {
        let mut all: Vec<(&str, &dyn ToSql)> = vec![
            (":cache_key", &self.cache_key),
            (":fingerprint", &self.fingerprint),
            (":canonical", &self.canonical),
            (":format", &self.format),
            (":state", &self.state),
            (":lease_until_ms", &self.lease_until_ms),
            (":object_key", &self.object_key),
            (":bytes", &self.bytes),
            (":render_ms", &self.render_ms),
            (":reason", &self.reason),
            (":message", &self.message),
            (":updated_ms", &self.updated_ms),
            (":origin", &self.origin),
        ];
        all.extend_from_slice(extra);
        all
    }
}

const VARIANT_UPSERT: &str = "INSERT INTO variants (cache_key, fingerprint, canonical, format, state, lease_until_ms, object_key, bytes, render_ms, reason, message, updated_ms, origin)
     VALUES (:cache_key, :fingerprint, :canonical, :format, :state, :lease_until_ms, :object_key, :bytes, :render_ms, :reason, :message, :updated_ms, :origin)
     ON CONFLICT (cache_key) DO UPDATE SET fingerprint = excluded.fingerprint, canonical = excluded.canonical,
        format = excluded.format, state = excluded.state, lease_until_ms = excluded.lease_until_ms,
        object_key = excluded.object_key, bytes = excluded.bytes, render_ms = excluded.render_ms,
        reason = excluded.reason, message = excluded.message, updated_ms = excluded.updated_ms,
        origin = excluded.origin";

#[async_trait]
impl ManifestStore for SqliteStore {
    async fn source(&self, key: &str) -> StoreResult<Option<SourceRecord>> {
        let key = key.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT key, fingerprint, bytes, etag, state, updated_ms FROM sources WHERE key = ?1",
                [key],
                source_from,
            )
            .optional()
        })
        .await
    }

    async fn put_source(&self, r: &SourceRecord) -> StoreResult<()> {
        let r = r.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO sources (key, fingerprint, bytes, etag, state, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint, bytes = excluded.bytes,
                    etag = excluded.etag, state = excluded.state, updated_ms = excluded.updated_ms
                 WHERE excluded.updated_ms >= sources.updated_ms",
                params![r.key, r.fingerprint.to_hex(), r.bytes as i64, r.etag, r.state.as_str(), r.updated_ms as i64],
            )
            .map(|_| ())
        })
        .await
    }

    async fn asset(&self, fingerprint: &Fingerprint) -> StoreResult<Option<AssetRecord>> {
        let fp = fingerprint.to_hex();
        self.with(move |c| {
            c.query_row(&format!("SELECT {ASSET_COLUMNS} FROM assets WHERE fingerprint = ?1"), [fp], asset_from)
                .optional()
        })
        .await
    }

    async fn create_asset(&self, r: &AssetRecord) -> StoreResult<bool> {
        let r = r.clone();
        self.with(move |c| {
            let (state, facts, reason, message) = match &r.state {
                AssetState::Ready(f) => ("ready", Some(f.clone()), None, None),
                AssetState::Rejected { reason, message } => {
                    ("rejected", None, Some(reason.clone()), Some(message.clone()))
                }
            };
            let summary = facts.as_ref().and_then(|f| f.summary.as_ref());
            let text = summary.map(SummaryText::of);
            let fingerprint = r.fingerprint.to_hex();
            let transaction = c.transaction()?;
            let changed = transaction.execute(
                &format!(
                    "INSERT INTO assets ({ASSET_COLUMNS}) VALUES (:fingerprint, :bytes, :state, :format, :width,
                        :height, :orientation, :has_alpha, :frames, :reason, :message, :first_seen_ms, :source_key,
                        :thumbhash, :dominant_color, :phash, :near_duplicate_of)
                     ON CONFLICT (fingerprint) DO NOTHING"
                ),
                named_params! {
                    ":fingerprint": r.fingerprint.to_hex(),
                    ":bytes": r.bytes as i64,
                    ":state": state,
                    ":format": facts.as_ref().map(|f| f.format.clone()),
                    ":width": facts.as_ref().map(|f| f.width),
                    ":height": facts.as_ref().map(|f| f.height),
                    ":orientation": facts.as_ref().map(|f| f.orientation),
                    ":has_alpha": facts.as_ref().map(|f| f.has_alpha),
                    ":frames": facts.as_ref().map(|f| f.frames),
                    ":reason": reason,
                    ":message": message,
                    ":first_seen_ms": r.first_seen_ms as i64,
                    ":source_key": r.source_key,
                    ":thumbhash": text.as_ref().map(|t| t.thumbhash.clone()),
                    ":dominant_color": text.as_ref().map(|t| t.dominant_color.clone()),
                    ":phash": text.as_ref().map(|t| t.phash.clone()),
                    ":near_duplicate_of": facts.as_ref().and_then(|f| f.near_duplicate_of).map(|f| f.to_hex()),
                },
            )?;
            if let (1, Some(summary)) = (changed, summary) {
                index_bands(&transaction, &fingerprint, summary.phash)?;
            }
            transaction.commit()?;
            Ok(changed == 1)
        })
        .await
    }

    async fn set_asset_source(&self, fingerprint: &Fingerprint, source_key: &str) -> StoreResult<()> {
        let (fp, key) = (fingerprint.to_hex(), source_key.to_string());
        self.with(move |c| {
            c.execute("UPDATE assets SET source_key = ?2 WHERE fingerprint = ?1", params![fp, key]).map(|_| ())
        })
        .await
    }

    async fn set_asset_summary(
        &self,
        fingerprint: &Fingerprint,
        summary: &Summary,
        near_duplicate_of: Option<Fingerprint>,
    ) -> StoreResult<bool> {
        let (fp, text, phash) = (fingerprint.to_hex(), SummaryText::of(summary), summary.phash);
        let group = near_duplicate_of.map(|f| f.to_hex());
        self.with(move |c| {
            let transaction = c.transaction()?;
            let changed = transaction.execute(
                "UPDATE assets SET thumbhash = :thumbhash, dominant_color = :dominant_color, phash = :phash,
                    near_duplicate_of = :group
                 WHERE fingerprint = :fingerprint AND state = 'ready' AND phash IS NULL",
                named_params! {
                    ":fingerprint": fp,
                    ":thumbhash": text.thumbhash,
                    ":dominant_color": text.dominant_color,
                    ":phash": text.phash,
                    ":group": group,
                },
            )?;
            if changed == 1 {
                index_bands(&transaction, &fp, phash)?;
            }
            transaction.commit()?;
            Ok(changed == 1)
        })
        .await
    }

    async fn join_near_duplicate_group(
        &self,
        member: &Fingerprint,
        _member_phash: u64,
        first: &Fingerprint,
    ) -> StoreResult<bool> {
        // The index holds no group here (candidates read it from the asset): one statement.
        let (member, first) = (member.to_hex(), first.to_hex());
        self.with(move |c| {
            c.execute(
                "UPDATE assets SET near_duplicate_of = :first
                 WHERE fingerprint = :member AND :member != :first AND state = 'ready' AND phash IS NOT NULL
                   AND near_duplicate_of IS NULL
                   AND EXISTS (SELECT 1 FROM assets WHERE fingerprint = :first AND state = 'ready'
                               AND phash IS NOT NULL AND near_duplicate_of IS NULL)",
                named_params! { ":member": member, ":first": first },
            )
            .map(|changed| changed == 1)
        })
        .await
    }

    async fn near_duplicate_candidates(&self, phash: u64, limit: usize) -> StoreResult<Vec<Candidate>> {
        self.with(move |c| {
            let mut statement = c.prepare_cached(NEAR_DUPLICATE_CANDIDATES)?;
            let bands = band_keys(phash);
            let rows = statement.query_map(
                params![bands[0], bands[1], bands[2], bands[3], bands[4], bands[5], bands[6], bands[7], limit as i64],
                |row| {
                    let phash: String = row.get("phash")?;
                    Ok(Candidate {
                        fingerprint: fingerprint_at(row, "fingerprint")?,
                        phash: u64::from_str_radix(&phash, 16).map_err(|_| bad_row("phash"))?,
                        near_duplicate_of: match row.get::<_, Option<String>>("near_duplicate_of")? {
                            Some(hex) => Some(hex.parse().map_err(|_| bad_row("near_duplicate_of"))?),
                            None => None,
                        },
                    })
                },
            )?;
            rows.collect()
        })
        .await
    }

    async fn asset_page(&self, after: Option<&str>, limit: usize) -> StoreResult<Page<AssetRecord>> {
        let after = after.unwrap_or_default().to_string();
        let items = self
            .with(move |c| {
                let mut statement = c.prepare(&format!(
                    "SELECT {ASSET_COLUMNS} FROM assets WHERE fingerprint > ?1 ORDER BY fingerprint LIMIT ?2"
                ))?;
                let rows = statement.query_map(params![after, limit as i64], asset_from)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        let next = (items.len() == limit).then(|| items.last().map(|r| r.fingerprint.to_hex())).flatten();
        Ok(Page { items, next })
    }

    async fn variant(&self, key: &CacheKey) -> StoreResult<Option<VariantRecord>> {
        let key = key.to_hex();
        self.with(move |c| {
            c.query_row(&format!("SELECT {VARIANT_COLUMNS} FROM variants WHERE cache_key = ?1"), [key], variant_from)
                .optional()
        })
        .await
    }

    async fn claim_variant(&self, record: &VariantRecord, now: Millis) -> StoreResult<Claim> {
        let record = record.clone();
        self.with(move |c| {
            let (row, now) = (VariantRow::of(&record), now as i64);
            let changed = c.execute(
                &format!("{VARIANT_UPSERT} WHERE variants.state = 'pending' AND variants.lease_until_ms < :now"),
                &*row.params(&[(":now", &now)]),
            )?;
            if changed == 1 {
                return Ok(Claim::Claimed);
            }
            let current = c.query_row(
                &format!("SELECT {VARIANT_COLUMNS} FROM variants WHERE cache_key = ?1"),
                [record.cache_key.to_hex()],
                variant_from,
            )?;
            Ok(Claim::Held(current))
        })
        .await
    }

    async fn finish_variant(&self, record: &VariantRecord) -> StoreResult<bool> {
        let record = record.clone();
        self.with(move |c| {
            let row = VariantRow::of(&record);
            let changed = c.execute(&format!("{VARIANT_UPSERT} WHERE variants.state <> 'ready'"), &*row.params(&[]))?;
            Ok(changed == 1)
        })
        .await
    }

    async fn release_claim(&self, record: &VariantRecord) -> StoreResult<bool> {
        let VariantState::Pending { lease_until_ms } = record.state else { return Ok(false) };
        let key = record.cache_key.to_hex();
        self.with(move |c| {
            c.execute(
                "DELETE FROM variants WHERE cache_key = ?1 AND state = 'pending' AND lease_until_ms = ?2",
                params![key, lease_until_ms as i64],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn forget_variant(&self, seen: &VariantRecord) -> StoreResult<bool> {
        let (key, state, updated) = (seen.cache_key.to_hex(), seen.state.name().to_string(), seen.updated_ms as i64);
        self.with(move |c| {
            c.execute(
                "DELETE FROM variants WHERE cache_key = ?1 AND state = ?2 AND updated_ms = ?3",
                params![key, state, updated],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn source_page(&self, after: Option<&str>, limit: usize) -> StoreResult<Page<SourceRecord>> {
        let after = after.unwrap_or_default().to_string();
        let items = self
            .with(move |c| {
                let mut statement = c.prepare(
                    "SELECT key, fingerprint, bytes, etag, state, updated_ms FROM sources WHERE key > ?1 ORDER BY key LIMIT ?2",
                )?;
                let rows = statement.query_map(params![after, limit as i64], source_from)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        let next = (items.len() == limit).then(|| items.last().map(|r| r.key.clone())).flatten();
        Ok(Page { items, next })
    }

    async fn variant_page(&self, after: Option<&str>, limit: usize) -> StoreResult<Page<VariantRecord>> {
        let after = after.unwrap_or_default().to_string();
        let items = self
            .with(move |c| {
                let mut statement = c.prepare(&format!(
                    "SELECT {VARIANT_COLUMNS} FROM variants WHERE cache_key > ?1 ORDER BY cache_key LIMIT ?2"
                ))?;
                let rows = statement.query_map(params![after, limit as i64], variant_from)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        let next = (items.len() == limit).then(|| items.last().map(|r| r.cache_key.to_hex())).flatten();
        Ok(Page { items, next })
    }

    async fn reclaim_lost_variant(&self, record: &VariantRecord, lost_object_key: &str) -> StoreResult<bool> {
        let record = record.clone();
        let lost = lost_object_key.to_string();
        self.with(move |c| {
            let row = VariantRow::of(&record);
            let changed = c.execute(
                &format!("{VARIANT_UPSERT} WHERE variants.state = 'ready' AND variants.object_key = :lost"),
                &*row.params(&[(":lost", &lost)]),
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn take_over_prewarm_claim(&self, record: &VariantRecord, seen: &VariantRecord) -> StoreResult<bool> {
        let VariantState::Pending { lease_until_ms } = seen.state else { return Ok(false) };
        let record = record.clone();
        self.with(move |c| {
            let row = VariantRow::of(&record);
            let seen_lease = lease_until_ms as i64;
            let changed = c.execute(
                &format!(
                    "{VARIANT_UPSERT} WHERE variants.state = 'pending' AND variants.origin = 'prewarmed' \
                     AND variants.lease_until_ms = :seen_lease"
                ),
                &*row.params(&[(":seen_lease", &seen_lease)]),
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn mark_prewarm_served(&self, key: &CacheKey) -> StoreResult<bool> {
        let key = key.to_hex();
        self.with(move |c| {
            c.execute(
                "UPDATE variants SET origin = 'prewarmed_served' WHERE cache_key = ?1 AND origin = 'prewarmed'",
                [key],
            )
            .map(|changed| changed == 1)
        })
        .await
    }

    async fn totals(&self) -> StoreResult<Totals> {
        self.with(|c| {
            c.query_row(
                "SELECT (SELECT count(*) FROM sources WHERE state = 'present'), \
                 (SELECT count(*) FROM variants WHERE state = 'ready'), \
                 (SELECT count(*) FROM variants WHERE state = 'pending'), \
                 (SELECT count(*) FROM variants WHERE state = 'failed')",
                [],
                |r| {
                    Ok(Totals {
                        sources: r.get::<_, i64>(0)? as u64,
                        ready: r.get::<_, i64>(1)? as u64,
                        pending: r.get::<_, i64>(2)? as u64,
                        failed: r.get::<_, i64>(3)? as u64,
                    })
                },
            )
        })
        .await
    }

    async fn variants_of(&self, fingerprint: &Fingerprint, limit: usize) -> StoreResult<Vec<VariantRecord>> {
        let fingerprint = fingerprint.to_hex();
        self.with(move |c| {
            let mut statement = c.prepare(&format!(
                "SELECT {VARIANT_COLUMNS} FROM variants WHERE fingerprint = :fingerprint ORDER BY cache_key LIMIT :limit"
            ))?;
            let rows = statement
                .query_map(rusqlite::named_params! { ":fingerprint": fingerprint, ":limit": limit as i64 }, variant_from)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
    }

    async fn pending_variants(&self, fingerprint: &Fingerprint, now_ms: Millis, limit: u64) -> StoreResult<u64> {
        let fingerprint = fingerprint.to_hex();
        self.with(move |c| {
            c.query_row(
                "SELECT count(*) FROM (SELECT 1 FROM variants WHERE fingerprint = :fingerprint AND state = 'pending' \
                 AND lease_until_ms > :now LIMIT :limit)",
                rusqlite::named_params! { ":fingerprint": fingerprint, ":now": now_ms as i64, ":limit": limit as i64 },
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.with(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }
}

#[async_trait]
impl JobQueue for SqliteStore {
    async fn enqueue(&self, job: &Job) -> StoreResult<()> {
        let body = job.to_json();
        let lane = self.lane.as_str();
        self.with(move |c| {
            let now = now_ms() as i64;
            c.execute(
                "INSERT INTO jobs (body, visible_at_ms, created_ms, lane) VALUES (?1, ?2, ?2, ?3)",
                params![body, now, lane],
            )
            .map(|_| ())
        })
        .await?;
        self.wake().notify_one();
        Ok(())
    }

    async fn pending_jobs(&self) -> StoreResult<u64> {
        // A job row lives until it is acknowledged (done or given up).
        let lane = self.lane.as_str();
        self.with(move |c| {
            c.query_row("SELECT count(*) FROM jobs WHERE lane = ?1", [lane], |r| r.get::<_, i64>(0)).map(|n| n as u64)
        })
        .await
    }
}

#[async_trait]
impl LeasedJobQueue for SqliteStore {
    async fn receive(&self, lease_ms: u64) -> StoreResult<Option<Delivery>> {
        // A guess starts only while no viewer's job is queued or rendering, so a viewer's job
        // never waits for a worker busy with guesses.
        let query = match self.lane {
            Lane::Viewer => {
                "SELECT id, body, attempts FROM jobs WHERE lane = 'viewer' AND visible_at_ms <= ?1 ORDER BY id LIMIT 1"
            }
            Lane::Prewarm => {
                "SELECT id, body, attempts FROM jobs WHERE lane = 'prewarm' AND visible_at_ms <= ?1 \
                 AND NOT EXISTS (SELECT 1 FROM jobs WHERE lane = 'viewer') ORDER BY id LIMIT 1"
            }
        };
        let received = self
            .with(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let now = now_ms() as i64;
                let row = tx
                    .query_row(query, [now], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
                    .optional()?;
                if let Some((id, _, _)) = &row {
                    tx.execute(
                        "UPDATE jobs SET visible_at_ms = ?2, attempts = attempts + 1 WHERE id = ?1",
                        params![id, now + lease_ms as i64],
                    )?;
                }
                tx.commit()?;
                Ok(row)
            })
            .await?;
        let Some((id, body, attempts)) = received else { return Ok(None) };
        match Job::from_json(&body) {
            Ok(job) => Ok(Some(Delivery { id: id.to_string(), job, attempt: attempts as u32 + 1 })),
            Err(e) => {
                // A body we cannot read will never become readable: drop it, loudly.
                tracing::error!(id, error = %e, "dropping an unreadable job");
                self.ack(&id.to_string()).await?;
                Ok(None)
            }
        }
    }

    async fn ack(&self, id: &str) -> StoreResult<()> {
        let id = row_id(id)?;
        self.with(move |c| c.execute("DELETE FROM jobs WHERE id = ?1", [id]).map(|_| ())).await
    }

    async fn retry_later(&self, id: &str, delay_ms: u64) -> StoreResult<()> {
        let id = row_id(id)?;
        self.with(move |c| {
            c.execute("UPDATE jobs SET visible_at_ms = ?2 WHERE id = ?1", params![id, (now_ms() + delay_ms) as i64])
                .map(|_| ())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_duplicate_index_is_searched_not_scanned() {
        // SQLite's plan names a SCAN for a full pass over a table and a SEARCH for a B-tree
        // lookup: finding candidates must touch neither table in full, however many assets there are.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("catg.db")).expect("open");
        let conn = store.conn.lock().expect("lock");
        let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {NEAR_DUPLICATE_CANDIDATES}")).expect("prepare");
        let steps: Vec<String> = plan
            .query_map(params![0, 1, 2, 3, 4, 5, 6, 7, 10], |row| row.get::<_, String>(3))
            .expect("plan")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        let plan = steps.join("\n");
        assert!(plan.contains("SEARCH phash_bands"), "{plan}");
        assert!(plan.contains("SEARCH a USING INDEX"), "{plan}");
        assert!(!plan.contains("SCAN"), "a full scan in the plan:\n{plan}");
    }

    fn job(n: u8, prewarm: bool) -> Job {
        let recipe = catg_core::Recipe::parse("w=10&fmt=png", &catg_core::RecipeLimits::default())
            .expect("recipe")
            .resolve(None, false, (100, 100))
            .expect("resolves");
        Job { prewarm, ..Job::new(Fingerprint::of(&[n]), recipe, "k") }
    }

    /// Guesses wait behind viewers: the pre-warm lane hands out nothing while a viewer's job is
    /// queued or being rendered, and each lane counts only its own jobs.
    #[tokio::test]
    async fn the_prewarm_lane_waits_for_the_viewers_lane_to_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let viewers = SqliteStore::open(&dir.path().join("catg.db")).expect("open");
        let guesses = viewers.prewarm_lane();
        guesses.enqueue(&job(1, true)).await.expect("enqueue guess");
        viewers.enqueue(&job(2, false)).await.expect("enqueue viewer's");
        assert_eq!((viewers.pending_jobs().await.ok(), guesses.pending_jobs().await.ok()), (Some(1), Some(1)));
        assert_eq!(guesses.receive(60_000).await.expect("receive"), None, "a viewer's job is queued");
        let viewer = viewers.receive(60_000).await.expect("receive").expect("the viewer's job");
        assert_eq!(viewer.job, job(2, false));
        assert_eq!(viewers.receive(60_000).await.expect("receive"), None, "the viewers' lane holds no guesses");
        assert_eq!(guesses.receive(60_000).await.expect("receive"), None, "a viewer's job is rendering");
        viewers.ack(&viewer.id).await.expect("ack");
        let guess = guesses.receive(60_000).await.expect("receive").expect("now the guess");
        assert_eq!(guess.job, job(1, true), "the job keeps its pre-warm mark");
    }

    /// A database made before lanes and origins gains them: its jobs are viewers' jobs and its
    /// variants were requested by viewers.
    #[test]
    fn an_older_database_gains_the_lane_and_origin_columns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("catg.db");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(
                "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, \
                 visible_at_ms INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL);",
            )
            .expect("old schema");
            conn.execute(
                "INSERT INTO jobs (body, visible_at_ms, created_ms) VALUES (?1, 0, 0)",
                [job(3, false).to_json()],
            )
            .expect("old job");
        }
        let store = SqliteStore::open(&path).expect("open");
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let delivered = runtime.block_on(store.receive(60_000)).expect("receive").expect("the old job");
        assert_eq!(delivered.job, job(3, false));
        let conn = store.conn.lock().expect("lock");
        let origin: Option<String> = conn
            .query_row("SELECT name FROM pragma_table_info('variants') WHERE name = 'origin'", [], |r| r.get(0))
            .optional()
            .expect("query");
        assert!(origin.is_some(), "variants.origin was added");
    }
}
