//! catg's local adapters: a folder as an object store and SQLite as the manifest and the
//! durable job queue. `catg serve` runs on these; the conformance suite checks them against the
//! same contract as the AWS adapters.

pub mod embedded;
pub mod fs_store;
pub mod sqlite;

pub use embedded::{Embedded, EmbeddedConfig, ScanSummary};
pub use fs_store::FsObjectStore;
pub use sqlite::{Counts, SqliteStore};
