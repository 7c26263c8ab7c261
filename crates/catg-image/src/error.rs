//! The one error type of the image pipeline.
//!
//! Every variant but [`ImageError::Internal`] is a *rejection*: the input (or the request) is bad
//! and retrying will not help. `Internal` means catg itself failed (an encoder error, a caught
//! panic); callers treat it as retryable. Messages are safe to show to users: they describe the
//! input, never paths, addresses or library internals beyond a decoder's own one-line complaint.

use std::fmt;

/// Why an input was refused. The string forms are the public contract (`catg` CLI output,
/// manifest `reason` fields, HTTP error bodies); never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectKind {
    Empty,
    NotAnImage,
    UnsupportedFormat,
    Truncated,
    Corrupt,
    TooManyPixels,
    TooManyFrames,
    ResourceLimit,
    TooLarge,
}

impl RejectKind {
    pub const ALL: [RejectKind; 9] = [
        RejectKind::Empty,
        RejectKind::NotAnImage,
        RejectKind::UnsupportedFormat,
        RejectKind::Truncated,
        RejectKind::Corrupt,
        RejectKind::TooManyPixels,
        RejectKind::TooManyFrames,
        RejectKind::ResourceLimit,
        RejectKind::TooLarge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectKind::Empty => "empty",
            RejectKind::NotAnImage => "not_an_image",
            RejectKind::UnsupportedFormat => "unsupported_format",
            RejectKind::Truncated => "truncated",
            RejectKind::Corrupt => "corrupt",
            RejectKind::TooManyPixels => "too_many_pixels",
            RejectKind::TooManyFrames => "too_many_frames",
            RejectKind::ResourceLimit => "resource_limit",
            RejectKind::TooLarge => "too_large",
        }
    }

    pub fn parse(s: &str) -> Option<RejectKind> {
        RejectKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for RejectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("the input is empty")]
    Empty,
    #[error("the input is not an image")]
    NotAnImage,
    #[error("{0} is not a supported image format")]
    UnsupportedFormat(String),
    #[error("the image data ends early: {0}")]
    Truncated(String),
    #[error("the image data is corrupt: {0}")]
    Corrupt(String),
    #[error("the image is {width}x{height} = {pixels} pixels, over the limit of {limit}")]
    TooManyPixels { width: u64, height: u64, pixels: u64, limit: u64 },
    #[error("the image has more than {limit} frames")]
    TooManyFrames { limit: u32 },
    #[error("the image exceeds a resource limit: {0}")]
    ResourceLimit(String),
    #[error("the input is {bytes} bytes, over the limit of {limit}")]
    TooLarge { bytes: u64, limit: u64 },
    /// catg failed, not the input. Retryable; the message is for logs, not for users.
    #[error("internal image pipeline error: {0}")]
    Internal(String),
}

impl ImageError {
    /// The rejection kind, or `None` for an internal (retryable) failure.
    pub fn reject_kind(&self) -> Option<RejectKind> {
        Some(match self {
            ImageError::Empty => RejectKind::Empty,
            ImageError::NotAnImage => RejectKind::NotAnImage,
            ImageError::UnsupportedFormat(_) => RejectKind::UnsupportedFormat,
            ImageError::Truncated(_) => RejectKind::Truncated,
            ImageError::Corrupt(_) => RejectKind::Corrupt,
            ImageError::TooManyPixels { .. } => RejectKind::TooManyPixels,
            ImageError::TooManyFrames { .. } => RejectKind::TooManyFrames,
            ImageError::ResourceLimit(_) => RejectKind::ResourceLimit,
            ImageError::TooLarge { .. } => RejectKind::TooLarge,
            ImageError::Internal(_) => return None,
        })
    }

    pub(crate) fn truncated(what: &str) -> ImageError {
        ImageError::Truncated(what.to_string())
    }

    pub(crate) fn corrupt(what: impl Into<String>) -> ImageError {
        ImageError::Corrupt(what.into())
    }

    /// A decoded size that is not the one the header promised.
    pub(crate) fn header_mismatch(header: (u32, u32), (width, height): (u32, u32)) -> ImageError {
        ImageError::corrupt(format!(
            "the header says {}x{} but the image decodes as {width}x{height}",
            header.0, header.1
        ))
    }

    /// An encoder's failure: catg's fault (or the machine's), never the input's.
    pub(crate) fn encoder(format: &str, e: impl fmt::Display) -> ImageError {
        ImageError::Internal(format!("{format} encoder: {e}"))
    }
}

/// A png crate error, classified as the image crate would pass it on (it wraps the same crate on
/// the whole-frame path), so both paths give the same reason.
pub(crate) fn classify_png(e: png::DecodingError) -> ImageError {
    use image::error::{DecodingError, LimitError, LimitErrorKind, ParameterError, ParameterErrorKind};
    classify_image(match e {
        png::DecodingError::IoError(io) => image::ImageError::IoError(io),
        e @ png::DecodingError::Format(_) => {
            image::ImageError::Decoding(DecodingError::new(image::ImageFormat::Png.into(), e))
        }
        e @ png::DecodingError::Parameter(_) => {
            image::ImageError::Parameter(ParameterError::from_kind(ParameterErrorKind::Generic(e.to_string())))
        }
        png::DecodingError::LimitsExceeded => {
            image::ImageError::Limits(LimitError::from_kind(LimitErrorKind::InsufficientMemory))
        }
    })
}

pub(crate) fn classify_image(e: image::ImageError) -> ImageError {
    use image::error::{ImageError as E, LimitErrorKind};
    match e {
        E::Limits(limit) => match limit.kind() {
            LimitErrorKind::DimensionError => {
                ImageError::ResourceLimit("the image dimensions exceed the limits".into())
            }
            _ => ImageError::ResourceLimit("decoding would need more memory than allowed".into()),
        },
        E::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::truncated("the image data ends early")
        }
        E::Unsupported(u) => ImageError::UnsupportedFormat(u.to_string()),
        E::Decoding(d) => {
            let message = short(&d.to_string());
            let lower = message.to_lowercase();
            if lower.contains("eof")
                || lower.contains("end of")
                || lower.contains("truncat")
                || lower.contains("no more data")
            {
                ImageError::Truncated(message)
            } else {
                ImageError::Corrupt(message)
            }
        }
        other => ImageError::Corrupt(short(&other.to_string())),
    }
}

/// Decoder messages can run long and quote internal structures; keep the first clause.
fn short(message: &str) -> String {
    let clause = message.split(" while ").next().unwrap_or(message);
    let mut out: String = clause.chars().take(120).collect();
    if out.len() < clause.len() {
        out.push('…');
    }
    out
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;
