//! Output formats and their encoder settings.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    Jpeg,
    Png,
    Webp,
    Avif,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 4] = [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp, OutputFormat::Avif];

    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Avif => "avif",
        }
    }

    pub fn parse(s: &str) -> Option<OutputFormat> {
        OutputFormat::ALL.into_iter().find(|f| f.as_str() == s)
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Avif => "image/avif",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            other => other.as_str(),
        }
    }

    /// The quality used when a recipe gives none; `None` for lossless PNG, where it means nothing.
    /// AVIF's scale is not JPEG's: ravif q70 at speed 10 matches or beats sharp's AVIF q50 by DSSIM.
    pub fn default_quality(self) -> Option<u8> {
        match self {
            OutputFormat::Jpeg | OutputFormat::Webp => Some(80),
            OutputFormat::Avif => Some(70),
            OutputFormat::Png => None,
        }
    }

    pub fn supports_alpha(self) -> bool {
        !matches!(self, OutputFormat::Jpeg)
    }

    /// The largest width or height the format can hold.
    pub fn max_dimension(self) -> u32 {
        match self {
            OutputFormat::Jpeg => 65_500,
            OutputFormat::Webp => 16_383,
            OutputFormat::Png | OutputFormat::Avif => 65_535,
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
