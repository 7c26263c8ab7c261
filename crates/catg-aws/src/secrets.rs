//! Secrets Manager as the source of the resolver's signing keys: the stack passes the secret's
//! ARN, never its value, so the keys are not readable from the function's configuration.

use crate::errors::map;
use async_trait::async_trait;
use catg_core::ports::StoreError;
use catg_core::SecretSource;

/// One secret, read with `GetSecretValue` (its current version, `AWSCURRENT`).
#[derive(Debug, Clone)]
pub struct SecretsManagerSecret {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerSecret {
    /// `secret_id` is the secret's ARN (or name).
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> SecretsManagerSecret {
        SecretsManagerSecret { client, secret_id: secret_id.into() }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSecret {
    async fn read(&self) -> Result<String, StoreError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| map("secretsmanager get_secret_value", e))?;
        out.secret_string
            .ok_or_else(|| StoreError::Invalid("the secret holds binary data; store the keys as a string".into()))
    }
}
