//! Ingest: S3 `ObjectCreated`/`ObjectRemoved` notifications (through the ingest queue, or a
//! bare S3 event replayed by hand) → fingerprint, probe and record.

use catg_lambda::{handle_ingest_queue, handle_s3_event, init_logging, Aws, Config, IngestEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    catg_lambda::init_metrics("ingest");
    let config = Config::from_env()?;
    let aws = Aws::connect(&config).await;
    let decoding = aws.decoding(&config);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (aws, decoding) = (aws.clone(), decoding.clone());
        async move {
            match IngestEvent::from_value(event.payload)? {
                IngestEvent::Queued(batch) => {
                    Ok(serde_json::to_value(handle_ingest_queue(&aws, &decoding, batch).await)?)
                }
                IngestEvent::Direct(s3) => {
                    handle_s3_event(&aws, &decoding, s3).await.map_err(lambda_runtime::Error::from)?;
                    Ok::<Value, lambda_runtime::Error>(Value::Null)
                }
            }
        }
    }))
    .await
}
