//! Reconcile: on a schedule, bring the table and the buckets back into agreement.

use catg_lambda::{handle_reconcile, init_logging, Aws, Config};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    catg_lambda::init_metrics("reconcile");
    let config = Config::from_env()?;
    let aws = Aws::connect(&config).await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (aws, config) = (aws.clone(), config.clone());
        async move {
            let deadline = event.context.deadline();
            handle_reconcile(&aws, &config, &event.payload, deadline).await.map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
