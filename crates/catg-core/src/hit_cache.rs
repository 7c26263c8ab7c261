//! What the resolver remembers between requests, so that a hit costs no store round trip.
//!
//! Only facts that cannot go stale are kept indefinitely: an asset's facts never change (its
//! fingerprint is its content), and a ready variant's bytes never change (its cache key is a
//! hash of the fingerprint and the canonical recipe). The one mutable fact on the hit path —
//! which fingerprint a key names — is kept for `source_ttl` only, which bounds how long a
//! re-uploaded or removed key can be served from memory (key URLs are cached by browsers and
//! CDNs for longer than that anyway).
//!
//! Bounded two ways: entries and body bytes. Eviction is generational (a full generation becomes
//! the old one; the old one is dropped; a hit in the old generation moves back): O(1), no
//! per-entry bookkeeping, close enough to LRU for a cache whose misses cost a few milliseconds.

use crate::cache_key::CacheKey;
use crate::fingerprint::Fingerprint;
use crate::model::{AssetRecord, SourceRecord};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct HitCacheConfig {
    /// Most entries of each kind (sources, assets, variants).
    pub entries: usize,
    /// Most variant body bytes held in memory.
    pub body_bytes: usize,
    /// Variants larger than this are read from the store on every hit.
    pub max_body: usize,
    /// How long a key → fingerprint answer is trusted.
    pub source_ttl: Duration,
}

impl Default for HitCacheConfig {
    fn default() -> Self {
        HitCacheConfig { entries: 20_000, body_bytes: 64 << 20, max_body: 1 << 20, source_ttl: Duration::from_secs(1) }
    }
}

/// A ready variant as the hit path needs it.
#[derive(Debug, Clone)]
pub struct CachedVariant {
    pub object_key: String,
    pub bytes: u64,
    /// The variant itself, when it is small enough to keep.
    pub body: Option<Vec<u8>>,
}

#[derive(Debug)]
pub struct HitCache {
    config: HitCacheConfig,
    sources: Mutex<Generations<String, (SourceRecord, Instant)>>,
    assets: Mutex<Generations<Fingerprint, AssetRecord>>,
    variants: Mutex<Generations<CacheKey, CachedVariant>>,
}

impl Default for HitCache {
    fn default() -> Self {
        HitCache::new(HitCacheConfig::default())
    }
}

impl HitCache {
    pub fn new(config: HitCacheConfig) -> HitCache {
        let entries = config.entries.max(2);
        HitCache {
            sources: Mutex::new(Generations::new(entries, usize::MAX)),
            assets: Mutex::new(Generations::new(entries, usize::MAX)),
            variants: Mutex::new(Generations::new(entries, config.body_bytes)),
            config,
        }
    }

    /// A cache that remembers nothing (every request goes to the stores).
    pub fn disabled() -> HitCache {
        HitCache::new(HitCacheConfig { entries: 0, body_bytes: 0, max_body: 0, source_ttl: Duration::ZERO })
    }

    fn enabled(&self) -> bool {
        self.config.entries > 0
    }

    pub fn source(&self, key: &str) -> Option<SourceRecord> {
        let mut sources = lock(&self.sources);
        match sources.get(key) {
            Some((record, at)) if at.elapsed() < self.config.source_ttl => Some(record),
            _ => None,
        }
    }

    pub fn put_source(&self, record: &SourceRecord) {
        if self.enabled() && !self.config.source_ttl.is_zero() {
            lock(&self.sources).insert(record.key.clone(), (record.clone(), Instant::now()), 0);
        }
    }

    /// Forget what a key named (it was re-uploaded or removed).
    pub fn forget_source(&self, key: &str) {
        lock(&self.sources).remove(key);
    }

    pub fn asset(&self, fingerprint: &Fingerprint) -> Option<AssetRecord> {
        lock(&self.assets).get(fingerprint)
    }

    pub fn put_asset(&self, record: &AssetRecord) {
        if self.enabled() {
            lock(&self.assets).insert(record.fingerprint, record.clone(), 0);
        }
    }

    pub fn variant(&self, key: &CacheKey) -> Option<CachedVariant> {
        lock(&self.variants).get(key)
    }

    pub fn put_variant(&self, key: CacheKey, object_key: &str, bytes: u64, body: Option<&[u8]>) {
        if !self.enabled() {
            return;
        }
        let body = body.filter(|b| b.len() <= self.config.max_body).map(<[u8]>::to_vec);
        let weight = body.as_ref().map_or(0, Vec::len);
        lock(&self.variants).insert(key, CachedVariant { object_key: object_key.to_string(), bytes, body }, weight);
    }

    /// Forget a variant whose object turned out to be gone.
    pub fn forget_variant(&self, key: &CacheKey) {
        lock(&self.variants).remove(key);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a map half-updated in a way that matters here.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Two generations of a map, each bounded by entries and weight.
#[derive(Debug)]
struct Generations<K, V> {
    young: HashMap<K, (V, usize)>,
    old: HashMap<K, (V, usize)>,
    young_weight: usize,
    old_weight: usize,
    max_entries: usize,
    max_weight: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> Generations<K, V> {
    fn new(max_entries: usize, max_weight: usize) -> Self {
        Generations {
            young: HashMap::new(),
            old: HashMap::new(),
            young_weight: 0,
            old_weight: 0,
            max_entries: max_entries / 2,
            max_weight: max_weight / 2,
        }
    }

    fn get<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some((value, _)) = self.young.get(key) {
            return Some(value.clone());
        }
        let (key, (value, weight)) = self.old.remove_entry(key)?;
        self.old_weight -= weight;
        self.insert(key, value.clone(), weight);
        Some(value)
    }

    fn insert(&mut self, key: K, value: V, weight: usize) {
        if weight > self.max_weight {
            return;
        }
        if self.young.len() >= self.max_entries || self.young_weight + weight > self.max_weight {
            self.old = std::mem::take(&mut self.young);
            self.old_weight = std::mem::replace(&mut self.young_weight, 0);
        }
        if let Some((_, previous)) = self.old.remove(&key) {
            self.old_weight -= previous;
        }
        if let Some((_, previous)) = self.young.insert(key, (value, weight)) {
            self.young_weight -= previous;
        }
        self.young_weight += weight;
    }

    fn remove<Q>(&mut self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some((_, w)) = self.young.remove(key) {
            self.young_weight -= w;
        }
        if let Some((_, w)) = self.old.remove(key) {
            self.old_weight -= w;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_stay_within_their_bounds_and_keep_what_is_used() {
        let mut g: Generations<u32, u32> = Generations::new(8, usize::MAX);
        for i in 0..100 {
            g.insert(i, i, 0);
            assert!(g.get(&0).is_some(), "a key used all along survives ({i})");
            assert!(g.young.len() + g.old.len() <= 8);
        }
        assert!(g.get(&1).is_none(), "an unused key was evicted");
    }

    #[test]
    fn weight_is_bounded_and_oversized_values_are_not_kept() {
        let mut g: Generations<u32, ()> = Generations::new(1000, 100);
        g.insert(1, (), 51);
        assert!(g.get(&1).is_none(), "over half the budget: not kept");
        for i in 0..50 {
            g.insert(i, (), 10);
            assert!(g.young_weight + g.old_weight <= 100);
        }
        g.remove(&49);
        assert!(g.get(&49).is_none());
        assert!(g.young_weight + g.old_weight <= 90);
    }

    #[test]
    fn a_disabled_cache_remembers_nothing() {
        let cache = HitCache::disabled();
        let key = CacheKey::derive(
            &Fingerprint::of(b"x"),
            &crate::recipe::Recipe::default().resolve(None, false, (4000, 3000)).expect("resolves"),
        );
        cache.put_variant(key, "k", 1, Some(b"x"));
        assert!(cache.variant(&key).is_none());
    }
}
