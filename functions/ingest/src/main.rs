//! Ingest: S3 `ObjectCreated`/`ObjectRemoved` events → fingerprint, probe and record.

use aws_lambda_events::event::s3::S3Event;
use catg_lambda::{handle_s3_event, init_logging, Aws, Config};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    catg_lambda::init_metrics("ingest");
    let config = Config::from_env()?;
    let aws = Aws::connect(&config).await;
    let decoding = aws.decoding(&config);
    lambda_runtime::run(service_fn(|event: LambdaEvent<S3Event>| {
        let (aws, decoding) = (aws.clone(), decoding.clone());
        async move {
            handle_s3_event(&aws, &decoding, event.payload).await.map(|_| ()).map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
