//! Where the resolver's signing keys come from: fixed when the process starts (`catg serve`'s
//! environment), or read from a secret store (the deployed stack's Secrets Manager secret) and
//! re-read once they are older than a TTL, so a rotation takes effect without a redeploy and
//! the keys never sit in a function's configuration.

use crate::ports::StoreError;
use crate::signing::SigningKeys;
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A secret holding `id:secret[,id:secret…]` (see [`SigningKeys::parse`]).
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The secret's current value.
    async fn read(&self) -> Result<String, StoreError>;
}

/// The active signing keys, as the resolver asks for them on every request.
#[derive(Clone)]
pub struct Keyring(Arc<Inner>);

enum Inner {
    Fixed(Arc<SigningKeys>),
    Fetched {
        source: Arc<dyn SecretSource>,
        ttl: Duration,
        cached: Mutex<(Instant, Arc<SigningKeys>)>,
        /// One refresh at a time; other requests keep using the cached keys meanwhile.
        refreshing: tokio::sync::Mutex<()>,
    },
}

/// Why the keys could not be read when the process started.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("the signing keys' secret could not be read: {0}")]
    Unreadable(#[from] StoreError),
    #[error("the signing keys' secret is not valid: {0}")]
    Invalid(String),
}

/// After a failed re-read, the cached keys serve this long before the next attempt.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

impl Keyring {
    pub fn fixed(keys: SigningKeys) -> Keyring {
        Keyring(Arc::new(Inner::Fixed(Arc::new(keys))))
    }

    /// Reads the secret now: a process that cannot read its keys must not start (it would
    /// either refuse every URL or accept unsigned ones).
    pub async fn fetched(source: Arc<dyn SecretSource>, ttl: Duration) -> Result<Keyring, KeyringError> {
        let keys = read_keys(source.as_ref()).await?;
        tracing::info!(keys = ?keys, ttl_s = ttl.as_secs(), "signing keys read from the secret");
        Ok(Keyring(Arc::new(Inner::Fetched {
            source,
            ttl,
            cached: Mutex::new((Instant::now(), Arc::new(keys))),
            refreshing: tokio::sync::Mutex::new(()),
        })))
    }

    /// The keys to verify with. Keys older than the TTL are re-read first; if the secret
    /// cannot be read or no longer parses, the last good keys stay in use (logged), so a
    /// secret store outage does not take image serving down with it.
    pub async fn current(&self) -> Arc<SigningKeys> {
        let (source, ttl, cached, refreshing) = match self.0.as_ref() {
            Inner::Fixed(keys) => return keys.clone(),
            Inner::Fetched { source, ttl, cached, refreshing } => (source, ttl, cached, refreshing),
        };
        let (read_at, keys) = cached.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if read_at.elapsed() < *ttl {
            return keys;
        }
        let Ok(_refresh) = refreshing.try_lock() else {
            return keys;
        };
        let (read_at, keys) = match read_keys(source.as_ref()).await {
            Ok(fresh) => {
                tracing::debug!(keys = ?fresh, "signing keys re-read");
                (Instant::now(), Arc::new(fresh))
            }
            Err(e) => {
                tracing::warn!(error = %e, "keeping the last good signing keys");
                let retry_at = Instant::now().checked_sub(ttl.saturating_sub(RETRY_AFTER_FAILURE));
                (retry_at.unwrap_or_else(Instant::now), keys)
            }
        };
        *cached.lock().unwrap_or_else(|p| p.into_inner()) = (read_at, keys.clone());
        keys
    }
}

async fn read_keys(source: &dyn SecretSource) -> Result<SigningKeys, KeyringError> {
    let value = source.read().await?;
    SigningKeys::parse(value.trim()).map_err(KeyringError::Invalid)
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_ref() {
            Inner::Fixed(keys) => f.debug_tuple("Keyring::Fixed").field(keys).finish(),
            Inner::Fetched { ttl, .. } => f.debug_struct("Keyring::Fetched").field("ttl", ttl).finish_non_exhaustive(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const A: &str = "a:c2VjcmV0LWtleS1hLWZvci10ZXN0cy0wMTIzNDU2Nzg5YWI";
    const B: &str = "b:c2VjcmV0LWtleS1iLWZvci10ZXN0cy0wMTIzNDU2Nzg5YWI";

    /// Answers the values in turn (the last one forever); `None` is an outage.
    struct Script(Vec<Option<&'static str>>, AtomicUsize);

    #[async_trait]
    impl SecretSource for Script {
        async fn read(&self) -> Result<String, StoreError> {
            let i = self.1.fetch_add(1, Ordering::SeqCst).min(self.0.len() - 1);
            self.0[i].map(str::to_string).ok_or_else(|| StoreError::Unavailable("secret store down".into()))
        }
    }

    fn ids(keys: &SigningKeys) -> String {
        format!("{keys:?}")
    }

    #[tokio::test]
    async fn keys_are_re_read_after_the_ttl_and_kept_through_an_outage() {
        let source = Arc::new(Script(vec![Some(A), Some(A), None, Some(B)], AtomicUsize::new(0)));
        let ring = Keyring::fetched(source.clone(), Duration::ZERO).await.expect("readable");
        assert!(ids(&*ring.current().await).contains("\"a\""), "second read");
        // The third read fails: the last good keys stay.
        assert!(ids(&*ring.current().await).contains("\"a\""), "outage keeps the old keys");
        assert!(ids(&*ring.current().await).contains("\"b\""), "rotation arrives once the store answers");
        assert_eq!(source.1.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn keys_within_the_ttl_are_not_re_read() {
        let source = Arc::new(Script(vec![Some(A), Some(B)], AtomicUsize::new(0)));
        let ring = Keyring::fetched(source.clone(), Duration::from_secs(300)).await.expect("readable");
        for _ in 0..5 {
            assert!(ids(&*ring.current().await).contains("\"a\""));
        }
        assert_eq!(source.1.load(Ordering::SeqCst), 1, "one read at start, none within the TTL");
    }

    #[tokio::test]
    async fn a_process_without_readable_valid_keys_does_not_start() {
        let down = Arc::new(Script(vec![None], AtomicUsize::new(0)));
        assert!(matches!(Keyring::fetched(down, Duration::ZERO).await, Err(KeyringError::Unreadable(_))));
        let short = Arc::new(Script(vec![Some("k:dG9vLXNob3J0")], AtomicUsize::new(0)));
        assert!(matches!(Keyring::fetched(short, Duration::ZERO).await, Err(KeyringError::Invalid(_))));
    }
}
