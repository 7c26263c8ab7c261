//! Transform: SQS batches of render jobs → variants in S3, with partial batch failures.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use catg_lambda::{handle_sqs_event, init_logging, Aws, Config};
use lambda_runtime::{service_fn, LambdaEvent};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    catg_lambda::reuse_large_buffers();
    init_logging();
    catg_lambda::init_metrics("transform");
    let config = Config::from_env()?;
    let renderer = Arc::new(Aws::connect(&config).await.renderer(&config));
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let renderer = renderer.clone();
        async move { Ok::<SqsBatchResponse, lambda_runtime::Error>(handle_sqs_event(&renderer, event.payload).await) }
    }))
    .await
}
