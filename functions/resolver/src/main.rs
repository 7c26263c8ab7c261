//! Resolver: the Function URL (behind CloudFront) serving the same router as `catg serve`.
//! Responses are streamed (Function URL `InvokeMode: RESPONSE_STREAM`), so variants larger than
//! the 6 MB buffered-response limit are served rather than refused.

use catg_lambda::{init_logging, Aws, Config};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_logging();
    catg_lambda::init_metrics("resolver");
    let config = Config::from_env()?;
    let aws = Aws::connect(&config).await;
    let router = catg_lambda::resolver_router(catg_lambda::http_state(&aws, &config).await?);
    lambda_http::run_with_streaming_response(router).await
}
