//! The deployed stack's stores, for the bulk commands' `--aws` (backfill, warm, report). Behind
//! the `aws` feature: a `catg` built to run locally compiles none of the AWS SDK.

use catg_core::{Resolver, Stores};

/// The stores named by the functions' environment (`CATG_SOURCE_BUCKET`, `CATG_TABLE`, …).
#[cfg(feature = "aws")]
pub async fn stores() -> Result<Stores, String> {
    let config = catg_aws::Config::from_env().map_err(|e| e.to_string())?;
    Ok(catg_aws::Aws::connect(&config).await.stores)
}

/// The resolver as the deployed function runs it (it queues renders for the transform function).
#[cfg(feature = "aws")]
pub async fn resolver() -> Result<Resolver, String> {
    let config = catg_aws::Config::from_env().map_err(|e| e.to_string())?;
    catg_aws::Aws::connect(&config).await.resolver(&config).await.map_err(|e| e.to_string())
}

#[cfg(not(feature = "aws"))]
const NOT_BUILT: &str = "this catg was built without AWS support: build it with \
    `cargo build --release -p catg-cli --features aws` to use --aws";

#[cfg(not(feature = "aws"))]
pub async fn stores() -> Result<Stores, String> {
    Err(NOT_BUILT.into())
}

#[cfg(not(feature = "aws"))]
pub async fn resolver() -> Result<Resolver, String> {
    Err(NOT_BUILT.into())
}
