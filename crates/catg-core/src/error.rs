//! The core's one error type. Entry points (CLI, HTTP, Lambda handlers) map it to exit codes,
//! statuses and retry decisions in one function each.

use crate::ports::StoreError;
use crate::recipe::RecipeError;
use catg_image::{ImageError, RejectKind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request's recipe is invalid: the caller's mistake, never retryable.
    #[error("invalid recipe: {0}")]
    InvalidRecipe(#[from] RecipeError),
    /// The source image was refused, or rendering failed inside the pipeline.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Signing is on and the URL's signature is missing, wrong or expired: refused before any
    /// store is touched.
    #[error("forbidden: {0}")]
    Forbidden(#[from] crate::signing::SignatureError),
    /// No such source key or asset.
    #[error("not found: {0}")]
    NotFound(String),
    /// The asset was refused at ingest; `reason` is a public reject kind.
    #[error("the image was rejected ({reason}): {message}")]
    AssetRejected { reason: String, message: String },
    /// The variant cannot be rendered, permanently; `reason` is a public reject kind.
    #[error("the variant could not be rendered ({reason}): {message}")]
    RenderFailed { reason: String, message: String },
    /// A job message that does not parse: drop it, retrying cannot help.
    #[error("invalid job: {0}")]
    InvalidJob(String),
    /// Too much work is waiting already (the pending-job caps): nothing was queued; ask again
    /// later. The message says which cap.
    #[error("busy: {0}")]
    Busy(String),
    /// A store or queue failed; retryable when it is `Unavailable`.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// Reading or writing bytes failed: retryable.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The public rejection kind, or `None` for failures that are not the input's fault.
    pub fn reject_kind(&self) -> Option<&str> {
        match self {
            Error::InvalidRecipe(_) => Some("invalid_recipe"),
            Error::Image(e) => e.reject_kind().map(RejectKind::as_str),
            Error::AssetRejected { reason, .. } | Error::RenderFailed { reason, .. } => Some(reason),
            Error::NotFound(_)
            | Error::Forbidden(_)
            | Error::Busy(_)
            | Error::InvalidJob(_)
            | Error::Store(_)
            | Error::Io(_) => None,
        }
    }

    /// Worth trying again later (a store outage, an I/O hiccup, an internal pipeline failure).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Store(e) => e.is_retryable(),
            Error::Io(_) => true,
            Error::Image(e) => e.reject_kind().is_none(),
            _ => false,
        }
    }
}
