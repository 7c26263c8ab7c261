//! The core's one error type. Entry points (CLI, HTTP, Lambda handlers) map it to exit codes,
//! statuses and retry decisions in one function each.

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
    /// Reading or writing bytes failed: retryable.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The public rejection kind, or `None` for failures that are not the input's fault.
    pub fn reject_kind(&self) -> Option<&'static str> {
        match self {
            Error::InvalidRecipe(_) => Some("invalid_recipe"),
            Error::Image(e) => e.reject_kind().map(RejectKind::as_str),
            Error::Io(_) => None,
        }
    }
}
