//! SDK errors → `StoreError`, in one place.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use catg_core::ports::StoreError;

/// Codes that mean "slow down or try again".
const RETRYABLE: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "ServiceUnavailable",
    "InternalError",
    "InternalServerError",
    "InternalFailure",
    "RequestTimeout",
    "TransactionConflictException",
];

pub(crate) fn map<E, R>(what: &str, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
    SdkError<E, R>: HasStatus,
{
    let status = e.status();
    let code = e.code().map(str::to_string);
    let message = format!("{what}: {}", code.as_deref().unwrap_or("error"));
    match (&e, code.as_deref(), status) {
        (SdkError::ServiceError(_), Some(code), _) if RETRYABLE.contains(&code) => StoreError::Unavailable(message),
        (SdkError::ServiceError(_), Some("NoSuchKey" | "NotFound" | "NoSuchBucket"), _)
        | (SdkError::ServiceError(_), _, Some(404)) => StoreError::NotFound(message),
        (
            SdkError::ServiceError(_),
            Some("PreconditionFailed" | "ConditionalCheckFailedException" | "ConditionalRequestConflict"),
            _,
        )
        | (SdkError::ServiceError(_), _, Some(409 | 412)) => StoreError::Conflict(message),
        (SdkError::ServiceError(_), Some("ValidationException" | "InvalidArgument" | "KeyTooLongError"), _) => {
            StoreError::Invalid(message)
        }
        (SdkError::ServiceError(_), _, Some(status)) if status >= 500 => StoreError::Unavailable(message),
        // Timeouts, connection failures, unparseable responses: the service is not answering.
        (SdkError::ServiceError(_), _, _) => StoreError::Unavailable(message),
        _ => StoreError::Unavailable(format!("{what}: {}", sdk_failure(&e))),
    }
}

fn sdk_failure<E, R>(e: &SdkError<E, R>) -> &'static str {
    match e {
        SdkError::ConstructionFailure(_) => "request construction failed",
        SdkError::TimeoutError(_) => "timed out",
        SdkError::DispatchFailure(_) => "could not connect",
        SdkError::ResponseError(_) => "unreadable response",
        _ => "service error",
    }
}

/// The HTTP status of a service error's raw response.
pub(crate) trait HasStatus {
    fn status(&self) -> Option<u16>;
}

impl<E> HasStatus for SdkError<E, aws_sdk_s3::config::http::HttpResponse> {
    fn status(&self) -> Option<u16> {
        self.raw_response().map(|r| r.status().as_u16())
    }
}
