//! catg's AWS adapters: S3 as object store, DynamoDB as manifest, SQS as job queue, Secrets
//! Manager for the signing keys. Every SDK
//! error is mapped to a `StoreError` here; none crosses a port.
//!
//! Endpoints, credentials and region come from the standard AWS environment
//! (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_REGION`, …).
//! S3 uses path-style addressing whenever an endpoint URL is set (moto, MinIO, LocalStack).

mod deployment;
mod dynamodb;
mod errors;
mod s3;
mod secrets;
mod sqs;

pub use deployment::{Aws, Config, ConfigFailure};
pub use dynamodb::{create_table, DynamoManifest};
pub use s3::S3ObjectStore;
pub use secrets::SecretsManagerSecret;
pub use sqs::SqsQueue;

/// The SDK configuration from the environment.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}

/// An S3 client; path-style when a custom endpoint is configured.
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let custom_endpoint = std::env::var_os("AWS_ENDPOINT_URL_S3").is_some() || sdk.endpoint_url().is_some();
    let config = aws_sdk_s3::config::Builder::from(sdk).force_path_style(custom_endpoint).build();
    aws_sdk_s3::Client::from_conf(config)
}
