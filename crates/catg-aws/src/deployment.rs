//! The deployed stack: its configuration, read from the functions' environment in one place,
//! and its stores, connected. The Lambda functions and `catg --aws` both start here.

use crate::{s3_client, DynamoManifest, S3ObjectStore, SecretsManagerSecret, SqsQueue};
use catg_core::config::{
    image_limits, pending_caps, prewarm_config, recipe_limits, render_memory_mib, signing_keys, ConfigError,
};
use catg_core::ports::JobQueue;
use catg_core::{
    Decoding, Keyring, KeyringError, PrewarmConfig, RenderBudget, Renderer, Resolver, ResolverConfig, Stores,
};
use catg_image::Limits;
use std::sync::Arc;
use std::time::Duration;

/// Everything the functions read from their environment, read in one place.
#[derive(Debug, Clone)]
pub struct Config {
    pub source_bucket: String,
    pub variants_bucket: String,
    pub table: String,
    /// Only the resolver queues viewers' jobs.
    pub queue_url: Option<String>,
    /// Where the transform queues pre-warm guesses (a second queue, drained at a capped
    /// concurrency); unset: no pre-warming.
    pub prewarm_queue_url: Option<String>,
    pub prewarm: PrewarmConfig,
    pub wait: Duration,
    pub key_max_age: Duration,
    pub key_stale_while_revalidate: Duration,
    pub resolver: ResolverConfig,
    /// Memory budget for renders running at once (transform), in MiB.
    pub render_memory_mib: u32,
    /// Reconcile leaves unnamed variant objects younger than this alone: a render may have
    /// stored one a moment before recording it.
    pub reconcile_grace: Duration,
    /// The Secrets Manager secret holding the signing keys, and how long a read is trusted
    /// (the resolver; `resolver.signing` is filled from it by [`Aws::resolver`]).
    pub signing_secret: Option<(String, Duration)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigFailure {
    #[error("missing environment variable {0}")]
    Missing(&'static str),
    #[error("{name}={value:?} is not valid: {expected}")]
    Invalid { name: &'static str, value: String, expected: &'static str },
    #[error(transparent)]
    Limit(#[from] ConfigError),
    #[error("CATG_SIGNING_KEYS and CATG_SIGNING_KEYS_SECRET are both set; give the keys one way")]
    TwoSigningSources,
    #[error(transparent)]
    Keys(#[from] KeyringError),
}

impl Config {
    /// `CATG_SOURCE_BUCKET`, `CATG_VARIANTS_BUCKET`, `CATG_TABLE` (required); `CATG_QUEUE_URL`
    /// (resolver); `CATG_PREWARM_QUEUE_URL` and the `CATG_PREWARM_*` settings (transform); `CATG_SOURCE_PREFIX` (default none: every key); `CATG_WAIT_MS` (default 3000),
    /// `CATG_KEY_MAX_AGE` seconds (default 60); `CATG_KEY_STALE_WHILE_REVALIDATE` seconds
    /// (default 86400); `CATG_RECONCILE_GRACE_S` (default 3600);
    /// the `CATG_MAX_*` limits; the signing keys as `CATG_SIGNING_KEYS_SECRET` (a Secrets
    /// Manager ARN, what the stack sets; re-read after `CATG_SIGNING_KEYS_TTL_S`, default 300)
    /// or `CATG_SIGNING_KEYS` (the value itself, for local emulators).
    pub fn from_env() -> Result<Config, ConfigFailure> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigFailure> {
        let required = |name: &'static str| env(name).filter(|v| !v.is_empty()).ok_or(ConfigFailure::Missing(name));
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigFailure> {
            match env(name) {
                None => Ok(default),
                Some(value) => {
                    value.trim().parse().map_err(|_| ConfigFailure::Invalid { name, value, expected: "a whole number" })
                }
            }
        };
        let wait = Duration::from_millis(number("CATG_WAIT_MS", 3000)?);
        let (max_pending_jobs, max_pending_per_asset) = pending_caps(&env)?;
        let resolver = ResolverConfig {
            max_pending_jobs,
            max_pending_per_asset,
            limits: image_limits(&env)?,
            recipe_limits: recipe_limits(&env)?,
            wait,
            source_prefix: env("CATG_SOURCE_PREFIX").unwrap_or_default(),
            signing: signing_keys(&env)?.map(Keyring::fixed),
            ..ResolverConfig::default()
        };
        let signing_secret = match env("CATG_SIGNING_KEYS_SECRET").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(_) if resolver.signing.is_some() => return Err(ConfigFailure::TwoSigningSources),
            Some(id) => Some((id.trim().to_string(), Duration::from_secs(number("CATG_SIGNING_KEYS_TTL_S", 300)?))),
        };
        Ok(Config {
            source_bucket: required("CATG_SOURCE_BUCKET")?,
            variants_bucket: required("CATG_VARIANTS_BUCKET")?,
            table: required("CATG_TABLE")?,
            queue_url: env("CATG_QUEUE_URL").filter(|v| !v.is_empty()),
            prewarm_queue_url: env("CATG_PREWARM_QUEUE_URL").filter(|v| !v.is_empty()),
            prewarm: prewarm_config(&env)?,
            wait,
            key_max_age: Duration::from_secs(number("CATG_KEY_MAX_AGE", 60)?),
            key_stale_while_revalidate: Duration::from_secs(number("CATG_KEY_STALE_WHILE_REVALIDATE", 86_400)?),
            resolver,
            render_memory_mib: render_memory_mib(&env)?,
            reconcile_grace: Duration::from_secs(number("CATG_RECONCILE_GRACE_S", 3600)?),
            signing_secret,
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.resolver.limits
    }
}

/// The AWS stores, connected.
#[derive(Clone)]
pub struct Aws {
    pub stores: Stores,
    secrets: aws_sdk_secretsmanager::Client,
}

impl std::fmt::Debug for Aws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aws").finish_non_exhaustive()
    }
}

impl Aws {
    pub async fn connect(config: &Config) -> Aws {
        let sdk = crate::sdk_config().await;
        let s3 = s3_client(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let queue_at = |url: &String| Arc::new(SqsQueue::new(sqs.clone(), url)) as Arc<dyn JobQueue>;
        let queue = config.queue_url.as_ref().map(queue_at);
        let prewarm_queue = config.prewarm_queue_url.as_ref().map(queue_at);
        let stores = Stores {
            sources: Arc::new(S3ObjectStore::new(s3.clone(), &config.source_bucket)),
            variants: Arc::new(S3ObjectStore::new(s3, &config.variants_bucket)),
            manifest: Arc::new(DynamoManifest::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table)),
            queue,
            prewarm_queue,
            budget: Arc::new(RenderBudget::new(config.render_memory_mib)),
        };
        Aws { stores, secrets: aws_sdk_secretsmanager::Client::new(&sdk) }
    }

    /// The same connection over other stores (tests put one that is down in its place).
    pub fn with_stores(&self, stores: Stores) -> Aws {
        Aws { stores, secrets: self.secrets.clone() }
    }

    /// Limits and the process's budget, for ingest's decodes.
    pub fn decoding(&self, config: &Config) -> Decoding {
        self.stores.decoding(config.limits())
    }

    /// The transform's renderer: it queues pre-warm guesses when the pre-warm queue is set.
    pub fn renderer(&self, config: &Config) -> Renderer {
        self.stores.prewarming_renderer(config.limits(), &config.resolver.recipe_limits, &config.prewarm)
    }

    /// The resolver as the deployed function runs it. With a signing secret, its keys are read
    /// here, once before the first request.
    pub async fn resolver(&self, config: &Config) -> Result<Resolver, ConfigFailure> {
        let mut resolver_config = config.resolver.clone();
        if let Some((secret, ttl)) = &config.signing_secret {
            let source = Arc::new(SecretsManagerSecret::new(self.secrets.clone(), secret));
            resolver_config.signing = Some(Keyring::fetched(source, *ttl).await?);
        }
        self.stores.resolver(resolver_config).ok_or(ConfigFailure::Missing("CATG_QUEUE_URL"))
    }
}
